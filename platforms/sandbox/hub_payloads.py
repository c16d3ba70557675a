"""What the SignalR hubs push (reference §6): ticks, trades, users, symbols and margin levels,
as the JSON items of ``OnTick`` and the ``Stream*`` methods."""

from __future__ import annotations

import time
from typing import Any

from .market import Symbol
from .mt4.platform import MT4Platform
from .mt4.records import Account, Trade
from .wire import iso

LEVEL_TYPES = {"Ok": 0, "MarginCall": 1, "StopOut": 2}


def tick_payload(sym: Symbol) -> dict[str, Any]:
    return {"symbol": sym.name, "bid": sym.bid, "ask": sym.ask, "lastTime": iso(sym.last_time)}


def trade_payload(kind: str, t: Trade) -> dict[str, Any]:
    sym = t.sym
    return {
        "kind": kind,
        "order": t.ticket,
        "login": t.login,
        "symbol": sym.name if sym else "",
        "cmd": t.cmd,
        "volumeLots": t.volume / 100.0,
        "openPrice": t.open_price,
        "openTime": iso(t.open_time),
        "sl": t.sl,
        "tp": t.tp,
        "closePrice": t.close_price,
        "closeTime": iso(t.close_time),
        "commission": t.commission,
        "storage": t.storage,
        "profit": t.profit,
        "taxes": 0.0,
        "comment": t.comment or "",
    }


def user_payload(kind: str, acc: Account) -> dict[str, Any]:
    return {
        "kind": kind,
        "login": acc.login,
        "group": acc.group.name,
        "name": acc.name,
        "country": acc.country,
        "leverage": acc.leverage,
        "balance": acc.balance,
        "credit": acc.credit,
        "enabled": bool(acc.enable_flags & 0x01),
        "readOnly": bool(acc.enable_flags & 0x04),
        "regDate": iso(acc.reg_time),
        "lastDate": iso(acc.last_time),
        "email": acc.email,
        "phone": acc.phone,
        "comment": acc.comment,
    }


def symbol_payload(kind: str, sym: Symbol) -> dict[str, Any]:
    return {
        "kind": kind,
        "symbol": sym.name,
        "description": sym.description,
        "currency": sym.quote,
        "digits": sym.digits,
        "tradeMode": 2,
        "spread": sym.spread,
        "stopsLevel": sym.stops_level,
        "freezeLevel": 0,
        "contractSize": sym.contract,
        "tickValue": sym.contract * sym.point,
        "tickSize": sym.point,
        "marginInitial": 0.0,
        "marginMaintenance": 0.0,
    }


def margin_payload(platform: MT4Platform, acc: Account) -> dict[str, Any]:
    info = platform.margin_info(acc)
    return {
        "login": acc.login,
        "group": acc.group.name,
        "leverage": acc.leverage,
        "updated": int(platform.utc_offset_seconds + time.time()),  # the server's clock
        "balance": acc.balance,
        "equity": info["equity"],
        "volumeLots": info["volume"] / 100.0,
        "margin": info["margin"],
        "free": info["free"],
        "level": info["level"],
        "controllingType": 0,
        "levelType": LEVEL_TYPES.get(acc.level_type, 0),
    }
