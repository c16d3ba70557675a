"""Idempotency-Key replay, fault injection, deadlines and the stats counters."""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.sandbox.conftest import Api


def _deposit(login: int, amount: float = 25.0, comment: str = "idem") -> dict:
    return {
        "tradeTransactionType": "BrBalance",
        "tradeCommand": "Balance",
        "orderBy": login,
        "price": amount,
        "comment": comment,
    }


def _executed(api: Api, op: str) -> int:
    return api.info.control("GET", "/stats").json()["operations"].get(op, {}).get("executed", 0)


def test_same_key_replays_the_first_result_once(api: Api, fresh_login: int) -> None:
    api.info.control("DELETE", "/stats")
    before = api.account(fresh_login)["balance"]
    key = str(uuid.uuid4())
    first = api.tx(_deposit(fresh_login), headers={"Idempotency-Key": key})
    second = api.tx(_deposit(fresh_login), headers={"Idempotency-Key": key})
    assert first.json()["data"] == second.json()["data"]
    assert first.json()["meta"] == second.json()["meta"]
    assert api.account(fresh_login)["balance"] == pytest.approx(before + 25)
    stats = api.info.control("GET", "/stats").json()["operations"]["TradeTransaction"]
    assert stats == {"received": 2, "executed": 1}
    # ?cacheId= is an alias
    third = api.tx(_deposit(fresh_login), params={"cacheId": key})
    assert third.json()["data"]["order"] == first.json()["data"]["order"]


def test_same_key_different_body_is_validation(api: Api, fresh_login: int) -> None:
    key = str(uuid.uuid4())
    api.ok(api.tx(_deposit(fresh_login, 5), headers={"Idempotency-Key": key}))
    err = api.err(api.tx(_deposit(fresh_login, 6), headers={"Idempotency-Key": key}))
    assert err["code"] == "Validation" and "another request" in err["message"]
    err = api.err(
        api.mt4(
            "PATCH",
            f"UserRecord/{fresh_login}",
            json={"comment": "x"},
            headers={"Idempotency-Key": key},
        )
    )
    assert err["code"] == "Validation"


def test_bad_keys_are_validation(api: Api, fresh_login: int) -> None:
    r = api.tx(_deposit(fresh_login), headers={"Idempotency-Key": "x" * 256})
    assert api.err(r)["code"] == "Validation"
    # control characters cannot travel in a header; the ?cacheId= alias carries them
    r = api.tx(_deposit(fresh_login), params={"cacheId": "bad\x01key"})
    assert api.err(r)["code"] == "Validation"
    r = api.tx(_deposit(fresh_login), params={"cacheId": "caf\u00e9"})
    assert api.err(r)["code"] == "Validation"


@pytest.mark.parametrize("error", ["OutcomeUnknown", "Timeout"])
def test_outcome_unknown_fault_applies_the_write(api: Api, fresh_login: int, error: str) -> None:
    """A write that misses its deadline is never "nothing changed": Timeout becomes unknown."""
    api.info.control(
        "POST",
        "/faults",
        json={"operation": "TradeTransaction", "error": error, "times": 1},
    )
    before = api.account(fresh_login)["balance"]
    key = str(uuid.uuid4())
    r = api.tx(_deposit(fresh_login, 40), headers={"Idempotency-Key": key})
    assert api.err(r)["code"] == "OutcomeUnknown"
    assert r.headers["x-request-outcome"] == "unknown"
    assert api.account(fresh_login)["balance"] == pytest.approx(before + 40)
    replay = api.tx(_deposit(fresh_login, 40), headers={"Idempotency-Key": key})
    assert api.ok(replay)["order"] > 0
    assert api.account(fresh_login)["balance"] == pytest.approx(before + 40)


