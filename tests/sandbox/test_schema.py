"""Representative answers match the vendor OpenAPI document and parse in the vendor SDK."""

from __future__ import annotations

import pytest

from tests.sandbox.conftest import Api, validate_envelope

WINDOW = "from=2020-01-01T00:00:00Z&to=2030-01-01T00:00:00Z"
MT4_READS = [
    ("ServerTime", "ServerTime", False),
    ("ManagerCommon", "ManagerCommon", False),
    ("UsersRequest?limit=3", "UsersRequest", False),
    ("UserRecordGet/100001", "UserRecordGet/{login}", False),
    ("UserRecordRequest/100001", "UserRecordRequest/{login}", False),
    ("UserRecordsRequest?logins=100001&logins=100002", "UserRecordsRequest", False),
    ("TradesRequest?limit=5", "TradesRequest", False),
    ("TradesGet?limit=5", "TradesGet", False),
    ("TradeRecordGet/1000001", "TradeRecordGet/{order}", False),
    ("TradesUserHistory/100003", "TradesUserHistory/{login}", False),
    (f"ReportsRequest?{WINDOW}&logins=100003", "ReportsRequest", False),
    ("MarginsGet", "MarginsGet", False),
    ("MarginLevelGet/100002", "MarginLevelGet/{login}", False),
    ("MarginLevelRequest/100002", "MarginLevelRequest/{login}", False),
    ("OnlineRequest?limit=5", "OnlineRequest", False),
    ("OnlineGet", "OnlineGet", False),
    ("GroupsRequest", "GroupsRequest", False),
    ("GroupsGet", "GroupsGet", False),
    ("GroupRecordGet/real%5Ceur", "GroupRecordGet/{group}", False),
    ("CfgRequestSymbol", "CfgRequestSymbol", False),
    ("CfgRequestSymbol/XAUUSD", "CfgRequestSymbol/{symbol}", False),
    ("SymbolInfoGet?symbol=EURUSD", "SymbolInfoGet", False),
    (
        "ChartRequest/EURUSD?period=M15&start=2026-11-01T00:00:00Z&end=2026-11-02T00:00:00Z",
        "ChartRequest/{symbol}",
        False,
    ),
    ("JournalRequest?from=2020-01-01T00:00:00Z", "JournalRequest", False),
    (
        "DailyReportsRequest?from=2026-11-01T00:00:00Z&to=2026-11-03T00:00:00Z&logins=100001",
        "DailyReportsRequest",
        False,
    ),
    ("SymbolsGroupsGet", "SymbolsGroupsGet", False),
    ("TickInfoLast", "TickInfoLast", False),
    ("UsersSnapshot?limit=5", "UsersSnapshot", True),
    ("TradesSnapshot?limit=5", "TradesSnapshot", True),
    ("UsersSyncRead", "UsersSyncRead", True),
    ("TradesSyncRead", "TradesSyncRead", True),
    ("PluginsGet", "PluginsGet", True),
    ("PluginParamGet/0", "PluginParamGet/{pos}", True),
    ("CfgRequestPlugin", "CfgRequestPlugin", True),
    ("MailsRequest", "MailsRequest", True),
    # errors are envelopes of the same schema
    ("UserRecordGet/999999", "UserRecordGet/{login}", False),
    ("UsersRequest?limit=6000", "UsersRequest", False),
]


@pytest.mark.parametrize(("url", "path", "sidecar"), MT4_READS, ids=[r[0][:40] for r in MT4_READS])
def test_mt4_reads_match_the_openapi_document(api: Api, url: str, path: str, sidecar: bool) -> None:
    r = api.mt4("GET", url, sidecar=sidecar)
    assert r.status_code == 200, r.text
    validate_envelope("GET", f"MT4/{{tradePlatform}}/{path}", r.json())


