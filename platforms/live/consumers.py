"""WebSocket consumers: live margins, account events and quotes for one open page.

The consumer only translates between the socket and the channel layer. The browser says what
it shows::

    {"type": "watch", "platforms": [pk, ...], "accounts": {"<pk>": [login, ...]},
     "symbols": {"<pk>": ["EURUSD", ...]}, "alerts": true}

Every platform is checked against the user's scope (``visible_platforms``) *before* any group
is joined; the others are refused (``{"t": "denied", "platforms": [...]}``). Anonymous and
non-staff sockets are closed at connect.

What it sends is coalesced (latest row per account / quote per symbol wins) and throttled to
at most ``REALTIME_MAX_FRAMES_PER_SECOND`` frames per socket, so a burst of any size upstream is
at most N small frames a second downstream. Frames::

    {"t": "snap", "p": pk, "up": bool, "groups": {...}, "rows": [[login, equity, margin, free,
     level, level_type, group], ...]}                          # after each watch
    {"t": "u", "rows": {"<pk>": [...]}, "quotes": {"<pk>": [[symbol, bid, ask]]},
     "status": {"<pk>": bool}, "events": [{"p": pk, "login": n, ...}]}
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from platforms.access.masks import group_allowed
from platforms.access.scope import group_masks_for, visible_platforms
from platforms.live import runner, store
from platforms.live.groups import account_group, platform_group, quotes_group

MAX_MESSAGE_BYTES = 64 * 1024
MAX_ACCOUNTS_PER_PLATFORM = 500
MAX_SYMBOLS_PER_PLATFORM = 100
MAX_PENDING_EVENTS = 100
CLOSE_FORBIDDEN = 4403


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _is_staff(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


@database_sync_to_async
def _allowed_platforms(user, pks: set[int]) -> dict[int, str]:
    """The asked platforms in the user's scope, each with the user's group masks."""
    return {p.pk: group_masks_for(user, p) for p in visible_platforms(user).filter(pk__in=pks)}


class LiveConsumer(AsyncWebsocketConsumer):
    """One socket per open page (see the module docstring for the protocol)."""

    async def connect(self) -> None:
        self.user = self.scope.get("user")
        if not _is_staff(self.user):
            await self.close(code=CLOSE_FORBIDDEN)
            return
        self.groups_joined: set[str] = set()
        self.platforms: set[int] = set()
        self.accounts: dict[int, set[int]] = {}
        self.symbols: dict[int, set[str]] = {}
        self.alerts = False
        self.alerting: dict[int, set[int]] = {}  # logins last reported outside Ok
        self.masks: dict[int, str] = {}  # platform pk -> the user's group masks there
        self.pending_rows: dict[int, dict[int, list]] = {}
        self.pending_quotes: dict[int, dict[str, list]] = {}
        self.pending_status: dict[int, bool] = {}
        self.pending_events: list[dict] = []
        rate = max(1, int(settings.REALTIME_MAX_FRAMES_PER_SECOND))
        self.min_interval = 1.0 / rate
        self.last_sent = 0.0
        self.flush_handle: asyncio.TimerHandle | None = None
        self.frames_sent = 0
        await self.accept()
        runner.ensure_started()

    async def disconnect(self, code: int) -> None:
        if getattr(self, "flush_handle", None) is not None:
            self.flush_handle.cancel()
        for group in getattr(self, "groups_joined", ()):
            await self.channel_layer.group_discard(group, self.channel_name)

    # ---------------------------------------------------------------- browser → server
    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None):
        if not text_data or len(text_data) > MAX_MESSAGE_BYTES:
            return
        try:
            message = json.loads(text_data)
        except ValueError:
            return
        if isinstance(message, dict) and message.get("type") == "watch":
            await self.watch(message)

    async def watch(self, message: dict) -> None:
        asked = {int(p) for p in message.get("platforms") or [] if str(p).isdigit()}
        self.masks = await _allowed_platforms(self.user, asked) if asked else {}
        allowed = set(self.masks)
        denied = asked - allowed
        if denied:
            await self.send(_dumps({"t": "denied", "platforms": sorted(denied)}))

        def per_platform(raw: Any, cast, limit: int) -> dict[int, set]:
            out: dict[int, set] = {}
            if isinstance(raw, dict):
                for key, values in raw.items():
                    if str(key).isdigit() and int(key) in allowed and isinstance(values, list):
                        out[int(key)] = {cast(v) for v in values[:limit]}
            return out

        self.accounts = per_platform(message.get("accounts"), int, MAX_ACCOUNTS_PER_PLATFORM)
        self.symbols = per_platform(message.get("symbols"), str, MAX_SYMBOLS_PER_PLATFORM)
        self.alerts = bool(message.get("alerts"))
        self.platforms = allowed
        wanted = {platform_group(pk) for pk in allowed}
        wanted |= {quotes_group(pk) for pk, syms in self.symbols.items() if syms}
        wanted |= {
            account_group(pk, login) for pk, logins in self.accounts.items() for login in logins
        }
        for group in self.groups_joined - wanted:
            await self.channel_layer.group_discard(group, self.channel_name)
        for group in wanted - self.groups_joined:
            await self.channel_layer.group_add(group, self.channel_name)
        self.groups_joined = wanted
        for pk in list(self.pending_rows):
            if pk not in allowed:
                del self.pending_rows[pk]
        for pk in sorted(allowed):
            await self.send_snapshot(pk)

    async def send_snapshot(self, pk: int) -> None:
        """What the page may have missed: the latest rows it shows (and every alert)."""
        snap = await store.alatest(pk)
        rows = []
        alerting = set()
        if snap:
            watched = self.accounts.get(pk, set())
            masks = self.masks.get(pk, "")
            for row in snap["rows"]:
                if masks and not group_allowed(row[6], masks):
                    continue
                if row[0] in watched or (self.alerts and row[5]):
                    rows.append(row)
                if row[5]:
                    alerting.add(row[0])
        self.alerting[pk] = alerting if self.alerts else set()
        await self.send(
            _dumps(
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

    # ---------------------------------------------------------------- channel layer → browser
    async def margins_batch(self, event: dict) -> None:
        pk = event["pk"]
        if pk not in self.platforms:
            return
        watched = self.accounts.get(pk, ())
        alerting = self.alerting.setdefault(pk, set())
        pending = None
        masks = self.masks.get(pk, "")
        for row in json.loads(event["rows"]):
            login = row[0]
            if masks and not group_allowed(row[6], masks):
                continue
            if login in watched:
                pass
            elif self.alerts and (row[5] or login in alerting):
                if row[5]:
                    alerting.add(login)
                else:
                    alerting.discard(login)
            else:
                continue
            if pending is None:
                pending = self.pending_rows.setdefault(pk, {})
            pending[login] = row
        if pending is not None:
            self.schedule()

    async def quotes_batch(self, event: dict) -> None:
        pk = event["pk"]
        wanted = self.symbols.get(pk)
        if not wanted:
            return
        pending = self.pending_quotes.setdefault(pk, {})
        for row in json.loads(event["rows"]):
            if row[0] in wanted:
                pending[row[0]] = row
        if pending:
            self.schedule()

    async def platform_status(self, event: dict) -> None:
        if event["pk"] in self.platforms:
            self.pending_status[event["pk"]] = bool(event["up"])
            self.schedule()

    async def account_event(self, event: dict) -> None:
        pk, login = event["pk"], event["login"]
        if login in self.accounts.get(pk, ()):
            if len(self.pending_events) < MAX_PENDING_EVENTS:
                self.pending_events.append({"p": pk, "login": login, **json.loads(event["event"])})
            self.schedule()

    # ---------------------------------------------------------------- coalesce + throttle
    def schedule(self) -> None:
        if self.flush_handle is not None:
            return
        delay = max(0.0, self.last_sent + self.min_interval - time.monotonic())
        loop = asyncio.get_running_loop()
        self.flush_handle = loop.call_later(delay, lambda: loop.create_task(self.flush()))

    async def flush(self) -> None:
        self.flush_handle = None
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
        if len(frame) == 1:
            return
        self.last_sent = time.monotonic()
        self.frames_sent += 1
        await self.send(_dumps(frame))
