"""The MT4 records as the vendor's v2 DTOs (camelCase, enum names, ISO dates), and a user DTO
patch applied back onto an account."""

from __future__ import annotations

from typing import Any

from ..market import SYMBOL_GROUPS, TRADE_COMMANDS, Group, Symbol
from ..wire import encode, flags_to_str, iso, mt4_error, to_wall, validation
from .platform import MT4Platform
from .records import Account, Trade

GROUP_RIGHTS = [
    ("Signals", 0x1),
    ("Trailing", 0x2),
    ("Advisor", 0x4),
    ("Expiration", 0x8),
    ("SignalAll", 0x10),
    ("SignalsOwn", 0x20),
    ("RiskWarning", 0x40),
    ("ForcedOTPUsage", 0x80),
]
TRADE_TYPES = [
    "PricesGet",
    "PricesRequote",
    "OpenInstant",
    "OpenRequest",
    "OpenMarket",
    "PendingOpen",
    "CloseInstant",
    "CloseRequest",
    "CloseMarket",
    "Modify",
    "Delete",
    "CloseBy",
    "CloseAll",
    "BrOpen",
    "BrClose",
    "BrDelete",
    "BrCloseBy",
    "BrCloseAll",
    "BrModify",
    "BrActivate",
    "BrComment",
    "BrBalance",
]
TRADE_TYPE_NUMBERS = [
    0,
    1,
    64,
    65,
    66,
    67,
    68,
    69,
    70,
    71,
    72,
    73,
    74,
    75,
    76,
    77,
    78,
    79,
    80,
    81,
    82,
    83,
]
REQUEST_FLAGS = [
    ("Signal", 0x1),
    ("Expert", 0x2),
    ("Gateway", 0x4),
    ("Mobile", 0x8),
    ("Web", 0x10),
    ("API", 0x20),
]


