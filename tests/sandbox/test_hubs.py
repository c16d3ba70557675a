"""The sandbox's SignalR hubs speak the real protocol (reference §6)."""

from __future__ import annotations

import asyncio
import json
import threading
import time

import httpx
import pytest
import websockets

from tests.sandbox_process import start_sandbox

RS = "\x1e"
pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def hsb():
    info = start_sandbox("--users", "120", "--seed", "5", "--tick-rate", "0")
    yield info
    info.stop()


@pytest.fixture
def token(hsb) -> str:
    httpx.delete(f"{hsb.control_url}/hubs/faults").raise_for_status()
    response = httpx.post(
        f"{hsb.base_url}/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": "sandbox",
            "client_secret": "sandbox-secret",
        },
    )
    return response.json()["access_token"]


def _hub(hsb, kind="mt4") -> str:
    return (
        f"{hsb.base_url}/hubs/{kind}/v2?tradePlatform={hsb.mt4_id if kind == 'mt4' else hsb.mt5_id}"
    )


async def _open(hsb, token, kind="mt4", how="header"):
    url = _hub(hsb, kind)
    async with httpx.AsyncClient() as http:
        neg = await http.post(
            url.replace("/v2?", "/v2/negotiate?") + "&negotiateVersion=1",
            headers={"Authorization": f"Bearer {token}"},
        )
    assert neg.status_code == 200, neg.text
    body = neg.json()
    ws_url = url.replace("http://", "ws://") + f"&id={body['connectionToken']}"
    headers = None
    if how == "header":
        headers = {"Authorization": f"Bearer {token}"}
    else:
        ws_url += f"&{how}={token}"
    ws = await websockets.connect(ws_url, additional_headers=headers)
    await ws.send(json.dumps({"protocol": "json", "version": 1}) + RS)
    return ws, body


async def _records(ws, until, timeout=5.0):
    out, buffer = [], ""
    deadline = time.monotonic() + timeout
    while not until(out):
        raw = await asyncio.wait_for(ws.recv(), deadline - time.monotonic())
        buffer += raw
        *records, buffer = buffer.split(RS)
        out += [json.loads(r) for r in records if r]
    return out


async def test_negotiate_shape_handshake_and_connection_status(hsb, token):
    ws, body = await _open(hsb, token)
    assert set(body) == {
        "connectionId",
        "connectionToken",
        "negotiateVersion",
        "availableTransports",
    }
    assert body["negotiateVersion"] == 1
    assert body["availableTransports"] == [
        {"transport": "WebSockets", "transferFormats": ["Text", "Binary"]}
    ]
    records = await _records(ws, lambda r: len(r) >= 2)
    assert records[0] == {}
    assert records[1] == {
        "type": 1,
        "target": "OnConnectionStatus",
        "arguments": [{"connected": True}],
    }
    await ws.close()


@pytest.mark.parametrize("how", ["header", "access_token", "signalr_token"])
async def test_the_token_is_accepted_three_ways(hsb, token, how):
    ws, _ = await _open(hsb, token, how=how)
    records = await _records(ws, lambda r: len(r) >= 2)
    assert records[1]["target"] == "OnConnectionStatus"
    await ws.close()


async def test_without_a_token_negotiate_is_401_and_the_socket_refused(hsb, token):
    url = _hub(hsb)
    r = httpx.post(url.replace("/v2?", "/v2/negotiate?") + "&negotiateVersion=1")
    assert r.status_code == 401
    with pytest.raises(websockets.InvalidStatus) as caught:
        await websockets.connect(url.replace("http://", "ws://"))
    assert caught.value.response.status_code == 401


async def test_subscribe_to_ticks_completes_then_pushes_on_tick(hsb, token):
    ws, _ = await _open(hsb, token)
    await _records(ws, lambda r: len(r) >= 2)
    await ws.send(
        json.dumps(
            {"type": 1, "invocationId": "7", "target": "SubscribeToTicks", "arguments": ["EURUSD"]}
        )
        + RS
    )
    done = await _records(ws, lambda r: any(m.get("type") == 3 for m in r))
    assert {"type": 3, "invocationId": "7"} in done
    httpx.post(f"{hsb.control_url}/market/tick", json={"count": 1}).raise_for_status()
    pushed = await _records(ws, lambda r: any(m.get("target") == "OnTick" for m in r))
    tick = next(m for m in pushed if m.get("target") == "OnTick")["arguments"][0]
    assert set(tick) == {"symbol", "bid", "ask", "lastTime"} and tick["symbol"] == "EURUSD"
    await ws.close()


