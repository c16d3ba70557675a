"""Auth, discovery, the envelope, documented errors, deadlines and cursor paging."""

from __future__ import annotations

import base64

import httpx
import pytest

from tests.sandbox.conftest import Api, fetch_token
from tests.sandbox_process import SandboxInfo


def test_discovery_and_token_flow(clean_sandbox: SandboxInfo) -> None:
    doc = httpx.get(f"{clean_sandbox.authority}/.well-known/openid-configuration").json()
    assert doc["issuer"] == clean_sandbox.authority
    assert doc["token_endpoint"] == f"{clean_sandbox.authority}/connect/token"
    assert "client_credentials" in doc["grant_types_supported"]
    assert doc["token_endpoint_auth_methods_supported"] == [
        "client_secret_basic",
        "client_secret_post",
    ]
    assert {"webapi", "webapi.read", "webapi.write"} <= set(doc["scopes_supported"])
    # secret in the form
    r = httpx.post(
        doc["token_endpoint"],
        data={
            "grant_type": "client_credentials",
            "client_id": clean_sandbox.client_id,
            "client_secret": clean_sandbox.client_secret,
        },
    )
    body = r.json()
    assert r.status_code == 200 and body["token_type"] == "Bearer" and body["expires_in"] == 3600
    assert body["access_token"] and body["scope"]
    # HTTP Basic
    r = httpx.post(
        doc["token_endpoint"],
        data={"grant_type": "client_credentials", "scope": "webapi"},
        auth=(clean_sandbox.client_id, clean_sandbox.client_secret),
    )
    assert r.status_code == 200 and r.json()["scope"] == "webapi"


def test_token_errors(clean_sandbox: SandboxInfo) -> None:
    url = f"{clean_sandbox.authority}/connect/token"
    r = httpx.post(
        url,
        data={"grant_type": "client_credentials", "client_id": "sandbox", "client_secret": "wrong"},
    )
    assert r.status_code in (400, 401) and r.json()["error"] == "invalid_client"
    r = httpx.post(url, data={"grant_type": "client_credentials"}, auth=("sandbox", "nope"))
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"
    r = httpx.post(
        url,
        data={"grant_type": "password", "client_id": "sandbox", "client_secret": "sandbox-secret"},
    )
    assert r.status_code == 400 and r.json()["error"] == "unsupported_grant_type"


def test_missing_or_invalid_token_is_401(clean_sandbox: SandboxInfo) -> None:
    url = f"{clean_sandbox.base_url}/api/v2/MT4/{clean_sandbox.mt4_id}/ServerTime"
    r = httpx.get(url)
    assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
    r = httpx.get(url, headers={"Authorization": "Bearer not-a-token"})
    assert r.status_code == 401
    r = httpx.get(f"{clean_sandbox.base_url}/api/TradePlatforms")
    assert r.status_code == 401


def test_revoked_tokens_are_rejected(clean_sandbox: SandboxInfo) -> None:
    old = Api(clean_sandbox, fetch_token(clean_sandbox))
    assert old.mt4("GET", "ServerTime").status_code == 200
    clean_sandbox.control("POST", "/tokens/revoke")
    assert old.mt4("GET", "ServerTime").status_code == 401
    assert old.mt4("GET", "UsersSnapshot", sidecar=True).status_code == 401
    new = Api(clean_sandbox, fetch_token(clean_sandbox))
    assert new.mt4("GET", "ServerTime").status_code == 200


def test_trade_platforms_and_ping(api: Api) -> None:
    info = api.info
    rows = api.http.get(f"{info.base_url}/api/TradePlatforms").json()
    assert {(r["type"], r["id"]) for r in rows} == {("MT4", info.mt4_id), ("MT5", info.mt5_id)}
    for row in rows:
        assert {"id", "name", "type", "login", "organizationId", "organization", "created"} <= set(
            row
        )
    ping = api.http.get(f"{info.base_url}/api/TradePlatforms/{info.mt4_id}/Ping")
    assert ping.status_code == 200 and ping.json()["connected"] is True
    missing = api.http.get(
        f"{info.base_url}/api/TradePlatforms/00000000-0000-0000-0000-000000000000/Ping"
    )
    assert missing.status_code == 404


