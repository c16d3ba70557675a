"""The ``drop`` fault: a write is applied, then the connection closes without an answer."""

from __future__ import annotations

import uuid

import httpx
import pytest

from platforms.sandbox.faults import FaultError, parse_spec
from tests.sandbox.conftest import Api


def _deposit(login: int) -> dict:
    return {"tradeTransactionType": "BrBalance", "tradeCommand": "Balance", "orderBy": login,
            "price": 7.0, "comment": "drop"}


def test_a_dropped_write_is_applied_and_its_key_replays_the_result(
    api: Api, fresh_login: int
) -> None:
    api.info.control("POST", "/faults", json={"operation": "TradeTransaction", "drop": True,
                                              "times": 1})
    before = api.account(fresh_login)["balance"]
    key = str(uuid.uuid4())
    with pytest.raises(httpx.RemoteProtocolError):
        api.tx(_deposit(fresh_login), headers={"Idempotency-Key": key})
    assert api.account(fresh_login)["balance"] == pytest.approx(before + 7)
    replay = api.tx(_deposit(fresh_login), headers={"Idempotency-Key": key})
    assert replay.headers["Idempotency-Replayed"] == "true"
    assert replay.json()["data"]["order"] > 0
    assert api.account(fresh_login)["balance"] == pytest.approx(before + 7)


def test_a_dropped_read_changes_nothing_and_the_rule_is_listed(api: Api) -> None:
    api.info.control("POST", "/faults", json={"operation": "ServerTime", "drop": True})
    rules = api.info.control("GET", "/faults").json()["rules"]
    assert rules[0]["drop"] is True
    with pytest.raises(httpx.RemoteProtocolError):
        api.mt4("GET", "ServerTime")


def test_drop_spec_parses_and_validates() -> None:
    assert parse_spec("TradeTransaction:drop:rate=0.1") == {
        "operation": "TradeTransaction", "drop": True, "rate": 0.1}
    with pytest.raises(FaultError):
        parse_spec("TradeTransaction:rate=0.1")
