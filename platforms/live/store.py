"""The latest margin state per platform, for hydrating a page before its socket is live.

The bridge writes a snapshot (at most once a second) to Django's cache, which the demo keeps
in files and production in Redis, so the web process can read it wherever the bridge runs. A
bridge in this very process is read directly (fresher, no copy through the cache).

A margin row is a list ``[login, equity, margin, free, level, level_type, group]`` with
``level_type`` 0 Ok / 1 MarginCall / 2 StopOut; MT5 rows carry ``None`` for the figures.
"""

from __future__ import annotations

import heapq
import time
from typing import Any

from django.core.cache import cache

LEVEL_OK, LEVEL_MARGIN_CALL, LEVEL_STOP_OUT = 0, 1, 2
LEVEL_NAMES = {"Ok": 0, "MarginCall": 1, "StopOut": 2}
SNAPSHOT_TTL = 3600

#: Bridges running in this process, by platform pk (see ``runner``).
local_bridges: dict[int, Any] = {}


def snapshot_key(platform_pk: int) -> str:
    return f"realtime:margins:{int(platform_pk)}"


#: A bridge republishes every second; an older snapshot is from a bridge that stopped (or a
#: cache that outlived its data) and must not be shown as current.
STALE_AFTER_SECONDS = 30.0


def _fresh(snapshot: dict[str, Any] | None) -> dict[str, Any] | None:
    if snapshot and time.time() - snapshot.get("ts", 0) <= STALE_AFTER_SECONDS:
        return snapshot
    return None


def latest(platform_pk: int) -> dict[str, Any] | None:
    """``{"rows": [...], "groups": {name: [margin_call, stop_out]}, "up": bool, "ts": float}``
    or ``None`` when no bridge has published anything recent for the platform."""
    bridge = local_bridges.get(int(platform_pk))
    if bridge is not None and bridge.rows:
        return bridge.snapshot()
    return _fresh(cache.get(snapshot_key(platform_pk)))


async def alatest(platform_pk: int) -> dict[str, Any] | None:
    bridge = local_bridges.get(int(platform_pk))
    if bridge is not None and bridge.rows:
        return bridge.snapshot()
    return _fresh(await cache.aget(snapshot_key(platform_pk)))


async def asave(platform_pk: int, snapshot: dict[str, Any]) -> None:
    """Publish the platform's state: the full rows (hydration) and their risk summary (badge,
    monitor) together, so the two never tell different stories."""
    await cache.aset_many(_both(platform_pk, snapshot), SNAPSHOT_TTL)


def save(platform_pk: int, snapshot: dict[str, Any]) -> None:
    """:func:`asave` from sync code (the fetched fallback, tests)."""
    cache.set_many(_both(platform_pk, snapshot), SNAPSHOT_TTL)


def forget(platform_pk: int) -> None:
    cache.delete_many([snapshot_key(platform_pk), risk_key(platform_pk)])


def _both(platform_pk: int, snapshot: dict[str, Any]) -> dict[str, Any]:
    return {snapshot_key(platform_pk): snapshot, risk_key(platform_pk): risk_summary(snapshot)}


# ----------------------------------------------------- what pages read across platforms
#: Rows kept per group in the risk summary: the monitor shows at most 500 rows per platform,
#: so the 500 riskiest of every group hold the riskiest 500 any set of group masks can see.
RISK_ROWS_PER_GROUP = 500


def risk_key(platform_pk: int) -> str:
    return f"realtime:margins:risk:{int(platform_pk)}"


def risk_sort_key(row) -> tuple:
    """Stop-out before margin call before the rest, then lowest level first."""
    return (-(row[5] or 0), row[4] if row[4] is not None else 1e18)


def risk_summary(snapshot: dict[str, Any]) -> dict[str, Any]:
    """What the badge and the margin monitor read, a few hundred rows whatever the platform's
    size: per group, how many accounts are outside the Ok band (``at_risk``) and its
    :data:`RISK_ROWS_PER_GROUP` riskiest rows with margin in use (``top``). Group masks select
    whole groups, so a user's answer is exact from these (``margins``)."""
    at_risk: dict[str, int] = {}
    buckets: dict[str, list] = {}
    for row in snapshot["rows"]:
        if not (row[2] or row[5]):
            continue
        group = row[6] or ""
        buckets.setdefault(group, []).append(row)
        if row[5]:
            at_risk[group] = at_risk.get(group, 0) + 1
    top = {group: heapq.nsmallest(RISK_ROWS_PER_GROUP, rows, key=risk_sort_key)
           for group, rows in buckets.items()}
    return {"at_risk": at_risk, "top": top, "groups": snapshot.get("groups", {}),
            "up": snapshot.get("up"), "ts": snapshot.get("ts", 0), "kind": snapshot.get("kind")}


def latest_risk(platform_pk: int) -> dict[str, Any] | None:
    """:func:`risk_summary` of the platform's latest state, or ``None`` (see :func:`latest`)."""
    return latest_risks([platform_pk]).get(int(platform_pk))


def latest_risks(platform_pks) -> dict[int, dict[str, Any]]:
    """:func:`latest_risk` of several platforms in one cache round trip."""
    found: dict[int, dict[str, Any]] = {}
    remote = []
    for pk in map(int, platform_pks):
        bridge = local_bridges.get(pk)
        if bridge is not None and bridge.rows:
            found[pk] = risk_summary(bridge.snapshot())
        else:
            remote.append(pk)
    if remote:
        cached = cache.get_many([risk_key(pk) for pk in remote])
        missing = []
        for pk in remote:
            summary = _fresh(cached.get(risk_key(pk)))
            if summary is not None:
                found[pk] = summary
            else:
                missing.append(pk)
        # a bridge that published only its full state (one started before the summary
        # existed, or a test's): summed from that, as before
        full = cache.get_many([snapshot_key(pk) for pk in missing]) if missing else {}
        for pk in missing:
            snapshot = _fresh(full.get(snapshot_key(pk)))
            if snapshot is not None:
                found[pk] = risk_summary(snapshot)
    return found