def test_envelope_shape_and_headers(api: Api) -> None:
    r = api.mt4("GET", "ServerTime")
    body = r.json()
    assert set(body) == {"data", "error", "meta"} and body["error"] is None
    assert len(body["meta"]["activityId"]) == 32 and "paging" not in body["meta"]
    assert r.headers["x-request-timeout-applied"] == "10"
    assert api.mt4("GET", "TradesUserHistory/100001").headers["x-request-timeout-applied"] == "30"
    assert api.mt4("POST", "UsersSyncStart").headers["x-request-timeout-applied"] == "60"
    r = api.mt4("GET", "ServerTime", headers={"X-Request-Timeout": "2.5"})
    assert r.headers["x-request-timeout-applied"] == "2.5"
    r = api.mt4("GET", "ServerTime", params={"requestTimeout": "7"})
    assert r.headers["x-request-timeout-applied"] == "7"


@pytest.mark.parametrize("value", ["0", "301", "abc", "-5", "nan"])
def test_bad_request_timeout_is_validation(api: Api, value: str) -> None:
    err = api.err(api.mt4("GET", "ServerTime", headers={"X-Request-Timeout": value}))
    assert err["code"] == "Validation"
    err = api.err(api.mt4("GET", "ServerTime", params={"requestTimeout": value}))
    assert err["code"] == "Validation"


def test_documented_errors(api: Api) -> None:
    assert api.err(api.mt4("GET", "UserRecordGet/999999"))["code"] == "NotFound"
    assert api.err(api.mt4("GET", "MarginLevelGet/999999"))["code"] == "NotFound"
    assert api.err(api.mt4("GET", "SymbolInfoGet", params={"symbol": "NOPE"}))["code"] == "NotFound"
    assert api.err(api.mt4("GET", "CfgRequestSymbol/NOPE"))["code"] == "NotFound"
    assert api.err(api.mt4("GET", "ChartRequest/NOPE"))["code"] == "NotFound"
    assert (
        api.err(
            api.tx(
                {
                    "tradeTransactionType": "BrOpen",
                    "tradeCommand": "Buy",
                    "orderBy": 100001,
                    "symbol": "NOPE",
                    "volume": 10,
                }
            )
        )["code"]
        == "NotFound"
    )
    for limit in ("6000", "0", "-1", "x"):
        assert (
            api.err(api.mt4("GET", "UsersRequest", params={"limit": limit}))["code"] == "Validation"
        )
    for cursor in ("!!!", "bm90LWpzb24", base64.urlsafe_b64encode(b'{"v":1,"k":"a"}').decode()):
        err = api.err(api.mt4("GET", "UsersRequest", params={"limit": 10, "cursor": cursor}))
        assert err["code"] == "Validation", cursor
    r = api.mt4(
        "POST",
        "TradeTransaction",
        content=b'{"tradeTransactionType": ',
        headers={"Content-Type": "application/json"},
    )
    assert api.err(r)["code"] == "Validation"
    r = api.mt4(
        "PATCH", "UserRecord/100001", content=b"{nope", headers={"Content-Type": "application/json"}
    )
    assert api.err(r)["code"] == "Validation"
    err = api.err(api.tx({"tradeTransactionType": "Teleport"}))
    assert err["code"] == "Validation" and "BrBalance" in err["message"]


