"""The blocking client against the real sandbox process (no mocks)."""

from __future__ import annotations

import time
import uuid
from datetime import datetime

import pytest

from platforms.client import (
    AuthenticationFailed,
    Busy,
    CircuitOpen,
    ConnectionNotMade,
    InvalidResponse,
    ManagerClient,
    MT4User,
    NoConnect,
    NotFound,
    OutcomeUnknown,
    Page,
    RequestTimeout,
    WriteResult,
)
from tests.client.conftest import Recorder, Sandbox, make_config
from tests.sandbox_process import start_sandbox
from tests.support.transport import FAST_RETRY, fresh_breaker

# --------------------------------------------------------------------------- auth


def test_auth_via_discovery_and_token_reuse(manager_client: ManagerClient, sb: Sandbox, recorder):
    before = sb.stats()["tokensIssued"]
    server_time = manager_client.mt4.server_time()
    assert isinstance(server_time, datetime)
    manager_client.mt4.server_time()
    assert sb.stats()["tokensIssued"] == before + 1
    paths = [r.url.path for r in recorder.requests]
    assert paths[0].endswith("/.well-known/openid-configuration")
    assert paths[1].endswith("/connect/token")
    token_request = recorder.requests[1]
    body = token_request.content.decode()
    assert "grant_type=client_credentials" in body
    assert "scope=" not in body  # no scope configured -> none sent
    assert all(r.headers["Authorization"].startswith("Bearer ") for r in recorder.api_requests())


def test_client_secret_basic(sb: Sandbox, recorder: Recorder):
    config = make_config(sb.info, token_auth_method="client_secret_basic")
    with ManagerClient(config, breaker=fresh_breaker(), event_hooks=recorder.hooks()) as c:
        assert isinstance(c.mt4.server_time(), datetime)
    token_request = next(r for r in recorder.requests if r.url.path.endswith("/connect/token"))
    assert token_request.headers["Authorization"].startswith("Basic ")
    assert b"client_secret" not in token_request.content


def test_wrong_secret_is_authentication_failed_without_leaking(sb: Sandbox):
    secret = "definitely-wrong-" + uuid.uuid4().hex
    config = make_config(sb.info, client_secret=secret)
    assert secret not in repr(config)
    c = ManagerClient(config, breaker=fresh_breaker(), retry=FAST_RETRY)
    with c, pytest.raises(AuthenticationFailed) as info:
        c.mt4.server_time()
    assert secret not in str(info.value)
    assert "refused client" in str(info.value)
    assert secret not in repr(c) and secret not in repr(c.auth)


def test_revoked_token_recovers_with_one_resend(
        manager_client: ManagerClient, sb: Sandbox, recorder):
    manager_client.mt4.server_time()
    fetched = manager_client.auth.tokens_fetched
    sb.revoke_tokens()
    assert isinstance(manager_client.mt4.server_time(), datetime)
    assert manager_client.auth.tokens_fetched == fetched + 1
    assert recorder.statuses().count(401) == 1


def test_token_refreshed_before_expiry():
    info = start_sandbox("--users", "20", "--tick-rate", "0", "--token-lifetime", "2")
    try:
        recorder = Recorder()
        config = make_config(info, token_refresh_skew=1.0)
        with ManagerClient(config, breaker=fresh_breaker(), event_hooks=recorder.hooks()) as c:
            c.mt4.server_time()
            c.mt4.server_time()  # still > 1 s left: cached
            assert c.auth.tokens_fetched == 1
            time.sleep(1.2)  # < 1 s left now: refreshed before use, no 401 round trip
            c.mt4.server_time()
            assert c.auth.tokens_fetched == 2
            time.sleep(2.2)  # the first token has expired at the server by now
            c.mt4.server_time()
            assert c.auth.tokens_fetched == 3
        assert 401 not in recorder.statuses()
    finally:
        info.stop()


def test_list_trade_platforms(manager_client: ManagerClient, sb: Sandbox):
    platforms = manager_client.list_trade_platforms()
    ids = {p.id for p in platforms}
    assert sb.info.mt4_id in ids and sb.info.mt5_id in ids


# --------------------------------------------------------------------------- reads, paging


