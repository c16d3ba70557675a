"""Clients' trades the platform stream reported that the mirror may not hold yet.

The net-exposure page's clients' side is the mirror's open trades *plus* what the live bridge
(``platforms.live.hub_relay``) saw on ``StreamTrades`` since the mirror's version: an **overlay**,
not a write-through. The mirror is a versioned copy owned by its snapshot runs (they skip
unchanged rows, delete what a run did not see, and stamp ``trades_as_of``); rows written beside
them by another process would be deleted or double-counted by the next run. The overlay keeps
the latest state per order as the stream reported it, and a reader replaces the mirror's
contribution of those orders with it — only for orders reported since the mirror's version
(less :data:`SLACK_SECONDS` of clock skew; replacing a row with the same state is harmless), so
once a snapshot has caught up the overlay no longer changes anything.

The bridge keeps :class:`StreamTrades` per platform and saves it to Django's cache (Redis in
production, files in the demo) before it announces the change, so a page that re-reads on the
announcement finds it. Entries older than :data:`WINDOW_SECONDS` are dropped (incremental
snapshots run every minute), at most :data:`MAX_TRADES` are kept.

An entry: ``[received_at, login, group, symbol, side, lots, floating, open]`` — ``side`` +1
buy, -1 sell, 0 a pending order; ``floating`` = profit + swap + commission; ``open`` False once
the trade is closed or deleted. Scope: an entry counts for a user only when its account's group
is inside the user's masks (an unknown group only without masks), like every live event.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.core.cache import cache

#: Orders reported this long before the mirror's version still override it (clock skew between
#: the mirror's stamp and the bridge's receipt).
SLACK_SECONDS = 5.0
#: How long the bridge keeps an order it saw (a mirror older than this is out of date anyway).
WINDOW_SECONDS = 900.0
MAX_TRADES = 50_000
CACHE_SECONDS = 3600
_COMMANDS = {0: 1, 1: -1, "buy": 1, "sell": -1, "op_buy": 1, "op_sell": -1}
_CLOSED_KINDS = {"deleted", "closed", "delete", "close"}

RECEIVED, LOGIN, GROUP, SYMBOL, SIDE, LOTS, FLOATING, OPEN = range(8)


def cache_key(platform_pk: int) -> str:
    return f"coverage:stream-trades:{int(platform_pk)}"


def _side(cmd: Any) -> int:
    if isinstance(cmd, str):
        return _COMMANDS.get(cmd.strip().lower(), 0)
    return _COMMANDS.get(cmd, 0) if isinstance(cmd, int) else 0


def entry_of(payload: Mapping[str, Any], group: str | None, received_at: float) -> list | None:
    """The overlay entry of one ``StreamTrades`` payload, or None when it names no order."""
    order = payload.get("order")
    if type(order) is not int:
        return None
    kind = str(payload.get("kind") or "").lower()
    lots = payload.get("volumeLots")
    if not isinstance(lots, int | float):
        volume = payload.get("volume")
        lots = volume / 100.0 if isinstance(volume, int | float) else 0.0
    floating = sum(float(payload.get(k) or 0.0) for k in ("profit", "storage", "commission"))
    closed = kind in _CLOSED_KINDS or bool(payload.get("closeTime")
                                            and str(payload.get("closeTime"))[:4] > "1970")
    return [received_at, payload.get("login"), group or "", str(payload.get("symbol") or ""),
            _side(payload.get("cmd")), float(lots), floating, not closed]


class StreamTrades:
    """The bridge's side: the latest entry per order of one platform, saved when changed."""

    def __init__(self, platform_pk: int, *, window: float = WINDOW_SECONDS,
                 cap: int = MAX_TRADES) -> None:
        self.pk = int(platform_pk)
        self.window = window
        self.cap = cap
        self.trades: dict[int, list] = {}
        self.dirty = False

    def note(self, payload: Mapping[str, Any], group: str | None,
             received_at: float | None = None) -> list | None:
        """Keep the order's new state; returns its entry (None: not a trade)."""
        entry = entry_of(payload, group, time.time() if received_at is None else received_at)
        if entry is None:
            return None
        order = payload["order"]
        self.trades.pop(order, None)  # re-inserted last: the dict stays oldest first
        self.trades[order] = entry
        if len(self.trades) > self.cap:
            for stale in list(self.trades)[: len(self.trades) - self.cap]:
                del self.trades[stale]
        self.dirty = True
        return entry

    def _prune(self, now: float) -> None:
        horizon = now - self.window
        while self.trades:
            order = next(iter(self.trades))
            if self.trades[order][RECEIVED] >= horizon:
                break
            del self.trades[order]

    async def save(self) -> None:
        """Write the overlay to the cache (only when it changed)."""
        if not self.dirty:
            return
        self.dirty = False
        now = time.time()
        self._prune(now)
        await cache.aset(cache_key(self.pk), {"ts": now, "trades": dict(self.trades)},
                         CACHE_SECONDS)


def recent_trades(platform_pk: int, since: datetime | None) -> dict[int, list]:
    """Orders the stream reported since ``since`` (the mirror's ``trades_as_of``; None: all)."""
    stored = cache.get(cache_key(platform_pk)) or {}
    trades = stored.get("trades") or {}
    if not trades:
        return {}
    horizon = since.timestamp() - SLACK_SECONDS if since is not None else float("-inf")
    return {order: e for order, e in trades.items() if e[RECEIVED] >= horizon}
