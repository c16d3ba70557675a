"""Sans-IO parts: request building and answer decoding (no network, no mocks needed)."""

from __future__ import annotations

import uuid

import httpx
import msgspec
import pytest

from platforms.client import (
    MT4,
    Busy,
    InvalidResponse,
    ManagerApiError,
    MT4Error,
    MT4User,
    OutcomeUnknown,
    PlatformBreaker,
    PlatformConfig,
    RequestTimeout,
    WriteInvalidResponse,
    split_flags,
)
from platforms.client.protocol import interpret, prepare
from platforms.transport.core import LARGE_BODY, BodyBuffer

PID = str(uuid.uuid4())
CONFIG = PlatformConfig(
    platform_id=PID,
    kind="MT4",
    api_base_url="http://api.example/",
    sidecar_base_url="http://x86.example",
    authority="http://auth.example",
    client_id="c",
    client_secret="s3cr3t",
)


def test_config_hides_secret_and_validates():
    assert "s3cr3t" not in repr(CONFIG)
    assert CONFIG.api_base_url == "http://api.example"
    with pytest.raises(ValueError):
        PlatformConfig(
            platform_id="nope",
            kind="MT4",
            api_base_url="x",
            authority="y",
            client_id="c",
            client_secret="s",
        )


def test_prepare_read_and_sidecar():
    call = prepare(CONFIG, MT4["UsersRequest"], query={"limit": 5, "cursor": None})
    assert call.url == f"http://api.example/api/v2/MT4/{PID}/UsersRequest"
    assert call.params == (("limit", "5"),)
    assert call.headers["X-Request-Timeout"] == "10"
    assert "Idempotency-Key" not in call.headers
    assert call.http_timeout == 40
    side = prepare(CONFIG, MT4["UsersSnapshot"])
    assert side.url.startswith("http://x86.example/api/v2/MT4/")
    batch = prepare(CONFIG, MT4["UserRecordsRequest"], query={"logins": [1, 2]})
    assert batch.params == (("logins", "1"), ("logins", "2"))


def test_prepare_write_key_and_deadline():
    call = prepare(CONFIG, MT4["TradeTransaction"], body={"x": 1}, timeout=7.25)
    uuid.UUID(call.headers["Idempotency-Key"])
    assert call.headers["X-Request-Timeout"] == "7.25"
    with pytest.raises(ValueError):
        prepare(CONFIG, MT4["TradeTransaction"], idempotency_key="x" * 256)
    with pytest.raises(ValueError):
        prepare(CONFIG, MT4["TradeTransaction"], idempotency_key="ключ")
    with pytest.raises(ValueError):
        prepare(CONFIG, MT4["ServerTime"], timeout=301)
    path = prepare(CONFIG, MT4["GroupRecordGet"], path={"group": "real\\a b"})
    assert path.url.endswith("/GroupRecordGet/real%5Ca%20b")


def _env(data=None, error=None, paging=None) -> bytes:
    meta = {"activityId": "abc"}
    if paging:
        meta["paging"] = paging
    return msgspec.json.encode({"data": data, "error": error, "meta": meta})


def test_interpret_paged_and_errors():
    call = prepare(CONFIG, MT4["UsersRequest"])
    page = interpret(
        call,
        200,
        {},
        _env([{"login": 1, "lastIP": 3, "future": 1}], paging={"nextCursor": "c", "hasMore": True}),
    )
    assert page.items == [MT4User(login=1, last_ip=3)] and page.next_cursor == "c"
    with pytest.raises(Busy):
        interpret(
            call,
            200,
            {"x-request-outcome": "not-started"},
            _env(error={"code": "Busy", "message": "queue full"}),
        )
    with pytest.raises(MT4Error) as info:
        interpret(call, 200, {}, _env(error={"code": "MT4Error", "managerCode": "TradeNoMoney"}))
    assert info.value.manager_code == "TradeNoMoney"
    with pytest.raises(ManagerApiError) as info:
        interpret(call, 200, {}, _env(error={"code": "BrandNew", "managerCode": 77}))
    assert type(info.value) is ManagerApiError and info.value.manager_code == 77
    with pytest.raises(RequestTimeout):
        interpret(call, 200, {}, _env(error={"code": "Timeout"}))
    with pytest.raises(InvalidResponse) as info:
        interpret(call, 502, {}, b"<html>Bad Gateway</html>")
    assert "HTTP 502 from api.example: not a WebAPI answer (proxy page)" in str(info.value)


