"""The x86 sidecar: routing, snapshots, sync sessions started on main and read on the sidecar."""

from __future__ import annotations

import httpx
import pytest

from tests.sandbox.conftest import Api

SIDECAR_PATHS = [
    ("GET", "UsersSnapshot"),
    ("GET", "UsersSyncRead"),
    ("GET", "TradesSnapshot"),
    ("GET", "TradesSyncRead"),
    ("POST", "NewsSend"),
    ("POST", "MailSend"),
    ("GET", "MailsRequest"),
    ("GET", "PluginsGet"),
    ("GET", "PluginParamGet/0"),
    ("POST", "PluginUpdate"),
    ("GET", "CfgRequestPlugin"),
    ("POST", "CfgUpdatePlugin"),
    ("POST", "ExternalCommandBinary"),
]


@pytest.mark.parametrize(("method", "action"), SIDECAR_PATHS)
def test_main_port_404s_sidecar_paths(api: Api, method: str, action: str) -> None:
    assert api.mt4(method, action, json={}).status_code == 404


@pytest.mark.parametrize(
    ("method", "action"),
    [
        ("GET", "ServerTime"),
        ("GET", "UsersRequest"),
        ("POST", "TradeTransaction"),
        ("POST", "UsersSyncStart"),
    ],
)
def test_sidecar_404s_main_paths(api: Api, method: str, action: str) -> None:
    assert api.mt4(method, action, sidecar=True, json={}).status_code == 404
    assert api.http.get(f"{api.info.sidecar_url}/api/TradePlatforms").status_code == 404


def test_sidecar_accepts_main_tokens_and_rejects_none(api: Api) -> None:
    assert api.mt4("GET", "PluginsGet", sidecar=True).status_code == 200
    r = httpx.get(api.mt4_url("PluginsGet", sidecar=True))
    assert r.status_code == 401


def test_snapshot_limits(api: Api) -> None:
    users = api.ok(api.mt4("GET", "UsersSnapshot", sidecar=True))
    assert len(users) == len(api.ok(api.mt4("GET", "UsersRequest")))
    assert len(api.ok(api.mt4("GET", "UsersSnapshot", sidecar=True, params={"limit": 7}))) == 7
    for bad in ("0", "1000001"):
        r = api.mt4("GET", "TradesSnapshot", sidecar=True, params={"limit": bad})
        assert api.err(r)["code"] == "Validation"
    trades = api.ok(api.mt4("GET", "TradesSnapshot", sidecar=True))
    assert [t["order"] for t in trades] == [t["order"] for t in api.ok(api.mt4("GET", "TradesGet"))]


def test_sync_started_on_main_is_read_on_sidecar(api: Api, fresh_login: int) -> None:
    server_time = api.ok(api.mt4("GET", "ServerTime"))
    import datetime as dt

    since = int(dt.datetime.fromisoformat(server_time.replace("Z", "+00:00")).timestamp())
    open_trades = [
        t for t in api.account(fresh_login)["openTrades"] if t["tradeCommand"] in ("Buy", "Sell")
    ]
    victim = open_trades[0]
    api.ok(
        api.tx(
            {
                "tradeTransactionType": "BrClose",
                "order": victim["order"],
                "orderBy": fresh_login,
                "symbol": victim["symbol"],
                "volume": victim["volume"],
            }
        )
    )
    api.info.control("POST", f"/users/{fresh_login}", json={"name": "Renamed By Test"})

    assert api.ok(api.mt4("POST", "TradesSyncStart", params={"timestamp": since})) is True
    assert api.ok(api.mt4("POST", "UsersSyncStart", params={"timestamp": since})) is True
    trades = api.ok(api.mt4("GET", "TradesSyncRead", sidecar=True))
    closed = [t for t in trades if t["order"] == victim["order"]]
    assert closed and closed[0]["tradeRecordState"] == "ClosedNormal"
    users = api.ok(api.mt4("GET", "UsersSyncRead", sidecar=True))
    assert any(u["login"] == fresh_login and u["name"] == "Renamed By Test" for u in users)
    # an untouched account is not part of the incremental set
    assert len(users) < 50

    everything = api.ok(api.mt4("POST", "UsersSyncStart", params={"timestamp": 0}))
    assert everything is True
    assert len(api.ok(api.mt4("GET", "UsersSyncRead", sidecar=True))) == len(
        api.ok(api.mt4("GET", "UsersRequest"))
    )
    assert (
        api.err(api.mt4("POST", "UsersSyncStart", params={"timestamp": "x"}))["code"]
        == "Validation"
    )


def test_deleted_pending_order_shows_up_in_sync(api: Api, fresh_login: int) -> None:
    sym = api.ok(api.mt4("GET", "SymbolInfoGet", params={"symbol": "EURUSD"}))
    placed = api.ok(
        api.tx(
            {
                "tradeTransactionType": "PendingOpen",
                "tradeCommand": "BuyLimit",
                "orderBy": fresh_login,
                "symbol": "EURUSD",
                "volume": 10,
                "price": round(sym["bid"] - 0.01, 5),
            }
        )
    )
    since = 0
    api.ok(
        api.tx(
            {"tradeTransactionType": "BrDelete", "order": placed["order"], "orderBy": fresh_login}
        )
    )
    api.ok(api.mt4("POST", "TradesSyncStart", params={"timestamp": since}))
    rows = {t["order"]: t for t in api.ok(api.mt4("GET", "TradesSyncRead", sidecar=True))}
    assert rows[placed["order"]]["tradeRecordState"] == "Deleted"


