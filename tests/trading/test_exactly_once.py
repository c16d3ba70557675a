"""Exactly-once under lost answers, dropped connections and resubmitted forms (real worker)."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections import Counter
from decimal import Decimal

import pytest

from platforms.audit import Actor
from platforms.trading.models import TaskState, TradeTask
from platforms.trading.submit import submit
from tests.support.polling import wait_until

#: 500 in the issue; 100 keeps this test near 30 s on the 2-core box (the benchmark runs 1,000)
DEPOSITS = int(os.environ.get("TRADING_EXACTLY_ONCE_COUNT", "100"))
LOGINS = list(range(100101, 100121))  # touched by no other test


def ledger(sandbox, login: int) -> list[dict]:
    state = sandbox.control("GET", f"/accounts/{login}").json()
    return [t for t in state["closedSinceStart"] if t.get("tradeCommand") == "Balance"]


@pytest.mark.django_db(transaction=True)
def test_every_deposit_is_applied_exactly_once_despite_lost_answers_drops_and_resubmits(
    clean_sandbox, mt4, finance_user, celery_worker_process
):
    sandbox = clean_sandbox
    before = {login: sandbox.control("GET", f"/accounts/{login}").json()["balance"]
              for login in LOGINS}
    sandbox.control("DELETE", "/stats")
    # 20 % answered OutcomeUnknown after being applied, 10 % applied then the connection drops
    sandbox.control("POST", "/faults", json={"operation": "TradeTransaction", "drop": True,
                                             "rate": 0.10})
    sandbox.control("POST", "/faults", json={"operation": "TradeTransaction",
                                             "error": "OutcomeUnknown", "rate": 0.2 / 0.9})
    actor = Actor(finance_user, "127.0.0.1")
    rng = random.Random(42)
    submitted: list[tuple[uuid.UUID, int, Decimal]] = []
    started = time.monotonic()
    for i in range(DEPOSITS):
        request_id, login = uuid.uuid4(), rng.choice(LOGINS)
        amount = Decimal(rng.randint(100, 99999)) / 100
        payload = {"amount": str(amount), "comment": f"wire {i}"}
        first = submit(actor=actor, platform=mt4, kind="deposit", login=login,
                       payload=payload, request_id=request_id)
        assert first.created
        submitted.append((request_id, login, amount))
        if rng.random() < 0.10:  # the same form posted again (double click, browser resubmit)
            again = submit(actor=actor, platform=mt4, kind="deposit", login=login,
                           payload=dict(payload), request_id=request_id)
            assert not again.created and again.task.pk == first.task.pk

    def all_final():
        open_ = TradeTask.objects.exclude(state__in=[TaskState.CONFIRMED, TaskState.REJECTED,
                                                     TaskState.FAILED])
        return not open_.exists()

    wait_until(all_final, "every task to reach a final state", timeout=240, interval=0.2)
    elapsed = time.monotonic() - started
    sandbox.clear_faults()

    assert TradeTask.objects.count() == DEPOSITS
    states = Counter(TradeTask.objects.values_list("state", flat=True))
    assert states == {TaskState.CONFIRMED: DEPOSITS}, states

    # the ledger: exactly one Balance record per request id, for the right amount
    by_tag: Counter[str] = Counter()
    amounts: dict[str, float] = {}
    for login in LOGINS:
        for row in ledger(sandbox, login):
            tag = (row.get("comment") or "").split(" ", 1)[0]
            by_tag[tag] += 1
            amounts[tag] = row["profit"]
    for request_id, _login, amount in submitted:
        tag = "#" + request_id.hex[:12]
        assert by_tag[tag] == 1, f"{request_id} applied {by_tag[tag]} times"
        assert Decimal(str(amounts[tag])) == amount
    assert sum(by_tag.values()) == DEPOSITS

    after = {login: sandbox.control("GET", f"/accounts/{login}").json()["balance"]
             for login in LOGINS}
    for login in LOGINS:
        expected = Decimal(str(before[login])) + sum(a for _, lg, a in submitted if lg == login)
        assert Decimal(str(after[login])).quantize(Decimal("0.01")) == expected

    stats = sandbox.control("GET", "/stats").json()["operations"]["TradeTransaction"]
    assert stats["executed"] == DEPOSITS  # replays are answered from the key store, not run
    tasks = TradeTask.objects.all()
    assert all(t.ticket for t in tasks)
    assert all(t.new_balance is not None for t in tasks)
    resolved = Counter(tasks.values_list("resolved_by", flat=True))
    assert resolved["read"] > 0, resolved  # lost answers were settled by reading the ledger
    print(f"\n{DEPOSITS} deposits in {elapsed:.1f} s; resolved by {dict(resolved)}")