def test_interpret_write_timeouts_are_outcome_unknown():
    call = prepare(CONFIG, MT4["TradeTransaction"], body={})
    with pytest.raises(OutcomeUnknown):
        interpret(call, 200, {}, _env(error={"code": "Timeout"}))
    with pytest.raises(WriteInvalidResponse):
        interpret(call, 504, {}, b"gateway timeout")


def test_split_flags():
    assert split_flags("Enabled, Password") == {"Enabled", "Password"}
    assert split_flags("None") == frozenset() and split_flags(None) == frozenset()


def test_redis_breaker_storage_is_shared():
    import redis  # the local Redis must be running: a missing one fails here, loudly

    platform = str(uuid.uuid4())
    a = PlatformBreaker(
        platform, fail_max=2, reset_timeout=60, redis_url="redis://localhost:6379/15"
    )
    b = PlatformBreaker(
        platform, fail_max=2, reset_timeout=60, redis_url="redis://localhost:6379/15"
    )
    a.trip()
    assert b.state == "open"
    b.reset()
    assert a.state == "closed"
    conn = redis.Redis.from_url("redis://localhost:6379/15")
    keys = list(conn.scan_iter(f"*manager-client:{platform}*"))
    if keys:
        conn.delete(*keys)


def test_package_does_not_import_django():
    import subprocess
    import sys

    code = (
        "import sys, platforms.client; "
        "sys.exit(any(m == 'django' or m.startswith('django.') for m in sys.modules))"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


# --------------------------------------------------------------------------- large bodies


def _streamed(body: bytes, headers: dict[str, str]) -> httpx.Response:
    """A response whose body arrives in 7-byte chunks, as from the network."""
    chunks = [body[i : i + 7] for i in range(0, len(body), 7)]
    return httpx.Response(200, headers=headers, stream=httpx.ByteStream(b"".join(chunks)))


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda body: {"content-length": str(len(body))}, id="announced"),
        pytest.param(lambda body: {}, id="unknown-length"),
        pytest.param(lambda body: {"content-length": str(len(body) - 10)}, id="longer-than-said"),
        pytest.param(lambda body: {"content-length": str(len(body) + 10)}, id="shorter-than-said"),
    ],
)
def test_a_large_body_is_gathered_into_one_buffer_byte_for_byte(headers):
    body = msgspec.json.encode({"data": [{"login": n, "name": "x" * (n % 50)}
                                         for n in range(2000)]})
    buffer = BodyBuffer(httpx.Headers(headers(body)))
    for start in range(0, len(body), 7):
        buffer.add(body[start : start + 7])
    assert bytes(buffer.body()) == body


def test_only_large_or_unannounced_bodies_take_the_buffer():
    assert not BodyBuffer.wanted(_streamed(b"{}", {"content-length": "2"}))
    assert BodyBuffer.wanted(_streamed(b"{}", {"content-length": str(LARGE_BODY)}))
    assert BodyBuffer.wanted(_streamed(b"{}", {}))


def test_answers_decode_from_the_buffer_as_from_bytes():
    body = (b'{"error":null,"meta":{"activityId":"a"},"data":'
            + msgspec.json.encode([{"login": 7, "group": "demo"}]) + b"}")
    call = prepare(CONFIG, MT4["UsersSnapshot"], query={"limit": 10})
    assert interpret(call, 200, {}, bytearray(body)) == interpret(call, 200, {}, body)
