"""The upstream bridge: one hub connection per platform → coalesced channel-layer updates.

For one platform it keeps a SignalR connection to the vendor hub (``signalr.HubConnection``),
streams margin calls, trades, user updates and ticks, and publishes to the channel layer:

* ``platform_group``: ``margins.batch`` every ``REALTIME_BRIDGE_FLUSH_SECONDS`` with the rows
  that changed since the last flush (latest value per account wins), ``platform.status`` when
  the upstream connection goes up or down;
* ``quotes_group``: ``quotes.batch`` with the latest bid/ask per changed symbol;
* ``account_group``: ``account.event`` for discrete trade/user events of one account.

After every (re)connect, streams are started *first* and then ``MarginsGet`` is read, so a
state change that happened while disconnected (a margin call, say) is not lost: it is in the
re-read, and anything newer arrives on the streams. ``MarginsGet`` is also re-read every
``REALTIME_MARGINS_REFRESH_SECONDS`` to move levels between events. Reconnects back off
exponentially with full jitter. The latest rows are kept for hydration (``store``).

Tokens never leave this module's HTTP client; log lines carry the platform name only.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from typing import Any
from urllib.parse import quote

import httpx
from channels.layers import get_channel_layer
from django.conf import settings

from platforms.client import ManagerApiError
from platforms.live import store
from platforms.live.groups import account_group, platform_group, quotes_group
from platforms.live.signalr import HubConnection, HubError, HubMessage

log = logging.getLogger("platforms.live")

MT4_STREAMS = (
    "StreamMarginCallUpdates",
    "StreamTrades",
    "StreamUserUpdates",
    "StreamTicks",
)
MT5_LEVELS = {"MarginCall": 1, "StopOut": 2, "Ok": 0}


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def hub_url(platform) -> str:
    kind = platform.kind.lower()
    base = platform.api_base_url.rstrip("/")
    return f"{base}/hubs/{kind}/v2?tradePlatform={quote(str(platform.platform_id), safe='')}"


class PlatformBridge:
    """The realtime connection of one platform (see the module docstring)."""

    def __init__(self, platform, client, *, layer=None, options: dict | None = None) -> None:
        opts = {
            "flush": settings.REALTIME_BRIDGE_FLUSH_SECONDS,
            "refresh": settings.REALTIME_MARGINS_REFRESH_SECONDS,
            "server_timeout": settings.REALTIME_SERVER_TIMEOUT_SECONDS,
            "reconnect_max": settings.REALTIME_RECONNECT_MAX_SECONDS,
            "reconnect_base": 0.5,
            "snapshot": 1.0,
            **(options or {}),
        }
        self.opts = opts
        self.pk = platform.pk
        self.name = platform.name
        self.kind = platform.kind
        self.url = hub_url(platform)
        self.client = client
        self.layer = layer or get_channel_layer()
        self.rows: dict[int, list] = {}
        self.groups: dict[str, list[float]] = {}
        self.up = False
        self.connects = 0
        self.events = 0
        self.upstream_bytes = 0
        self._dirty: dict[int, list] = {}
        self._quotes: dict[str, list] = {}
        self._account_events: list[tuple[int, dict]] = []
        self._wake = asyncio.Event()
        self._snapshot_dirty = False
        self._hub: HubConnection | None = None
        self._synced = False  # the re-read after the current connect has completed
        self._pump_up = True

    # ---------------------------------------------------------------- state
    def snapshot(self) -> dict[str, Any]:
        return {
            "rows": list(self.rows.values()),
            "groups": self.groups,
            "up": self.up,
            "ts": time.time(),
            "kind": self.kind,
        }

    def _put(self, row: list) -> None:
        login = row[0]
        if self.rows.get(login) != row:
            self.rows[login] = row
            self._dirty[login] = row
            self._snapshot_dirty = True

    def _row_from_margin(self, m: Any) -> list:
        """From a REST MT4MarginLevel record or a hub MarginCallPayload dict."""
        if isinstance(m, dict):
            lt = m.get("levelType", 0)
            lt = lt if isinstance(lt, int) else store.LEVEL_NAMES.get(lt, 0)
            return [
                m["login"],
                m.get("equity"),
                m.get("margin"),
                m.get("free"),
                m.get("level"),
                lt,
                m.get("group") or "",
            ]
        lt = store.LEVEL_NAMES.get(m.level_type or "Ok", 0)
        return [m.login, m.equity, m.margin, m.free, m.level, lt, m.group or ""]

    # ---------------------------------------------------------------- upstream reads
    async def refresh_margins(self) -> int:
        """Re-read every account's margin (MT4 ``MarginsGet``); publish what changed."""
        if self.kind != "MT4":
            return 0
        if not self.groups:
            groups = {}
            async for g in self.client.mt4.iter_groups():
                groups[g.group] = [g.margin_call, g.margin_stopout]
            self.groups = groups
        levels = await self.client.mt4.margins_get()
        before = len(self._dirty)
        for m in levels:
            self._put(self._row_from_margin(m))
        self._wake.set()
        return len(self._dirty) - before

    # ---------------------------------------------------------------- hub messages
    def _on_message(self, msg: HubMessage) -> None:
        self.events += 1
        name, payload = msg.name, msg.payload
        if name == "StreamMarginCallUpdates" and isinstance(payload, dict):
            if self.kind == "MT5":
                old = self.rows.get(payload.get("login"))
                row = list(old) if old else [payload.get("login"), None, None, None, None, 0, ""]
                level = MT5_LEVELS.get(payload.get("type"), 0)
                row[5] = 0 if payload.get("direction") in ("Leave", "Exit", "Out") else level
                self._put(row)
            else:
                self._put(self._row_from_margin(payload))
        elif name in ("OnTick", "StreamTicks") and isinstance(payload, dict):
            self._quotes[payload["symbol"]] = [payload["symbol"], payload["bid"], payload["ask"]]
        elif name == "StreamTrades" and isinstance(payload, dict):
            self._account_events.append((payload.get("login"), {"e": "trade", **payload}))
        elif name == "StreamUserUpdates" and isinstance(payload, dict):
            self._account_events.append((payload.get("login"), {"e": "user", **payload}))
        elif name == "OnConnectionStatus" and isinstance(payload, dict):
            # the hub's own link to the trade server; "up" is only announced once the gap
            # fill is done, so whoever sees up=True also finds the rows in the snapshot
            self._pump_up = bool(payload.get("connected", payload.get("state") == "connected"))
            if self._synced and self._pump_up != self.up:
                self._set_up(self._pump_up)
            return
        else:
            return
        self._wake.set()

    def _set_up(self, up: bool) -> None:
        self.up = up
        self._snapshot_dirty = True
        asyncio.get_running_loop().create_task(self._publish_status())

    async def _publish_status(self) -> None:
        await self.layer.group_send(
            platform_group(self.pk), {"type": "platform.status", "pk": self.pk, "up": self.up}
        )

    # ---------------------------------------------------------------- publishing
    async def flush(self) -> None:
        """Publish what changed since the last flush (one message per kind)."""
        now = time.time()
        if self._dirty:
            rows, self._dirty = list(self._dirty.values()), {}
            await self.layer.group_send(
                platform_group(self.pk),
                {"type": "margins.batch", "pk": self.pk, "ts": now, "rows": _dumps(rows)},
            )
        if self._quotes:
            quotes, self._quotes = list(self._quotes.values()), {}
            await self.layer.group_send(
                quotes_group(self.pk),
                {"type": "quotes.batch", "pk": self.pk, "ts": now, "rows": _dumps(quotes)},
            )
        if self._account_events:
            events, self._account_events = self._account_events[-500:], []
            for login, event in events:
                if isinstance(login, int):
                    await self.layer.group_send(
                        account_group(self.pk, login),
                        {
                            "type": "account.event",
                            "pk": self.pk,
                            "login": login,
                            "event": _dumps(event),
                        },
                    )

    async def _flusher(self) -> None:
        last_snapshot = 0.0
        while True:
            await self._wake.wait()
            self._wake.clear()
            try:
                await self.flush()
                if (
                    self._snapshot_dirty
                    and time.monotonic() - last_snapshot >= self.opts["snapshot"]
                ):
                    self._snapshot_dirty = False
                    last_snapshot = time.monotonic()
                    await store.asave(self.pk, self.snapshot())
            except Exception:
                log.exception("realtime %s: publishing failed", self.name)
            await asyncio.sleep(self.opts["flush"])

    async def _refresher(self) -> None:
        while True:
            await asyncio.sleep(self.opts["refresh"])
            if self.up:
                try:
                    await self.refresh_margins()
                except ManagerApiError as exc:
                    log.warning("realtime %s: MarginsGet failed: %s", self.name, exc.code)

    # ---------------------------------------------------------------- connection loop
    async def _connect_once(self, http: httpx.AsyncClient) -> None:
        hub = HubConnection(self.url, http, server_timeout=self.opts["server_timeout"])
        self._hub = hub
        self._synced = False
        self._pump_up = True
        try:
            await hub.open()
            self.connects += 1
            for name in MT4_STREAMS if self.kind == "MT4" else ("StreamMarginCallUpdates",):
                await hub.stream(name)
            messages = hub.messages()
            # streams first, then the re-read: nothing that changed while we were away is lost
            reader = asyncio.ensure_future(self._drain(messages))
            try:
                await self.refresh_margins()
            except BaseException:
                reader.cancel()
                with contextlib.suppress(BaseException):
                    await reader
                raise
            self._synced = True
            if self._pump_up and not self.up:
                self._set_up(True)
            log.info("realtime %s: connected (%d accounts)", self.name, len(self.rows))
            await reader
        finally:
            self._synced = False
            self.upstream_bytes += hub.bytes_received
            await hub.close()
            self._hub = None

    async def _drain(self, messages) -> None:
        async for msg in messages:
            self._on_message(msg)

    async def run(self) -> None:
        """Forever: connect, stream, publish; on loss reconnect with backoff and jitter."""
        flusher = asyncio.create_task(self._flusher())
        refresher = asyncio.create_task(self._refresher())
        attempt = 0
        try:
            async with httpx.AsyncClient(auth=self.client.auth, timeout=10) as http:
                while True:
                    started = time.monotonic()
                    try:
                        await self._connect_once(http)
                    except (HubError, ManagerApiError, httpx.HTTPError, OSError) as exc:
                        reason = getattr(exc, "code", None) or str(exc) or type(exc).__name__
                        log.warning("realtime %s: upstream lost (%s)", self.name, reason)
                    if self.up:
                        self._set_up(False)
                        self._wake.set()
                    if time.monotonic() - started > 30:
                        attempt = 0  # it had been up for a while: start the backoff afresh
                    cap = min(self.opts["reconnect_max"], self.opts["reconnect_base"] * 2**attempt)
                    attempt += 1
                    await asyncio.sleep(random.uniform(cap / 4, cap))
        finally:
            flusher.cancel()
            refresher.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(flusher, refresher, return_exceptions=True)
            if self.up:
                self.up = False
                with contextlib.suppress(Exception):
                    await self._publish_status()
