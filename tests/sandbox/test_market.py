"""Margin maths, trading operations, stop-out and determinism of the simulated market."""

from __future__ import annotations

import time

import pytest

from tests.sandbox.conftest import Api


def _market(trades: list[dict]) -> list[dict]:
    return [t for t in trades if t["tradeCommand"] in ("Buy", "Sell")]


def test_margin_level_follows_the_standard_maths(api: Api) -> None:
    checked = 0
    for user in api.ok(api.mt4("GET", "UsersRequest", params={"limit": 60})):
        login = user["login"]
        trades = api.ok(
            api.mt4("GET", f"TradesGetByLogin/{login}/{user['group'].replace(chr(92), '%5C')}")
        )
        ml = api.ok(api.mt4("GET", f"MarginLevelGet/{login}"))
        floating = sum(t["profit"] + t["storage"] + t["commission"] for t in _market(trades))
        assert ml["equity"] == pytest.approx(user["balance"] + user["credit"] + floating, abs=0.05)
        assert ml["free"] == pytest.approx(ml["equity"] - ml["margin"], abs=0.02)
        if ml["margin"] > 0:
            checked += 1
            assert ml["level"] == pytest.approx(ml["equity"] / ml["margin"] * 100, abs=0.01)
        else:
            assert ml["level"] == 0 and ml["levelType"] == "Ok"
    assert checked > 10


def test_some_accounts_are_near_margin_call(api: Api) -> None:
    margins = api.ok(api.mt4("GET", "MarginsGet"))
    assert any(m["levelType"] == "MarginCall" for m in margins)
    groups = {g["group"]: g for g in api.ok(api.mt4("GET", "GroupsGet"))}
    for m in margins:
        g = groups[m["group"]]
        if m["levelType"] == "MarginCall":
            assert g["marginStopout"] < m["level"] <= g["marginCall"]


def test_open_modify_partial_close_and_history(api: Api, fresh_login: int) -> None:
    sym = api.ok(api.mt4("GET", "SymbolInfoGet", params={"symbol": "EURUSD"}))
    opened = api.ok(
        api.tx(
            {
                "tradeTransactionType": "BrOpen",
                "tradeCommand": "Buy",
                "orderBy": fresh_login,
                "symbol": "EURUSD",
                "volume": 20,
            }
        )
    )
    ticket = opened["order"]
    assert opened["price"] == sym["ask"]
    trade = api.ok(api.mt4("GET", f"TradesGet/{ticket}"))
    assert trade["tradeRecordState"] == "OpenNormal" and trade["volume"] == 20
    err = api.err(
        api.tx({"tradeTransactionType": "BrModify", "order": ticket, "sl": sym["bid"] + 0.01})
    )
    assert err["code"] == "MT4Error" and err["managerCode"] == "TradeBadStops"
    api.ok(
        api.tx(
            {
                "tradeTransactionType": "BrModify",
                "order": ticket,
                "sl": round(sym["bid"] - 0.01, 5),
                "tp": round(sym["bid"] + 0.02, 5),
            }
        )
    )
    assert api.ok(api.mt4("GET", f"TradeRecordGet/{ticket}"))["sl"] == round(sym["bid"] - 0.01, 5)
    api.ok(api.tx({"tradeTransactionType": "BrClose", "order": ticket, "volume": 5}))
    closed = api.ok(api.mt4("GET", f"TradeRecordGet/{ticket}"))
    assert closed["tradeRecordState"] == "ClosedPart" and closed["volume"] == 5
    rest = [t for t in api.account(fresh_login)["openTrades"] if t["comment"] == f"from #{ticket}"]
    assert rest and rest[0]["volume"] == 15
    history = api.ok(api.mt4("GET", f"TradesUserHistory/{fresh_login}"))
    assert ticket in [t["order"] for t in history]
    err = api.err(
        api.tx({"tradeTransactionType": "BrClose", "order": rest[0]["order"], "volume": 99})
    )
    assert err["managerCode"] == "TradeBadVolume"
    err = api.err(
        api.tx(
            {
                "tradeTransactionType": "BrOpen",
                "tradeCommand": "Sell",
                "orderBy": fresh_login,
                "symbol": "EURUSD",
                "volume": 0,
            }
        )
    )
    assert err["code"] == "MT4Error" and err["managerCode"] == "TradeBadVolume"
    assert api.err(api.mt4("GET", f"TradesGet/{ticket}"))["code"] == "NotFound"