def _strip(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def user_dict(acc: Account) -> dict[str, Any]:
    return _strip(
        {
            "login": acc.login,
            "group": acc.group.name,
            "name": acc.name,
            "registrationDate": iso(acc.reg_time),
            "lastDate": iso(acc.last_time),
            "externalId": acc.external_id,
            "status": acc.status,
            "country": acc.country,
            "city": acc.city,
            "state": acc.state,
            "zipCode": acc.zip_code,
            "address": acc.address,
            "leadSource": acc.lead_source,
            "phone": acc.phone,
            "email": acc.email,
            "comment": acc.comment,
            "leverage": acc.leverage,
            "agentAccount": acc.agent,
            "lastIP": acc.last_ip,
            "balance": acc.balance,
            "credit": acc.credit,
            "prevMonthBalance": acc.prev_balance,
            "prevBalance": acc.prev_balance,
            "prevMonthEquity": acc.prev_equity,
            "prevEquity": acc.prev_equity,
            "interestRate": acc.interest_rate,
            "taxes": acc.taxes,
            "enableFlags": acc.enable_flags,
            "sendReports": acc.send_reports,
            "mqid": acc.mqid,
            "userColor": acc.color,
        }
    )


def user_bytes(acc: Account) -> bytes:
    b = acc.json
    if b is None:
        b = acc.json = encode(user_dict(acc))
    return b


def trade_dict(p: MT4Platform, t: Trade) -> dict[str, Any]:
    sym = t.sym
    profit = t.profit
    if t.state == "OpenNormal" and t.cmd <= 1:
        acc = p.accounts.get(t.login)
        ccy = acc.group.currency if acc else "USD"
        profit = p.market.trade_profit(sym, t.cmd, t.volume, t.open_price, ccy)
    close_price = t.close_price
    if t.state == "OpenNormal" and sym is not None:
        close_price = sym.bid if t.cmd in (0, 2, 4) else sym.ask
    return _strip(
        {
            "order": t.ticket,
            "login": t.login,
            "symbol": sym.name if sym else "",
            "digits": sym.digits if sym else 0,
            "tradeCommand": TRADE_COMMANDS[t.cmd],
            "volume": t.volume,
            "volumeLots": t.volume / 100.0,
            "tradeRecordState": t.state,
            "openPrice": t.open_price,
            "sl": t.sl,
            "tp": t.tp,
            "openTime": iso(t.open_time),
            "closeTime": iso(t.close_time),
            "closePrice": close_price,
            "commission": t.commission,
            "commissionAgent": 0.0,
            "storage": t.storage,
            "profit": profit,
            "taxes": 0.0,
            "magic": t.magic,
            "comment": t.comment,
            "expiration": iso(t.expiration),
            "tradeRecordReason": t.reason,
            "activationType": t.activation,
            "timeStamp": iso(t.mtime),
            "marginRate": t.margin_rate,
        }
    )


def trade_bytes(p: MT4Platform, t: Trade) -> bytes:
    return encode(trade_dict(p, t))


def margin_bytes(p: MT4Platform, acc: Account, now: float) -> bytes:
    """The account's ``MT4MarginLevel``, encoded; cached until one of its inputs changes.

    Like the server's cache that ``MarginsGet`` reads: ``updated`` is when the figures were
    last (re)computed with a different result, so an answer about 100,000 accounts of which
    a few changed re-encodes only those few, and a reader can tell which figures moved since
    a time of its own.
    """
    g = acc.group
    basis = (p.calc(acc), acc.balance, acc.credit, acc.leverage, g.name, g.margin_call,
             g.stop_out)
    if basis == acc.margin_basis and acc.margin_json is not None:
        return acc.margin_json
    p.refresh_level(acc)
    # ``MarginsGet`` computes every account, so a first computation means no reader of the
    # list has seen other figures of this account since it came to be (with the platform,
    # or when added): they hold from then.
    first = max(p.created, acc.mtime)
    acc.margin_updated = int(now if acc.margin_basis is not None else first)
    acc.margin_basis = basis
    acc.margin_json = encode(margin_dict(p, acc, acc.margin_updated))
    return acc.margin_json


def margin_dict(p: MT4Platform, acc: Account, updated: int) -> dict[str, Any]:
    info = p.margin_info(acc)
    return {
        "login": acc.login,
        "group": acc.group.name,
        "leverage": acc.leverage,
        "updated": int(to_wall(updated)) if updated > 0 else updated,
        "balance": acc.balance,
        "equity": info["equity"],
        "volume": info["volume"],
        "margin": info["margin"],
        "free": info["free"],
        "level": info["level"],
        "controllingType": "Percent",
        "levelType": acc.level_type,
    }


def group_dict(g: Group, index: int = 0) -> dict[str, Any]:
    return {
        "group": g.name,
        "enable": g.enable,
        "timeout": 60,
        "otpMode": "Disabled",
        "company": g.company,
        "signature": "",
        "supportPage": "https://sandbox.invalid/support",
        "supportEmail": "support@sandbox.invalid",
        "copies": 0,
        "reports": 1,
        "defaultLeverage": g.leverage,
        "defaultDeposit": g.deposit,
        "maxSecurities": 4096,
        "secMarginsTotal": 0,
        "currency": g.currency,
        "credit": 0.0,
        "marginCall": g.margin_call,
        "marginMode": g.margin_mode,
        "marginStopout": g.stop_out,
        "interestRate": 0.0,
        "useSwap": 1,
        "newsMode": "Full",
        "groupRights": flags_to_str(0x7, GROUP_RIGHTS),
        "checkIEPrices": 0,
        "maxPositions": 0,
        "closeReopen": 0,
        "hedgeProhibited": 0,
        "closeFIFO": 0,
        "hedgeLargeLeg": 0,
        "marginControllingType": "Percent",
        "archivePeriod": 90,
        "archiveMaxBalance": 0,
        "stopoutSkipHedged": 0,
        "archivePendingPeriod": 0,
    }


def symbol_config(sym: Symbol) -> dict[str, Any]:
    tick_value = sym.contract * sym.point
    return {
        "symbol": sym.name,
        "description": sym.description,
        "source": "",
        "currency": sym.quote,
        "type": sym.type,
        "digits": sym.digits,
        "tradeMode": "Full",
        "backgroundColor": 0,
        "count": 0,
        "countOriginal": 0,
        "realtime": 1,
        "starting": iso(0),
        "expiration": iso(0),
        "profitCalculationMode": "Forex" if sym.margin_mode == "Forex" else "CFD",
        "filter": 0,
        "filterCounter": 0,
        "filterLimit": 0.0,
        "filterSmoothing": 0,
        "logging": 0,
        "spread": sym.spread,
        "spreadBalance": 0,
        "symbolExecMode": "Market",
        "swapEnable": 1,
        "swapType": "Points",
        "swapLong": sym.swap_long,
        "swapShort": sym.swap_short,
        "swapRollover3Days": 3,
        "contractSize": sym.contract,
        "tickValue": tick_value,
        "tickSize": sym.point,
        "stopsLevel": sym.stops_level,
        "gtcMode": "GTC",
        "marginCalculationMode": sym.margin_mode,
        "marginInitial": 0.0,
        "marginMaintenance": 0.0,
        "marginHedged": sym.contract / 2,
        "marginDivider": 1.0,
        "percentage": sym.percentage,
        "point": sym.point,
        "multiply": float(10**sym.digits),
        "bidTickValue": tick_value,
        "askTickValue": tick_value,
        "longOnly": 0,
        "instantMaxVolume": 0,
        "marginCurrency": sym.base if sym.margin_mode == "Forex" else sym.quote,
        "freezeLevel": 0,
        "marginHedgedStrong": 0,
        "valueDate": iso(0),
        "quotesDelay": 0,
        "swapOpenPrice": 0,
        "swapVariationMargin": 0,
    }


def symbol_info(sym: Symbol) -> dict[str, Any]:
    return _strip(
        {
            "symbol": sym.name,
            "digits": sym.digits,
            "type": sym.type,
            "point": sym.point,
            "spread": sym.spread,
            "direction": sym.direction,
            "bid": sym.bid,
            "ask": sym.ask,
            "high": sym.high,
            "low": sym.low,
            "lastTime": iso(sym.last_time) if sym.last_time else None,
        }
    )


def tick_info(sym: Symbol) -> dict[str, Any]:
    return {"symbol": sym.name, "time": iso(sym.last_time), "bid": sym.bid, "ask": sym.ask}


def symbol_groups() -> list[dict[str, Any]]:
    return [{"name": n, "description": d} for n, d in SYMBOL_GROUPS]


def chart_bars(rows: list[tuple]) -> list[dict[str, Any]]:
    return [
        {"time": iso(t), "open": o, "high": h, "low": lo, "close": c, "volume": v}
        for t, o, h, lo, c, v in rows
    ]


# ------------------------------------------------------------------------------ user patches

USER_STR_FIELDS = {
    "name": "name",
    "externalId": "external_id",
    "status": "status",
    "country": "country",
    "city": "city",
    "state": "state",
    "zipCode": "zip_code",
    "address": "address",
    "leadSource": "lead_source",
    "phone": "phone",
    "email": "email",
    "comment": "comment",
}
USER_INT_FIELDS = {
    "leverage": "leverage",
    "agentAccount": "agent",
    "enableFlags": "enable_flags",
    "sendReports": "send_reports",
    "mqid": "mqid",
    "userColor": "color",
}
USER_FLOAT_FIELDS = {
    "interestRate": "interest_rate",
    "taxes": "taxes",
    "balance": "balance",
    "credit": "credit",
}


def apply_user_fields(p: MT4Platform, acc: Account, body: dict[str, Any], *, money: bool) -> None:
    for key, value in body.items():
        if key == "group":
            if value is None:
                continue
            if not isinstance(value, str):
                raise validation("'group' must be a string")
            acc.group = p.group(value) if value in p.groups else _bad_group(value)
        elif key in USER_STR_FIELDS:
            if value is not None and not isinstance(value, str):
                raise validation(f"'{key}' must be a string")
            setattr(acc, USER_STR_FIELDS[key], value)
        elif key in USER_INT_FIELDS:
            if isinstance(value, bool) or not isinstance(value, int):
                raise validation(f"'{key}' must be an integer")
            if key == "leverage" and value < 1:
                raise mt4_error("InvalidData", "Leverage must be positive")
            setattr(acc, USER_INT_FIELDS[key], value)
        elif key in USER_FLOAT_FIELDS:
            if key in ("balance", "credit") and not money:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise validation(f"'{key}' must be a number")
            setattr(acc, USER_FLOAT_FIELDS[key], round(float(value), 2))
        # unknown keys (and login) are ignored, as the merge-patch contract says


def _bad_group(name: str) -> Any:
    raise mt4_error("InvalidData", f"Group '{name}' does not exist")
