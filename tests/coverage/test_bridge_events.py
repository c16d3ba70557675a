"""``WS /events`` of the sandbox bridge over a real WebSocket: subscriptions, execution
events, faults (refusal, dropped socket, expired session)."""

from __future__ import annotations

import contextlib
import json
import time
import uuid
from collections.abc import Iterator

import pytest
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import ClientConnection, connect

from tests.coverage.conftest import LOGIN, Wire


@contextlib.contextmanager
def _socket(wire: Wire, session: str, **headers: str) -> Iterator[ClientConnection]:
    url = wire.base.replace("http://", "ws://") + "/events"
    with connect(url, additional_headers={**wire.session_headers(session), **headers},
                 open_timeout=5) as ws:
        assert json.loads(ws.recv(timeout=5))["type"] == "ready"
        yield ws


def _frames(ws: ClientConnection, seconds: float) -> list[dict]:
    """Every frame that arrives within ``seconds``."""
    out = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            out.append(json.loads(ws.recv(timeout=left)))
        except TimeoutError:
            break
    return out


def _until(ws: ClientConnection, predicate, seconds: float = 5.0) -> dict:
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        frame = json.loads(ws.recv(timeout=left))
        if predicate(frame):
            return frame
    raise AssertionError("no such frame arrived")


def _subscribe(ws: ClientConnection, channels: list[str], symbols=()) -> dict:
    ws.send(json.dumps({"action": "subscribe", "channels": channels, "symbols": list(symbols)}))
    return _until(ws, lambda f: f["type"] in ("subscribed", "error"))


def test_a_submitted_order_arrives_as_an_execution_event(wire: Wire) -> None:
    session = wire.open()
    with _socket(wire, session) as ws:
        assert _subscribe(ws, ["order"])["channels"] == ["order"]
        rid = str(uuid.uuid4())
        queued = wire.write("POST", "/orders", session,
                            {"symbol": "AUDUSD", "type": "SELL", "volume": 0.2}, request_id=rid)
        event = _until(ws, lambda f: f.get("channel") == "order")
    data = event["data"]
    assert data["event"] == "execution" and data["taskId"] == queued.json()["taskId"]
    assert data["status"] == "executed" and data["requestId"] == rid
    assert data["ticket"] > 0 and data["fillPrice"] > 0


def test_only_subscribed_channels_are_sent(wire: Wire) -> None:
    session = wire.open(900005)
    with _socket(wire, session) as ws:
        _subscribe(ws, ["order"])
        wire.main_control("POST", "/market/tick", json={"count": 2})
        assert [f for f in _frames(ws, 0.5) if f.get("channel") == "quote"] == []

        _subscribe(ws, ["quote", "depth"], ["USDCAD"])
        wire.main_control("POST", "/market/tick", json={"count": 1})
        frames = _frames(ws, 0.7)
        quotes = {f["data"]["symbol"] for f in frames if f.get("channel") == "quote"}
        depth = [f["data"] for f in frames if f.get("channel") == "depth"]
        assert quotes == {"USDCAD"}
        assert depth and depth[0]["bids"][0][0] < depth[0]["asks"][0][0]


def test_account_and_profit_channels_follow_the_account(wire: Wire) -> None:
    session = wire.open(900005)
    with _socket(wire, session) as ws:
        assert _subscribe(ws, ["account", "on-profit"])["channels"] == ["account", "profit"]
        snapshot = _until(ws, lambda f: f.get("channel") == "account")
        assert snapshot["data"]["login"] == 900005
        wire.write("POST", "/orders", session, {"symbol": "XAUUSD", "type": "BUY",
                                                "volume": 0.1})
        changed = _until(ws, lambda f: f.get("channel") == "account" and f["data"]["margin"] > 0)
        assert changed["data"]["equity"] > 0
        wire.main_control("POST", "/market/tick", json={"count": 1})
        profit = _until(ws, lambda f: f.get("channel") == "profit" and any(
            p["symbol"] == "XAUUSD" for p in f["data"]["positions"]))
        assert profit["data"]["login"] == 900005
        assert len({p["symbol"] for p in profit["data"]["positions"]}) == 1  # one per symbol


def test_bad_frames_get_error_frames_and_the_socket_stays(wire: Wire) -> None:
    session = wire.open()
    with _socket(wire, session) as ws:
        assert _subscribe(ws, ["trades"])["error"]["code"] == "ValidationError"
        assert _subscribe(ws, ["quote"], ["NOPE"])["error"]["code"] == "ValidationError"
        ws.send("{not json")
        assert json.loads(ws.recv(timeout=5))["error"]["code"] == "ValidationError"
        ws.send(json.dumps({"action": "ping"}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}


@pytest.mark.parametrize("headers", [{"Authorization": "Bearer wrong"},
                                     {"x-session-id": "sess_nope"}])
def test_refused_handshake_answers_401(wire: Wire, headers) -> None:
    session = wire.open()
    with pytest.raises(InvalidStatus) as refused, _socket(wire, session, **headers):
        pass
    assert refused.value.response.status_code == 401
    assert json.loads(refused.value.response.body)["error"]["code"] == "Unauthorized"


def test_rate_limited_handshake_carries_retry_after(wire: Wire) -> None:
    session = wire.open()
    wire.fault(operation="events", error="RateLimited", retryAfter=3, times=1)
    with pytest.raises(InvalidStatus) as refused, _socket(wire, session):
        pass
    assert refused.value.response.status_code == 429
    assert refused.value.response.headers["Retry-After"] == "3"


def test_dropped_sockets_close_and_a_new_one_works(wire: Wire) -> None:
    session = wire.open()
    with _socket(wire, session) as ws:
        _subscribe(ws, ["order"])
        assert wire.control("POST", "/events/drop").json()["dropped"] >= 1
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 1011
    wire.fault(operation="events", drop=True, times=1)
    url = wire.base.replace("http://", "ws://") + "/events"
    with connect(url, additional_headers=wire.session_headers(session)) as ws, \
            pytest.raises(ConnectionClosed):
        ws.recv(timeout=5)
    with _socket(wire, session) as ws:
        assert _subscribe(ws, ["order"])["type"] == "subscribed"


def test_session_expiry_closes_the_socket_with_an_error_frame(wire: Wire) -> None:
    session = wire.open(LOGIN)
    with _socket(wire, session) as ws:
        _subscribe(ws, ["order"])
        wire.control("POST", "/sessions/expire", json={"sessionId": session})
        frame = _until(ws, lambda f: f["type"] == "error")
        assert frame["error"]["code"] == "Unauthorized"
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd.code == 4401