def test_balance_operations_and_no_money(api: Api, fresh_login: int) -> None:
    acc = api.account(fresh_login)
    dep = api.ok(
        api.tx(
            {
                "tradeTransactionType": "BrBalance",
                "tradeCommand": "Balance",
                "orderBy": fresh_login,
                "price": 100,
                "comment": "Wire in",
            }
        )
    )
    record = api.ok(api.mt4("GET", f"TradeRecordGet/{dep['order']}"))
    assert record["tradeCommand"] == "Balance" and record["profit"] == 100
    assert record["comment"] == "Wire in"
    api.ok(
        api.tx(
            {
                "tradeTransactionType": "BrBalance",
                "tradeCommand": "Credit",
                "orderBy": fresh_login,
                "price": 50,
                "comment": "Bonus",
            }
        )
    )
    user = api.ok(api.mt4("GET", f"UserRecordGet/{fresh_login}"))
    assert user["balance"] == pytest.approx(acc["balance"] + 100)
    assert user["credit"] == pytest.approx(acc["credit"] + 50)
    err = api.err(
        api.tx(
            {
                "tradeTransactionType": "BrBalance",
                "tradeCommand": "Balance",
                "orderBy": fresh_login,
                "price": -10_000_000,
                "comment": "too much",
            }
        )
    )
    assert err["code"] == "MT4Error" and err["managerCode"] == "TradeNoMoney"
    assert (
        api.err(
            api.tx(
                {
                    "tradeTransactionType": "BrBalance",
                    "tradeCommand": "Balance",
                    "orderBy": 999999,
                    "price": 1,
                }
            )
        )["code"]
        == "NotFound"
    )
    journal = api.ok(
        api.mt4(
            "GET", "JournalRequest", params={"from": "2020-01-01T00:00:00Z", "filter": "Wire in"}
        )
    )
    assert journal and str(fresh_login) in journal[-1]["message"]


def test_forced_stop_out_closes_the_worst_trades(api: Api, fresh_login: int) -> None:
    acc = api.account(fresh_login)
    assert acc["margin"] > 0
    # Put equity at half the stop-out level: balance = margin*SO/200 - credit - floating.
    target = acc["margin"] * acc["stopOut"] / 200 - acc["credit"] - acc["floatingProfit"]
    after = api.info.control(
        "POST", f"/users/{fresh_login}", json={"balance": round(target, 2)}
    ).json()
    assert after["levelType"] != "StopOut"
    closed = [t for t in after["closedSinceStart"] if t["activationType"] == "Stopout"]
    assert closed
    for t in closed:
        assert t["tradeRecordState"] in ("ClosedNormal", "ClosedPart")
        assert t["comment"].startswith("[so:")
    history = {t["order"]: t for t in api.ok(api.mt4("GET", f"TradesUserHistory/{fresh_login}"))}
    assert all(history[t["order"]]["activationType"] == "Stopout" for t in closed)
    journal = api.ok(
        api.mt4(
            "GET",
            "JournalRequest",
            params={"from": "2020-01-01T00:00:00Z", "mode": "Trades", "filter": "stop out"},
        )
    )
    assert any(f"'{fresh_login}'" in j["message"] for j in journal)


def test_stop_out_by_market_move(api: Api, fresh_login: int) -> None:
    acc = api.account(fresh_login)
    trade = max(_market(acc["openTrades"]), key=lambda t: t["volume"])
    # Pick a balance leaving the level well above stop-out, then move the price against the trade.
    api.info.control(
        "POST",
        f"/users/{fresh_login}",
        json={
            "balance": round(
                acc["margin"] * acc["stopOut"] / 100 * 1.5 - acc["credit"] - acc["floatingProfit"],
                2,
            )
        },
    )
    sym = api.ok(api.mt4("GET", "SymbolInfoGet", params={"symbol": trade["symbol"]}))
    factor = 0.5 if trade["tradeCommand"] == "Buy" else 1.5
    moved = api.info.control(
        "POST", "/market/price", json={"symbol": trade["symbol"], "bid": sym["bid"] * factor}
    ).json()
    assert moved["stopOutCloses"] >= 1
    state = api.account(fresh_login)
    assert any(t["activationType"] == "Stopout" for t in state["closedSinceStart"])
    api.info.control(
        "POST",
        "/market/price",
        json={"symbol": trade["symbol"], "bid": sym["bid"], "ask": sym["ask"]},
    )


