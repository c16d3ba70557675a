"""The bridge client (sync and async) against the sandbox bridge: typed reads, task writes with
request ids, session lifecycle, retries only where safe, the breaker, no secret in logs."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid

import pytest

from platforms.coverage.client import (
    Account,
    AsyncBridgeClient,
    BridgeClient,
    BridgeUnavailable,
    CircuitOpen,
    ConnectionNotMade,
    EventStreamLost,
    NotFound,
    Positions,
    RateLimited,
    SessionState,
    Task,
    TaskConflict,
    Unauthorized,
    ValidationError,
)
from platforms.transport import RetryPolicy
from tests.coverage.conftest import LOGIN, SESSION_TTL, Wire, bridge_config
from tests.support.polling import wait_until
from tests.support.transport import FAST_RETRY, fresh_breaker


def _client(wire: Wire, login: int = LOGIN, *, retry: RetryPolicy = FAST_RETRY, breaker=None,
            **overrides) -> BridgeClient:
    return BridgeClient(bridge_config(wire.info, login, **overrides),
                        breaker=breaker or fresh_breaker(), retry=retry)


def _aclient(wire: Wire, login: int = LOGIN, **overrides) -> AsyncBridgeClient:
    return AsyncBridgeClient(bridge_config(wire.info, login, **overrides),
                             breaker=fresh_breaker(), retry=FAST_RETRY)


def _executed(client: BridgeClient, task: Task, body: dict) -> Task:
    """Reconcile by resubmitting with the task's request id: the same task, current state."""
    def ran() -> Task | None:
        again = client.submit_order(**body, request_id=task.request_id)
        assert again.task_id == task.task_id and again.replayed
        return again if again.status != "queued" else None

    return wait_until(ran, "the task ran", timeout=5)


# ------------------------------------------------------------------------------ sync


def test_sync_reads_are_typed_records(wire: Wire) -> None:
    with _client(wire) as client:
        account = client.account()
        assert isinstance(account, Account) and account.currency == "USD"
        assert account.free_margin <= account.equity
        assert isinstance(client.positions(), Positions)
        symbols = {s.symbol: s for s in client.symbols().symbols}
        assert symbols["EURUSD"].volume_step == 0.01
        history = client.quote_history("EURUSD", "H1", limit=5)
        assert 1 <= len(history.bars) <= 5 and history.bars[0].time.tzinfo is not None
        state = client.session()
        assert isinstance(state, SessionState) and state.health.terminal_connected
        assert state.broker is not None and state.broker.server == "LP-Demo"
        with pytest.raises(ValidationError) as bad:
            client.quote_history("NOPE")
        assert bad.value.http_status == 400 and bad.value.operation == "quotes.history"


def test_sync_order_is_queued_then_reconciled_by_task_id(wire: Wire) -> None:
    body = {"symbol": "NZDUSD", "type": "BUY", "volume": 0.1, "comment": "hedge 1"}
    with _client(wire, 900002) as client:
        task = client.submit_order(**body, request_id="hedge-" + uuid.uuid4().hex)
        assert task.status == "queued" and not task.replayed and task.ticket is None
        done = _executed(client, task, body)
        assert done.status == "executed" and done.ticket and done.fill_price
        mine = client.positions().by_task(task.task_id)
        assert [p.ticket for p in mine] == [done.ticket]

        with pytest.raises(TaskConflict) as conflict:
            client.submit_order(**{**body, "volume": 0.2}, request_id=task.request_id)
        assert conflict.value.request_id == task.request_id
        with pytest.raises(TaskConflict):
            client.modify_order(task.task_id, sl=0.5)
        with pytest.raises(NotFound):
            client.modify_order("task_missing", sl=0.5)
        with pytest.raises(ValidationError):
            client.submit_order("EURUSD", "BUY", 0.001)

        closing = client.close_position(done.ticket, 0.05)
        assert closing.action == "close" and closing.status == "queued"
    assert wire.op_stats("orders.submit")["executed"] == 1  # the replays ran nothing


