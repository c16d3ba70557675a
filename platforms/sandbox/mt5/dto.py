"""The MT5 records as the vendor's v2 DTOs: groups, deals and symbols (users, positions and
orders are generated as dicts in :mod:`.generation`)."""

from __future__ import annotations

from typing import Any

from ..market import Group, Symbol
from ..wire import iso


def group_record(g: Group) -> dict[str, Any]:
    """The v2 group record of one of the shared default groups."""
    return {
        "group": g.name,
        "server": 1,
        "permissionsFlags": "EnableConnection",
        "authMode": "Standard",
        "authPasswordMin": 8,
        "company": g.company,
        "currency": g.currency,
        "currencyDigits": 2,
        "reportsMode": "Full",
        "newsMode": "Full",
        "mailMode": "Full",
        "tradeInterestRate": 0.0,
        "tradeVirtualCredit": 0.0,
        "marginFreeMode": "UsePL",
        "marginSOMode": "Percent",
        "marginCall": float(g.margin_call),
        "marginStopOut": float(g.stop_out),
        "demoLeverage": g.leverage,
        "demoDeposit": g.deposit,
        "limitHistory": "All",
        "limitOrders": 0,
        "limitSymbols": 0,
        "limitPositions": 0,
        "marginMode": "RetailHedged",
        "authOTPMode": "Disabled",
    }


def deal_record(
    deal: int,
    login: int,
    order: int,
    action: str,
    entry: str,
    sym: Symbol | None,
    ts: float,
    price: float,
    volume: int,
    profit: float,
    comment: str,
    position: int,
) -> dict:
    return {
        "deal": deal,
        "externalID": "",
        "login": login,
        "dealer": 0,
        "partyID": 0,
        "order": order,
        "action": action,
        "entry": entry,
        "digits": sym.digits if sym else 2,
        "digitsCurrency": 2,
        "contractSize": sym.contract if sym else 0.0,
        "time": iso(ts),
        "symbol": sym.name if sym else "",
        "price": price,
        "priceSL": 0.0,
        "priceTP": 0.0,
        "volume": volume,
        "volumeExt": volume * 10000,
        "volumeClosed": 0,
        "volumeClosedExt": 0,
        "profit": profit,
        "value": 0.0,
        "storage": 0.0,
        "commission": 0.0,
        "obsoleteValue": 0.0,
        "fee": 0.0,
        "rateProfit": 1.0,
        "rateMargin": 1.0,
        "expertID": 0,
        "positionID": position,
        "comment": comment,
        "profitRaw": profit,
        "pricePosition": price,
        "tickValue": 0.0,
        "tickSize": 0.0,
        "flags": 0,
        "timeMsc": iso(ts),
        "reason": "Client" if sym else "Dealer",
        "gateway": "",
        "priceGateway": 0.0,
        "marketBid": price,
        "marketAsk": price,
        "marketLast": 0.0,
        "modificationFlags": "None",
    }


def symbol_record(sym: Symbol, patch: dict[str, Any]) -> dict[str, Any]:
    """The symbol's v2 record with the fields a ``SymbolRecord`` patch changed."""
    d = {
        "symbol": sym.name,
        "path": f"{['Forex', 'Metals', 'Indices'][sym.type]}\\{sym.name}",
        "isin": "",
        "description": sym.description,
        "international": "",
        "basis": "",
        "source": "",
        "page": "",
        "currencyBase": sym.base,
        "currencyBaseDigits": 2,
        "currencyProfit": sym.quote,
        "currencyProfitDigits": 2,
        "currencyMargin": sym.base if sym.margin_mode == "Forex" else sym.quote,
        "currencyMarginDigits": 2,
        "color": 0,
        "colorBackground": 0,
        "digits": sym.digits,
        "point": sym.point,
        "multiply": float(10**sym.digits),
        "tradeMode": "Full",
        "calcMode": {"Forex": "Forex", "CFD": "Cfd", "CFDLeverage": "CfdLeverage"}[
            sym.margin_mode
        ],
        "execMode": "Market",
        "gtcMode": "GtC",
        "spread": 0,
        "spreadBalance": 0,
        "tickValue": sym.contract * sym.point,
        "tickSize": sym.point,
        "contractSize": sym.contract,
        "stopsLevel": sym.stops_level,
        "freezeLevel": 0,
        "volumeMin": 100,
        "volumeMax": 1000000,
        "volumeStep": 100,
        "volumeLimit": 0,
        "marginInitial": 0.0,
        "marginMaintenance": 0.0,
        "swapMode": "ByPoints",
        "swapLong": sym.swap_long,
        "swapShort": sym.swap_short,
        "swap3Day": "Wednesday",
        "sector": "Currency"
        if sym.type == 0
        else "Commodities"
        if sym.type == 1
        else "Indexes",
        "industry": "Undefined",
        "country": "",
        "category": "",
        "exchange": "",
    }
    d.update(patch)
    return d