def test_users_paging_yields_every_login_once(manager_client: ManagerClient):
    whole = manager_client.mt4.users_request()
    assert isinstance(whole, Page) and not whole.has_more
    logins = [u.login for u in manager_client.mt4.iter_users(page_size=37)]
    assert len(logins) == len(set(logins)) == len(whole.items) == 300
    assert set(logins) == {u.login for u in whole.items}
    first = manager_client.mt4.users_request(limit=10)
    assert len(first.items) == 10 and first.has_more and first.next_cursor
    assert all(isinstance(u, MT4User) for u in first.items)


def test_typed_reads(manager_client: ManagerClient):
    user = manager_client.mt4.users_request(limit=1).items[0]
    again = manager_client.mt4.user_record_get(user.login)
    assert again.login == user.login and again.group == user.group
    batch = manager_client.mt4.user_records_request([user.login])
    assert [u.login for u in batch] == [user.login]
    assert manager_client.mt4.manager_common().name is not None
    trades = list(manager_client.mt4.iter_trades(page_size=100))
    assert len({t.order for t in trades}) == len(trades)


def test_not_found_is_a_business_error(manager_client: ManagerClient):
    with pytest.raises(NotFound) as info:
        manager_client.mt4.user_record_get(999_999_999)
    assert info.value.operation == "UserRecordGet"
    assert info.value.activity_id
    assert manager_client.breaker_state == "closed"
    assert manager_client.breaker.fail_counter == 0


def test_deadline_headers(manager_client: ManagerClient, recorder: Recorder):
    manager_client.mt4.server_time()
    manager_client.mt4.server_time(timeout=2.5)
    manager_client.mt4.trades_user_history(manager_client.mt4.users_request(limit=1).items[0].login)
    sent = [r.headers["X-Request-Timeout"] for r in recorder.api_requests()]
    assert sent[:2] == ["10", "2.5"]
    assert sent[-1] == "30"
    applied = [r.headers.get("X-Request-Timeout-Applied") for r in recorder.responses]
    assert float(applied[-1]) == 30 and "2.5" in applied


# --------------------------------------------------------------------------- retries


def test_busy_is_retried_and_succeeds(manager_client: ManagerClient, sb: Sandbox):
    sb.fault(operation="ServerTime", error="Busy", times=2)
    assert isinstance(manager_client.mt4.server_time(), datetime)
    stats = sb.op_stats("ServerTime")
    assert stats["received"] == 3
    assert stats["executed"] == 1


def test_busy_gives_up_after_bounded_attempts(manager_client: ManagerClient, sb: Sandbox):
    sb.fault(operation="ServerTime", error="Busy", times=10)
    with pytest.raises(Busy) as info:
        manager_client.mt4.server_time()
    assert info.value.is_safe_to_retry
    assert sb.op_stats("ServerTime")["received"] == FAST_RETRY.attempts


def test_read_timeout_is_retried(manager_client: ManagerClient, sb: Sandbox):
    sb.fault(operation="UsersRequest", error="Timeout", times=1)
    page = manager_client.mt4.users_request(limit=5)
    assert len(page.items) == 5
    assert sb.op_stats("UsersRequest")["received"] == 2


def _deposit(login: int, amount: float = 10.0) -> dict:
    return {
        "tradeTransactionType": "BrBalance",
        "tradeCommand": "Balance",
        "orderBy": login,
        "price": amount,
        "comment": "client test",
    }


@pytest.mark.parametrize("error", ["Timeout", "OutcomeUnknown"])
def test_write_deadline_is_not_resent_and_replays(
        manager_client: ManagerClient, sb: Sandbox, error):
    login = manager_client.mt4.users_request(limit=1).items[0].login
    balance_before = manager_client.mt4.user_record_request(login).balance
    key = f"test-{uuid.uuid4()}"
    sb.fault(operation="TradeTransaction", error=error, times=1)
    with pytest.raises(OutcomeUnknown) as info:
        manager_client.mt4.trade_transaction(_deposit(login), idempotency_key=key)
    assert info.value.is_outcome_unknown and not info.value.is_safe_to_retry
    assert sb.op_stats("TradeTransaction")["received"] == 1
    # Repeat with the same key: the stored result, not a second deposit.
    result = manager_client.mt4.trade_transaction(_deposit(login), idempotency_key=key)
    assert isinstance(result, WriteResult)
    assert result.idempotency_key == key
    assert sb.op_stats("TradeTransaction")["executed"] <= 1
    balance_after = manager_client.mt4.user_record_request(login).balance
    assert balance_after == pytest.approx(balance_before + 10.0)


