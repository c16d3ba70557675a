"""The MT5 server's generated data: users with their positions, pending orders and deals,
derived from the seed so that every run sees the same server."""

from __future__ import annotations

import random
from typing import Any

from ..market import Market
from ..people import COUNTRIES, FIRST_NAMES, LAST_NAMES
from ..wire import iso
from .dto import deal_record

FIRST_LOGIN = 5_000_001


def generate(
    seed: int, users: int, market: Market, groups: dict[str, dict[str, Any]]
) -> tuple[dict[int, dict], dict[int, dict], dict[int, dict], dict[int, dict]]:
    """``users`` users from ``FIRST_LOGIN`` on with their positions, pending orders and deals
    (a deposit, then one per opened position): ``(users, positions, orders, deals)``."""
    users_out: dict[int, dict[str, Any]] = {}
    positions: dict[int, dict[str, Any]] = {}
    orders: dict[int, dict[str, Any]] = {}
    deals: dict[int, dict[str, Any]] = {}
    rng = random.Random(seed * 101 + 3)
    syms = list(market.symbols.values())
    names = sorted(groups)
    anchor = market.anchor
    next_pos, next_order, next_deal = 7_000_001, 7_500_001, 8_000_001
    for i in range(users):
        login = FIRST_LOGIN + i
        group = names[int(rng.random() * len(names))]
        first = FIRST_NAMES[int(rng.random() * len(FIRST_NAMES))]
        last = LAST_NAMES[int(rng.random() * len(LAST_NAMES))]
        country, city = COUNTRIES[int(rng.random() * len(COUNTRIES))]
        g = groups[group]
        balance = round(g["demoDeposit"] * (0.5 + rng.random() * 2), 2)
        reg = float(int(anchor - 100 * 86400 - rng.random() * 600 * 86400))
        users_out[login] = {
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
        deals[next_deal] = deal_record(
            next_deal, login, 0, "Balance", "In", None, reg, 0.0, 0, balance, "Deposit", 0
        )
        next_deal += 1
        for _ in range(int(rng.random() * 4)):
            sym = syms[int(rng.random() * len(syms))]
            action = "Buy" if rng.random() < 0.5 else "Sell"
            volume = (1 + int(rng.random() * 100)) * 100
            t_open = float(int(anchor - rng.random() * 8 * 86400))
            price = round(sym.mid * (1 + (rng.random() - 0.5) * 0.004), sym.digits)
            positions[next_pos] = {
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
            deals[next_deal] = deal_record(
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
            orders[next_order] = {
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
    return users_out, positions, orders, deals
