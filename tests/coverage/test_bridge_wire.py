"""The sandbox's LP bridge against its own contract, over raw HTTP (docs/coverage.md)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import httpx
import pytest

from platforms.sandbox.bridge.faults import parse_spec
from platforms.sandbox.faults import FaultError
from tests.coverage.conftest import LOGIN, SESSION_TTL, Wire
from tests.support.polling import wait_until


def _when(text: str) -> float:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def _error(answer: httpx.Response, status: int, code: str) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"].startswith("application/json")
    body = answer.json()
    assert set(body) == {"error"} and body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


def _wait_task(wire: Wire, session: str, body: dict, request_id: str) -> dict:
    """Replaying the write with its request id returns the task's current state."""
    def ran() -> dict | None:
        answer = wire.write("POST", "/orders", session, body, request_id=request_id)
        return answer.json() if answer.json()["status"] != "queued" else None

    return wait_until(ran, "the task ran", timeout=5)


# ------------------------------------------------------------------------------ sessions


def test_session_open_inspect_heartbeat_release(wire: Wire) -> None:
    opened = wire.http.post(f"{wire.base}/session/open", headers=wire.key(), json={
        "accountId": "acct-1", "server": "LP-Demo", "login": LOGIN,
        "password": wire.info.bridge_password})
    assert opened.status_code == 200
    session = opened.json()["sessionId"]
    assert session.startswith("sess_")
    first_expiry = _when(opened.json()["expiresAt"])
    assert first_expiry == pytest.approx(time.time() + SESSION_TTL, abs=1.5)

    state = wire.get(f"/session/{session}", session).json()
    assert state["status"] == "active" and state["login"] == LOGIN
    assert state["health"]["terminalConnected"] is True
    assert state["account"]["currency"] == "USD" and state["account"]["balance"] > 0
    assert state["broker"]["server"] == "LP-Demo" and state["broker"]["company"]

    time.sleep(1.1)
    beat = wire.write("POST", f"/session/{session}/heartbeat", session)
    assert beat.status_code == 200
    assert _when(beat.json()["expiresAt"]) >= first_expiry + 1.0

    time.sleep(first_expiry - time.time() + 0.3)  # past the first expiry: still alive
    assert wire.get("/account", session).status_code == 200

    released = wire.http.delete(f"{wire.base}/session/{session}",
                                headers=wire.session_headers(session))
    assert released.json() == {"sessionId": session, "released": True}
    _error(wire.get("/account", session), 401, "Unauthorized")


def test_a_session_expires_without_heartbeat(wire: Wire) -> None:
    session = wire.open()
    assert wire.control("POST", "/sessions/expire", json={"sessionId": session}).json() == {
        "expired": 1}
    assert "expired" in _error(wire.get("/account", session), 401, "Unauthorized")["message"]
    _error(wire.write("POST", f"/session/{session}/heartbeat", session), 401, "Unauthorized")


@pytest.mark.parametrize(
    ("headers", "body", "status", "code"),
    [
        ({}, None, 401, "Unauthorized"),
        ({"Authorization": "Bearer wrong-key"}, None, 401, "Unauthorized"),
        (None, {"password": "wrong"}, 400, "ValidationError"),
        (None, {"server": "Other-Server"}, 400, "ValidationError"),
        (None, {"login": 123}, 400, "ValidationError"),
        (None, {"login": "900001"}, 400, "ValidationError"),
        (None, {"accountId": ""}, 400, "ValidationError"),
    ],
)
def test_session_open_refusals(wire: Wire, headers, body, status, code) -> None:
    payload = {"accountId": "a", "server": "LP-Demo", "login": LOGIN,
               "password": wire.info.bridge_password, **(body or {})}
    answer = wire.http.post(f"{wire.base}/session/open", json=payload,
                            headers=wire.key() if headers is None else headers)
    error = _error(answer, status, code)
    assert wire.info.bridge_password not in error["message"]


def test_malformed_body_and_missing_session(wire: Wire) -> None:
    bad = wire.http.post(f"{wire.base}/session/open", content=b"{not json",
                         headers=wire.key())
    _error(bad, 400, "ValidationError")
    _error(wire.http.get(f"{wire.base}/account", headers=wire.key()), 401, "Unauthorized")
    _error(wire.get("/account", "sess_unknown"), 401, "Unauthorized")


def test_unknown_paths_and_methods_answer_in_the_error_format(wire: Wire) -> None:
    _error(wire.http.get(f"{wire.base}/nothing-here"), 404, "NotFound")
    assert wire.http.delete(f"{wire.base}/account").status_code == 405


# ------------------------------------------------------------------------------ reads


