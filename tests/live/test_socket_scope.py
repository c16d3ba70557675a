"""The live socket against the real sandbox: every row and event passes the access gate.

A bridge streams the sandbox's hub into the channel layer (in-memory and Redis); staff sockets
watch accounts inside and outside their group masks while the sandbox changes them (margin
calls, which also send user updates, and trades through the REST API). Each test also checks
that what *may* arrive does arrive, so none of them passes by receiving nothing.
"""

from __future__ import annotations

import asyncio
import itertools
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from platforms.access.models import PlatformAccess
from platforms.access.scope import PERSONAL_FIELDS
from platforms.client import AsyncManagerClient
from platforms.client import records as r
from platforms.connections import platform_config
from platforms.live import store
from platforms.live.hub_relay import PlatformBridge
from tests.factories import StaffUserFactory, grant
from tests.live.sockets import events_of, frames, frames_until, open_socket, rows_of
from tests.sandbox_process import forget_connections

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(90)]

EXCLUDED = "real\\usd-std"
MASKS = "real\\*,!real\\usd-std"


@pytest.fixture
def sandbox_world(hubs, channel_layer_backend, settings):
    """The sandbox platforms registered, sockets on the layer under test, a fast re-check."""
    from platforms.services import register_sandbox_platforms

    settings.REALTIME_BRIDGE = "external"  # the test runs its own bridge
    settings.REALTIME_MAX_FRAMES_PER_SECOND = 4
    settings.REALTIME_SCOPE_RECHECK_SECONDS = 0.3
    forget_connections(hubs)
    mt4, mt5 = register_sandbox_platforms(hubs)
    staff = StaffUserFactory
    yield {
        "mt4": mt4, "mt5": mt5, "hubs": hubs,
        # support may see personal data; these two only accounts in "real\*" but usd-std
        "masked": grant(staff(username="rt-masked"), mt4, group_masks=MASKS, role="support"),
        "storm": grant(staff(username="rt-storm"), mt4, group_masks=MASKS, role="support"),
        "dealer": grant(staff(username="rt-dealer"), mt4, role="dealer"),
        "support": grant(staff(username="rt-support"), mt4, role="support"),
        "both": grant(staff(username="rt-both"), mt4, mt5),
    }
    forget_connections(hubs)


class RunningBridge:
    def __init__(self, platform):
        self.platform = platform
        self.client = AsyncManagerClient(platform_config(platform))
        self.bridge = PlatformBridge(
            platform,
            self.client,
            layer=get_channel_layer(),
            options={"flush": 0.05, "server_timeout": 1.5, "reconnect_max": 0.5},
        )

    async def __aenter__(self) -> RunningBridge:
        self.task = asyncio.create_task(self.bridge.run())
        deadline = time.monotonic() + 15
        while not (self.bridge.up and self.bridge.rows):
            assert time.monotonic() < deadline, "the bridge did not come up"
            await asyncio.sleep(0.05)
        store.local_bridges[self.platform.pk] = self.bridge  # what the snapshots read
        return self

    async def __aexit__(self, *exc) -> None:
        store.local_bridges.pop(self.platform.pk, None)
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
        await self.client.aclose()

    def account(self, in_group=lambda group: True, skip=()) -> int:
        """A login using margin, comfortably Ok (a margin-call push is then a transition)."""
        for login, row in sorted(self.bridge.rows.items()):
            if login not in skip and row[2] and row[5] == 0 and row[4] > 300 and in_group(row[6]):
                return login
        raise AssertionError("no suitable account")

    async def margin_call(self, hubs, login: int, level: str = "MarginCall") -> None:
        await asyncio.to_thread(
            hubs.hubs, "POST", "/margin-call", json={"login": login, "levelType": level}
        )

    async def trade(self, login: int) -> None:
        tx = r.MT4TradeTransaction(
            trade_transaction_type="BrOpen", trade_command="Buy", order_by=login,
            symbol="EURUSD", volume=1,
        )
        await self.client.mt4.trade_transaction(tx)


