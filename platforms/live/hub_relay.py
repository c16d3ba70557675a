"""The hub relay: one SignalR hub connection per platform → coalesced channel-layer updates.

For one platform it keeps a SignalR connection to the vendor hub (``signalr.HubConnection``),
streams margin calls, trades, user updates and ticks, and publishes to the channel layer:

* ``platform_group``: ``platform.batch`` (:mod:`.batches`) with the rows that changed since the
  last flush (latest value per account wins) and the trade/user events of its accounts, each
  event with the account's group (the sockets scope by it); ``platform.status`` when the
  upstream connection goes up or down;
* ``quotes_group``: ``quotes.batch`` with the latest bid/ask per changed symbol;
* ``exposure_group``: ``exposure.changed`` with the groups of the accounts whose trades
  changed, after saving those trades (``platforms.coverage.stream_trades``: the net-exposure
  page adds them to the mirror's), so a page re-reading on the nudge finds them.

Publishing is on the leading edge (a change after a quiet spell goes out at once) and, during
a burst, at most every ``REALTIME_BRIDGE_FLUSH_SECONDS`` on a grid aligned with the sockets'
throttle (see ``_flusher``).

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
import itertools
import logging
import math
import random
import time
from typing import Any
from urllib.parse import quote

import httpx
import msgspec
from channels.layers import get_channel_layer
from django.conf import settings

from platforms.client import ManagerApiError
from platforms.coverage.stream_trades import StreamTrades
from platforms.live import batches, store
from platforms.live.groups import exposure_group, platform_group, quotes_group
from platforms.live.signalr import HubConnection, HubError, HubMessage

log = logging.getLogger("platforms.live")

MT4_STREAMS = (
    "StreamMarginCallUpdates",
    "StreamTrades",
    "StreamUserUpdates",
    "StreamTicks",
)
MT5_LEVELS = {"MarginCall": 1, "StopOut": 2, "Ok": 0}
#: ``(login, equity, margin, free, level, level_type, group)``
Row = tuple
#: A ``MarginsGet`` re-read of 10 000 accounts changes nearly every row; published at once it
#: stalled the loop for the stream's own rows. It goes out this many rows per flush instead,
#: and the loop is yielded to every ``REFRESH_YIELD_EVERY`` rows while it is taken in.
BULK_PER_FLUSH = 2000
REFRESH_YIELD_EVERY = 1000


_encoder = msgspec.json.Encoder()


def _dumps(value: Any) -> str:
    return _encoder.encode(value).decode()


def _reraise_cancellation() -> None:
    """Raise the pending cancellation of this task, if any. Called after ``except Exception``
    and at the top of the publishing loop: a client library that turns a cancellation into
    its own error, or swallows it, left a stopping bridge's flusher waiting forever for a
    wake-up that never came (seen with the Redis layer)."""
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


def burst_period(flush: float, frames_per_second: float) -> float:
    """The bridge's publishing interval during a burst: at most ``flush``, and a whole
    fraction of a socket's frame interval (0.1 s and 4 frames/s → 0.0833 s), so batches land
    exactly when each socket's throttle opens."""
    frame = 1.0 / max(1.0, float(frames_per_second))
    if flush <= 0:
        return 0.0
    return frame / max(1, math.ceil(frame / flush - 1e-9))