def test_reads_account_positions_symbols_history(wire: Wire) -> None:
    session = wire.open()
    account = wire.get("/account", session).json()
    assert {"balance", "equity", "freeMargin", "currency", "margin", "leverage"} <= set(account)
    assert account["login"] == LOGIN and account["server"] == "LP-Demo"

    positions = wire.get("/positions", session).json()
    assert set(positions) == {"positions", "orders"}

    symbols = {s["symbol"]: s for s in wire.get("/symbols", session).json()["symbols"]}
    assert {"EURUSD", "XAUUSD"} <= set(symbols)
    assert symbols["EURUSD"]["ask"] > symbols["EURUSD"]["bid"] > 0

    history = wire.get("/quotes/history", session,
                       params={"symbol": "EURUSD", "timeframe": "M15", "limit": 8}).json()
    bars = history["bars"]
    assert history["timeframe"] == "M15" and 1 <= len(bars) <= 8
    assert all(b["low"] <= min(b["open"], b["close"]) <= max(b["open"], b["close"]) <= b["high"]
               for b in bars)
    assert [_when(b["time"]) for b in bars] == sorted(_when(b["time"]) for b in bars)

    for params in ({"symbol": "NOPE"}, {"symbol": "EURUSD", "timeframe": "M2"},
                   {"symbol": "EURUSD", "limit": "0"}, {"symbol": "EURUSD", "from": "yesterday"},
                   {"symbol": "EURUSD", "from": "nan"}, {"symbol": "EURUSD", "to": "1e300"},
                   {"symbol": "EURUSD", "from": "2030-01-01T00:00:00Z", "to": "2029-01-01"}):
        _error(wire.get("/quotes/history", session, params=params), 400, "ValidationError")


# ------------------------------------------------------------------------------ writes


def test_a_market_order_is_queued_then_filled_at_the_ask(wire: Wire) -> None:
    session = wire.open()
    ask = next(s["ask"] for s in wire.get("/symbols", session).json()["symbols"]
               if s["symbol"] == "USDJPY")
    body = {"symbol": "USDJPY", "type": "BUY", "volume": 0.3, "sl": 0, "tp": 0,
            "comment": "hedge"}
    rid = str(uuid.uuid4())
    queued = wire.write("POST", "/orders", session, body, request_id=rid)
    assert queued.status_code == 202
    assert queued.json()["status"] == "queued" and queued.json()["taskId"].startswith("task_")
    assert "ticket" not in queued.json()  # a queued answer is not an execution

    task = _wait_task(wire, session, body, rid)
    assert task["status"] == "executed" and task["fillPrice"] == ask
    mine = [p for p in wire.get("/positions", session).json()["positions"]
            if p.get("taskId") == task["taskId"]]
    assert len(mine) == 1 and mine[0]["ticket"] == task["ticket"]
    assert mine[0]["volume"] == 0.3 and mine[0]["openPrice"] == ask


#: The order payload as a broker's order engine writes it (issue 22), byte for byte.
SEED_ORDER = (b'{"symbol": "EURUSD", "type": "BUY", "volume": 0.2, "sl": 1.0735, "tp": 1.0790, '
              b'"comment": "alpha-engine"}')


def test_the_documented_example_order_is_accepted_verbatim(wire: Wire) -> None:
    session = wire.open()
    answer = wire.http.post(f"{wire.base}/orders", content=SEED_ORDER, headers={
        **wire.key(), "x-session-id": session, "Content-Type": "application/json",
        "x-request-id": str(uuid.uuid4())})
    assert answer.status_code == 202, answer.text
    task = answer.json()
    assert task["status"] == "queued" and task["taskId"].startswith("task_")
    assert (task["symbol"], task["type"], task["volume"]) == ("EURUSD", "BUY", 0.2)


@pytest.mark.parametrize("spelling", ["buy", "Buy", "buy_limit", "BUY-LIMIT", "OP_BUY", " BUY",
                                      0, None, ["BUY"]])
def test_other_spellings_of_the_order_type_are_refused(wire: Wire, spelling) -> None:
    session = wire.open()
    tasks = wire.control("GET", "").json()["tasks"]
    body = {"symbol": "EURUSD", "type": spelling, "volume": 0.2, "price": 1.07}
    error = _error(wire.write("POST", "/orders", session, body, request_id=str(uuid.uuid4())),
                   400, "ValidationError")
    assert "BUY, SELL, BUY_LIMIT, SELL_LIMIT, BUY_STOP, SELL_STOP" in error["message"]
    assert wire.control("GET", "").json()["tasks"] == tasks


