"""The bridge against the sandbox hubs over real WebSockets."""

from __future__ import annotations

import asyncio

import pytest
from channels.layers import InMemoryChannelLayer

from platforms.client import AsyncManagerClient
from platforms.connections import platform_config
from platforms.live import batches
from platforms.live.groups import platform_group
from platforms.live.hub_relay import PlatformBridge
from tests.support.polling import wait_until_async

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
def mt4_platform(db, hubs):
    from platforms.services import register_sandbox_platforms

    mt4, _ = register_sandbox_platforms(hubs)
    return mt4


class Listener:
    """Collects what the bridge publishes to a group on the in-memory layer."""

    def __init__(self, layer):
        self.layer = layer
        self.rows: dict[int, list] = {}
        self.status: list[bool] = []
        self.events: list[dict] = []
        self.channel = None

    async def start(self, *groups):
        self.channel = await self.layer.new_channel()
        for group in groups:
            await self.layer.group_add(group, self.channel)
        self.task = asyncio.create_task(self._run())

    async def _run(self):
        while True:
            message = await self.layer.receive(self.channel)
            if message["type"] == "platform.batch":
                rows, events = batches.decode(message)
                for row in rows:
                    self.rows[row[0]] = row
                self.events.extend(event for _, event in events)
            elif message["type"] == "platform.status":
                self.status.append(message["up"])


async def _start(platform, **options):
    layer = InMemoryChannelLayer(capacity=10000)
    client = AsyncManagerClient(platform_config(platform))
    bridge = PlatformBridge(
        platform,
        client,
        layer=layer,
        options={"flush": 0.05, "server_timeout": 1.5, "reconnect_max": 0.5, **options},
    )
    listener = Listener(layer)
    await listener.start(platform_group(platform.pk))
    task = asyncio.create_task(bridge.run())
    await wait_until_async(lambda: bridge.up)
    return bridge, listener, task, client


async def _stop(task, listener, client):
    task.cancel()
    listener.task.cancel()
    await asyncio.gather(task, listener.task, return_exceptions=True)
    await client.aclose()


def _ok_login(bridge, skip=()):
    """An account using margin that is comfortably Ok (so a push is a real transition)."""
    for login, row in sorted(bridge.rows.items()):
        if row[5] == 0 and row[2] and row[4] > 300 and login not in skip:
            return login
    raise AssertionError("no suitable account")


async def test_margin_call_arrives_through_the_hub(mt4_platform, hubs):
    bridge, listener, task, client = await _start(mt4_platform)
    try:
        assert len(bridge.rows) == 300  # hydrated from MarginsGet after connecting
        login = _ok_login(bridge)
        pushed = await asyncio.to_thread(hubs.hubs, "POST", "/margin-call", json={"login": login})
        assert pushed["levelType"] == "MarginCall"
        await wait_until_async(lambda: listener.rows.get(login, [0] * 6)[5] == 1, timeout=3)
        row = listener.rows[login]
        assert row[4] == pytest.approx(pushed["level"], abs=0.01)
        # the balance change also came as a user update, with the account's group
        await wait_until_async(
            lambda: any(e.get("e") == "user" and e.get("login") == login for e in listener.events),
            timeout=3,
        )
        user = next(e for e in listener.events if e.get("e") == "user" and e["login"] == login)
        assert user["group"] == row[6] and user["group"]
        assert bridge.connects == 1
    finally:
        await _stop(task, listener, client)


async def test_after_a_drop_it_reconnects_and_fills_the_gap(mt4_platform, hubs):
    bridge, listener, task, client = await _start(mt4_platform)
    try:
        login = _ok_login(bridge)
        await asyncio.to_thread(hubs.hubs, "POST", "/negotiate", json={"refuse": True})
        dropped = await asyncio.to_thread(hubs.hubs, "POST", "/drop")
        assert dropped["dropped"] >= 1
        await wait_until_async(lambda: not bridge.up, timeout=5)
        await wait_until_async(lambda: False in listener.status, timeout=3)
        # the margin call happens while the bridge is disconnected: no hub event reaches it
        await asyncio.to_thread(hubs.hubs, "POST", "/margin-call", json={"login": login})
        await asyncio.sleep(0.5)
        assert bridge.rows[login][5] == 0
        await asyncio.to_thread(hubs.hubs, "DELETE", "/faults")
        await wait_until_async(lambda: bridge.up and bridge.connects >= 2, timeout=10)
        await wait_until_async(lambda: listener.rows.get(login, [0] * 6)[5] == 1, timeout=3)
        assert listener.status[-1] is True
    finally:
        await _stop(task, listener, client)


async def test_a_stalled_hub_is_detected_and_recovered(mt4_platform, hubs):
    bridge, listener, task, client = await _start(mt4_platform)
    try:
        await asyncio.to_thread(hubs.hubs, "POST", "/stall", json={"stalled": True})
        # no pings within the server timeout
        await wait_until_async(lambda: not bridge.up, timeout=5)
        await asyncio.to_thread(hubs.hubs, "DELETE", "/faults")
        await wait_until_async(lambda: bridge.up and bridge.connects >= 2, timeout=10)
    finally:
        await _stop(task, listener, client)