def _watch(pk: int, *logins: int, alerts: bool = True) -> dict:
    return {"type": "watch", "platforms": [pk], "accounts": {str(pk): list(logins)},
            "alerts": alerts}


def _logins(frames_: list[dict], pk: int) -> set[int]:
    return {row[0] for row in rows_of(frames_, pk)} | {e["login"] for e in events_of(frames_)}


async def test_a_masked_user_receives_nothing_of_an_excluded_account(sandbox_world):
    mt4, hubs = sandbox_world["mt4"], sandbox_world["hubs"]
    support = sandbox_world["masked"]
    async with RunningBridge(mt4) as live:
        hidden = live.account(lambda group: group == EXCLUDED)
        shown = live.account(lambda group: group.startswith("real\\") and group != EXCLUDED)
        visible_group = live.bridge.rows[shown][6]
        socket, connected, _ = await open_socket(support)
        assert connected
        await socket.send_json_to(_watch(mt4.pk, hidden, shown))
        first = await frames_until(socket, lambda f: any(x["t"] == "snap" for x in f), 5)
        snap = next(f for f in first if f["t"] == "snap")
        in_snap = {row[0]: row[6] for row in snap["rows"]}  # watched + every alert it may see
        assert shown in in_snap and hidden not in in_snap  # the snapshot is scoped too
        assert all(g.startswith("real\\") and g != EXCLUDED for g in in_snap.values())

        for login in (hidden, shown):
            await live.trade(login)  # first: a margin call leaves no money for it
            await live.margin_call(hubs, login)

        def arrived(f: list[dict]) -> bool:
            rows = [row for row in rows_of(f, mt4.pk) if row[0] == shown]
            kinds = {e["e"] for e in events_of(f) if e["login"] == shown}
            return any(row[5] == 1 for row in rows) and {"trade", "user"} <= kinds

        seen = await frames_until(socket, arrived, 8)
        assert arrived(seen), seen  # what may be seen does arrive ...
        seen += await frames(socket, 0.8)
        assert hidden not in _logins(first + seen, mt4.pk)  # ... and nothing of the other
        assert all(e.get("group") == visible_group for e in events_of(seen))
        assert any("email" in e for e in events_of(seen) if e["e"] == "user")  # support may
        await socket.disconnect()
        await live.margin_call(hubs, shown, "Ok")
        await live.margin_call(hubs, hidden, "Ok")


async def test_personal_fields_reach_only_users_allowed_to_see_them(sandbox_world):
    mt4, hubs = sandbox_world["mt4"], sandbox_world["hubs"]
    dealer, support = sandbox_world["dealer"], sandbox_world["support"]
    async with RunningBridge(mt4) as live:
        login = live.account()
        sockets = {}
        for name, user in (("dealer", dealer), ("support", support)):
            socket, connected, _ = await open_socket(user)
            assert connected
            await socket.send_json_to(_watch(mt4.pk, login, alerts=False))
            await frames_until(socket, lambda f: any(x["t"] == "snap" for x in f), 5)
            sockets[name] = socket
        await live.margin_call(hubs, login)

        def user_event(f: list[dict]) -> bool:
            return any(e["e"] == "user" and e["login"] == login for e in events_of(f))

        got = {name: await frames_until(s, user_event, 8) for name, s in sockets.items()}
        for name, seen in got.items():
            assert user_event(seen), (name, seen)
        dealer_events = [e for e in events_of(got["dealer"]) if e["e"] == "user"]
        support_events = [e for e in events_of(got["support"]) if e["e"] == "user"]
        assert all(not (PERSONAL_FIELDS & set(e)) for e in dealer_events), dealer_events
        assert all("email" not in e and "phone" not in e for e in dealer_events)
        assert all({"email", "phone"} <= set(e) for e in support_events), support_events
        assert all("balance" in e and "name" in e for e in dealer_events)  # the rest is there
        for socket in sockets.values():
            await socket.disconnect()
        await live.margin_call(hubs, login, "Ok")