def test_request_id_replays_the_same_task_and_conflicts_on_another_payload(wire: Wire) -> None:
    session = wire.open(900002)
    body = {"symbol": "EURUSD", "type": "SELL", "volume": 0.1, "sl": 0, "tp": 0, "comment": ""}
    rid = str(uuid.uuid4())
    first = wire.write("POST", "/orders", session, body, request_id=rid)
    again = wire.write("POST", "/orders", session, dict(reversed(body.items())), request_id=rid)
    assert again.status_code == 202 and again.headers["x-idempotent-replay"] == "true"
    assert again.json()["taskId"] == first.json()["taskId"]

    other = wire.write("POST", "/orders", session, {**body, "volume": 0.2}, request_id=rid)
    assert rid in _error(other, 409, "TaskConflict")["message"]

    # a new session of the same account still knows the request id
    replayed = wire.write("POST", "/orders", wire.open(900002), body, request_id=rid)
    assert replayed.json()["taskId"] == first.json()["taskId"]
    _wait_task(wire, session, body, rid)
    assert wire.op_stats("orders.submit")["executed"] == 1
    tickets = [p for p in wire.state(900002)["positions"]
               if p.get("taskId") == first.json()["taskId"]]
    assert len(tickets) == 1


def test_modify_before_execution_and_conflict_after(wire: Wire) -> None:
    session = wire.open()
    wire.control("POST", "/execution", json={"paused": True})
    task = wire.write("POST", "/orders", session, {"symbol": "GBPUSD", "type": "BUY",
                                                   "volume": 0.2}).json()
    changed = wire.write("PATCH", f"/orders/{task['taskId']}", session, {"volume": 0.4,
                                                                         "comment": "resized"})
    assert changed.status_code == 200
    assert changed.json()["volume"] == 0.4 and changed.json()["status"] == "queued"
    _error(wire.write("PATCH", f"/orders/{task['taskId']}", session, {"type": "SELL"}),
           400, "ValidationError")
    _error(wire.write("PATCH", "/orders/task_unknown", session, {"volume": 1}), 404,
           "NotFound")
    assert wire.control("POST", "/execution", json={"paused": False}).json()["released"] == 1
    time.sleep(0.5)
    position = next(p for p in wire.state()["positions"] if p.get("taskId") == task["taskId"])
    assert position["volume"] == 0.4 and position["comment"] == "resized"
    late = wire.write("PATCH", f"/orders/{task['taskId']}", session, {"volume": 0.1})
    assert "executed" in _error(late, 409, "TaskConflict")["message"]


def test_close_reduces_then_closes_a_position(wire: Wire) -> None:
    session = wire.open(900003)
    body = {"symbol": "EURUSD", "type": "BUY", "volume": 1.0}
    rid = str(uuid.uuid4())
    wire.write("POST", "/orders", session, body, request_id=rid)
    opened = _wait_task(wire, session, body, rid)
    before = wire.state(900003)["balance"]

    reduce_rid = str(uuid.uuid4())
    reduce = wire.write("POST", f"/positions/{opened['ticket']}/close", session,
                        {"volume": 0.4}, request_id=reduce_rid)
    assert reduce.status_code == 202 and reduce.json()["action"] == "close"
    time.sleep(0.5)
    rest = [p for p in wire.state(900003)["positions"] if p.get("taskId") == opened["taskId"]]
    assert [p["volume"] for p in rest] == [0.6]  # the remainder keeps its task id

    wire.write("POST", f"/positions/{rest[0]['ticket']}/close", session, {})
    time.sleep(0.5)
    state = wire.state(900003)
    assert not [p for p in state["positions"] if p.get("taskId") == opened["taskId"]]
    closed_profit = sum(c["profit"] for c in state["closed"] if c["ticket"] in
                        (opened["ticket"], rest[0]["ticket"]))
    assert state["balance"] == pytest.approx(before + closed_profit, abs=0.01)

    _error(wire.write("POST", "/positions/999/close", session, {}), 404, "NotFound")
    _error(wire.write("POST", "/positions/abc/close", session, {}), 400, "ValidationError")
    _error(wire.write("POST", f"/positions/{'9' * 5000}/close", session, {}), 400,
           "ValidationError")


def test_pending_order_rests_then_is_cancelled_by_close(wire: Wire) -> None:
    session = wire.open(900004)
    bid = next(s["bid"] for s in wire.get("/symbols", session).json()["symbols"]
               if s["symbol"] == "EURUSD")
    body = {"symbol": "EURUSD", "type": "BUY_LIMIT", "volume": 0.1, "price": round(bid - 0.01, 5)}
    rid = str(uuid.uuid4())
    wire.write("POST", "/orders", session, body, request_id=rid)
    task = _wait_task(wire, session, body, rid)
    orders = wire.get("/positions", session).json()["orders"]
    assert [o["type"] for o in orders if o.get("taskId") == task["taskId"]] == ["BUY_LIMIT"]
    wire.write("POST", f"/positions/{task['ticket']}/close", session, {})
    time.sleep(0.5)
    assert not [o for o in wire.get("/positions", session).json()["orders"]
                if o["ticket"] == task["ticket"]]