async def test_streams_carry_trades_and_margin_calls_with_the_documented_shapes(hsb, token):
    ws, _ = await _open(hsb, token)
    await _records(ws, lambda r: len(r) >= 2)
    for inv, target in (
        ("1", "StreamTrades"),
        ("2", "StreamMarginCallUpdates"),
        ("3", "StreamUserUpdates"),
    ):
        await ws.send(
            json.dumps({"type": 4, "invocationId": inv, "target": target, "arguments": []}) + RS
        )
    await asyncio.sleep(0.1)
    pushed = httpx.post(f"{hsb.control_url}/hubs/margin-call", json={"login": 100003})
    assert pushed.status_code == 200, pushed.text
    records = await _records(ws, lambda r: any(m.get("invocationId") == "2" for m in r))
    margin = next(m for m in records if m.get("invocationId") == "2")["item"]
    assert set(margin) == {
        "login",
        "group",
        "leverage",
        "updated",
        "balance",
        "equity",
        "volumeLots",
        "margin",
        "free",
        "level",
        "controllingType",
        "levelType",
    }
    assert margin["login"] == 100003 and margin["levelType"] == 1
    # a trade through the REST API arrives on StreamTrades as "Added"
    async with httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"}) as http:
        r = await http.post(
            f"{hsb.base_url}/api/v2/MT4/{hsb.mt4_id}/TradeTransaction",
            json={
                "tradeTransactionType": "BrOpen",
                "tradeCommand": "Buy",
                "orderBy": 100005,
                "symbol": "EURUSD",
                "volume": 1,
            },
        )
    assert r.json()["error"] is None, r.text
    records = await _records(ws, lambda r: any(m.get("invocationId") == "1" for m in r))
    trade = next(m for m in records if m.get("invocationId") == "1")["item"]
    assert trade["kind"] == "Added" and trade["login"] == 100005 and trade["cmd"] == 0
    assert set(trade) >= {
        "order",
        "symbol",
        "volumeLots",
        "openPrice",
        "openTime",
        "sl",
        "tp",
        "closePrice",
        "closeTime",
        "commission",
        "storage",
        "profit",
        "taxes",
        "comment",
    }
    await ws.close()


async def test_mt5_hub_streams_margin_calls(hsb, token):
    ws, _ = await _open(hsb, token, kind="mt5")
    await _records(ws, lambda r: len(r) >= 2)
    await ws.send(
        json.dumps(
            {"type": 4, "invocationId": "9", "target": "StreamMarginCallUpdates", "arguments": []}
        )
        + RS
    )
    await asyncio.sleep(0.1)
    login = 5000001  # the first generated MT5 user
    httpx.post(
        f"{hsb.control_url}/hubs/margin-call", json={"login": login, "platform": "MT5"}
    ).raise_for_status()
    records = await _records(ws, lambda r: any(m.get("invocationId") == "9" for m in r))
    item = next(m for m in records if m.get("invocationId") == "9")["item"]
    assert item == {"login": login, "type": "MarginCall", "direction": "Enter"}
    await ws.close()


async def test_faults_drop_stall_and_refuse(hsb, token):
    ws, _ = await _open(hsb, token)
    await _records(ws, lambda r: len(r) >= 2)
    assert httpx.post(f"{hsb.control_url}/hubs/drop").json()["dropped"] >= 1
    with pytest.raises(websockets.ConnectionClosed):
        await _records(ws, lambda r: False, timeout=3)
    httpx.post(f"{hsb.control_url}/hubs/negotiate", json={"refuse": True})
    r = httpx.post(
        _hub(hsb).replace("/v2?", "/v2/negotiate?"), headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 503
    httpx.delete(f"{hsb.control_url}/hubs/faults")
    httpx.post(f"{hsb.control_url}/hubs/config", json={"keepAliveSeconds": 0.2})
    ws, _ = await _open(hsb, token)
    await _records(ws, lambda r: any(m.get("type") == 6 for m in r))  # keep-alive pings
    httpx.post(f"{hsb.control_url}/hubs/stall", json={"stalled": True})
    await asyncio.sleep(0.3)
    with pytest.raises(TimeoutError):
        await _records(ws, lambda r: False, timeout=1.0)  # open, but silent
    httpx.delete(f"{hsb.control_url}/hubs/faults")
    httpx.post(f"{hsb.control_url}/hubs/config", json={"keepAliveSeconds": 15})
    await ws.close()


def test_the_vendor_sdk_realtime_client_gets_ticks_and_trades(hsb, token):
    """``mywebapi-sdk[signalr]`` (signalrcore) against the sandbox hub: the real protocol."""
    from cplugin_webapi_sdk import CPluginWebApiClient

    ticks, trades, status = [], [], []
    got = threading.Event()
    with CPluginWebApiClient(
        env="custom",
        api_base_url=hsb.base_url,
        authority=hsb.authority,
        client_id=hsb.client_id,
        client_secret=hsb.client_secret,
    ) as client:
        rt = client.realtime.mt4(hsb.mt4_id)
        rt.on_connection_status(lambda args: status.append(args))
        rt.on_tick(lambda args: (ticks.append(args), got.set()))
        with rt:
            deadline = time.monotonic() + 10
            while not status and time.monotonic() < deadline:
                time.sleep(0.05)
            assert status, "no OnConnectionStatus"
            rt.stream_trades().subscribe(
                {
                    "next": lambda item: trades.append(item),
                    "complete": lambda *a: None,
                    "error": lambda *a: None,
                }
            )
            rt.subscribe_to_ticks("GBPUSD")
            time.sleep(0.3)
            httpx.post(f"{hsb.control_url}/market/tick", json={"count": 1}).raise_for_status()
            r = httpx.post(
                f"{hsb.base_url}/api/v2/MT4/{hsb.mt4_id}/TradeTransaction",
                headers={"Authorization": f"Bearer {token}"},
                json={
                    "tradeTransactionType": "BrOpen",
                    "tradeCommand": "Sell",
                    "orderBy": 100007,
                    "symbol": "GBPUSD",
                    "volume": 2,
                },
            )
            assert r.status_code == 200
            deadline = time.monotonic() + 10
            while (not ticks or not trades) and time.monotonic() < deadline:
                time.sleep(0.05)
    assert status[0] == [{"connected": True}]
    tick = ticks[0][0] if isinstance(ticks[0], list) else ticks[0]
    assert tick["symbol"] == "GBPUSD" and tick["bid"] > 0
    trade = trades[0]
    assert trade["kind"] == "Added" and trade["login"] == 100007
