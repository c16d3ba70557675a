"""Preparing an operation: everything decided before a form is shown or a task submitted.

One path for every channel that starts an operation (the account card, the platform's bulk and
create-account forms, a hedge from the exposure page): the kind exists, the account is inside
the actor's scope and real, the actor holds the kind's permission, the platform offers the
kind. The caller gets a :class:`Draft` or one of the typed errors below and maps it to its own
answer (a view: 404, 403, a message on the form); nothing here knows about HTTP.
"""

from __future__ import annotations

from dataclasses import dataclass

from platforms.audit import Actor
from platforms.models import TradePlatform
from platforms.trading import kinds, selectors
from platforms.trading.approvals import ensure_allowed
from platforms.trading.models import TaskKind
from platforms.trading.selectors import AccountMissing, AccountState

__all__ = [
    "AccountMissing",
    "AccountRequired",
    "Draft",
    "NotInScope",
    "OperationUnavailable",
    "UnknownOperation",
    "prepare_operation",
]

#: kinds that act on the platform, not on one account
ACCOUNT_FREE_KINDS = frozenset({TaskKind.CREATE_ACCOUNT, *kinds.BULK_COMMANDS,
                                *kinds.COVERAGE_KINDS})


class UnknownOperation(Exception):
    """No such operation kind."""


class NotInScope(Exception):
    """The account is outside the actor's grant (answered as "not found", whatever the role)."""


class AccountRequired(Exception):
    """The kind acts on one account and none was named."""


class OperationUnavailable(Exception):
    """The platform's WebAPI does not offer this kind (MT5 writes only user and group records)."""


@dataclass(frozen=True)
class Draft:
    """An operation the actor may start: what the form and the confirmation step need."""

    platform: TradePlatform
    kind: str
    login: int | None
    account: AccountState | None

    @property
    def label(self) -> str:
        return TaskKind(self.kind).label

    @property
    def money(self) -> bool:
        """Money moves: the confirmation asks for the password again."""
        return kinds.spec_for(self.kind).category == kinds.MONEY


def prepare_operation(actor: Actor, platform: TradePlatform, kind: str,
                      login: int | None = None) -> Draft:
    """The draft of ``kind`` on ``login`` (None: a platform-wide kind), in this order: scope
    before permission (an account outside the grant is not found for everyone), then what the
    platform offers, then the account read live (its group checked against the grant again:
    the mirror may not know a new account's group). Raises :class:`UnknownOperation`,
    :class:`NotInScope`, ``PermissionDenied``, :class:`OperationUnavailable`,
    :class:`AccountRequired`, :class:`AccountMissing`, or the client's ``ManagerApiError``."""
    if kind not in kinds.OPERATIONS:
        raise UnknownOperation(kind)
    if login is not None and not selectors.login_in_scope(actor.user, platform, login):
        raise NotInScope(login)
    ensure_allowed(actor, platform, kind, login=login)
    if not kinds.available_on(kind, platform.kind):
        raise OperationUnavailable(
            f"{TaskKind(kind).label} is not available for {platform.kind}: "
            "its WebAPI only offers PATCH UserRecord / GroupRecord.")
    if login is None:
        if kind not in ACCOUNT_FREE_KINDS:
            raise AccountRequired(kind)
        return Draft(platform, kind, None, None)
    account = selectors.account_state(platform, login)
    if not selectors.in_scope(actor.user, platform, account.group):
        raise NotInScope(login)
    return Draft(platform, kind, login, account)
