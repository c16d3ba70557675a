"""Inside ``interactive(seconds)`` a read tells the server what is left of the page's budget
(``X-Request-Timeout``), is not retried after a Timeout, and is not sent once the budget is
spent; outside it (a worker) the same read keeps its own deadline and retry. Writes keep theirs."""

from __future__ import annotations

import re
import time

import pytest

from platforms.client import ConnectionNotMade, ManagerClient, RequestTimeout
from platforms.transport import interactive
from tests.client.conftest import Recorder, Sandbox


def test_a_read_sends_what_is_left_of_the_budget_and_is_not_retried(
    manager_client: ManagerClient, sb: Sandbox, recorder: Recorder
):
    sb.fault(operation="ServerTime", error="Timeout", times=1)
    with interactive.interactive(2.5), pytest.raises(RequestTimeout):
        manager_client.mt4.server_time()
    assert sb.op_stats("ServerTime")["received"] == 1
    sent = float(recorder.api_requests()[-1].headers["X-Request-Timeout"])
    assert 2.0 < sent <= 2.5
    assert manager_client.mt4.server_time() is not None  # outside a page: its own 10 s …
    assert recorder.api_requests()[-1].headers["X-Request-Timeout"] == "10"


def test_outside_a_page_a_timed_out_read_is_still_retried(
    manager_client: ManagerClient, sb: Sandbox
):
    sb.fault(operation="ServerTime", error="Timeout", times=1)
    manager_client.mt4.server_time()
    assert sb.op_stats("ServerTime")["received"] == 2


def test_a_slow_read_is_cut_at_the_budget_and_the_sandbox_serves_others_meanwhile(
    manager_client: ManagerClient, sb: Sandbox
):
    sb.fault(operation="ServerTime", latency=40)
    started = time.monotonic()
    with interactive.interactive(1.5):
        results = interactive.concurrently(manager_client.mt4.server_time,
                                           manager_client.mt4.server_time,
                                           lambda: manager_client.mt4.users_request(limit=1))
    took = time.monotonic() - started
    assert isinstance(results[0], RequestTimeout) and isinstance(results[1], RequestTimeout)
    assert len(results[2].items) == 1  # not held behind the delayed reads
    assert took < 1.5 + interactive.MARGIN, took
    assert re.search(r"within 1\.\d+ s", str(results[0])), results[0]  # what was left of 1.5


def test_a_spent_budget_sends_nothing(manager_client: ManagerClient, sb: Sandbox):
    with interactive.interactive(0.6), pytest.raises(ConnectionNotMade) as info:
        time.sleep(0.15)  # less than LAST_CALL left
        manager_client.mt4.server_time()
    assert "not sent" in str(info.value)
    assert sb.op_stats("ServerTime")["received"] == 0


def test_a_budget_below_the_api_minimum_still_sends_one_second(
    manager_client: ManagerClient, sb: Sandbox, recorder: Recorder
):
    sb.fault(operation="ServerTime", latency=40)
    started = time.monotonic()
    with interactive.interactive(0.8), pytest.raises(RequestTimeout):
        manager_client.mt4.server_time()
    assert recorder.api_requests()[-1].headers["X-Request-Timeout"] == "1"
    assert time.monotonic() - started < 1 + interactive.MARGIN  # the server's Timeout came first
    # as the vendor reference has it (§2.2-2.3): HTTP 200, a Timeout envelope, the deadline
    # applied and the outcome in headers
    answer = recorder.responses[-1]
    assert answer.status_code == 200
    assert answer.headers["X-Request-Timeout-Applied"] == "1"
    assert answer.headers["X-Request-Outcome"] == "timeout"


def test_writes_keep_their_own_deadline(
    manager_client: ManagerClient, sb: Sandbox, recorder: Recorder
):
    login = manager_client.mt4.users_request(limit=1).items[0].login
    with interactive.interactive(2.0):
        manager_client.mt4.user_password_set(login, "Secret-123", change_investor=True)
    write = [r for r in recorder.api_requests() if r.method == "POST"][-1]
    assert write.headers["X-Request-Timeout"] == "15"