def test_an_order_the_terminal_refuses_is_rejected_with_its_reason(wire: Wire) -> None:
    session = wire.open()
    ask = next(s["ask"] for s in wire.get("/symbols", session).json()["symbols"]
               if s["symbol"] == "EURUSD")
    body = {"symbol": "EURUSD", "type": "BUY", "volume": 0.1, "sl": round(ask + 0.01, 5)}
    rid = str(uuid.uuid4())
    assert wire.write("POST", "/orders", session, body, request_id=rid).status_code == 202
    task = _wait_task(wire, session, body, rid)
    assert task["status"] == "rejected" and task["error"]["code"] == "TradeBadStops"


@pytest.mark.parametrize("body", [
    {"symbol": "EURUSD", "type": "BUY"},
    {"symbol": "EURUSD", "type": "BUY", "volume": 0.015},
    {"symbol": "EURUSD", "type": "BUY", "volume": 500},
    {"symbol": "EURUSD", "type": "hold", "volume": 1},
    {"symbol": "NOPE", "type": "BUY", "volume": 1},
    {"symbol": "EURUSD", "type": "BUY_LIMIT", "volume": 1},
    {"symbol": "EURUSD", "type": "BUY", "volume": 1, "price": 1.1},
    {"symbol": "EURUSD", "type": "BUY", "volume": 1, "comment": "x" * 40},
    {"symbol": "EURUSD", "type": "BUY", "volume": 1, "leverage": 3},
    ["not", "an", "object"],
])
def test_bad_orders_are_refused_and_nothing_is_queued(wire: Wire, body) -> None:
    session = wire.open()
    tasks = wire.control("GET", "").json()["tasks"]
    _error(wire.write("POST", "/orders", session, body, request_id=str(uuid.uuid4())),
           400, "ValidationError")
    assert wire.control("GET", "").json()["tasks"] == tasks


def test_bad_request_ids_are_refused(wire: Wire) -> None:
    session = wire.open()
    body = {"symbol": "EURUSD", "type": "BUY", "volume": 0.1}
    for rid in ("x" * 200, "has space"):
        _error(wire.write("POST", "/orders", session, body, request_id=rid), 400,
               "ValidationError")


# ------------------------------------------------------------------------------ faults


def test_rate_limit_fault_answers_429_with_retry_after_and_runs_nothing(wire: Wire) -> None:
    session = wire.open()
    wire.fault(operation="orders.submit", error="RateLimited", retryAfter=2, times=1)
    answer = wire.write("POST", "/orders", session,
                        {"symbol": "EURUSD", "type": "BUY", "volume": 0.1})
    error = _error(answer, 429, "RateLimited")
    assert answer.headers["Retry-After"] == "2" and error["retryAfter"] == 2
    assert wire.op_stats("orders.submit") == {"received": 1, "executed": 0}


def test_unavailable_latency_and_revocation_faults(wire: Wire) -> None:
    session = wire.open()
    wire.fault(operation="account", error="BridgeUnavailable", times=1)
    _error(wire.get("/account", session), 502, "BridgeUnavailable")
    wire.fault(operation="account", error="Unauthorized", times=1)
    _error(wire.get("/account", session), 401, "Unauthorized")
    wire.fault(operation="*", latency=0.4, times=1)
    started = time.monotonic()
    assert wire.get("/account", session).status_code == 200
    assert time.monotonic() - started >= 0.4
    rules = wire.control("GET", "/faults").json()["rules"]
    assert rules == []  # every rule was used up


def test_fault_specs_flags_and_control_validation(wire: Wire) -> None:
    assert parse_spec("account:error=RateLimited:retryAfter=3:times=2") == {
        "operation": "account", "error": "RateLimited", "retryAfter": 3.0, "times": 2}
    assert parse_spec("events:drop") == {"operation": "events", "drop": True}
    for spec in ("account", "nope:latency=1", "account:drop", "account:error=Busy"):
        with pytest.raises(FaultError):
            parse_spec(spec)
    for rule in ({"operation": "account"}, {"operation": "account", "error": "Nope"},
                 {"operation": "x", "latency": 1}, {"operation": "account", "latency": -1}):
        answer = wire.http.post(f"{wire.info.bridge_control_url}/faults", json=rule)
        assert answer.status_code == 400 and answer.json()["error"]
    assert wire.http.post(f"{wire.info.bridge_control_url}/faults",
                          content=b"{").status_code == 400
    assert wire.http.post(f"{wire.info.bridge_control_url}/execution",
                          json={"paused": "yes"}).status_code == 400
    assert wire.http.get(f"{wire.info.bridge_control_url}/accounts/1").status_code == 404