MT5_READS = [
    ("ServerTime", "ServerTime"),
    ("TimeGet", "TimeGet"),
    ("ManagerCurrent", "ManagerCurrent"),
    ("GroupGet/real%5Ceur", "GroupGet/{group}"),
    ("UserGet/5000001", "UserGet/{login}"),
    ("SymbolGet/EURUSD", "SymbolGet/{symbol}"),
    ("PositionByGroup/real%5C*?limit=10", "PositionByGroup/{mask}"),
    ("OrderByGroup/*?limit=10", "OrderByGroup/{mask}"),
    ("DealByGroup/*?limit=10", "DealByGroup/{mask}"),
]


@pytest.mark.parametrize(("url", "path"), MT5_READS, ids=[r[0] for r in MT5_READS])
def test_mt5_reads_match_the_openapi_document(api: Api, url: str, path: str) -> None:
    r = api.mt5("GET", url)
    validate_envelope("GET", f"MT5/{{tradePlatform}}/{path}", r.json())
    assert r.json()["error"] is None


def test_mt5_patches_match_the_openapi_document(api: Api) -> None:
    r = api.mt5("PATCH", "UserRecord/5000002", json={"comment": "vip", "unknownKey": 1})
    validate_envelope("PATCH", "MT5/{tradePlatform}/UserRecord/{login}", r.json())
    assert api.ok(r)["comment"] == "vip"
    r = api.mt5("PATCH", "GroupRecord/demo%5Cusd", json={"marginCall": 60.0})
    validate_envelope("PATCH", "MT5/{tradePlatform}/GroupRecord/{group}", r.json())
    r = api.mt5("PATCH", "SymbolRecord/US30", json={"description": "Wall Street 30"})
    validate_envelope("PATCH", "MT5/{tradePlatform}/SymbolRecord/{symbol}", r.json())
    assert api.ok(api.mt5("GET", "SymbolGet/US30"))["description"] == "Wall Street 30"


def test_writes_match_the_openapi_document(api: Api, fresh_login: int) -> None:
    r = api.tx(
        {
            "tradeTransactionType": "BrBalance",
            "tradeCommand": "Balance",
            "orderBy": fresh_login,
            "price": 10,
            "comment": "schema",
        }
    )
    validate_envelope("POST", "MT4/{tradePlatform}/TradeTransaction", r.json())
    r = api.mt4("PATCH", f"UserRecord/{fresh_login}", json={"comment": "patched"})
    validate_envelope("PATCH", "MT4/{tradePlatform}/UserRecord/{login}", r.json())
    r = api.mt4("POST", "UserRecordNew", json={"group": "demo\\usd", "name": "New Client"})
    validate_envelope("POST", "MT4/{tradePlatform}/UserRecordNew", r.json())
    r = api.mt4("POST", "UsersSyncStart", params={"timestamp": 0})
    validate_envelope("POST", "MT4/{tradePlatform}/UsersSyncStart", r.json())
    r = api.mt4("POST", "ExternalCommandBinary", sidecar=True, json={"data": "AQID"})
    validate_envelope("POST", "MT4/{tradePlatform}/ExternalCommandBinary", r.json())
    assert api.ok(r)["data"] == "AwIB"


def test_answers_parse_in_the_vendor_sdk(api: Api) -> None:
    from cplugin_webapi_sdk._generated.models.mt4_margin_level import MT4MarginLevel
    from cplugin_webapi_sdk._generated.models.mt4_trade import MT4Trade
    from cplugin_webapi_sdk._generated.models.mt4_user import MT4User
    from cplugin_webapi_sdk._generated.models.mt5_position import MT5Position

    for row in api.ok(api.mt4("GET", "UsersRequest", params={"limit": 20})):
        assert MT4User.from_dict(row).login == row["login"]
    for row in api.ok(api.mt4("GET", "TradesRequest", params={"limit": 20})):
        assert MT4Trade.from_dict(row).order == row["order"]
    for row in api.ok(api.mt4("GET", "TradesUserHistory/100004")):
        MT4Trade.from_dict(row)
    MT4MarginLevel.from_dict(api.ok(api.mt4("GET", "MarginLevelGet/100002")))
    for row in api.ok(api.mt5("GET", "PositionByGroup/*", params={"limit": 20})):
        MT5Position.from_dict(row)