async def test_a_revoked_grant_stops_an_open_socket_within_seconds(sandbox_world):
    mt4, mt5, hubs = sandbox_world["mt4"], sandbox_world["mt5"], sandbox_world["hubs"]
    dealer = sandbox_world["both"]
    async with RunningBridge(mt4) as live:
        first = live.account()
        second = live.account(skip={first})
        socket, connected, _ = await open_socket(dealer)
        assert connected
        await socket.send_json_to(
            {"type": "watch", "platforms": [mt4.pk, mt5.pk],
             "accounts": {str(mt4.pk): [first, second]}}
        )
        await frames_until(socket, lambda f: sum(x["t"] == "snap" for x in f) == 2, 5)
        await live.margin_call(hubs, first)
        before = await frames_until(
            socket, lambda f: any(r[0] == first and r[5] == 1 for r in rows_of(f, mt4.pk)), 8
        )
        assert any(r[0] == first for r in rows_of(before, mt4.pk))  # it flows

        await sync_to_async(PlatformAccess.objects.filter(user=dealer, platform=mt4).delete)()
        started = time.monotonic()
        denied = await frames_until(socket, lambda f: any(x["t"] == "denied" for x in f), 5)
        assert {"t": "denied", "platforms": [mt4.pk], "reason": "access revoked"} in denied
        assert time.monotonic() - started < 3
        await live.trade(second)
        await live.margin_call(hubs, second)
        after = await frames(socket, 1.5)
        assert not rows_of(after, mt4.pk) and not events_of(after), after

        await sync_to_async(PlatformAccess.objects.filter(user=dealer).delete)()
        closed = None
        deadline = time.monotonic() + 5
        while closed is None and time.monotonic() < deadline:
            message = await socket.output_queue.get()
            if message["type"] == "websocket.close":
                closed = message
        assert closed == {"type": "websocket.close", "code": 4403, "reason": "access revoked"}
        await live.margin_call(hubs, first, "Ok")
        await live.margin_call(hubs, second, "Ok")


async def test_a_storm_is_coalesced_throttled_and_scoped(sandbox_world):
    """Under a hub storm (synthetic margin items for every account), a masked socket gets at
    most 4 frames a second, only rows of groups it may see, and the latest values."""
    mt4, hubs = sandbox_world["mt4"], sandbox_world["hubs"]
    support = sandbox_world["storm"]
    async with RunningBridge(mt4) as live:
        logins = sorted(live.bridge.rows)[:60]
        socket, _, _ = await open_socket(support)
        await socket.send_json_to(_watch(mt4.pk, *logins, alerts=False))
        await frames_until(socket, lambda f: any(x["t"] == "snap" for x in f), 5)
        await frames(socket, 0.3)
        await asyncio.to_thread(
            hubs.hubs, "POST", "/storm", json={"rate": 2000, "seconds": 2, "accounts": 300}
        )
        arrivals: list[float] = []
        updates: list[dict] = []
        deadline = time.monotonic() + 3.5
        while (left := deadline - time.monotonic()) > 0:
            got = [f for f in await frames(socket, min(left, 0.02)) if f["t"] == "u"]
            arrivals += [time.monotonic()] * len(got)
            updates += got
        rows = rows_of(updates, mt4.pk)
        assert rows, "the storm reached the socket"
        assert all(row[0] in logins for row in rows)
        assert all(row[6].startswith("real\\") and row[6] != EXCLUDED for row in rows)
        assert {row[6] for row in rows} >= {"real\\eur", "real\\usd-pro"}
        # at most 4 a second (arrival times here are read every 20 ms, hence the slack)
        span = arrivals[-1] - arrivals[0]
        assert len(updates) <= 4 * (span + 0.05) + 1, (len(updates), span)
        gaps = [b - a for a, b in itertools.pairwise(arrivals)]
        assert min(gaps) >= 0.2, gaps  # and never bunched up
        assert all(len({row[0] for row in rows_of([f], mt4.pk)}) == len(rows_of([f], mt4.pk))
                   for f in updates)  # coalesced: one row per account per frame
        await socket.disconnect()
