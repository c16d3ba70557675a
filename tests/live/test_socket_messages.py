"""Whatever a browser sends on ``/ws/live/``: a valid frame or a short error frame, never an
exception, and the socket keeps working."""

from __future__ import annotations

import json

import pytest
from django.core.cache import cache
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from platforms.live import store
from tests.factories import StaffUserFactory, TradePlatformFactory, grant
from tests.live.sockets import frames_until, next_message, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]

FRAME_TYPES = {"snap", "u", "denied", "error"}

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)
#: JSON shaped like a watch, with every field drawn from anything: the interesting near-misses.
watch_like = st.fixed_dictionaries(
    {"type": st.sampled_from(["watch", "Watch", "", "ping"]) | st.text()},
    optional={
        "platforms": json_values | st.lists(st.integers() | st.text(), max_size=3),
        "accounts": json_values | st.dictionaries(st.text(), json_values, max_size=3),
        "symbols": json_values,
        "alerts": json_values,
    },
)
messages = (
    json_values.map(lambda v: ("text", json.dumps(v)))
    | watch_like.map(lambda v: ("text", json.dumps(v)))
    | st.text().map(lambda t: ("text", t))
    | st.binary(min_size=1).map(lambda b: ("bytes", b))
)


@pytest.fixture
def platform(settings):
    settings.REALTIME_BRIDGE = "external"
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    from channels.layers import channel_layers

    channel_layers.backends.clear()
    platform = TradePlatformFactory(name="Fuzzed")
    cache.delete(store.snapshot_key(platform.pk))
    yield platform
    channel_layers.backends.clear()


@pytest.fixture
def dealer(platform):
    return grant(StaffUserFactory(username="fuzz-dealer"), platform)


def _is_watch(kind: str, raw) -> bool:
    """Could this message be a valid watch at all (a JSON object whose type is "watch")?"""
    if kind != "text":
        return False
    try:
        value = json.loads(raw)
    except ValueError:
        return False
    return isinstance(value, dict) and value.get("type") == "watch"


async def _send(socket, kind: str, raw) -> None:
    # the raw ASGI message: ``send_to`` refuses an empty text, which a browser can send
    await socket.send_input({"type": "websocket.receive", kind: raw})


async def _assert_answered_then_usable(socket, platform, kind: str, raw) -> None:
    await _send(socket, kind, raw)
    valid = {"type": "watch", "platforms": [platform.pk]}
    await socket.send_json_to(valid)
    seen = await frames_until(socket, lambda f: any(x.get("t") == "snap" for x in f), 5)
    assert any(f.get("t") == "snap" and f.get("p") == platform.pk for f in seen), (raw, seen)
    for frame in seen:
        assert frame.get("t") in FRAME_TYPES, frame
        if frame["t"] == "error":
            assert isinstance(frame["message"], str) and 0 < len(frame["message"]) <= 200
    if not _is_watch(kind, raw):
        assert seen[0]["t"] == "error", (raw, seen)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(message=messages)
async def test_any_message_gets_a_frame_or_an_error_and_the_socket_stays_usable(
    platform, dealer, message
):
    socket, connected, _ = await open_socket(dealer)
    assert connected
    try:
        await _assert_answered_then_usable(socket, platform, *message)
    finally:
        await socket.disconnect()


@pytest.mark.parametrize(
    "raw, says",
    [
        ('{"type":"watch","platforms":["²"]}', "Expected `int`, got `str`"),
        ('{"type":"watch","accounts":{"1":["abc"]}}', "Expected `int`, got `str`"),
        ('{"type":"watch","accounts":{"1":[null]}}', "got `null`"),
        ('{"type":"watch","platforms":[' + "1" * 31 + "]}", "<= 9223372036854775807"),
        ('{"type":"watch","platforms":[9223372036854775808]}', "<= 9223372036854775807"),
        ('{"type":"watch","accounts":{"²":[1]}}', "Expected `int`"),
        ('{"type":"watch","accounts":{"01":[1]}}', "Expected `int`"),
        ('{"type":"watch","platforms":[0]}', ">= 1"),
        ('{"type":"watch","symbols":{"1":[7]}}', "Expected `str`, got `int`"),
        ('{"type":"watch","platforms":[true]}', "got `bool`"),
        ('{"type":"nope"}', "unknown message type"),
        ('{"platforms":[1]}', "missing required field `type`"),
        ('{"type":"watch","extra":1}', "unknown field `extra`"),
        ("[null]", "Expected `object`"),
        ("not json", "not a JSON message"),
        ('{"type":"watch"} trailing', "not a JSON message"),
        ('{"type":"watch","platforms":[' + "1," * 40000 + "1]}", "message too large"),
    ],
)
async def test_bad_messages_get_a_clear_error(platform, dealer, raw, says):
    socket, _, _ = await open_socket(dealer)
    await socket.send_to(text_data=raw)
    message = await next_message(socket, 3)
    assert message is not None and message["type"] == "websocket.send", message
    frame = json.loads(message["text"])
    assert frame["t"] == "error" and says in frame["message"], frame
    await _assert_answered_then_usable(socket, platform, "text", raw)  # still usable
    await socket.disconnect()


async def test_binary_frames_are_refused_with_an_error(platform, dealer):
    socket, _, _ = await open_socket(dealer)
    await socket.send_to(bytes_data=b'{"type":"watch"}')
    frame = json.loads((await next_message(socket, 3))["text"])
    assert frame == {"t": "error", "message": "send JSON text frames, not binary"}
    await socket.disconnect()