@pytest.mark.parametrize(
    ("error", "outcome"),
    [("Busy", "not-started"), ("NoConnect", None), ("Internal", None)],
)
def test_refusing_faults_execute_nothing(
    api: Api, fresh_login: int, error: str, outcome: str | None
) -> None:
    api.info.control("DELETE", "/stats")
    rule = api.info.control(
        "POST", "/faults", json={"operation": "TradeTransaction", "error": error}
    ).json()
    before = api.account(fresh_login)["balance"]
    r = api.tx(_deposit(fresh_login))
    assert api.err(r)["code"] == error
    assert r.headers.get("x-request-outcome") == outcome
    assert api.account(fresh_login)["balance"] == before
    assert api.info.control("GET", "/stats").json()["operations"]["TradeTransaction"] == {
        "received": 1,
        "executed": 0,
    }
    api.info.control("DELETE", f"/faults/{rule['id']}")
    assert api.ok(api.tx(_deposit(fresh_login)))["order"] > 0


def test_fault_rules_times_port_and_listing(api: Api) -> None:
    info = api.info
    rid = info.control(
        "POST", "/faults", json={"operation": "*", "error": "Busy", "times": 2, "port": "sidecar"}
    ).json()["id"]
    assert [r["id"] for r in info.control("GET", "/faults").json()["rules"]] == [rid]
    assert api.mt4("GET", "ServerTime").json()["error"] is None  # main port unaffected
    for _ in range(2):
        assert api.err(api.mt4("GET", "PluginsGet", sidecar=True))["code"] == "Busy"
    assert api.mt4("GET", "PluginsGet", sidecar=True).json()["error"] is None
    assert info.control("GET", "/faults").json()["rules"] == []
    bad = httpx.post(f"{info.control_url}/faults", json={"operation": "X", "error": "Nope"})
    assert bad.status_code == 400


def test_html502_fault(api: Api) -> None:
    api.info.control("POST", "/faults", json={"operation": "UsersRequest", "html502": True})
    r = api.mt4("GET", "UsersRequest")
    assert r.status_code == 502 and r.headers["content-type"].startswith("text/html")
    assert api.mt4("GET", "ServerTime").status_code == 200


def test_latency_beyond_deadline(api: Api, fresh_login: int) -> None:
    api.info.control("POST", "/faults", json={"operation": "UsersRequest", "latency": 1.6})
    t0 = time.monotonic()
    r = api.mt4("GET", "UsersRequest", headers={"X-Request-Timeout": "1"})
    assert time.monotonic() - t0 < 1.5
    assert api.err(r)["code"] == "Timeout" and r.headers["x-request-outcome"] == "timeout"
    assert r.headers["x-request-timeout-applied"] == "1"

    api.info.control("POST", "/faults", json={"operation": "TradeTransaction", "latency": 1.8})
    before = api.account(fresh_login)["balance"]
    key = str(uuid.uuid4())
    r = api.tx(_deposit(fresh_login, 7), headers={"Idempotency-Key": key, "X-Request-Timeout": "1"})
    assert api.err(r)["code"] == "OutcomeUnknown" and r.headers["x-request-outcome"] == "unknown"
    # still running → in-progress
    r2 = api.tx(_deposit(fresh_login, 7), headers={"Idempotency-Key": key})
    assert (
        api.err(r2)["code"] == "OutcomeUnknown" and r2.headers["x-request-outcome"] == "in-progress"
    )
    time.sleep(1.3)
    assert api.account(fresh_login)["balance"] == pytest.approx(before + 7)
    api.info.control("DELETE", "/faults")
    r3 = api.tx(_deposit(fresh_login, 7), headers={"Idempotency-Key": key})
    assert api.ok(r3)["order"] > 0
    assert api.account(fresh_login)["balance"] == pytest.approx(before + 7)


def test_latency_within_deadline_still_answers(api: Api) -> None:
    api.info.control("POST", "/faults", json={"operation": "ServerTime", "latency": 0.3})
    t0 = time.monotonic()
    assert api.ok(api.mt4("GET", "ServerTime"))
    assert time.monotonic() - t0 >= 0.3


def test_stats_and_token_counter(api: Api) -> None:
    api.info.control("DELETE", "/stats")
    api.mt4("GET", "ServerTime")
    api.mt4("GET", "ServerTime")
    stats = api.info.control("GET", "/stats").json()
    assert stats["operations"]["ServerTime"] == {"received": 2, "executed": 2}
    assert stats["tokensIssued"] == 0
