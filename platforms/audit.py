"""Recording audit events: the one place that knows how a write is written down."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.http import HttpRequest

from platforms.models import AuditEvent, TradePlatform
from platforms.models.platform import AppendOnlyError, audit_maintenance

__all__ = ["Actor", "AppendOnlyError", "AuditEvent", "maintenance", "record", "scrub"]

# The PostgreSQL session setting the append-only trigger honours (migration 0015).
MAINTENANCE_SETTING = "audit.maintenance"


@dataclass(frozen=True)
class Actor:
    """Who acts: the user and the address they acted from.

    Services take an actor, never an ``HttpRequest``, so that one service serves a view, a
    task, a socket message and a management command, and the audit trail records the same
    fields for each. A view builds it once (:meth:`of`); a task rebuilds it from what the row
    stored (``Actor(job.requested_by, job.requested_ip)``); work nobody asked for runs as
    :meth:`system` (recorded with no user and no address).
    """

    user: Any  # a user (possibly anonymous) or None
    ip: str | None = None

    @classmethod
    def of(cls, request: HttpRequest) -> Actor:
        return cls(getattr(request, "user", None), request.META.get("REMOTE_ADDR") or None)

    @classmethod
    def system(cls) -> Actor:
        return cls(None)

    @property
    def signed_in_user(self) -> Any:
        """The user if one is signed in, else None (the system, an anonymous visitor)."""
        user = self.user
        return user if user is not None and user.is_authenticated else None


SECRET_FIELDS = frozenset({"client_secret", "password", "investor_password"})


def scrub(values: dict[str, Any]) -> dict[str, Any]:
    """Replace secret values so that the audit trail proves a change without revealing it."""
    return {k: ("***" if k in SECRET_FIELDS and v else v) for k, v in values.items()}


def record(
    *,
    actor: Actor | None,
    action: str,
    platform: TradePlatform | None = None,
    target: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    outcome: str = "ok",
    detail: str = "",
    **extra: Any,
) -> AuditEvent:
    """Write one event; ``actor`` None is the system (no user, no address)."""
    actor = actor or Actor.system()
    return AuditEvent.objects.create(
        actor=actor.signed_in_user,
        ip_address=actor.ip or None,
        action=action,
        platform=platform,
        target=target,
        before=scrub(before or {}),
        after=scrub(after or {}),
        outcome=outcome,
        detail=detail,
        **extra,
    )


@contextmanager
def maintenance(using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """A transaction in which audit rows may be deleted: retention (``archive_audit``) only.

    Sets ``audit.maintenance`` for this transaction alone (``SET LOCAL``; PostgreSQL's append-only
    trigger reads it) and lifts the models' guard for this thread. Nothing else sets either:
    a bug, a shell or a worker that deletes history still meets both refusals.
    """
    connection = connections[using]
    with transaction.atomic(using=using):
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, 'on', true)", [MAINTENANCE_SETTING])
        token = audit_maintenance.set(True)
        try:
            yield
        finally:
            audit_maintenance.reset(token)
        if connection.vendor == "postgresql":
            # a SET LOCAL lasts to the end of the outermost transaction, not of this block
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config(%s, 'off', true)", [MAINTENANCE_SETTING])
