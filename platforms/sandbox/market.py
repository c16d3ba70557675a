"""The simulated market: symbols, groups, seeded price paths, currency conversion, MT4 maths.

Deterministic for a seed: the live price walk is driven by one ``random.Random(seed)`` that
steps every symbol per tick in a fixed order; historic chart bars come from a smooth seeded
function of time (``path_price``), and the live walk starts on that path at the anchor time.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field

from .events import EventBus

# MT4 TradeCommand numbering.
BUY, SELL, BUY_LIMIT, SELL_LIMIT, BUY_STOP, SELL_STOP, BALANCE, CREDIT = range(8)
TRADE_COMMANDS = [
    "Buy",
    "Sell",
    "BuyLimit",
    "SellLimit",
    "BuyStop",
    "SellStop",
    "Balance",
    "Credit",
]
SYMBOL_GROUPS = [("Forex", "Currency pairs"), ("Metals", "Spot metals"), ("Indices", "Index CFDs")]


@dataclass
class Symbol:
    name: str
    description: str
    digits: int
    contract: float
    base: str  # margin currency for Forex
    quote: str  # profit currency
    margin_mode: str  # Forex | CFD | CFDLeverage
    start: float
    vol: float  # relative std-dev per tick
    spread: int  # points
    swap_long: float
    swap_short: float
    type: int  # security group index
    percentage: float = 100.0
    stops_level: int = 0
    # live state
    bid: float = 0.0
    ask: float = 0.0
    high: float = 0.0
    low: float = 0.0
    direction: str = "None"
    last_time: float = 0.0
    phases: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def point(self) -> float:
        return 10.0**-self.digits

    def set_mid(self, mid: float, now: float) -> None:
        half = self.spread * self.point / 2
        bid = round(mid - half, self.digits)
        ask = round(bid + self.spread * self.point, self.digits)
        if self.bid:
            self.direction = (
                "Up" if bid > self.bid else "Down" if bid < self.bid else self.direction
            )
        self.bid, self.ask = bid, ask
        self.high = max(self.high, bid) if self.high else bid
        self.low = min(self.low, bid) if self.low else bid
        self.last_time = now

    @property
    def mid(self) -> float:
        return (self.bid + self.ask) / 2


def _symbols() -> list[Symbol]:
    fx = 0.00004
    return [
        Symbol(
            "EURUSD",
            "Euro vs US Dollar",
            5,
            100000,
            "EUR",
            "USD",
            "Forex",
            1.0850,
            fx,
            12,
            -6.1,
            1.2,
            0,
        ),
        Symbol(
            "GBPUSD",
            "Great Britain Pound vs US Dollar",
            5,
            100000,
            "GBP",
            "USD",
            "Forex",
            1.2700,
            fx,
            15,
            -4.0,
            -0.5,
            0,
        ),
        Symbol(
            "USDJPY",
            "US Dollar vs Japanese Yen",
            3,
            100000,
            "USD",
            "JPY",
            "Forex",
            151.50,
            fx,
            14,
            12.0,
            -25.0,
            0,
        ),
        Symbol(
            "USDCHF",
            "US Dollar vs Swiss Franc",
            5,
            100000,
            "USD",
            "CHF",
            "Forex",
            0.8850,
            fx,
            16,
            5.5,
            -11.0,
            0,
        ),
        Symbol(
            "AUDUSD",
            "Australian Dollar vs US Dollar",
            5,
            100000,
            "AUD",
            "USD",
            "Forex",
            0.6550,
            fx,
            14,
            -3.2,
            -1.1,
            0,
        ),
        Symbol(
            "USDCAD",
            "US Dollar vs Canadian Dollar",
            5,
            100000,
            "USD",
            "CAD",
            "Forex",
            1.3650,
            fx,
            18,
            1.8,
            -7.4,
            0,
        ),
        Symbol(
            "NZDUSD",
            "New Zealand Dollar vs US Dollar",
            5,
            100000,
            "NZD",
            "USD",
            "Forex",
            0.6000,
            fx,
            20,
            -2.6,
            -0.9,
            0,
        ),
        Symbol(
            "XAUUSD",
            "Gold vs US Dollar",
            2,
            100,
            "XAU",
            "USD",
            "CFDLeverage",
            2650.00,
            0.00008,
            30,
            -45.0,
            20.0,
            1,
        ),
        Symbol(
            "XAGUSD",
            "Silver vs US Dollar",
            3,
            5000,
            "XAG",
            "USD",
            "CFDLeverage",
            31.000,
            0.0001,
            30,
            -5.0,
            1.5,
            1,
        ),
        Symbol(
            "US30",
            "Dow Jones Industrial Average",
            1,
            1,
            "USD",
            "USD",
            "CFD",
            44000.0,
            0.0001,
            30,
            -4.5,
            -1.5,
            2,
            1.0,
        ),
        Symbol(
            "US500",
            "S&P 500 Index",
            1,
            10,
            "USD",
            "USD",
            "CFD",
            5950.0,
            0.0001,
            5,
            -0.6,
            -0.2,
            2,
            1.0,
        ),
        Symbol(
            "DE40",
            "Germany 40 Index",
            1,
            1,
            "EUR",
            "EUR",
            "CFD",
            19500.0,
            0.0001,
            20,
            -2.0,
            -0.8,
            2,
            1.0,
        ),
    ]


@dataclass
class Group:
    name: str
    currency: str
    leverage: int
    margin_call: int
    stop_out: int
    deposit: float
    company: str = "Sandbox Markets Ltd"
    margin_mode: str = "UseAll"
    enable: int = 1
    weight: int = 1
    extra: dict = field(default_factory=dict)


def default_groups() -> list[Group]:
    return [
        Group("demo\\usd", "USD", 100, 50, 20, 10000.0, weight=2),
        Group("real\\eur", "EUR", 200, 100, 50, 5000.0, weight=2),
        Group("real\\usd-pro", "USD", 500, 80, 30, 25000.0, weight=2),
        Group("real\\usd-std", "USD", 100, 100, 50, 2000.0, weight=4),
    ]


PERIODS = {
    "M1": 60,
    "M5": 300,
    "M15": 900,
    "M30": 1800,
    "H1": 3600,
    "H4": 14400,
    "D1": 86400,
    "W1": 604800,
    "Mn1": 2592000,
}


def _hash01(*parts: int) -> float:
    """Deterministic pseudo-random in [0, 1) from integers (splitmix64)."""
    x = 0x9E3779B97F4A7C15
    for p in parts:
        x = (x ^ (p & 0xFFFFFFFFFFFFFFFF)) * 0xBF58476D1CE4E5B9 & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
        x = x * 0x94D049BB133111EB & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 29
    return (x >> 11) / float(1 << 53)


class Market:
    """Prices for every symbol plus currency conversion; ``tick()`` steps the seeded walk."""

    def __init__(self, seed: int, anchor: float) -> None:
        self.seed = seed
        self.anchor = anchor
        self.rng = random.Random(seed * 7919 + 17)
        self.symbols: dict[str, Symbol] = {}
        self.tick_no = 0
        self.events = EventBus()  # ticks, trades, users, margin calls -> realtime hubs
        for i, sym in enumerate(_symbols()):
            sym.phases = tuple(2 * math.pi * _hash01(seed, i, k) for k in range(3))  # type: ignore[assignment]
            self.symbols[sym.name] = sym
            sym.set_mid(self.path_price(sym, anchor), anchor)
            sym.high = sym.low = sym.bid
            sym.direction = "None"
        self.sym_index = {name: i for i, name in enumerate(self.symbols)}

    # -- historic path -----------------------------------------------------------------
    def path_price(self, sym: Symbol, t: float) -> float:
        p1, p2, p3 = sym.phases
        x = (
            0.03 * math.sin(2 * math.pi * t / (30 * 86400) + p1)
            + 0.008 * math.sin(2 * math.pi * t / (2 * 86400) + p2)
            + 0.002 * math.sin(2 * math.pi * t / (3 * 3600) + p3)
        )
        return sym.start * (1 + x)

    def bars(
        self, sym: Symbol, period: int, start: float, end: float, limit: int = 20000
    ) -> list[dict]:
        """OHLC bars on the seeded path, one per ``period`` seconds from ``start`` to ``end``."""
        first = int(start // period) * period
        if first < start:
            first += period
        out = []
        t = first
        idx = self.sym_index[sym.name]
        while t + period <= end + period and t <= end and len(out) < limit:
            o = self.path_price(sym, t)
            c = self.path_price(sym, t + period)
            w1 = _hash01(self.seed, idx, t, 1) * 0.0015 * math.sqrt(period / 3600)
            w2 = _hash01(self.seed, idx, t, 2) * 0.0015 * math.sqrt(period / 3600)
            hi = max(o, c) * (1 + w1)
            lo = min(o, c) * (1 - w2)
            vol = float(int(50 + _hash01(self.seed, idx, t, 3) * 950 * period / 60))
            out.append(
                (
                    t,
                    round(o, sym.digits),
                    round(hi, sym.digits),
                    round(lo, sym.digits),
                    round(c, sym.digits),
                    vol,
                )
            )
            t += period
        return out

    # -- live walk ---------------------------------------------------------------------
    def tick(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        gauss = self.rng.gauss
        for sym in self.symbols.values():
            mid = sym.mid * math.exp(sym.vol * gauss(0.0, 1.0))
            sym.set_mid(mid, now)
        self.tick_no += 1
        if self.events.listening("tick"):
            for sym in self.symbols.values():
                self.events.publish("tick", sym)

    def set_price(self, name: str, bid: float, ask: float | None, now: float) -> Symbol:
        sym = self.symbols[name]
        if ask is None:
            ask = bid + sym.spread * sym.point
        sym.direction = "Up" if bid > sym.bid else "Down" if bid < sym.bid else sym.direction
        sym.bid, sym.ask = round(bid, sym.digits), round(ask, sym.digits)
        sym.high, sym.low = max(sym.high, sym.bid), min(sym.low, sym.bid)
        sym.last_time = now
        self.tick_no += 1
        if self.events.listening("tick"):
            self.events.publish("tick", sym)
        return sym

    # -- conversion --------------------------------------------------------------------
    def usd_rate(self, ccy: str) -> float:
        if ccy == "USD":
            return 1.0
        s = self.symbols
        direct = s.get(ccy + "USD")
        if direct is not None:
            return direct.mid
        inverse = s.get("USD" + ccy)
        if inverse is not None:
            return 1.0 / inverse.mid
        raise KeyError(ccy)

    def static_convert(self, amount: float, src: str, dst: str) -> float:
        """Conversion at the symbols' fixed reference prices (deterministic history)."""
        if src == dst or amount == 0:
            return amount

        def rate(ccy: str) -> float:
            if ccy == "USD":
                return 1.0
            if ccy + "USD" in self.symbols:
                return self.symbols[ccy + "USD"].start
            return 1.0 / self.symbols["USD" + ccy].start

        return amount * rate(src) / rate(dst)

    def convert(self, amount: float, src: str, dst: str) -> float:
        if src == dst or amount == 0:
            return amount
        return amount * self.usd_rate(src) / self.usd_rate(dst)

    # -- MT4 maths ---------------------------------------------------------------------
    def trade_profit(
        self, sym: Symbol, cmd: int, volume: int, open_price: float, ccy: str
    ) -> float:
        """Floating profit of a market trade in the account currency (0 for pending)."""
        if cmd == BUY:
            raw = (sym.bid - open_price) * sym.contract * volume / 100.0
        elif cmd == SELL:
            raw = (open_price - sym.ask) * sym.contract * volume / 100.0
        else:
            return 0.0
        return round(self.convert(raw, sym.quote, ccy), 2)

    def trade_margin(
        self, sym: Symbol, cmd: int, volume: int, open_price: float, leverage: int, ccy: str
    ) -> float:
        """Margin required by a market trade in the account currency (0 for pending)."""
        if cmd > SELL:
            return 0.0
        lots = volume / 100.0
        lev = max(leverage, 1)
        if sym.margin_mode == "Forex":
            return self.convert(lots * sym.contract / lev, sym.base, ccy)
        if sym.margin_mode == "CFDLeverage":
            return self.convert(lots * sym.contract * open_price / lev, sym.quote, ccy)
        return self.convert(
            lots * sym.contract * open_price * sym.percentage / 100.0, sym.quote, ccy
        )