def test_write_sends_idempotency_key(manager_client: ManagerClient, recorder: Recorder):
    login = manager_client.mt4.users_request(limit=1).items[0].login
    result = manager_client.mt4.trade_transaction(_deposit(login, 1.0))
    sent = recorder.api_requests()[-1]
    assert sent.headers["Idempotency-Key"] == result.idempotency_key
    assert sent.headers["X-Request-Timeout"] == "5"
    uuid.UUID(result.idempotency_key)
    with pytest.raises(ValueError):
        manager_client.mt4.trade_transaction(_deposit(login), idempotency_key="bad\nkey")


def test_busy_write_is_retried_with_same_key(manager_client: ManagerClient, sb: Sandbox, recorder):
    login = manager_client.mt4.users_request(limit=1).items[0].login
    sb.fault(operation="TradeTransaction", error="Busy", times=1)
    result = manager_client.mt4.trade_transaction(_deposit(login, 1.0),
                                                  idempotency_key="same-key-busy")
    keys = [r.headers["Idempotency-Key"] for r in recorder.api_requests()[-2:]]
    assert keys == ["same-key-busy", "same-key-busy"]
    assert result.idempotency_key == "same-key-busy"
    assert sb.op_stats("TradeTransaction")["received"] == 2


def test_no_connect_on_write_not_retried(manager_client: ManagerClient, sb: Sandbox):
    login = manager_client.mt4.users_request(limit=1).items[0].login
    sb.fault(operation="TradeTransaction", error="NoConnect", times=5)
    with pytest.raises(NoConnect):
        manager_client.mt4.trade_transaction(_deposit(login))
    assert sb.op_stats("TradeTransaction")["received"] == 1


# --------------------------------------------------------------------------- breaker


def test_breaker_opens_fails_fast_and_probe_closes(manager_client: ManagerClient, sb: Sandbox):
    transitions = []
    manager_client.breaker.add_listener(lambda pid, old, new: transitions.append((old, new)))
    sb.fault(operation="ServerTime", error="NoConnect", times=100)
    for _ in range(3):
        with pytest.raises(NoConnect):
            manager_client.mt4.server_time()
    assert manager_client.breaker_state == "open"
    received = sb.op_stats("ServerTime")["received"]
    assert received == 3
    with pytest.raises(CircuitOpen) as info:
        manager_client.mt4.server_time()
    assert info.value.platform == manager_client.config.platform_id
    assert 0 < info.value.retry_in <= 1.0
    assert sb.op_stats("ServerTime")["received"] == received  # nothing reached the sandbox
    sb.clear_faults()
    time.sleep(1.05)
    assert isinstance(manager_client.mt4.server_time(), datetime)  # the probe
    assert manager_client.breaker_state == "closed"
    assert transitions == [("closed", "open"), ("open", "half-open"), ("half-open", "closed")]


def test_business_errors_do_not_open_breaker(manager_client: ManagerClient):
    for _ in range(5):
        with pytest.raises(NotFound):
            manager_client.mt4.user_record_get(999_999_998)
    assert manager_client.breaker_state == "closed"


def test_failed_probe_reopens(manager_client: ManagerClient, sb: Sandbox):
    sb.fault(operation="ServerTime", error="NoConnect", times=100)
    for _ in range(3):
        with pytest.raises(NoConnect):
            manager_client.mt4.server_time()
    time.sleep(1.05)
    with pytest.raises(NoConnect):
        manager_client.mt4.server_time()  # the probe fails
    assert manager_client.breaker_state == "open"
    with pytest.raises(CircuitOpen):
        manager_client.mt4.server_time()


def test_html_502_is_invalid_response(manager_client: ManagerClient, sb: Sandbox):
    sb.fault(operation="ServerTime", html502=True, times=1)
    with pytest.raises(InvalidResponse) as info:
        manager_client.mt4.server_time()
    message = str(info.value)
    assert "HTTP 502 from" in message and "not a WebAPI answer (proxy page)" in message
    assert info.value.http_status == 502
    assert manager_client.breaker.fail_counter == 1


def test_html_502_on_write_is_outcome_unknown(manager_client: ManagerClient, sb: Sandbox):
    login = manager_client.mt4.users_request(limit=1).items[0].login
    sb.fault(operation="TradeTransaction", html502=True, times=1)
    with pytest.raises(InvalidResponse) as info:
        manager_client.mt4.trade_transaction(_deposit(login))
    assert isinstance(info.value, OutcomeUnknown)


# --------------------------------------------------------------------------- sidecar