def test_unknown_platform_and_wrong_family_are_not_found(api: Api) -> None:
    r = api.http.get(
        f"{api.info.base_url}/api/v2/MT4/00000000-0000-0000-0000-000000000000/ServerTime"
    )
    assert api.err(r)["code"] == "NotFound"
    r = api.http.get(f"{api.info.base_url}/api/v2/MT4/{api.info.mt5_id}/ServerTime")
    assert api.err(r)["code"] == "NotFound"
    r = api.http.get(f"{api.info.base_url}/api/v2/MT5/{api.info.mt4_id}/ServerTime")
    assert api.err(r)["code"] == "NotFound"


def test_users_paging_returns_every_login_once_in_order(api: Api) -> None:
    everything = [u["login"] for u in api.ok(api.mt4("GET", "UsersRequest"))]
    assert everything == sorted(everything) and len(everything) >= 300
    seen: list[int] = []
    cursor = None
    pages = 0
    while True:
        params = {"limit": 37}
        if cursor:
            params["cursor"] = cursor
        body = api.mt4("GET", "UsersRequest", params=params).json()
        assert body["error"] is None
        rows = body["data"]
        assert len(rows) <= 37
        seen += [u["login"] for u in rows]
        paging = body["meta"]["paging"]
        pages += 1
        if not paging["hasMore"]:
            assert not paging.get("nextCursor")
            break
        cursor = paging["nextCursor"]
    assert seen == everything
    assert pages == -(-len(everything) // 37)


def test_trades_paging_and_group_filter(api: Api) -> None:
    all_tickets = [t["order"] for t in api.ok(api.mt4("GET", "TradesRequest"))]
    paged: list[int] = []
    cursor = None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        body = api.mt4("GET", "TradesGet", params=params).json()
        paged += [t["order"] for t in body["data"]]
        if not body["meta"]["paging"]["hasMore"]:
            break
        cursor = body["meta"]["paging"]["nextCursor"]
    assert paged == sorted(all_tickets) == all_tickets
    eur = api.ok(api.mt4("GET", "TradesRequest", params={"group": "real\\eur"}))
    logins = {
        u["login"] for u in api.ok(api.mt4("GET", "UsersRequest")) if u["group"] == "real\\eur"
    }
    assert eur and all(t["login"] in logins for t in eur)


def test_mt5_masks_and_paging(api: Api) -> None:
    everything = api.ok(api.mt5("GET", "PositionByGroup/*"))
    ids = [p["position"] for p in everything]
    assert ids == sorted(ids)
    real = api.ok(api.mt5("GET", "PositionByGroup/real%5C*"))
    assert real and all(p["login"] for p in real) and len(real) < len(everything)
    paged: list[int] = []
    cursor = None
    while True:
        body = api.mt5(
            "GET", "DealByGroup/*", params={"limit": 25, **({"cursor": cursor} if cursor else {})}
        ).json()
        paged += [d["deal"] for d in body["data"]]
        if not body["meta"]["paging"]["hasMore"]:
            break
        cursor = body["meta"]["paging"]["nextCursor"]
    assert paged == sorted(paged) == [d["deal"] for d in api.ok(api.mt5("GET", "DealByGroup/*"))]
    assert api.err(api.mt5("GET", "UserGet/1"))["code"] == "NotFound"
    assert api.err(api.mt5("GET", "SymbolGet/NOPE"))["code"] == "NotFound"


def test_chart_bars_are_deterministic_ohlc(api: Api) -> None:
    params = {"period": "H1", "start": "2026-10-01T00:00:00Z", "end": "2026-10-02T00:00:00Z"}
    bars = api.ok(api.mt4("GET", "ChartRequest/EURUSD", params=params))
    assert len(bars) == 25
    for b in bars:
        assert b["low"] <= min(b["open"], b["close"]) <= max(b["open"], b["close"]) <= b["high"]
    assert bars == api.ok(api.mt4("GET", "ChartRequest/EURUSD", params=params))
    assert (
        api.err(api.mt4("GET", "ChartRequest/EURUSD", params={"period": "H2"}))["code"]
        == "Validation"
    )
