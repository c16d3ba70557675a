"""WebSocket consumer: live margins, account events and quotes for one open page.

The consumer only translates between the socket and the channel layer; the rules live next to
it: :mod:`platforms.live.messages` (what a browser may send), :mod:`platforms.live.fanout` (what
a user may receive) and :mod:`platforms.access.scope` (the one authorization gate). The browser
says what it shows::

    {"type": "watch", "platforms": [pk, ...], "accounts": {"<pk>": [login, ...]},
     "symbols": {"<pk>": ["EURUSD", ...]}, "alerts": true}

Platforms outside the user's grant are refused (``{"t": "denied", "platforms": [...]}``)
*before* any group is joined. There are no per-account groups: trade and user events travel in
the platform's batch and each socket picks its own accounts' events. Every row and event is
checked at fan-out against the user's masks (an account may change group, a grant may change),
and personal fields (email, phone…) are stripped unless the user has
``view_personal_data``. The grant is re-read every ``REALTIME_SCOPE_RECHECK_SECONDS``: a
narrowed grant is re-applied (``{"t": "denied", ..., "reason": "access revoked"}``), a user who
lost staff status or every platform is disconnected with close code 4403 and a reason.
A message the socket cannot take is answered ``{"t": "error", "message": ...}``.

Frames are coalesced (latest row per account / quote per symbol wins) and throttled to at most
``REALTIME_MAX_FRAMES_PER_SECOND`` per socket, sent on the leading edge: a change after a quiet
spell goes out at once. Frames::

    {"t": "snap", "p": pk, "up": bool, "groups": {...}, "rows": [[login, equity, margin, free,
     level, level_type, group], ...]}                          # after each watch
    {"t": "u", "rows": {"<pk>": [...]}, "quotes": {"<pk>": [[symbol, bid, ask]]},
     "status": {"<pk>": bool}, "events": [{"p": pk, "login": n, ...}], "exposure": [pk]}

``"exposure": [pk]`` says that a platform's net exposure changed (a client trade within the
user's group masks, or a coverage account's fill): the net-exposure page re-reads its figures
from the server, which scopes them as for any page. Only users who may view exposure
(``platforms.coverage.selectors.may_view_exposure``) on a granted platform join its
``exposure_group``; it is re-checked with the grant.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import Any

import msgspec
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model

from platforms.access.scope import Scope, is_staff, scope_for
from platforms.coverage.selectors import may_view_exposure
from platforms.live import batches, fanout, runner, store
from platforms.live.hub_relay import burst_period
from platforms.live.messages import ProtocolError, Watch, dumps, error_frame, parse

log = logging.getLogger("platforms.live")

MAX_PENDING_EVENTS = 100
CLOSE_FORBIDDEN = 4403
REVOKED = "access revoked"
#: Float slack when comparing grid times, and how much sooner than the frame interval a due
#: frame may follow the last one (timers fire a little late: without it, each frame would
#: start that much later than the last, drifting off the bridge's grid; see ``arrived``).
GRID_TOLERANCE = 0.002
FLOOR_TOLERANCE = 0.005
GROUP_REJOIN_SECONDS = 3600.0
_quotes = msgspec.json.Decoder(list[list])
_NONE: frozenset[int] = frozenset()


#: The user's grant and whether they may view net exposure (their role).
Grant = tuple[Scope, bool]


@database_sync_to_async
def _load_scope(user_id: int) -> Grant:
    """The user's grant read afresh (a new user object: ``has_perm`` caches per instance)."""
    user = get_user_model().objects.filter(pk=user_id).first()
    access = scope_for(user)
    return access, bool(access.user_id is not None and may_view_exposure(user))


#: user id → (monotonic time read, Grant): one user's sockets (tabs) share a re-read.
_recent_scopes: dict[int, tuple[float, Grant]] = {}