def test_sidecar_ops_go_to_sidecar_url(
        manager_client: ManagerClient, sb: Sandbox, recorder: Recorder):
    users = manager_client.mt4.users_snapshot(limit=50)
    assert len(users) == 50
    assert str(recorder.api_requests()[-1].url).startswith(sb.info.sidecar_url)
    manager_client.mt4.server_time()
    assert str(recorder.api_requests()[-1].url).startswith(sb.info.base_url)


def test_sidecar_falls_back_to_api_url(sb: Sandbox, recorder: Recorder):
    config = make_config(sb.info, sidecar_base_url=None)
    with ManagerClient(
        config, breaker=fresh_breaker(), retry=FAST_RETRY, event_hooks=recorder.hooks()
    ) as c:
        assert c.sidecar_breaker is c.breaker
        with pytest.raises(InvalidResponse) as info:  # the sandbox main port 404s them
            c.mt4.users_snapshot(limit=5)
    assert info.value.http_status == 404
    assert str(recorder.api_requests()[-1].url).startswith(sb.info.base_url + "/api/v2/MT4/")


def test_sidecar_down_is_connection_not_made_and_trips_its_breaker(
    manager_client: ManagerClient, sb: Sandbox
):
    sb.sidecar(False)
    with pytest.raises(ConnectionNotMade) as info:
        manager_client.mt4.users_snapshot(limit=5)
    assert info.value.is_safe_to_retry
    assert manager_client.sidecar_breaker.state == "open"  # 3 attempts, 3 failures
    with pytest.raises(CircuitOpen):
        manager_client.mt4.users_snapshot(limit=5)
    assert manager_client.breaker_state == "closed"  # the main API is unaffected
    assert isinstance(manager_client.mt4.server_time(), datetime)
    sb.sidecar(True)


def test_large_answers_read_into_one_buffer_give_the_same_records(
    manager_client: ManagerClient, sb: Sandbox, recorder: Recorder, monkeypatch
):
    """Every answer above ``LARGE_BODY`` (here: every answer) is streamed into one buffer
    instead of being joined from chunks; records, errors and proxy pages read the same."""
    users, trades = manager_client.mt4.users_snapshot(), manager_client.mt4.trades_snapshot()
    monkeypatch.setattr("platforms.transport.core.LARGE_BODY", 0)
    assert (manager_client.mt4.users_snapshot() == users
            and manager_client.mt4.trades_snapshot() == trades)
    assert int(recorder.responses[-1].headers["content-length"]) > 100_000
    with pytest.raises(NotFound):
        manager_client.mt4.user_record_get(999_999_999)
    sb.fault(operation="ServerTime", html502=True, times=1)
    with pytest.raises(InvalidResponse):
        manager_client.mt4.server_time()


def test_sync_start_then_sidecar_read(manager_client: ManagerClient):
    started = manager_client.mt4.users_sync_start(0)
    assert started.data is True
    users = manager_client.mt4.users_sync_read()
    assert isinstance(users, list)


def test_write_after_read_timeout_request_timeout_class(manager_client: ManagerClient, sb: Sandbox):
    sb.fault(operation="UserRecordGet", error="Timeout", times=10)
    login = manager_client.mt4.users_request(limit=1).items[0].login
    with pytest.raises(RequestTimeout):
        manager_client.mt4.user_record_get(login)
    assert sb.op_stats("UserRecordGet")["received"] == 3


# --------------------------------------------------------------------------- MT5


def test_mt5_reads_and_paging(sb: Sandbox):
    config = make_config(sb.info, kind="MT5")
    with ManagerClient(config, breaker=fresh_breaker(), retry=FAST_RETRY) as c:
        assert isinstance(c.mt5.server_time(), datetime)
        assert c.mt5.time_get() is not None
        positions = list(c.mt5.iter_positions("*", page_size=25))
        assert len({p.position for p in positions}) == len(positions)
        deals = list(c.mt5.iter_deals("*", page_size=50))
        assert len({d.deal for d in deals}) == len(deals)


def test_threads_share_one_token_fetch(manager_client: ManagerClient, sb: Sandbox):
    from concurrent.futures import ThreadPoolExecutor

    before = sb.stats()["tokensIssued"]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: manager_client.mt4.server_time(), range(16)))
    assert all(isinstance(t, datetime) for t in results)
    assert sb.stats()["tokensIssued"] == before + 1
    assert manager_client.auth.tokens_fetched == 1