def test_sidecar_down_and_up(api: Api) -> None:
    info = api.info
    info.control("POST", "/sidecar", json={"up": False})
    with pytest.raises(httpx.ConnectError):
        httpx.get(api.mt4_url("PluginsGet", sidecar=True), headers=api.http.headers, timeout=5)
    assert api.mt4("GET", "ServerTime").status_code == 200  # main is unaffected
    info.control("DELETE", "/faults")  # clearing faults brings the sidecar back
    r = httpx.get(api.mt4_url("PluginsGet", sidecar=True), headers=api.http.headers, timeout=5)
    assert r.status_code == 200
    info.control("POST", "/sidecar", json={"up": False})
    info.control("POST", "/sidecar", json={"up": True})
    assert (
        httpx.get(api.mt4_url("PluginsGet", sidecar=True), headers=api.http.headers).status_code
        == 200
    )


def test_messaging_and_plugins(api: Api) -> None:
    assert (
        api.ok(
            api.mt4(
                "POST",
                "MailSend",
                sidecar=True,
                json={
                    "senderLogin": 0,
                    "senderName": "Desk",
                    "subject": "Hi",
                    "body": "Hello",
                    "logins": [100001],
                },
            )
        )
        is True
    )
    mails = api.ok(api.mt4("GET", "MailsRequest", sidecar=True))
    assert mails[-1]["subject"] == "Hi"
    assert (
        api.err(api.mt4("POST", "MailSend", sidecar=True, json={"logins": []}))["code"]
        == "Validation"
    )
    assert (
        api.ok(api.mt4("POST", "NewsSend", sidecar=True, json={"topic": "t", "body": "b"})) is True
    )
    param = api.ok(api.mt4("GET", "PluginParamGet/1", sidecar=True))
    param["params"] = [{"name": "MaxLots", "value": "20"}]
    assert api.ok(api.mt4("POST", "PluginUpdate", sidecar=True, json=param)) is True
    assert api.ok(api.mt4("GET", "PluginParamGet/1", sidecar=True))["params"][0]["value"] == "20"
    assert api.err(api.mt4("GET", "PluginParamGet/9", sidecar=True))["code"] == "NotFound"


def test_sync_from_the_change_log_finds_every_change_a_full_scan_finds() -> None:
    """``*SyncStart`` reads a log of what changed instead of scanning 100,000s of records:
    after every kind of change the log and a scan of every record agree."""
    import time

    from platforms.sandbox.market import BALANCE, BUY, BUY_LIMIT, SELL, Market
    from platforms.sandbox.mt4.platform import MT4Platform

    now = time.time()
    market = Market(3, float(int(now // 86400) * 86400))
    p = MT4Platform(3, 60, market, now=now)
    other = MT4Platform(4, 60, market, now=now)  # its changes must not leak into p's sync
    since = now + 1
    first, second, fourth = (p.accounts[x] for x in p.logins[:3])
    third = next(a for a in p.accounts.values()
                 if a not in (first, second, fourth)
                 and any(t.cmd in (BUY, SELL) and t.volume > 1 for t in a.open))
    removed, renamed = [x for x in p.logins[3:] if x != third.login][:2]
    removed_trades = {t.ticket for t in p.accounts[removed].open}
    eurusd = market.symbols["EURUSD"]
    opened = p.open_trade(first, eurusd, BUY, 10, 0.0, 0.0, 0.0, "new", since + 1)
    pending = p.open_trade(second, eurusd, BUY_LIMIT, 10, round(eurusd.bid * 0.98, 5),
                           0.0, 0.0, "pending", since + 1)
    p.modify_trade(opened, 0.0, 0.0, 0.0, since + 2)
    market_trade = next(t for t in third.open if t.cmd in (BUY, SELL) and t.volume > 1)
    p.close_trade(market_trade, market_trade.volume // 2, since + 2)  # partial
    p.delete_trade(pending, since + 3)
    deposit = p.balance_op(fourth, BALANCE, 100.0, "deposit", since + 3)
    p.remove_account(removed, since + 4)
    p.accounts[renamed].touch(since + 4)
    other.accounts[other.logins[0]].touch(since + 4)
    other.open_trade(other.accounts[other.logins[1]], eurusd, SELL, 10, 0.0, 0.0, 0.0, "x",
                     since + 4)

    for start in (since, since + 2, since + 4, since + 9, 0.0):
        assert p.changed_trades(start) == p.changed_trades(start, scan=True)
        assert p.changed_accounts(start) == p.changed_accounts(start, scan=True)
    rest = next(t.ticket for t in third.open if t.comment == f"from #{market_trade.ticket}")
    assert {t.ticket for t in p.changed_trades(since)} == {
        opened.ticket, pending.ticket, market_trade.ticket, rest, deposit.ticket,
        *removed_trades}
    assert [a.login for a in p.changed_accounts(since)] == sorted(
        [third.login, fourth.login, renamed])
    assert [t.ticket for t in p.changed_trades(since + 3)] == sorted(
        {pending.ticket, deposit.ticket, *removed_trades})