def test_market_steps_deterministically_when_frozen(api: Api) -> None:
    a = api.ok(api.mt4("GET", "TickInfoLast"))
    assert a == api.ok(api.mt4("GET", "TickInfoLast"))  # frozen
    out = api.info.control(
        "POST", "/_sandbox/market/tick".removeprefix("/_sandbox"), json={"count": 3}
    ).json()
    assert out["tick"] >= 3
    b = api.ok(api.mt4("GET", "TickInfoLast"))
    assert [x["bid"] for x in a] != [x["bid"] for x in b]


def test_users_crud_and_passwords(api: Api) -> None:
    created = api.ok(
        api.mt4(
            "POST",
            "UserRecordNew",
            json={"group": "real\\eur", "name": "Ada", "email": "ada@example.com", "leverage": 50},
        )
    )
    login = created["login"]
    assert created["group"] == "real\\eur" and created["leverage"] == 50
    assert api.err(api.mt4("POST", "UserRecordNew", json={"login": login}))["code"] == "MT4Error"
    patched = api.ok(api.mt4("PATCH", f"UserRecord/{login}", json={"city": "Vienna", "bogus": 1}))
    assert patched["city"] == "Vienna" and patched["name"] == "Ada"
    updated = api.ok(api.mt4("POST", f"UserRecordUpdate/{login}", json={"name": "Ada L."}))
    assert updated["name"] == "Ada L."
    assert api.ok(api.mt4("POST", f"UserPasswordSet/{login}", json="Secret123")) is True
    assert api.ok(api.mt4("POST", f"UserPasswordCheck/{login}", json="Secret123")) is True
    err = api.err(api.mt4("POST", f"UserPasswordCheck/{login}", json="wrong1"))
    assert err["code"] == "MT4Error" and err["managerCode"]
    assert (
        api.ok(
            api.mt4(
                "POST",
                "UsersGroupOp",
                json={"command": "Leverage", "leverage": 33, "logins": [login]},
            )
        )
        is True
    )
    assert api.ok(api.mt4("GET", f"UserRecordGet/{login}"))["leverage"] == 33
    assert (
        api.err(api.mt4("POST", "UsersGroupOp", json={"command": "Nope", "logins": [login]}))[
            "code"
        ]
        == "Validation"
    )
    assert (
        api.ok(api.mt4("POST", "UsersGroupOp", json={"command": "Delete", "logins": [login]}))
        is True
    )
    assert api.err(api.mt4("GET", f"UserRecordGet/{login}"))["code"] == "NotFound"


def test_margins_say_when_their_figures_last_changed(api: Api, fresh_login: int) -> None:
    """``MarginsGet`` is the server's cache: ``updated`` moves only with the figures, so a
    reader can tell what moved since a time (the market is frozen in this sandbox)."""
    before = {m["login"]: m for m in api.ok(api.mt4("GET", "MarginsGet"))}
    time.sleep(1.1)  # ``updated`` is in whole seconds
    api.ok(api.tx({"tradeTransactionType": "BrBalance", "tradeCommand": "Balance",
                   "orderBy": fresh_login, "price": 100.0, "comment": "margin stamp"}))
    after = {m["login"]: m for m in api.ok(api.mt4("GET", "MarginsGet"))}

    assert after[fresh_login]["updated"] > before[fresh_login]["updated"]
    assert after[fresh_login]["equity"] == pytest.approx(before[fresh_login]["equity"] + 100)
    assert {x: m for x, m in after.items() if x != fresh_login} == {
        x: m for x, m in before.items() if x != fresh_login}
    assert api.ok(api.mt4("GET", f"MarginLevelGet/{fresh_login}")) == after[fresh_login]