def next_grid_time(now: float, period: float) -> float:
    """The next multiple of ``period`` on the wall clock (shared by every process of the
    host, so a bridge in ``manage.py stream`` and the sockets agree on the grid)."""
    if period <= 0:
        return now
    return (math.floor(now / period) + 1) * period


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
        opts.setdefault(
            "burst_period", burst_period(opts["flush"], settings.REALTIME_MAX_FRAMES_PER_SECOND)
        )
        opts.setdefault("frame_interval", 1.0 / max(1, settings.REALTIME_MAX_FRAMES_PER_SECOND))
        self.opts = opts
        self.pk = platform.pk
        self.name = platform.name
        self.kind = platform.kind
        self.url = hub_url(platform)
        self.client = client
        self.layer = layer or get_channel_layer()
        self.rows: dict[int, Row] = {}
        self.login_groups: dict[int, str] = {}  # every account's group: events are scoped by it
        self.groups: dict[str, list[float]] = {}
        self.up = False
        self.connects = 0
        self.events = 0
        self.upstream_bytes = 0
        self._dirty: dict[int, Row] = {}
        self._bulk: dict[int, Row] = {}  # re-read rows not yet published (BULK_PER_FLUSH each)
        self._quotes: dict[str, list] = {}
        self._account_events: list[tuple[Any, dict]] = []  # (login as sent, event)
        self.trades = StreamTrades(self.pk)  # for the net-exposure page
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

    def _put(self, row: Row, *, bulk: bool = False) -> bool:
        """Keep ``row`` as the account's latest and mark it for publishing; True if it
        changed. Rows are tuples: holding only numbers and strings, they are untracked by the
        garbage collector, so 10 000 of them cost nothing at each collection. ``bulk`` rows
        (a periodic re-read) are published a slice per flush, after the stream's own."""
        login = row[0]
        if type(login) is not int:
            return False
        if not row[6] and login in self.login_groups:
            row = (*row[:6], self.login_groups[login])  # MT5 margin items name no group
        elif row[6]:
            self.login_groups[login] = row[6]
        if self.rows.get(login) == row:
            return False
        self.rows[login] = row
        if bulk and login not in self._dirty:
            self._bulk[login] = row
        else:
            self._dirty[login] = row
            self._bulk.pop(login, None)
        self._snapshot_dirty = True
        return True

    def _note_group(self, login: Any, group: Any) -> None:
        """A user update names the account's group (it may have moved): remember it, so
        events can be scoped, and move the margin row with it."""
        if not isinstance(login, int) or not isinstance(group, str) or not group:
            return
        self.login_groups[login] = group
        row = self.rows.get(login)
        if row is not None and row[6] != group:
            self._put((*row[:6], group))

    def group_of(self, login: int) -> str | None:
        """The account's group as last seen (margin rows, user updates), or None."""
        return self.login_groups.get(login)

    def _row_from_margin(self, m: Any) -> Row:
        """From a REST MT4MarginLevel record or a hub MarginCallPayload dict."""
        if isinstance(m, dict):
            lt = m.get("levelType", 0)
            lt = lt if isinstance(lt, int) else store.LEVEL_NAMES.get(lt, 0)
            return (
                m.get("login"),
                m.get("equity"),
                m.get("margin"),
                m.get("free"),
                m.get("level"),
                lt,
                m.get("group") or "",
            )
        lt = store.LEVEL_NAMES.get(m.level_type or "Ok", 0)
        return (m.login, m.equity, m.margin, m.free, m.level, lt, m.group or "")

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
        changed = 0
        for i, m in enumerate(levels, 1):
            changed += self._put(self._row_from_margin(m), bulk=True)
            if i % REFRESH_YIELD_EVERY == 0:
                await asyncio.sleep(0)  # let the stream and the sockets run meanwhile
        self._wake.set()
        return changed

    # ---------------------------------------------------------------- hub messages
    def _on_message(self, msg: HubMessage) -> None:
        self.events += 1
        name, payload = msg.name, msg.payload
        if name == "StreamMarginCallUpdates" and isinstance(payload, dict):
            if self.kind == "MT5":
                login: Any = payload.get("login")
                row = self.rows.get(login) or (login, None, None, None, None, 0, "")
                level = MT5_LEVELS.get(str(payload.get("type")), 0)
                level = 0 if payload.get("direction") in ("Leave", "Exit", "Out") else level
                self._put((*row[:5], level, row[6]))
            else:
                self._put(self._row_from_margin(payload))
        elif name in ("OnTick", "StreamTicks") and isinstance(payload, dict):
            self._quotes[payload["symbol"]] = [payload["symbol"], payload["bid"], payload["ask"]]
        elif name == "StreamTrades" and isinstance(payload, dict):
            self._account_events.append((payload.get("login"), {"e": "trade", **payload}))
        elif name == "StreamUserUpdates" and isinstance(payload, dict):
            self._note_group(payload.get("login"), payload.get("group"))
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
    async def flush(self, stamp: float | None = None) -> None:
        """Publish what changed since the last flush: one ``platform.batch`` (margin rows and
        account events) and one ``quotes.batch``, stamped ``stamp`` (the grid time it was
        due at; sockets compare stamps, so a timer firing late does not shift them)."""
        now = time.time() if stamp is None else stamp
        events: list[tuple[int, dict]] = []
        traded: set[str | None] = set()  # groups of the accounts whose trades changed
        if self._account_events:
            pending, self._account_events = self._account_events, []
            for login, event in pending:
                if isinstance(login, int):
                    # sockets scope each event by the account's group; an event whose group
                    # is unknown reaches only users without group masks
                    group = event.get("group") or self.group_of(login)
                    if event.get("e") == "trade" and self.trades.note(event, group) is not None:
                        traded.add(group or None)
                    events.append((login, {**event, "group": group}))
            events = events[-500:]
        if traded:
            try:
                await self.trades.save()  # before the nudge: pages re-read on it
            except Exception:
                _reraise_cancellation()
                log.exception("realtime %s: saving the stream's trades failed", self.name)
            await self.layer.group_send(
                exposure_group(self.pk),
                {"type": "exposure.changed", "pk": self.pk, "ts": now,
                 "groups": sorted(traded, key=lambda g: g or "")},
            )
        if self._dirty or self._bulk or events:
            rows, self._dirty = list(self._dirty.values()), {}
            if self._bulk:
                for login in list(itertools.islice(self._bulk, BULK_PER_FLUSH)):
                    rows.append(self._bulk.pop(login))
                if self._bulk:
                    self._wake.set()  # the rest at the next grid point
            await self.layer.group_send(
                platform_group(self.pk),
                {
                    "type": "platform.batch",
                    "pk": self.pk,
                    "ts": now,
                    **batches.encode(rows, events),
                },
            )
        if self._quotes:
            quotes, self._quotes = list(self._quotes.values()), {}
            await self.layer.group_send(
                quotes_group(self.pk),
                {"type": "quotes.batch", "pk": self.pk, "ts": now, "rows": _dumps(quotes)},
            )

    async def _flusher(self) -> None:
        """Publish on the leading edge: the first change after a quiet spell goes out at once;
        during a burst, changes are coalesced and published on a wall-clock grid of
        ``burst_period`` that divides the sockets' frame interval, so a socket's throttle
        opens just as a batch arrives and the two waits do not add up. After a burst, empty
        batches ("ticks") continue the grid for one frame interval: a socket holding the
        burst's last rows sends them when due instead of on its slower fallback timer."""
        period = self.opts["burst_period"]
        quiet = max(period, self.opts["frame_interval"])
        ticks_after_burst = max(1, round(self.opts["frame_interval"] / period)) if period else 0
        last = 0.0  # when rows or events were last published
        stamp: float | None = None  # a grid point reached with changes waiting
        while True:
            _reraise_cancellation()
            if stamp is None:
                await self._wake.wait()
                now = stamp = time.time()
                # a short stall upstream is not a quiet spell: stay on the sockets' grid
                if now - last < quiet:
                    stamp = next_grid_time(now, period)
                    await asyncio.sleep(stamp - now)
            self._wake.clear()
            last = time.time()
            try:
                await self.flush(stamp)
            except Exception:
                _reraise_cancellation()
                log.exception("realtime %s: publishing failed", self.name)
            stamp = None
            # the grid goes on (ticks when nothing changed) for one frame interval; no timeout
            # on the wake event here: on Python 3.11 one can leave a stray cancellation behind
            for _ in range(ticks_after_burst):
                slot = next_grid_time(time.time(), period)
                await asyncio.sleep(slot - time.time())
                if self._wake.is_set():
                    stamp = slot
                    break
                await self._publish_tick(slot)

    async def _publish_tick(self, now: float) -> None:
        try:
            await self.layer.group_send(
                platform_group(self.pk),
                {"type": "platform.batch", "pk": self.pk, "ts": now, **batches.encode(())},
            )
        except Exception:
            _reraise_cancellation()

    async def _snapshotter(self) -> None:
        """Hydration snapshots at most every ``snapshot`` seconds, off the publishing path (a
        10 000-row snapshot takes milliseconds to pickle; batches must not wait for it)."""
        while True:
            _reraise_cancellation()
            await asyncio.sleep(self.opts["snapshot"])
            if not self._snapshot_dirty:
                continue
            self._snapshot_dirty = False
            try:
                await store.asave(self.pk, self.snapshot())
            except Exception:
                _reraise_cancellation()
                log.exception("realtime %s: saving the snapshot failed", self.name)

    async def _refresher(self) -> None:
        while True:
            _reraise_cancellation()
            await asyncio.sleep(self.opts["refresh"])
            if self.up:
                try:
                    await self.refresh_margins()
                except ManagerApiError as exc:
                    _reraise_cancellation()
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
        snapshotter = asyncio.create_task(self._snapshotter())
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
            for task in (flusher, refresher, snapshotter):
                task.cancel()
            with contextlib.suppress(BaseException):
                await asyncio.gather(flusher, refresher, snapshotter, return_exceptions=True)
            if self.up:
                self.up = False
                with contextlib.suppress(Exception):
                    await self._publish_status()
