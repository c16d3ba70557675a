"""The one permission gate for actions: who may write what, declared once per view.

Every view that writes (and every page a permission opens) carries one ``@action(...)``
declaration naming the permission it needs — or a resolver that derives it from the path, where
each kind of operation has its own — and, where it acts on one thing (an account, a task), a
target check. The gate asks, in this order and before the view runs:

1. a logged-in, active staff user (else the login page);
2. the platform of the path inside the user's grant (else 404, whatever the role);
3. the target inside the user's scope and known to exist (else 404, whatever the role);
4. the permission (else 403).

A refusal writes nothing (no row, no audit event, no upstream call): it is logged instead. The
declaration stays on the view (``view.action``), so the permission matrix test can prove that
every URL accepting POST declares one, and README's role table can name what each permission
opens. Scope (rows, personal fields) is :mod:`platforms.access.scope`; this module adds only the
"may this user do it" half.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import wraps
from typing import Any

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.shortcuts import render

from platforms.access.scope import get_visible_platform, is_staff

logger = logging.getLogger(__name__)

#: the page a refusal shows (the reason names the permission that is missing)
FORBIDDEN_TEMPLATE = "dashboard/trading/forbidden.html"

#: path kwargs → the permission codenames that open the action (any one suffices)
PermissionResolver = Callable[[dict[str, Any]], Iterable[str]]
#: (user, platform, path kwargs) → is the target inside the user's scope and real?
TargetCheck = Callable[..., bool]


@dataclass(frozen=True)
class Action:
    """One view's declaration: the permission (a codename of the ``platforms`` app, or a
    resolver of the path kwargs), and the check that its target exists inside the scope."""

    permission: str | PermissionResolver
    target: TargetCheck | None = None
    #: what the README's role table says the permission opens here
    label: str = ""

    def permissions(self, kwargs: dict[str, Any]) -> tuple[str, ...]:
        """The codenames that open this action for these path kwargs (a resolver raises
        ``Http404`` for a path value that names nothing)."""
        if isinstance(self.permission, str):
            return (self.permission,)
        return tuple(self.permission(kwargs))


def has_any(user, codenames: Iterable[str]) -> bool:
    return any(user.has_perm(f"platforms.{codename}") for codename in codenames)


def refusal_text(codenames: tuple[str, ...]) -> str:
    names = " or ".join(f"'{c}'" for c in codenames)
    return f"You need the {names} permission for this."


def check(user, rule: Action, kwargs: dict[str, Any]):
    """Apply ``rule`` to ``user`` for a request with path ``kwargs``; returns the platform of
    the path (or None). Raises ``Http404`` (outside the scope, unknown target) or
    ``PermissionDenied``. Usable by any channel (a socket consumer, a command) as well."""
    platform = get_visible_platform(user, kwargs["pk"]) if "pk" in kwargs else None
    if rule.target is not None and not rule.target(user, platform, **kwargs):
        raise Http404("Not found, or outside your scope.")
    codenames = rule.permissions(kwargs)
    if not has_any(user, codenames):
        raise PermissionDenied(refusal_text(codenames))
    return platform


def action(permission: str | PermissionResolver, *, target: TargetCheck | None = None,
           label: str = ""):
    """Declare what a view needs (see the module docstring); the gate runs before the view,
    for every method it accepts."""
    rule = Action(permission, target, label)

    def decorate(view):
        @wraps(view)
        def gated(request, *args, **kwargs):
            user = request.user
            if not is_staff(user):
                return redirect_to_login(request.get_full_path())
            try:
                check(user, rule, kwargs)
            except (Http404, PermissionDenied) as exc:
                logger.warning("refused %s %s to %s: %s", request.method, request.path,
                               user.get_username(), exc)
                if isinstance(exc, Http404):
                    raise
                return render(request, FORBIDDEN_TEMPLATE, {"reason": str(exc)}, status=403)
            return view(request, *args, **kwargs)

        gated.action = rule  # type: ignore[attr-defined]
        return gated

    return decorate


def declared(view) -> Action | None:
    """The declaration of ``view`` (through ``functools.wraps`` layers), or None."""
    return getattr(view, "action", None)
