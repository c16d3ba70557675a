"""The simulated MT5 server: its groups, users, positions, orders and deals (dicts in the v2
shape), and the live figures its reads add from the market."""

from __future__ import annotations

import fnmatch
from typing import Any

from ..market import Market, Symbol, default_groups
from ..wire import validation
from .dto import group_record, symbol_record
from .generation import generate

VOL = 10000  # MT5 raw volume units per lot


class MT5Platform:
    """One simulated MT5 server: generated deterministically from (seed, users)."""

    #: The server's clock zone (``TimeGet.timeZone`` in minutes): UTC, so both paths are seen.
    utc_offset_seconds = 0

    def __init__(self, seed: int, users: int, market: Market) -> None:
        self.market = market
        self.groups: dict[str, dict[str, Any]] = {g.name: group_record(g) for g in default_groups()}
        self.users, self.positions, self.orders, self.deals = generate(
            seed, users, market, self.groups
        )
        self.symbol_patches: dict[str, dict[str, Any]] = {}
        self.position_keys = sorted(self.positions)
        self.order_keys = sorted(self.orders)
        self.deal_keys = sorted(self.deals)

    def symbol_dict(self, sym: Symbol) -> dict[str, Any]:
        return symbol_record(sym, self.symbol_patches.get(sym.name, {}))

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

    def mask_groups(self, mask: str) -> set[str]:
        if not mask:
            raise validation("'mask' is required")
        out = set()
        for part in mask.split(","):
            out.update(g for g in self.groups if fnmatch.fnmatchcase(g, part.strip()))
        return out