def test_every_write_carries_a_request_id(wire: Wire) -> None:
    sent: list = []
    config = bridge_config(wire.info)
    with BridgeClient(config, breaker=fresh_breaker(), retry=FAST_RETRY,
                      event_hooks={"request": [sent.append]}) as client:
        client.submit_order("EURUSD", "SELL", 0.1)
        task = client.submit_order("EURUSD", "SELL", 0.1)
        with pytest.raises(NotFound):
            client.close_position(999_999_999)
        assert task.request_id
    writes = [r for r in sent if r.method in ("POST", "PATCH") and "/session/" not in r.url.path]
    ids = [r.headers.get("x-request-id") for r in writes]
    assert len(writes) == 3 and all(ids) and len(set(ids)) == 3


def test_an_expired_session_is_reopened_and_the_call_succeeds(wire: Wire) -> None:
    with _client(wire) as client:
        client.account()
        first = client.auth.session_id
        wire.control("POST", "/sessions/expire", json={"sessionId": first})
        body = {"symbol": "EURUSD", "type": "BUY", "volume": 0.1}
        task = client.submit_order(**body)  # 401 → reopen → the same request resent
        assert task.status == "queued"
        assert client.auth.sessions_opened == 2 and client.auth.session_id != first
    assert wire.op_stats("orders.submit") == {"received": 2, "executed": 1}


def test_heartbeats_keep_the_session_past_its_first_expiry(wire: Wire) -> None:
    with _client(wire, heartbeat_margin=SESSION_TTL - 1.5) as client:
        client.account()
        session = client.auth.session_id
        deadline = time.monotonic() + SESSION_TTL + 1.5
        while time.monotonic() < deadline:
            client.account()
            time.sleep(0.5)
        assert client.auth.session_id == session and client.auth.sessions_opened == 1
        assert client.auth.heartbeats_sent >= 2
        expiry = client.heartbeat().expires_at.timestamp()
        assert expiry == pytest.approx(time.time() + SESSION_TTL, abs=1.0)


def test_close_releases_the_session(wire: Wire) -> None:
    client = _client(wire, 900004)
    client.account()
    assert wire.state(900004)["sessions"] == 1
    client.close()
    assert wire.state(900004)["sessions"] == 0
    assert wire.op_stats("session.close")["executed"] == 1


def test_rate_limited_reads_honour_retry_after(wire: Wire) -> None:
    wire.fault(operation="account", error="RateLimited", retryAfter=1, times=1)
    with _client(wire) as client:
        client.session()
        started = time.monotonic()
        assert client.account().login == LOGIN
        waited = time.monotonic() - started
    assert waited >= 1.0  # FAST_RETRY alone would have waited at most 0.05 s
    assert wire.op_stats("account") == {"received": 2, "executed": 1}


def test_a_retry_after_beyond_the_retry_budget_is_raised(wire: Wire) -> None:
    wire.fault(operation="account", error="RateLimited", retryAfter=30, times=1)
    with _client(wire) as client:
        started = time.monotonic()
        with pytest.raises(RateLimited) as limited:
            client.account()
        assert time.monotonic() - started < 2 and limited.value.retry_after == 30
        assert client.breaker_state == "closed"  # it answered: not a failure


def test_bridge_unavailable_opens_the_breaker_after_n_failures(wire: Wire) -> None:
    wire.fault(operation="account", error="BridgeUnavailable")
    with _client(wire, breaker=fresh_breaker(fail_max=3, reset_timeout=1.0)) as client:
        client.session()
        for _ in range(3):
            with pytest.raises(BridgeUnavailable):
                client.account()
        assert client.breaker_state == "open"
        with pytest.raises(CircuitOpen) as fast:
            client.account()
        assert fast.value.operation == "account"
        assert wire.op_stats("account")["received"] == 3  # the fourth never left
        wire.control("DELETE", "/faults")
        time.sleep(1.1)
        assert client.account().login == LOGIN  # the probe closes it
        assert client.breaker_state == "closed"


def test_writes_are_not_retried_on_502(wire: Wire) -> None:
    wire.fault(operation="orders.submit", error="BridgeUnavailable", times=1)
    with _client(wire) as client, pytest.raises(BridgeUnavailable) as failed:
        client.submit_order("EURUSD", "BUY", 0.1, request_id="once-" + uuid.uuid4().hex)
    assert failed.value.request_id.startswith("once-")
    assert wire.op_stats("orders.submit") == {"received": 1, "executed": 0}


