"""Recording audit events: the one place that knows how a write is written down."""

from __future__ import annotations

from typing import Any

from django.http import HttpRequest

from platforms.models import AuditEvent, TradePlatform

SECRET_FIELDS = frozenset({"client_secret", "password", "investor_password"})


def scrub(values: dict[str, Any]) -> dict[str, Any]:
    """Replace secret values so that the audit trail proves a change without revealing it."""
    return {k: ("***" if k in SECRET_FIELDS and v else v) for k, v in values.items()}


def client_ip(request: HttpRequest | None) -> str | None:
    if request is None:
        return None
    return request.META.get("REMOTE_ADDR") or None


def record(
    *,
    request: HttpRequest | None,
    action: str,
    platform: TradePlatform | None = None,
    target: str = "",
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    outcome: str = "ok",
    detail: str = "",
    **extra: Any,
) -> AuditEvent:
    actor = getattr(request, "user", None)
    return AuditEvent.objects.create(
        actor=actor if actor is not None and actor.is_authenticated else None,
        ip_address=client_ip(request),
        action=action,
        platform=platform,
        target=target,
        before=scrub(before or {}),
        after=scrub(after or {}),
        outcome=outcome,
        detail=detail,
        **extra,
    )
