"""The mirror's server times as true instants: the platform's zone, asked at every run.

Rows hold UTC instants converted with ``TradePlatform.time_zone_applied``. A snapshot run
first asks the server for its zone (MT4 ``ManagerCommon.timeZone``, MT5 ``TimeGet``); when
the effective zone (an admin's override, else the reported one) differs from the applied one,
it moves every stored server time of the platform by the difference before writing, under the
run's claim, so no other run writes meanwhile. The move is exact (whole minutes, no rounding),
so changing the zone back and forth never loses anything. Migration 0016 uses the same
function for the values stored before zones were known.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import F

from platforms import audit
from platforms.connections import read_server_offset
from platforms.mirror.models import MirrorAccount, MirrorClosedTrade, MirrorOpenTrade
from platforms.models import TradePlatform

#: The columns that hold a time read from the server's clock, per mirror model. Run stamps
#: (``last_seen_at``) are our own clock and already UTC.
SERVER_TIME_FIELDS: dict[str, tuple[str, ...]] = {
    "MirrorAccount": ("registered_at", "last_access_at", "margin_updated_at"),
    "MirrorOpenTrade": ("open_time", "modified_at", "expiration"),
    "MirrorClosedTrade": ("open_time", "modified_at", "close_time"),
}


def shift_server_times(get_model: Callable[[str], Any], platform_id: int, minutes: int) -> int:
    """Move every stored server time of one platform ``minutes`` later (earlier if negative).

    ``get_model`` maps a model name to its class (``apps.get_model`` in a migration), so
    the migration and the runs share this one function. Returns the rows updated.
    """
    if not minutes:
        return 0
    delta = timedelta(minutes=minutes)
    updated = 0
    for name, fields in SERVER_TIME_FIELDS.items():
        model = get_model(name)
        # NULL + interval stays NULL: one statement per table moves every set column
        updated += model.objects.filter(platform_id=platform_id).update(
            **{field: F(field) + delta for field in fields}
        )
    return updated


def rebase_delta(applied: int, target: int) -> int:
    """Minutes to add to values converted with offset ``applied`` so they are converted with
    ``target`` (a later zone means the same wall clock was an earlier instant)."""
    return applied - target


def align_server_zone(platform: TradePlatform, client: Any) -> int:
    """Ask the server's zone, bring the stored server times onto the effective zone, and
    return the offset new rows are converted with. Called by a run holding the platform."""
    reported = read_server_offset(platform, client)
    if reported is None:
        reported = platform.time_zone_reported
    target = platform.time_zone_override if platform.time_zone_override is not None else (
        reported or 0)
    applied = platform.time_zone_applied
    if reported == platform.time_zone_reported and target == applied:
        return applied
    models = {m.__name__: m for m in (MirrorAccount, MirrorOpenTrade, MirrorClosedTrade)}
    with transaction.atomic():
        moved = shift_server_times(models.__getitem__, platform.pk, rebase_delta(applied, target))
        TradePlatform.objects.filter(pk=platform.pk).update(
            time_zone_reported=reported, time_zone_applied=target)
        audit.record(
            actor=None, action="platform.time_zone", platform=platform, target=platform.name,
            before={"reported": platform.time_zone_reported, "applied": applied},
            after={"reported": reported, "applied": target},
            detail=f"{moved} mirror rows re-based" if moved else "",
        )
    platform.time_zone_reported, platform.time_zone_applied = reported, target
    return target
