"""The margin monitor's reads (latest live state, scoped) and alert writes (audited)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import transaction
from django.utils import timezone

from platforms import audit
from platforms.access.scope import scope_for
from platforms.client import ManagerApiError
from platforms.connections import client_for
from platforms.live import store
from platforms.live.models import MarginAlert
from platforms.mirror.models import MirrorAccount
from platforms.models import TradePlatform

log = logging.getLogger("platforms.live")
LEVEL_LABELS = {0: "Ok", 1: "MarginCall", 2: "StopOut"}


@dataclass
class MarginRow:
    platform: TradePlatform
    login: int
    equity: float | None
    margin: float | None
    free: float | None
    level: float | None
    level_type: int
    group: str
    margin_call: float | None = None
    stop_out: float | None = None
    alert: MarginAlert | None = None

    @property
    def level_label(self) -> str:
        return LEVEL_LABELS.get(self.level_type, "Ok")


@dataclass
class PlatformMargins:
    platform: TradePlatform
    up: bool
    source: str  # "live" (bridge state) | "fetched" (MarginsGet now) | "unavailable"
    groups: dict = field(default_factory=dict)
    rows: list[MarginRow] = field(default_factory=list)


def _fetch(platform: TradePlatform) -> dict | None:
    """No bridge state yet: read MarginsGet (and the groups' levels) through the client."""
    if platform.kind != "MT4":
        return None
    client = client_for(platform)
    try:
        groups = {g.group: [g.margin_call, g.margin_stopout] for g in client.mt4.iter_groups()}
        levels = client.mt4.margins_get()
    except ManagerApiError as exc:
        log.warning("margin monitor: %s unreachable (%s)", platform.name, exc.code)
        return None
    rows = [
        [
            m.login,
            m.equity,
            m.margin,
            m.free,
            m.level,
            store.LEVEL_NAMES.get(m.level_type or "Ok", 0),
            m.group or "",
        ]
        for m in levels
    ]
    return {"rows": rows, "groups": groups, "up": False}


def platform_margins(user, platform: TradePlatform, limit: int = 50) -> PlatformMargins:
    """The accounts most at risk on ``platform`` that ``user`` may see, lowest level first.

    Read from the live state's risk summary (the riskiest rows of each group, see
    ``store.risk_summary``), so a platform of 100,000 accounts costs a few hundred rows here.
    """
    snap = store.latest_risk(platform.pk)
    source = "live"
    if snap is None:
        fetched = _fetch(platform)
        snap = store.risk_summary(fetched) if fetched else None
        source = "fetched" if snap else "unavailable"
    result = PlatformMargins(platform, bool(snap and snap.get("up")), source)
    if not snap:
        return result
    result.groups = snap.get("groups", {})
    access = scope_for(user)  # an account of unknown group is shown only to unmasked grants
    candidates = [
        r for group, rows in snap["top"].items() if access.allows_group(platform.pk, group or None)
        for r in rows
    ]
    candidates.sort(key=store.risk_sort_key)
    alerts = {
        a.login: a
        for a in MarginAlert.objects.filter(
            platform=platform, resolved_at__isnull=True
        ).select_related("acknowledged_by", "assigned_to")
    }
    for r in candidates[:limit]:
        mc, so = (result.groups.get(r[6]) or [None, None])[:2]
        result.rows.append(
            MarginRow(
                platform, r[0], r[1], r[2], r[3], r[4], r[5] or 0, r[6], mc, so, alerts.get(r[0])
            )
        )
    return result


def margin_call_count(user) -> int:
    """Accounts outside the Ok band that ``user`` may see (nav badge), from live state only:
    the count, too, goes through the gate (platforms and group masks). One cache read for all
    platforms, of their per-group counts (``store.risk_summary``), not of every account."""
    scope = scope_for(user)
    return sum(
        n
        for pk, risk in store.latest_risks(scope.platforms).items()
        for group, n in risk["at_risk"].items()
        if scope.allows_group(pk, group or None)
    )


class UnknownAccount(LookupError):
    """Neither the mirror nor the live store knows the account: there is nothing to alert on."""


def _live_row(platform: TradePlatform, login: int) -> list | None:
    snap = store.latest(platform.pk) or {"rows": []}
    return next((r for r in snap["rows"] if r[0] == login), None)


def alert_account_known(platform: TradePlatform, login: int) -> bool:
    """Does an account ``login`` exist on ``platform`` as far as the dashboard knows (the
    mirror or the live store)? An alert is only ever made for such an account."""
    return (_live_row(platform, login) is not None
            or MirrorAccount.objects.filter(platform=platform, login=login).exists())


@transaction.atomic
def handle_alert(actor: audit.Actor, platform: TradePlatform, login: int,
                 action: str) -> MarginAlert:
    """Acknowledge the account's open alert, or assign it to the requesting user. Raises
    :class:`UnknownAccount` (writing nothing) for a login neither the mirror nor the live store
    knows. The caller has checked scope and the ``acknowledge_alerts`` permission (the
    margin alert view's ``@action`` declaration)."""
    if action not in ("ack", "assign"):
        raise ValueError(action)
    row = _live_row(platform, login)
    if row is None and not MirrorAccount.objects.filter(platform=platform, login=login).exists():
        raise UnknownAccount(login)
    alert, _ = MarginAlert.objects.select_for_update().get_or_create(
        platform=platform,
        login=login,
        resolved_at=None,
        defaults={
            "level_type": LEVEL_LABELS.get(row[5] if row else 1, "MarginCall"),
            "level": row[4] if row else None,
        },
    )
    before = {
        "acknowledged": alert.acknowledged_at is not None,
        "assigned_to": alert.assigned_to.get_username() if alert.assigned_to else None,
    }
    if action == "ack":
        alert.acknowledged_at = timezone.now()
        alert.acknowledged_by = actor.user
    elif action == "assign":
        alert.assigned_to = actor.user
    else:
        raise ValueError(action)
    alert.save()
    audit.record(
        actor=actor,
        action=f"margin_alert.{action}",
        platform=platform,
        target=str(login),
        before=before,
        after={
            "acknowledged": alert.acknowledged_at is not None,
            "assigned_to": alert.assigned_to.get_username() if alert.assigned_to else None,
        },
    )
    return alert
