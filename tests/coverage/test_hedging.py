"""Hedge orders exactly once: 20 % of answers lost and 10 % 502s on the bridge (its own fault
controls), every hedge ends with exactly one position carrying its task, and the bridge ran
exactly as many submissions as there were hedges."""

from __future__ import annotations

import uuid

import pytest

from platforms.coverage.client import BridgeClient
from platforms.coverage.hedging import HedgeInvalid, HedgeRequest, send_hedge
from tests.coverage.conftest import bridge_config
from tests.support.transport import FAST_RETRY, fresh_breaker

pytestmark = pytest.mark.timeout(180)

HEDGES = 30
LOGIN = 900005


def test_hedges_run_exactly_once_under_lost_answers_and_502s(lp, wire):
    # a lost answer: the bridge sleeps past the client's read timeout, then runs the write
    wire.fault(operation="orders.submit", latency=0.6, rate=0.2)
    wire.fault(operation="orders.submit", error="BridgeUnavailable", rate=0.1)
    before = {p["ticket"] for p in wire.state(LOGIN)["positions"]}
    config = bridge_config(lp, LOGIN, timeout=0.3)
    outcomes = {}
    with BridgeClient(config, breaker=fresh_breaker(fail_max=1000), retry=FAST_RETRY) as client:
        for n in range(HEDGES):
            request_id = f"hedge-{uuid.uuid4()}"
            hedge = HedgeRequest("open", symbol="EURUSD", side="buy" if n % 2 else "sell",
                                 volume=0.1 + n / 100, comment=f"x1 {n}")
            outcomes[request_id] = (hedge, send_hedge(client, hedge, request_id, deadline_s=30))
    hits = {(r.get("error") or "latency"): r["hits"]
            for r in wire.control("GET", "/faults").json()["rules"]}
    wire.control("DELETE", "/faults")

    errors = [e for _, o in outcomes.values() for e in o.errors]
    assert hits["latency"] > 0 and hits["BridgeUnavailable"] > 0, hits  # the faults happened
    positions = [p for p in wire.state(LOGIN)["positions"] if p["ticket"] not in before]
    by_task: dict[str, list[dict]] = {}
    for position in positions:
        by_task.setdefault(position["taskId"], []).append(position)
    assert len(positions) == HEDGES, (len(positions), errors)
    for request_id, (hedge, outcome) in outcomes.items():
        assert outcome.status == "executed", (request_id, outcome)
        task = outcome.task
        assert task.request_id in (None, request_id)
        [position] = by_task[task.task_id]  # exactly one position per request id
        assert position["volume"] == pytest.approx(hedge.volume)
        assert position["type"] == hedge.side.upper()  # the bridge's spelling on the wire


def test_a_refused_hedge_is_final_and_a_reused_id_with_another_body_is_a_conflict(lp, wire):
    config = bridge_config(lp, LOGIN)
    with BridgeClient(config, breaker=fresh_breaker(), retry=FAST_RETRY) as client:
        request_id = f"hedge-{uuid.uuid4()}"
        first = send_hedge(client, HedgeRequest("open", symbol="GBPUSD", side="buy",
                                                volume=0.2), request_id)
        assert first.status == "executed" and first.sends >= 1
        again = send_hedge(client, HedgeRequest("open", symbol="GBPUSD", side="buy",
                                                volume=0.2), request_id)
        assert again.task.task_id == first.task.task_id and again.task.replayed
        other = send_hedge(client, HedgeRequest("open", symbol="GBPUSD", side="sell",
                                                volume=0.2), request_id)
        assert other.task is None and other.errors == ["TaskConflict"] and other.sends == 1
        closed = send_hedge(client, HedgeRequest("close", ticket=first.task.ticket),
                            f"hedge-{uuid.uuid4()}")
        assert closed.status == "executed"
        assert not [p for p in wire.state(LOGIN)["positions"]
                    if p["ticket"] == first.task.ticket]


@pytest.mark.parametrize("bad", [
    HedgeRequest("buy"), HedgeRequest("open", symbol="EURUSD", side="buy"),
    HedgeRequest("open", symbol="EURUSD", side="buy", volume=0.1, price=1.1),
    HedgeRequest("open", symbol="EURUSD", side="buy_limit", volume=0.1),
    HedgeRequest("open", symbol="EURUSD", side="buy", volume=500),
    HedgeRequest("close"), HedgeRequest("modify"),
])
def test_a_malformed_hedge_is_refused_before_anything_is_sent(bad):
    with pytest.raises(HedgeInvalid):
        bad.validate()
