"""The simulated MT5 platform (its own users, positions, orders, deals) and its 12 v2 operations."""

from __future__ import annotations

import bisect
import fnmatch
import random
from typing import Any

from .market import Market, Symbol, default_groups
from .ops import Ctx, op
from .state import COUNTRIES, FIRST_NAMES, LAST_NAMES
from .wire import Result, iso, not_found, page, parse_limit, validation

MT5 = "MT5"
FIRST_LOGIN5 = 5_000_001
VOL = 10000  # MT5 raw volume units per lot
RIGHTS = [
    ("Enabled", 0x1),
    ("Password", 0x2),
    ("TradeDisabled", 0x4),
    ("Investor", 0x8),
    ("Confirmed", 0x10),
    ("Trailing", 0x20),
    ("Expert", 0x40),
    ("Obsolete", 0x80),
    ("Reports", 0x100),
    ("Readonly", 0x200),
    ("ResetPass", 0x400),
    ("OTPEnabled", 0x800),
]


class MT5Platform:
    def __init__(self, seed: int, users: int, market: Market) -> None:
        self.market = market
        self.groups: dict[str, dict[str, Any]] = {}
        for g in default_groups():
            self.groups[g.name] = {
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
        self.users: dict[int, dict[str, Any]] = {}
        self.positions: dict[int, dict[str, Any]] = {}
        self.orders: dict[int, dict[str, Any]] = {}
        self.deals: dict[int, dict[str, Any]] = {}
        self.symbol_patches: dict[str, dict[str, Any]] = {}
        self._generate(seed, users)
        self.position_keys = sorted(self.positions)
        self.order_keys = sorted(self.orders)
        self.deal_keys = sorted(self.deals)

    def _generate(self, seed: int, users: int) -> None:
        rng = random.Random(seed * 101 + 3)
        syms = list(self.market.symbols.values())
        names = sorted(self.groups)
        anchor = self.market.anchor
        next_pos, next_order, next_deal = 7_000_001, 7_500_001, 8_000_001
        for i in range(users):
            login = FIRST_LOGIN5 + i
            group = names[int(rng.random() * len(names))]
            first = FIRST_NAMES[int(rng.random() * len(FIRST_NAMES))]
            last = LAST_NAMES[int(rng.random() * len(LAST_NAMES))]
            country, city = COUNTRIES[int(rng.random() * len(COUNTRIES))]
            g = self.groups[group]
            balance = round(g["demoDeposit"] * (0.5 + rng.random() * 2), 2)
            reg = float(int(anchor - 100 * 86400 - rng.random() * 600 * 86400))
            self.users[login] = {
                "login": login,
                "group": group,
                "name": f"{first} {last}",
                "company": "",
                "country": country,
                "city": city,
                "state": "",
                "zipCode": "",
                "phone": f"+4940{login % 10_000_000:07d}",
                "eMail": f"{first.lower()}.{login}@example.com",
                "comment": "",
                "color": 0,
                "leverage": g["demoLeverage"],
                "account": "",
                "language": 0,
                "address": "",
                "id": "",
                "status": "",
                "agent": 0,
                "leadCampaign": "",
                "leadSource": "",
                "clientID": 0,
                "firstName": first,
                "lastName": last,
                "middleName": "",
                "rights": "Enabled, Password",
                "certSerialNumber": 0,
                "registration": iso(reg),
                "lastAccess": iso(anchor - 3600),
                "lastPassChange": iso(reg),
                "lastIP": "10.1.0.1",
                "balance": balance,
                "credit": 0.0,
                "interestRate": 0.0,
                "commissionDaily": 0.0,
                "commissionMonthly": 0.0,
                "commissionAgentDaily": 0.0,
                "commissionAgentMonthly": 0.0,
                "balancePrevDay": balance,
                "balancePrevMonth": balance,
                "equityPrevDay": balance,
                "equityPrevMonth": balance,
            }
            self.deals[next_deal] = self._deal(
                next_deal, login, 0, "Balance", "In", None, reg, 0.0, 0, balance, "Deposit", 0
            )
            next_deal += 1
            for _ in range(int(rng.random() * 4)):
                sym = syms[int(rng.random() * len(syms))]
                action = "Buy" if rng.random() < 0.5 else "Sell"
                volume = (1 + int(rng.random() * 100)) * 100
                t_open = float(int(anchor - rng.random() * 8 * 86400))
                price = round(sym.mid * (1 + (rng.random() - 0.5) * 0.004), sym.digits)
                self.positions[next_pos] = {
                    "login": login,
                    "symbol": sym.name,
                    "action": action,
                    "digits": sym.digits,
                    "digitsCurrency": 2,
                    "contractSize": sym.contract,
                    "position": next_pos,
                    "externalId": "",
                    "timeCreate": iso(t_open),
                    "timeUpdate": iso(t_open),
                    "timeCreateMsc": iso(t_open),
                    "timeUpdateMsc": iso(t_open),
                    "priceOpen": price,
                    "priceSL": 0.0,
                    "priceTP": 0.0,
                    "volume": volume,
                    "volumeExt": volume * 10000,
                    "storage": 0.0,
                    "rateProfit": 1.0,
                    "rateMargin": 1.0,
                    "expertId": 0,
                    "expertPositionId": 0,
                    "comment": "",
                    "dealer": 0,
                    "activationMode": "None",
                    "activationTime": iso(0),
                    "activationPrice": 0.0,
                    "activationFlags": "None",
                    "modificationFlags": "None",
                    "reason": "Client",
                }
                self.deals[next_deal] = self._deal(
                    next_deal,
                    login,
                    next_order,
                    action,
                    "In",
                    sym,
                    t_open,
                    price,
                    volume,
                    0.0,
                    "",
                    next_pos,
                )
                next_deal += 1
                next_order += 1
                next_pos += 1
            if rng.random() < 0.3:
                sym = syms[int(rng.random() * len(syms))]
                otype = ["BuyLimit", "SellLimit", "BuyStop", "SellStop"][int(rng.random() * 4)]
                below = otype in ("BuyLimit", "SellStop")
                price = round(sym.mid * (0.99 if below else 1.01), sym.digits)
                t_set = float(int(anchor - rng.random() * 3 * 86400))
                volume = (1 + int(rng.random() * 50)) * 100
                self.orders[next_order] = {
                    "order": next_order,
                    "externalID": "",
                    "login": login,
                    "dealer": 0,
                    "partyID": 0,
                    "symbol": sym.name,
                    "digits": sym.digits,
                    "digitsCurrency": 2,
                    "contractSize": sym.contract,
                    "state": "Placed",
                    "reason": "Client",
                    "timeSetup": iso(t_set),
                    "timeExpiration": iso(0),
                    "timeDone": iso(0),
                    "type": otype,
                    "typeFill": "Return",
                    "typeTime": "GtC",
                    "priceOrder": price,
                    "priceTrigger": 0.0,
                    "priceSL": 0.0,
                    "priceTP": 0.0,
                    "volumeInitial": volume,
                    "volumeCurrent": volume,
                    "expertID": 0,
                    "positionID": 0,
                    "comment": "",
                    "activationMode": 0,
                    "activationTime": iso(0),
                    "activationPrice": 0.0,
                    "activationFlags": "None",
                    "timeSetupMsc": iso(t_set),
                    "timeDoneMsc": iso(0),
                    "rateMargin": 1.0,
                    "positionByID": 0,
                    "modificationFlags": 0,
                    "volumeInitialExt": volume * 10000,
                    "volumeCurrentExt": volume * 10000,
                }
                next_order += 1

    def _deal(
        self,
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

    def position_view(self, pos: dict[str, Any]) -> dict[str, Any]:
        sym = self.market.symbols[pos["symbol"]]
        user = self.users.get(pos["login"])
        ccy = self.groups[user["group"]]["currency"] if user else "USD"
        buy = pos["action"] == "Buy"
        current = sym.bid if buy else sym.ask
        raw = (current - pos["priceOpen"]) if buy else (pos["priceOpen"] - current)
        profit = round(
            self.market.convert(raw * sym.contract * pos["volume"] / VOL, sym.quote, ccy), 2
        )
        return {**pos, "priceCurrent": current, "profit": profit}

    def order_view(self, order: dict[str, Any]) -> dict[str, Any]:
        sym = self.market.symbols[order["symbol"]]
        return {**order, "priceCurrent": sym.ask if order["type"].startswith("Buy") else sym.bid}

    def symbol_dict(self, sym: Symbol) -> dict[str, Any]:
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
        d.update(self.symbol_patches.get(sym.name, {}))
        return d

    def mask_groups(self, mask: str) -> set[str]:
        if not mask:
            raise validation("'mask' is required")
        out = set()
        for part in mask.split(","):
            out.update(g for g in self.groups if fnmatch.fnmatchcase(g, part.strip()))
        return out


def _p(ctx: Ctx) -> MT5Platform:
    return ctx.platform


def _merge(target: dict[str, Any], patch: dict[str, Any], protected: set[str]) -> None:
    for key, value in patch.items():
        if key in protected or key not in target:
            continue  # unknown keys are ignored (merge-patch contract)
        old = target[key]
        if value is None:
            continue
        if (
            isinstance(old, bool) != isinstance(value, bool)
            or (isinstance(old, int | float) and not isinstance(value, int | float))
            or (isinstance(old, str) and not isinstance(value, str))
        ):
            raise validation(f"'{key}' has the wrong type")
        target[key] = value


def _json_patch(ctx: Ctx) -> dict[str, Any]:
    return ctx.json_object()


@op(MT5, "GET", "ServerTime", 10)
def server_time(ctx: Ctx) -> Result:
    return Result(iso(int(ctx.now)))


@op(MT5, "GET", "TimeGet", 10)
def time_get(ctx: Ctx) -> Result:
    return Result(
        {"timeZone": 0, "timeServer": "Sandbox MT5", "daylight": False, "daylightState": 0}
    )


@op(MT5, "GET", "ManagerCurrent", 10)
def manager_current(ctx: Ctx) -> Result:
    return Result(
        {
            "login": 1000,
            "mailbox": "Sandbox manager",
            "server": 1,
            "limitLogs": "All",
            "limitReports": "All",
            "right": ["Admin", "Manager", "AccRead", "AccDetails", "TradesRead", "Reports"],
        }
    )


@op(MT5, "GET", "GroupGet", 10, nargs=(1,))
def group_get(ctx: Ctx) -> Result:
    g = _p(ctx).groups.get(ctx.args[0])
    if g is None:
        raise not_found(f"Group '{ctx.args[0]}' not found")
    return Result(g)


@op(MT5, "PATCH", "GroupRecord", 15, nargs=(1,))
def group_record(ctx: Ctx) -> Result:
    patch = _json_patch(ctx)
    g = _p(ctx).groups.get(ctx.args[0])
    if g is None:
        raise not_found(f"Group '{ctx.args[0]}' not found")
    _merge(g, patch, {"group"})
    return Result(g)


def _login5(ctx: Ctx) -> int:
    login = ctx.int_arg(0, "login")
    if login < 1:
        raise validation("'login' must be a positive integer")
    return login


@op(MT5, "GET", "UserGet", 10, nargs=(1,))
def user_get(ctx: Ctx) -> Result:
    login = _login5(ctx)
    user = _p(ctx).users.get(login)
    if user is None:
        raise not_found(f"User {login} not found")
    return Result(user)


@op(MT5, "PATCH", "UserRecord", 15, nargs=(1,))
def user_record(ctx: Ctx) -> Result:
    patch = _json_patch(ctx)
    p = _p(ctx)
    login = _login5(ctx)
    user = p.users.get(login)
    if user is None:
        raise not_found(f"User {login} not found")
    if "group" in patch and patch["group"] is not None and patch["group"] not in p.groups:
        raise validation(f"Group '{patch['group']}' does not exist")
    _merge(user, patch, {"login"})
    return Result(user)


@op(MT5, "GET", "SymbolGet", 10, nargs=(1,))
def symbol_get(ctx: Ctx) -> Result:
    p = _p(ctx)
    sym = p.market.symbols.get(ctx.args[0])
    if sym is None:
        raise not_found(f"Symbol '{ctx.args[0]}' not found")
    return Result(p.symbol_dict(sym))


@op(MT5, "PATCH", "SymbolRecord", 15, nargs=(1,))
def symbol_record(ctx: Ctx) -> Result:
    patch = _json_patch(ctx)
    p = _p(ctx)
    sym = p.market.symbols.get(ctx.args[0])
    if sym is None:
        raise not_found(f"Symbol '{ctx.args[0]}' not found")
    current = p.symbol_dict(sym)
    _merge(current, patch, {"symbol"})
    p.symbol_patches[sym.name] = {k: v for k, v in current.items() if k in patch}
    return Result(p.symbol_dict(sym))


def _by_group(ctx: Ctx, keys: list[int], table: dict[int, dict], view) -> Result:
    p = _p(ctx)
    groups = p.mask_groups(ctx.args[0])
    users = p.users
    from .wire import encode

    def render(key: int) -> bytes | None:
        row = table.get(key)
        if row is None:
            return None
        user = users.get(row["login"])
        if user is None or user["group"] not in groups:
            return None
        return encode(view(row))

    return page(keys, parse_limit(ctx.q("limit")), ctx.q("cursor"), render)


@op(MT5, "GET", "PositionByGroup", 10, nargs=(1,))
def position_by_group(ctx: Ctx) -> Result:
    p = _p(ctx)
    return _by_group(ctx, p.position_keys, p.positions, p.position_view)


@op(MT5, "GET", "OrderByGroup", 10, nargs=(1,))
def order_by_group(ctx: Ctx) -> Result:
    p = _p(ctx)
    return _by_group(ctx, p.order_keys, p.orders, p.order_view)


@op(MT5, "GET", "DealByGroup", 30, nargs=(1,))
def deal_by_group(ctx: Ctx) -> Result:
    p = _p(ctx)
    return _by_group(ctx, p.deal_keys, p.deals, lambda d: d)


__all__ = ["MT5Platform", "bisect"]
