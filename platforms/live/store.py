"""The latest margin state per platform, for hydrating a page before its socket is live.

The bridge writes a snapshot (at most once a second) to Django's cache, which the demo keeps
in files and production in Redis, so the web process can read it wherever the bridge runs. A
bridge in this very process is read directly (fresher, no copy through the cache).

A margin row is a list ``[login, equity, margin, free, level, level_type, group]`` with
``level_type`` 0 Ok / 1 MarginCall / 2 StopOut; MT5 rows carry ``None`` for the figures.
"""

from __future__ import annotations

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
    await cache.aset(snapshot_key(platform_pk), snapshot, SNAPSHOT_TTL)