def test_a_write_whose_answer_is_lost_is_replayed_with_its_request_id(wire: Wire) -> None:
    wire.fault(operation="orders.submit", latency=0.8, times=1)
    with _client(wire, 900003, timeout=0.5) as client:
        client.session()
        task = client.submit_order("USDCHF", "SELL", 0.1, request_id="lost-" + uuid.uuid4().hex)
        assert task.replayed  # the second attempt got the first attempt's task
    time.sleep(0.5)
    stats = wire.op_stats("orders.submit")
    # a replay that arrives while the first attempt still runs waits for it (or times out and
    # replays again): one execution either way
    assert stats["executed"] == 1 and stats["received"] >= 2
    assert len([p for p in wire.state(900003)["positions"]
                if p.get("taskId") == task.task_id]) == 1


def test_refusals_map_to_the_clients_exceptions(wire: Wire, lp) -> None:
    with _client(wire, api_key="wrong") as client, pytest.raises(Unauthorized) as bad_key:
        client.account()
    assert bad_key.value.operation == "session.open"
    with _client(wire, password="wrong") as client, pytest.raises(ValidationError):
        client.account()
    closed_port = "http://127.0.0.1:9/mt4/client"
    with _client(wire, base_url=closed_port) as client, pytest.raises(ConnectionNotMade):
        client.account()


def test_no_secret_in_logs_reprs_or_errors(wire: Wire, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="httpx")  # settings quiet it; prove the redaction
    sessions = []
    config = bridge_config(wire.info)
    with _client(wire) as client:
        client.account()
        sessions.append(client.auth.session_id)
        wire.control("POST", "/sessions/expire")
        client.submit_order("EURUSD", "BUY", 0.1)
        sessions.append(client.auth.session_id)
        client.session()
        client.heartbeat()
        wire.fault(operation="positions", error="BridgeUnavailable", times=1)
        with pytest.raises(BridgeUnavailable) as failed:
            client.positions()
        texts = [caplog.text, repr(config), repr(client), repr(client.auth), str(failed.value)]
    assert "sess_***" in caplog.text  # httpx did log the session paths, redacted
    for text in texts:
        for secret in (wire.info.bridge_api_key, wire.info.bridge_password, *sessions):
            assert secret not in text


# ------------------------------------------------------------------------------ async


async def test_async_reads_writes_and_execution_event(wire: Wire) -> None:
    async with _aclient(wire, 900005) as client:
        account = await client.account()
        assert account.login == 900005
        assert (await client.session()).login == 900005
        async with client.events(["order"]) as stream:
            task = await client.submit_order("EURUSD", "BUY", 0.1,
                                             request_id="async-" + uuid.uuid4().hex)
            assert task.status == "queued"
            event = await stream.next(timeout=5)
        assert event.channel == "order" and isinstance(event.data, Task)
        assert event.data.task_id == task.task_id and event.data.status == "executed"
        positions = await client.positions()
        assert [p.ticket for p in positions.by_task(task.task_id)] == [event.data.ticket]
        replay = await client.submit_order("EURUSD", "BUY", 0.1, request_id=task.request_id)
        assert replay.replayed and replay.status == "executed"


async def test_async_session_reopen_and_rate_limit(wire: Wire) -> None:
    async with _aclient(wire) as client:
        await client.account()
        wire.control("POST", "/sessions/expire")
        wire.fault(operation="symbols", error="RateLimited", retryAfter=1, times=1)
        started = time.monotonic()
        symbols = await client.symbols()
        assert symbols.symbols and time.monotonic() - started >= 1.0
        assert client.auth.sessions_opened == 2


async def test_async_events_report_a_dropped_socket_and_an_expired_session(wire: Wire) -> None:
    async with _aclient(wire) as client:
        async with client.events(["order"]) as stream:
            wire.control("POST", "/events/drop")
            with pytest.raises(EventStreamLost):
                await stream.next(timeout=5)
        async with client.events(["order"]) as stream:
            wire.control("POST", "/sessions/expire")
            with pytest.raises(Unauthorized):
                await stream.next(timeout=5)
        async with client.events(["account"]) as stream:  # reopens the session first
            event = await stream.next(timeout=5)
            assert event.channel == "account" and isinstance(event.data, Account)
        with pytest.raises(ValidationError):
            async with client.events(["nope"]):
                pass


async def test_async_sessions_are_opened_once_under_concurrency(wire: Wire) -> None:
    async with _aclient(wire) as client:
        results = await asyncio.gather(*(client.account() for _ in range(8)))
        assert {a.login for a in results} == {LOGIN}
        assert client.auth.sessions_opened == 1