async def _recheck_scope_of(user_id: int, max_age: float) -> Grant:
    """The user's grant, re-read unless another of their sockets did so within ``max_age``."""
    now = time.monotonic()
    cached = _recent_scopes.get(user_id)
    if cached is not None and now - cached[0] < max_age:
        return cached[1]
    access = await _load_scope(user_id)
    if len(_recent_scopes) > 10_000:
        _recent_scopes.clear()
    _recent_scopes[user_id] = (time.monotonic(), access)
    return access


class LiveConsumer(AsyncWebsocketConsumer):
    """One socket per open page (see the module docstring for the protocol)."""

    async def connect(self) -> None:
        user = self.scope.get("user")
        self.closed = False
        if not is_staff(user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.user_id: int = user.pk
        self.access, self.exposure_ok = await _load_scope(self.user_id)
        self.watch_message: Watch | None = None
        self.sub = fanout.Subscription()
        self.groups_joined: set[str] = set()
        self.alerting: dict[int, set[int]] = {}  # logins last reported outside Ok
        self.pending_rows: dict[int, dict[int, list]] = {}
        self.pending_quotes: dict[int, dict[str, list]] = {}
        self.pending_status: dict[int, bool] = {}
        self.pending_events: list[dict] = []
        self.pending_exposure: set[int] = set()
        rate = max(1, int(settings.REALTIME_MAX_FRAMES_PER_SECOND))
        self.min_interval = 1.0 / rate
        self.fallback_slack = burst_period(settings.REALTIME_BRIDGE_FLUSH_SECONDS, rate)
        self.last_sent = 0.0  # monotonic time of the last frame
        self.sent_upto = 0.0  # bridge time up to which the last frame carried every change
        self.seen_upto = 0.0  # bridge time up to which every batch has been received
        self.flush_handle: asyncio.TimerHandle | None = None
        self.frames_sent = 0
        self.applying = asyncio.Lock()  # a watch and a grant re-check must not interleave
        await self.accept()
        self.recheck_task = asyncio.create_task(self._recheck_scope())
        runner.ensure_started()

    async def disconnect(self, code: int) -> None:
        self._stop()
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)
        self.groups_joined = set()

    def _stop(self) -> None:
        self.closed = True
        handle = getattr(self, "flush_handle", None)
        if handle is not None:
            handle.cancel()
            self.flush_handle = None
        task = getattr(self, "recheck_task", None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    # ---------------------------------------------------------------- browser → server
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        if self.closed:
            return
        try:
            message = parse(text_data, bytes_data)
        except ProtocolError as exc:
            await self.send(error_frame(str(exc)))
            return
        self.watch_message = message
        await self.apply_watch(message)

    async def apply_watch(self, message: Watch, reason: str | None = None) -> None:
        """Subscribe to what ``message`` asks within the current scope (again after a grant
        changed), then send a snapshot per platform."""
        async with self.applying:
            await self._apply_watch(message, reason)

    async def _apply_watch(self, message: Watch, reason: str | None) -> None:
        sub, denied, denied_exposure = fanout.subscribe(self.access, message,
                                                        exposure=self.exposure_ok)
        if reason is not None:  # a re-check: tell only what was just lost
            denied &= self.sub.platforms
            denied_exposure &= self.sub.exposure
        if denied or denied_exposure:
            frame: dict[str, Any] = {"t": "denied", "platforms": sorted(denied)}
            if denied_exposure:
                frame["exposure"] = sorted(denied_exposure)
            if reason:
                frame["reason"] = reason
            await self.send(dumps(frame))
        wanted = sub.channel_groups()
        for group in self.groups_joined - wanted:
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in wanted - self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = wanted
        self.sub = sub
        self._drop_pending_outside(sub)
        for pk in sorted(sub.platforms):
            await self.send_snapshot(pk, await store.alatest(pk))

    def _drop_pending_outside(self, sub: fanout.Subscription) -> None:
        """Nothing queued before a watch or a grant change leaks past it."""
        for pending in (self.pending_rows, self.pending_quotes, self.pending_status):
            for pk in [pk for pk in pending if pk not in sub.platforms]:
                del pending[pk]
        self.pending_exposure &= sub.exposure
        for pk, rows in self.pending_rows.items():
            visible = fanout.row_visible
            self.pending_rows[pk] = {
                login: row for login, row in rows.items() if visible(self.access, pk, row)
            }
        self.pending_events = [
            shown
            for e in self.pending_events
            if e["login"] in sub.accounts.get(e["p"], ())
            and (shown := fanout.account_event(self.access, e["p"], e["login"], e)) is not None
        ]

    async def send_snapshot(self, pk: int, snap: dict[str, Any] | None) -> None:
        """What the page may have missed: the latest rows it shows (and every alert)."""
        rows, alerting = fanout.snapshot_rows(
            self.access, pk, (snap or {}).get("rows") or (), self.sub
        )
        self.alerting[pk] = alerting
        await self.send(
            dumps(
                {
                    "t": "snap",
                    "p": pk,
                    "up": bool(snap and snap.get("up")),
                    "known": snap is not None,
                    "groups": (snap or {}).get("groups", {}),
                    "rows": rows,
                }
            )
        )

    # ---------------------------------------------------------------- the grant, re-read
    async def _recheck_scope(self) -> None:
        """Every ``REALTIME_SCOPE_RECHECK_SECONDS``: apply a changed grant to the open socket
        (a user's sockets share one re-read per half period, so a change takes effect within
        1.5 periods)."""
        every = max(0.05, float(settings.REALTIME_SCOPE_RECHECK_SECONDS))
        rejoin_at = time.monotonic() + GROUP_REJOIN_SECONDS
        # sockets opened together must not all query the database in the same instant
        delay = every * random.uniform(0.5, 1.0)
        while not self.closed:
            await asyncio.sleep(delay)
            delay = every
            if time.monotonic() > rejoin_at:
                rejoin_at = time.monotonic() + GROUP_REJOIN_SECONDS
                async with self.applying:  # group memberships expire after a day on both layers
                    for group in self.groups_joined:
                        await self.channel_layer.group_add(group, self.channel_name)
            try:
                access, exposure_ok = await _recheck_scope_of(self.user_id, every / 2)
            except Exception:  # a database hiccup must not end the socket; try again later
                log.warning("live socket: re-reading the grant failed", exc_info=True)
                continue
            if (access, exposure_ok) == (self.access, self.exposure_ok) or self.closed:
                continue
            self.access, self.exposure_ok = access, exposure_ok
            if access.user_id is None or not access.platforms:
                await self.close(code=CLOSE_FORBIDDEN, reason=REVOKED)
                self._stop()
                return
            if self.watch_message is not None:
                await self.apply_watch(self.watch_message, reason=REVOKED)

    # ---------------------------------------------------------------- channel layer → browser
    async def platform_batch(self, message: dict) -> None:
        """Rows and account events of one flush: this socket's accounts only, each checked
        against the user's scope."""
        pk = message["pk"]
        if pk not in self.sub.platforms or self.closed:
            return
        watched = self.sub.accounts.get(pk, _NONE)
        alerts = self.sub.alerts
        if watched or alerts:
            alerting = self.alerting.setdefault(pk, set())
            candidates = batches.select_rows(
                message, watched | alerting if alerts else watched, not_ok=alerts
            )
            rows = fanout.batch_rows(self.access, pk, candidates, self.sub, alerting)
            if rows:
                pending = self.pending_rows.setdefault(pk, {})
                for row in rows:
                    pending[row[0]] = row
        for login, event in batches.select_events(message, watched):
            shown = fanout.account_event(self.access, pk, login, event)
            if shown is not None and len(self.pending_events) < MAX_PENDING_EVENTS:
                self.pending_events.append(shown)
        await self.arrived(message["ts"])

    async def quotes_batch(self, event: dict) -> None:
        pk = event["pk"]
        wanted = self.sub.symbols.get(pk)
        if not wanted or self.closed:
            return
        for row in _quotes.decode(event["rows"]):
            if row[0] in wanted:
                self.pending_quotes.setdefault(pk, {})[row[0]] = row
        await self.arrived(event["ts"])

    async def exposure_changed(self, event: dict) -> None:
        """A platform's net exposure changed: tell the page (coalesced like every update)
        when the change is within the user's scope (the trades' groups, see ``fanout``)."""
        pk = event["pk"]
        if pk not in self.sub.exposure or self.closed:
            return
        if not fanout.exposure_visible(self.access, pk, event.get("groups")):
            return
        self.pending_exposure.add(pk)
        await self.arrived(event.get("ts") or time.time(), batch=False)

    async def platform_status(self, event: dict) -> None:
        if event["pk"] in self.sub.platforms and not self.closed:
            self.pending_status[event["pk"]] = bool(event["up"])
            await self.arrived(time.time(), batch=False)

    # ---------------------------------------------------------------- coalesce + throttle
    def _pending(self) -> bool:
        return bool(
            self.pending_rows or self.pending_quotes or self.pending_status or self.pending_events
            or self.pending_exposure
        )

    async def arrived(self, ts: float, *, batch: bool = True) -> None:
        """Something may be pending, as of bridge time ``ts``: send it now, or when due.

        A frame is due when the bridge's clock has moved a frame interval past the newest
        batch already sent. During a burst the bridge publishes on a wall-clock grid that
        divides that interval (``bridge.burst_period``), so every third batch (at 4 frames/s
        and 0.1 s flushes) is due: it is sent as it arrives, with everything that came in
        between, and no row waits for the bridge's flush *and then* for the throttle. After a
        quiet spell the first change is due at once (the leading edge). Frames are never
        closer than the interval; the fallback timer sends the tail of a burst (no batch
        comes after it) one bridge period after the interval."""
        if batch:
            self.seen_upto = max(self.seen_upto, ts)
        if not self._pending():
            return
        due = ts >= self.sent_upto + self.min_interval - GRID_TOLERANCE
        remaining = self.last_sent + self.min_interval - FLOOR_TOLERANCE - time.monotonic()
        if due and remaining <= 0:
            await self.flush()
        elif due:
            self._arm(remaining)
        elif self.flush_handle is None:
            self._arm(remaining + self.fallback_slack)

    def _arm(self, delay: float) -> None:
        if self.flush_handle is not None:
            self.flush_handle.cancel()
        loop = asyncio.get_running_loop()
        self.flush_handle = loop.call_later(
            max(0.0, delay), lambda: loop.create_task(self.flush())
        )

    async def flush(self) -> None:
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush_handle = None
        if self.closed:
            return
        wait = self.last_sent + self.min_interval - FLOOR_TOLERANCE - time.monotonic()
        if wait > 0:
            self._arm(wait)
            return
        frame: dict[str, Any] = {"t": "u"}
        if self.pending_rows:
            frame["rows"] = {str(pk): list(r.values()) for pk, r in self.pending_rows.items()}
            self.pending_rows = {}
        if self.pending_quotes:
            frame["quotes"] = {str(pk): list(q.values()) for pk, q in self.pending_quotes.items()}
            self.pending_quotes = {}
        if self.pending_status:
            frame["status"] = {str(pk): up for pk, up in self.pending_status.items()}
            self.pending_status = {}
        if self.pending_events:
            frame["events"], self.pending_events = self.pending_events, []
        if self.pending_exposure:
            frame["exposure"] = sorted(self.pending_exposure)
            self.pending_exposure = set()
        if len(frame) == 1:
            return
        self.last_sent = time.monotonic()
        self.sent_upto = self.seen_upto
        self.frames_sent += 1
        await self.send(dumps(frame))
