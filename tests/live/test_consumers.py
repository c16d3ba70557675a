"""The live consumer on both channel layers: scope, coalescing, throttling."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing.websocket import WebsocketCommunicator
from django.conf import settings
from django.core.cache import cache

from platforms.live import batches, store
from platforms.live.consumers import FLOOR_TOLERANCE
from platforms.live.groups import platform_group
from platforms.live.routing import websocket_urlpatterns
from tests.factories import StaffUserFactory, TradePlatformFactory, grant
from tests.live.sockets import frames_until

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(60)]


@pytest.fixture(autouse=True)
def _external_bridge(settings):
    settings.REALTIME_BRIDGE = "external"  # these tests feed the layer themselves
    settings.REALTIME_MAX_FRAMES_PER_SECOND = 4


@pytest.fixture
def world(channel_layer_backend):
    mine, other = TradePlatformFactory(name="Mine"), TradePlatformFactory(name="Other")
    dealer = grant(StaffUserFactory(username="rt-dealer"), mine)
    outsider = StaffUserFactory(username="rt-plain", is_staff=False)
    cache.delete(store.snapshot_key(mine.pk))
    cache.delete(store.snapshot_key(other.pk))
    return {"mine": mine, "other": other, "dealer": dealer, "outsider": outsider}


async def _socket(user):
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/live/")
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


async def _frames(communicator, seconds: float) -> list[dict]:
    """Every frame sent within ``seconds`` (reads the queue directly: ``receive_from``
    cancels the application when it times out)."""
    frames = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await asyncio.wait_for(communicator.output_queue.get(), left)
        except TimeoutError:
            break
        assert message["type"] == "websocket.send", message
        frames.append(json.loads(message["text"]))
    return frames


def _row(login, level, lt=0, group="real\\usd-std"):
    return [login, 1000.0 + level, 500.0, 500.0, level, lt, group]


async def _batch(pk, rows):
    await get_channel_layer().group_send(
        platform_group(pk),
        {"type": "platform.batch", "pk": pk, "ts": time.time(), **batches.encode(rows)},
    )


async def test_anonymous_and_non_staff_sockets_are_refused(world):
    from django.contrib.auth.models import AnonymousUser

    for user in (AnonymousUser(), world["outsider"]):
        _communicator, connected, code = await _socket(user)
        assert not connected
        assert code == 4403


async def test_the_full_stack_refuses_a_socket_without_a_session(world):
    from dashboard.asgi import application

    communicator = WebsocketCommunicator(
        application,
        "/ws/live/",
        headers=[(b"origin", b"http://127.0.0.1"), (b"host", b"127.0.0.1")],
    )
    connected, _ = await communicator.connect()
    assert not connected


async def test_a_socket_cannot_join_another_platforms_group(world):
    mine, other = world["mine"], world["other"]
    communicator, connected, _ = await _socket(world["dealer"])
    assert connected
    await communicator.send_json_to(
        {
            "type": "watch",
            "platforms": [mine.pk, other.pk],
            "accounts": {str(mine.pk): [1], str(other.pk): [2]},
            "alerts": True,
        }
    )
    frames = await _frames(communicator, 0.5)
    assert {"t": "denied", "platforms": [other.pk]} in frames
    assert [f["p"] for f in frames if f["t"] == "snap"] == [mine.pk]
    await _batch(other.pk, [_row(2, 40.0, 1)])
    await _batch(mine.pk, [_row(1, 40.0, 1)])
    frames = await _frames(communicator, 0.6)
    updates = [f for f in frames if f["t"] == "u"]
    assert updates and all(set(f["rows"]) == {str(mine.pk)} for f in updates)
    await communicator.disconnect()


async def test_group_masks_narrow_the_rows(world):
    mine = world["mine"]
    await sync_to_async(grant)(world["dealer"], mine, group_masks="real\\*")
    communicator, _, _ = await _socket(world["dealer"])
    await communicator.send_json_to({"type": "watch", "platforms": [mine.pk], "alerts": True})
    await _frames(communicator, 0.3)
    await _batch(mine.pk, [_row(1, 40.0, 1, "demo\\usd"), _row(2, 40.0, 1, "real\\eur")])
    frames = [f for f in await _frames(communicator, 0.6) if f["t"] == "u"]
    assert [r[0] for f in frames for r in f["rows"][str(mine.pk)]] == [2]
    await communicator.disconnect()


async def test_a_burst_is_coalesced_and_throttled(world, channel_layer_backend):
    mine = world["mine"]
    communicator, _, _ = await _socket(world["dealer"])
    logins = list(range(100001, 100051))
    await communicator.send_json_to(
        {"type": "watch", "platforms": [mine.pk], "accounts": {str(mine.pk): logins}}
    )
    await _frames(communicator, 0.3)
    burst = 10_000 if channel_layer_backend == "memory" else 2_000
    started = time.monotonic()
    for i in range(burst):
        await _batch(mine.pk, [_row(logins[i % 50], 100.0 + i)])
    final = {login: 100.0 + max(i for i in range(burst) if i % 50 == j)
             for j, login in enumerate(logins)}

    def latest(seen: list[dict]) -> dict[int, list]:
        rows = {}
        for frame in seen:
            for row in frame.get("rows", {}).get(str(mine.pk), []):
                rows[row[0]] = row
        return rows

    def settled(seen: list[dict]) -> bool:
        rows = latest(seen)
        return all(login in rows and rows[login][4] == level for login, level in final.items())

    # the socket may still be working through the layer's backlog: wait for the last values
    frames = await frames_until(communicator, settled, 20)
    window = time.monotonic() - started
    # latest value per account wins: the last frame state equals the last update sent
    assert settled(frames), [latest(frames).get(login) for login in logins[:3]]
    frames = [f for f in frames if f["t"] == "u"]
    # frames are never closer than the interval less the consumer's timer tolerance
    spacing = 1 / settings.REALTIME_MAX_FRAMES_PER_SECOND - FLOOR_TOLERANCE
    assert 1 <= len(frames) <= int(window / spacing) + 2, (len(frames), window)
    # coalesced: a frame carries at most one row per account, whatever the burst
    assert all(len(f["rows"][str(mine.pk)]) <= len(logins) for f in frames)
    assert sum(len(f["rows"][str(mine.pk)]) for f in frames) <= len(frames) * len(logins) < burst
    await communicator.disconnect()


async def test_status_and_snapshot_hydrate_a_socket(world):
    mine = world["mine"]
    await cache.aset(
        store.snapshot_key(mine.pk),
        {
            "rows": [_row(7, 45.0, 1), _row(8, 900.0, 0)],
            "groups": {"g": [100, 50]},
            "up": True,
            "ts": time.time(),
        },
    )
    communicator, _, _ = await _socket(world["dealer"])
    await communicator.send_json_to(
        {"type": "watch", "platforms": [mine.pk], "accounts": {str(mine.pk): [8]}, "alerts": True}
    )
    snap = next(f for f in await _frames(communicator, 0.4) if f["t"] == "snap")
    assert snap["up"] is True and sorted(r[0] for r in snap["rows"]) == [7, 8]
    await get_channel_layer().group_send(
        platform_group(mine.pk), {"type": "platform.status", "pk": mine.pk, "up": False}
    )
    frames = await _frames(communicator, 0.5)
    assert any(f.get("status") == {str(mine.pk): False} for f in frames)
    await communicator.disconnect()
