"""The asyncio client against the real sandbox: where its send loop differs."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import datetime

import pytest

from platforms.client import (
    AsyncManagerClient,
    CircuitOpen,
    ConnectionNotMade,
    NoConnect,
    OutcomeUnknown,
    WriteResult,
)
from tests.client.conftest import Recorder, Sandbox, make_config
from tests.support.transport import FAST_RETRY, fresh_breaker


async def test_async_auth_and_single_flight(
        async_manager_client: AsyncManagerClient, sb: Sandbox, recorder):
    before = sb.stats()["tokensIssued"]
    results = await asyncio.gather(*(async_manager_client.mt4.server_time() for _ in range(10)))
    assert all(isinstance(t, datetime) for t in results)
    assert sb.stats()["tokensIssued"] == before + 1  # one token for ten concurrent calls
    assert async_manager_client.auth.tokens_fetched == 1


async def test_async_revoked_token_recovers(
        async_manager_client: AsyncManagerClient, sb: Sandbox, recorder):
    await async_manager_client.mt4.server_time()
    sb.revoke_tokens()
    assert isinstance(await async_manager_client.mt4.server_time(), datetime)
    assert recorder.statuses().count(401) == 1


async def test_async_paging(async_manager_client: AsyncManagerClient):
    logins = [u.login async for u in async_manager_client.mt4.iter_users(page_size=41)]
    assert len(logins) == len(set(logins)) == 300


async def test_async_busy_retried(async_manager_client: AsyncManagerClient, sb: Sandbox):
    sb.fault(operation="UsersRequest", error="Busy", times=2)
    page = await async_manager_client.mt4.users_request(limit=3)
    assert len(page.items) == 3
    assert sb.op_stats("UsersRequest")["received"] == 3


async def test_async_write_outcome_unknown_not_resent(
        async_manager_client: AsyncManagerClient, sb: Sandbox):
    login = (await async_manager_client.mt4.users_request(limit=1)).items[0].login
    tx = {
        "tradeTransactionType": "BrBalance",
        "tradeCommand": "Balance",
        "orderBy": login,
        "price": 5.0,
        "comment": "async",
    }
    key = str(uuid.uuid4())
    sb.fault(operation="TradeTransaction", error="OutcomeUnknown", times=1)
    with pytest.raises(OutcomeUnknown):
        await async_manager_client.mt4.trade_transaction(tx, idempotency_key=key)
    assert sb.op_stats("TradeTransaction")["received"] == 1
    result = await async_manager_client.mt4.trade_transaction(tx, idempotency_key=key)
    assert isinstance(result, WriteResult) and result.idempotency_key == key


async def test_async_breaker(async_manager_client: AsyncManagerClient, sb: Sandbox):
    sb.fault(operation="ServerTime", error="NoConnect", times=100)
    for _ in range(3):
        with pytest.raises(NoConnect):
            await async_manager_client.mt4.server_time()
    assert async_manager_client.breaker_state == "open"
    with pytest.raises(CircuitOpen):
        await async_manager_client.mt4.server_time()
    assert sb.op_stats("ServerTime")["received"] == 3
    sb.clear_faults()
    await asyncio.sleep(1.05)
    # Concurrent calls while half-open: exactly one probe goes out, the rest fail fast.
    results = await asyncio.gather(
        *(async_manager_client.mt4.server_time() for _ in range(5)), return_exceptions=True
    )
    assert sum(isinstance(r, datetime) for r in results) == 1
    assert sum(isinstance(r, CircuitOpen) for r in results) == 4
    assert async_manager_client.breaker_state == "closed"
    assert isinstance(await async_manager_client.mt4.server_time(), datetime)


async def test_async_sidecar_down(async_manager_client: AsyncManagerClient, sb: Sandbox):
    sb.sidecar(False)
    with pytest.raises(ConnectionNotMade):
        await async_manager_client.mt4.trades_snapshot(limit=5)
    assert async_manager_client.sidecar_breaker.state == "open"
    sb.sidecar(True)


async def test_async_client_per_loop_lock(sb: Sandbox):
    """The same auth object used from two event loops (threads) must not break."""
    import threading

    config = make_config(sb.info)
    client = AsyncManagerClient(config, breaker=fresh_breaker(), retry=FAST_RETRY)
    await client.mt4.server_time()
    client.auth.invalidate()
    errors = []

    def other_loop():
        async def run():
            c2 = AsyncManagerClient(
                config, breaker=fresh_breaker(), retry=FAST_RETRY, auth=client.auth
            )
            try:
                await c2.mt4.server_time()
            finally:
                await c2.aclose()

        try:
            asyncio.run(run())
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=other_loop)
    t.start()
    await client.mt4.server_time()
    t.join(10)
    await client.aclose()
    assert not errors


async def test_async_hooks_see_token_calls(sb: Sandbox):
    recorder = Recorder()
    config = make_config(sb.info)
    started = time.monotonic()
    async with AsyncManagerClient(
        config, breaker=fresh_breaker(), event_hooks=recorder.ahooks(), retry=FAST_RETRY
    ) as c:
        await c.mt4.server_time()
    assert any(r.url.path.endswith("/connect/token") for r in recorder.requests)
    assert time.monotonic() - started < 5


async def test_async_large_answers_read_into_one_buffer_give_the_same_records(
    async_manager_client: AsyncManagerClient, monkeypatch
):
    trades = await async_manager_client.mt4.trades_snapshot()
    monkeypatch.setattr("platforms.transport.core.LARGE_BODY", 0)
    assert await async_manager_client.mt4.trades_snapshot() == trades
    assert (await async_manager_client.mt4.margins_get()
            == await async_manager_client.mt4.margins_get())
