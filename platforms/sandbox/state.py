"""The simulated MT4 platform: accounts, open/pending trades, history, margin, stop-outs, sync.

Compact by design so ``--users 100000`` builds in seconds: ``__slots__`` records, encoded user
JSON cached per account, closed-trade history derived lazily from (seed, login), equity and
margin computed on demand (cached per market tick; the encoded ``MarginsGet`` record cached per
account until its figures change), a chunked per-tick risk sweep, and a change log that answers
syncs from what changed rather than from a scan of every record.
"""

from __future__ import annotations

import bisect
import collections
import fnmatch
import random
import time
import weakref
from collections.abc import Iterable, Iterator
from typing import Any

from .market import (
    BALANCE,
    BUY,
    BUY_LIMIT,
    BUY_STOP,
    CREDIT,
    SELL,
    SELL_LIMIT,
    SELL_STOP,
    Group,
    Market,
    Symbol,
    default_groups,
)
from .wire import ApiFail, iso, mt4_error, not_found

FIRST_LOGIN = 100001
HIST_BASE = 1_000_000  # historic tickets: HIST_BASE + index*HIST_SLOTS + k
HIST_SLOTS = 40
OPEN_BASE = 10_000_000
DAY = 86400

#: Records modified at or after this time (the process start) are remembered in
#: :data:`_CHANGED_ACCOUNTS` / :data:`_CHANGED_TRADES` by their ``mtime`` setters; generated
#: and derived records carry earlier times. A sync ("changed since T") with T at or after it
#: reads those sets, in proportion to what changed since the start, instead of scanning every
#: account, open trade and closed trade.
CHANGE_LOG_FROM = time.time()
_CHANGED_ACCOUNTS: weakref.WeakSet[Account] = weakref.WeakSet()
_CHANGED_TRADES: weakref.WeakSet[Trade] = weakref.WeakSet()


class _ChangeLogged:
    """An ``mtime`` attribute whose every setting after :data:`CHANGE_LOG_FROM` puts its record
    in ``log``, so the sync reads pick changed records from the log instead of scanning all."""

    def __init__(self, log: weakref.WeakSet) -> None:
        self.log = log

    def __get__(self, record: Any, owner: type | None = None) -> Any:
        return self if record is None else record._mtime

    def __set__(self, record: Any, value: float) -> None:
        record._mtime = value
        if value >= CHANGE_LOG_FROM:
            self.log.add(record)

# TradeRecordState / reason / activation indices
OPEN_NORMAL, CLOSED_NORMAL, CLOSED_PART, DELETED = (
    "OpenNormal",
    "ClosedNormal",
    "ClosedPart",
    "Deleted",
)

FIRST_NAMES = [
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jonas",
    "Kira",
    "Liam",
    "Maya",
    "Nikolai",
    "Olga",
    "Pavel",
    "Quinn",
    "Rosa",
    "Sven",
    "Tariq",
    "Uma",
    "Viktor",
    "Wen",
    "Ximena",
    "Yusuf",
    "Zoe",
]
LAST_NAMES = [
    "Adams",
    "Becker",
    "Costa",
    "Dubois",
    "Evans",
    "Fischer",
    "Garcia",
    "Hansen",
    "Ivanov",
    "Jensen",
    "Kowalski",
    "Lopez",
    "Muller",
    "Novak",
    "Olsen",
    "Petrov",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Weber",
    "Yilmaz",
    "Zhang",
]
COUNTRIES = [
    ("Germany", "Berlin"),
    ("France", "Paris"),
    ("Spain", "Madrid"),
    ("Italy", "Milan"),
    ("Poland", "Warsaw"),
    ("Cyprus", "Limassol"),
    ("United Kingdom", "London"),
    ("Netherlands", "Amsterdam"),
    ("Sweden", "Stockholm"),
    ("Japan", "Tokyo"),
]


class Trade:
    __slots__ = (
        "__weakref__",
        "_mtime",
        "activation",
        "close_price",
        "close_time",
        "cmd",
        "comment",
        "commission",
        "expiration",
        "login",
        "magic",
        "margin_rate",
        "open_price",
        "open_time",
        "profit",
        "reason",
        "sl",
        "state",
        "storage",
        "sym",
        "ticket",
        "tp",
        "volume",
    )

    def __init__(
        self,
        ticket: int,
        login: int,
        sym: Symbol | None,
        cmd: int,
        volume: int,
        open_price: float,
        open_time: float,
        comment: str = "",
        reason: str = "Dealer",
    ) -> None:
        self.ticket = ticket
        self.login = login
        self.sym = sym
        self.cmd = cmd
        self.volume = volume
        self.open_price = open_price
        self.sl = 0.0
        self.tp = 0.0
        self.open_time = open_time
        self.close_time = 0.0
        self.close_price = 0.0
        self.commission = 0.0
        self.storage = 0.0
        self.profit = 0.0
        self.comment = comment
        self.state = OPEN_NORMAL
        self.reason = reason
        self.activation = "None"
        self.mtime = open_time
        self.expiration = 0.0
        self.magic = 0
        self.margin_rate = 1.0

    @property
    def is_open(self) -> bool:
        return self.state == OPEN_NORMAL

    #: Last modification (server seconds): what ``TradesSyncStart`` selects by.
    mtime = _ChangeLogged(_CHANGED_TRADES)


class Account:
    __slots__ = (
        "__weakref__",
        "_mtime",
        "address",
        "agent",
        "balance",
        "calc",
        "calc_tick",
        "city",
        "closed",
        "color",
        "comment",
        "country",
        "credit",
        "email",
        "enable_flags",
        "external_id",
        "group",
        "history",
        "init_balance",
        "interest_rate",
        "investor",
        "json",
        "last_ip",
        "last_time",
        "lead_source",
        "level_type",
        "leverage",
        "login",
        "margin_basis",
        "margin_json",
        "margin_updated",
        "mqid",
        "name",
        "open",
        "password",
        "phone",
        "prev_balance",
        "prev_equity",
        "reg_time",
        "send_reports",
        "state",
        "status",
        "taxes",
        "zip_code",
    )

    def __init__(self, login: int, group: Group) -> None:
        self.login = login
        self.group = group
        self.name = ""
        self.email = None
        self.country = None
        self.city = None
        self.phone = None
        self.comment = None
        self.status = "RE"
        self.leverage = group.leverage
        self.balance = 0.0
        self.credit = 0.0
        self.init_balance = 0.0
        self.reg_time = 0.0
        self.last_time = 0.0
        self.enable_flags = 0x03
        self.agent = 0
        self.mtime = 0.0
        self.open: list[Trade] = []
        self.closed: list[Trade] = []
        self.json: bytes | None = None
        self.password = f"Pass{login}"
        self.investor = f"Inv{login}"
        self.lead_source = None
        self.external_id = None
        self.zip_code = None
        self.state = None
        self.address = None
        self.send_reports = 1
        self.mqid = 0
        self.color = 0
        self.interest_rate = 0.0
        self.taxes = 0.0
        self.history = False  # has a lazily derived closed-trade history
        self.calc: tuple[float, float, float] | None = None  # (floating, margin, volume)
        self.calc_tick = -1
        self.level_type = "Ok"
        self.prev_balance = 0.0
        self.prev_equity = 0.0
        self.last_ip = 0
        # MarginsGet's cached answer (see dto.margin_bytes): the inputs it was computed
        # from, its encoding and when those figures last changed.
        self.margin_basis: tuple | None = None
        self.margin_json: bytes | None = None
        self.margin_updated = 0

    #: Last modification of the user record: what ``UsersSyncStart`` selects by.
    mtime = _ChangeLogged(_CHANGED_ACCOUNTS)

    def touch(self, now: float) -> None:
        self.mtime = now
        self.json = None
        self.calc_tick = -1


class MT4Platform:
    """One simulated MT4 server: generated deterministically from (seed, users)."""

    def __init__(self, seed: int, users: int, market: Market, *, now: float | None = None) -> None:
        self.seed = seed
        self.market = market
        self.anchor = market.anchor
        self.groups: dict[str, Group] = {g.name: g for g in default_groups()}
        self.group_names = sorted(self.groups)
        self.accounts: dict[int, Account] = {}
        self.logins: list[int] = []
        self.trades: dict[int, Trade] = {}  # open + pending
        self.tickets: list[int] = []
        self.closed_index: dict[int, Trade] = {}  # materialised closed/deleted records by ticket
        self.next_ticket = OPEN_BASE
        self.online: list[int] = []
        self.journal: collections.deque = collections.deque(maxlen=50000)
        self.sweep_pos = 0
        self.sweep_chunk = 5000
        self.users_sync: list[bytes] | None = None
        self.trades_sync: list[bytes] | None = None
        self.mails: list[dict] = []
        self.news: list[dict] = []
        self.plugins = _default_plugins()
        self.hist_logins_end = FIRST_LOGIN  # logins below this have derived history
        self._render_user = None  # set by dto module
        self.created = now or time.time()
        self.generate(users, self.created)

    # ------------------------------------------------------------------ generation
    def generate(self, users: int, now: float) -> None:
        rng = random.Random(self.seed)
        market = self.market
        syms = list(market.symbols.values())
        sym_weights = [14, 10, 9, 5, 6, 5, 4, 10, 3, 4, 5, 4]
        groups = [self.groups[n] for n in self.group_names]
        gweights = [g.weight for g in groups]
        anchor = self.anchor
        choices = rng.choices
        rnd = rng.random
        for i in range(users):
            login = FIRST_LOGIN + i
            group = choices(groups, gweights)[0]
            acc = Account(login, group)
            first = FIRST_NAMES[int(rnd() * len(FIRST_NAMES))]
            last = LAST_NAMES[int(rnd() * len(LAST_NAMES))]
            acc.name = f"{first} {last}"
            acc.email = f"{first.lower()}.{last.lower()}{login}@example.com"
            acc.country, acc.city = COUNTRIES[int(rnd() * len(COUNTRIES))]
            acc.phone = f"+4930{login:07d}"
            acc.reg_time = float(int(anchor - 180 * DAY - rnd() * 900 * DAY))
            acc.last_time = float(int(anchor - rnd() * 5 * DAY))
            acc.mtime = acc.reg_time
            acc.history = True
            balance = round(group.deposit * (0.3 + 3.0 * rnd() ** 2), 2)
            acc.credit = round(balance * 0.1, 2) if rnd() < 0.1 else 0.0
            ntr = choices((0, 1, 2, 3, 4, 5, 6), (6, 12, 18, 24, 18, 12, 10))[0]
            near = rnd() < 0.06
            usage = 0.05 + 0.35 * rnd()
            margin_total = 0.0
            floating = 0.0
            for _ in range(ntr):
                sym = choices(syms, sym_weights)[0]
                r = rnd()
                cmd = BUY if r < 0.45 else SELL if r < 0.88 else BUY_LIMIT + int(rnd() * 4)
                drift = (rnd() - 0.5) * 0.006
                price = round(sym.mid * (1 + drift), sym.digits)
                if cmd in (BUY_LIMIT, SELL_STOP):
                    price = round(sym.bid * (1 - 0.002 - rnd() * 0.01), sym.digits)
                elif cmd in (SELL_LIMIT, BUY_STOP):
                    price = round(sym.ask * (1 + 0.002 + rnd() * 0.01), sym.digits)
                m1 = market.trade_margin(sym, BUY, 100, sym.mid, acc.leverage, group.currency)
                want = balance * usage / max(ntr, 1)
                volume = max(1, min(10000, int(want / m1 * 100))) if m1 > 0 else 10
                t = Trade(
                    self.next_ticket,
                    login,
                    sym,
                    cmd,
                    volume,
                    price,
                    float(int(anchor - rnd() * 10 * DAY)),
                    reason="Client",
                )
                t.reason = "Client"
                t.mtime = t.open_time
                self.next_ticket += 1
                if cmd <= SELL:
                    t.storage = round(-rnd() * volume * 0.05, 2)
                    margin_total += market.trade_margin(
                        sym, cmd, volume, price, acc.leverage, group.currency
                    )
                    floating += (
                        market.trade_profit(sym, cmd, volume, price, group.currency) + t.storage
                    )
                acc.open.append(t)
                self.trades[t.ticket] = t
                self.tickets.append(t.ticket)
            if near and margin_total > 0:
                target = group.stop_out * 1.25 + rnd() * (
                    group.margin_call * 1.4 - group.stop_out * 1.25
                )
                equity = margin_total * target / 100.0
                acc.credit = 0.0
                balance = round(max(equity - floating, 10.0), 2)
            acc.balance = balance
            acc.init_balance = balance
            acc.prev_balance = balance
            acc.prev_equity = round(balance + acc.credit + floating, 2)
            self.accounts[login] = acc
            self.logins.append(login)
        self.hist_logins_end = FIRST_LOGIN + users
        online_rng = random.Random(self.seed * 31 + 5)
        self.online = (
            sorted(online_rng.sample(self.logins, k=min(len(self.logins), max(1, users // 10))))
            if users
            else []
        )
        for login in self.online[:200]:
            self.log(
                now - 60,
                "Login",
                f"'{login}': login (build 1420, 10.0.{login % 250}.{login % 200})",
                f"10.0.{login % 250}.{login % 200}",
            )
        self.log(now, "Info", f"sandbox: {users} accounts loaded, {len(self.trades)} open orders")
        for acc in self.accounts.values():
            self.refresh_level(acc)

    # ------------------------------------------------------------------ helpers
    def log(self, ts: float, code: str, message: str, ip: str = "") -> None:
        self.journal.append((ts, code, ip, message))

    def account(self, login: int) -> Account:
        acc = self.accounts.get(login)
        if acc is None:
            raise not_found(f"Account {login} not found")
        return acc

    def symbol(self, name: str | None) -> Symbol:
        sym = self.market.symbols.get(name or "")
        if sym is None:
            raise not_found(f"Symbol '{name}' not found")
        return sym

    def group(self, name: str) -> Group:
        g = self.groups.get(name)
        if g is None:
            raise not_found(f"Group '{name}' not found")
        return g

    def new_ticket(self) -> int:
        t = self.next_ticket
        self.next_ticket += 1
        return t

    # ------------------------------------------------------------------ margin maths
    def calc(self, acc: Account) -> tuple[float, float, float]:
        """(floating profit incl. swaps/commission, margin, volume) in the account currency."""
        tick = self.market.tick_no
        if acc.calc_tick == tick and acc.calc is not None:
            return acc.calc
        ccy = acc.group.currency
        market = self.market
        floating = margin = 0.0
        volume = 0
        for t in acc.open:
            if t.cmd <= SELL:
                floating += (
                    market.trade_profit(t.sym, t.cmd, t.volume, t.open_price, ccy)
                    + t.storage
                    + t.commission
                )
                margin += market.trade_margin(
                    t.sym, t.cmd, t.volume, t.open_price, acc.leverage, ccy
                )
                volume += t.volume
        acc.calc = (round(floating, 2), round(margin, 2), volume)
        acc.calc_tick = tick
        return acc.calc

    def margin_info(self, acc: Account) -> dict:
        floating, margin, volume = self.calc(acc)
        equity = round(acc.balance + acc.credit + floating, 2)
        level = round(equity / margin * 100.0, 2) if margin > 0 else 0.0
        return {
            "equity": equity,
            "margin": margin,
            "free": round(equity - margin, 2),
            "level": level,
            "volume": volume,
            "floating": floating,
        }

    def refresh_level(self, acc: Account) -> str:
        info = self.margin_info(acc)
        g = acc.group
        if info["margin"] <= 0:
            lt = "Ok"
        elif info["level"] <= g.stop_out:
            lt = "StopOut"
        elif info["level"] <= g.margin_call:
            lt = "MarginCall"
        else:
            lt = "Ok"
        changed = lt != acc.level_type
        acc.level_type = lt
        if changed and self.market.events.listening("margin"):
            self.market.events.publish("margin", acc)
        return lt

    # ------------------------------------------------------------------ realtime events
    def user_changed(self, acc: Account, kind: str = "Updated") -> None:
        if self.market.events.listening("user"):
            self.market.events.publish("user", (kind, acc))

    def trade_changed(self, t: Trade, kind: str) -> None:
        if self.market.events.listening("trade"):
            self.market.events.publish("trade", (kind, t))

    def check_stopout(self, acc: Account, now: float) -> int:
        """Close the worst market trades while the level is at/below stop-out. Returns closes."""
        closed = 0
        while True:
            lt = self.refresh_level(acc)
            if lt != "StopOut":
                return closed
            market_trades = [t for t in acc.open if t.cmd <= SELL]
            if not market_trades:
                return closed
            info = self.margin_info(acc)
            ccy = acc.group.currency
            worst = min(
                market_trades,
                key=lambda t: (
                    self.market.trade_profit(t.sym, t.cmd, t.volume, t.open_price, ccy) + t.storage,
                    t.ticket,
                ),
            )
            comment = f"[so: {info['level']:.1f}%/{info['equity']:.1f}/{info['margin']:.1f}]"
            self.close_trade(worst, worst.volume, now, comment=comment, activation="Stopout")
            self.log(
                now,
                "Trade",
                f"stop out #{worst.ticket} {TRADE_NAMES[worst.cmd]} "
                f"{worst.volume / 100:.2f} {worst.sym.name} for '{acc.login}' {comment}",
            )
            closed += 1

    def sweep(self, now: float) -> int:
        """Risk sweep over the next chunk of accounts (round-robin); returns stop-out closes."""
        n = len(self.logins)
        if not n:
            return 0
        chunk = min(self.sweep_chunk, n)
        closes = 0
        start = self.sweep_pos % n
        end = start + chunk
        keys = self.logins[start:end] if end <= n else self.logins[start:] + self.logins[: end - n]
        for login in keys:
            acc = self.accounts.get(login)
            if acc is None or not acc.open:
                continue
            closes += self.check_stopout(acc, now)
        self.sweep_pos = end % n
        return closes

    # ------------------------------------------------------------------ trade changes
    def _index_add(self, t: Trade) -> None:
        self.trades[t.ticket] = t
        if not self.tickets or t.ticket > self.tickets[-1]:
            self.tickets.append(t.ticket)
        else:
            bisect.insort(self.tickets, t.ticket)

    def _index_remove(self, t: Trade) -> None:
        self.trades.pop(t.ticket, None)
        i = bisect.bisect_left(self.tickets, t.ticket)
        if i < len(self.tickets) and self.tickets[i] == t.ticket:
            del self.tickets[i]

    def open_trade(
        self,
        acc: Account,
        sym: Symbol,
        cmd: int,
        volume: int,
        price: float,
        sl: float,
        tp: float,
        comment: str,
        now: float,
        expiration: float = 0.0,
    ) -> Trade:
        if volume <= 0 or volume > 100000:
            raise mt4_error("TradeBadVolume", f"Invalid volume {volume} (lots x 100, 1..100000)")
        if cmd == BUY:
            price = sym.ask
        elif cmd == SELL:
            price = sym.bid
        else:
            if price <= 0:
                raise mt4_error("TradeBadPrices", "A pending order needs a price")
            ok = (
                (cmd == BUY_LIMIT and price < sym.ask)
                or (cmd == SELL_LIMIT and price > sym.bid)
                or (cmd == BUY_STOP and price > sym.ask)
                or (cmd == SELL_STOP and price < sym.bid)
            )
            if not ok:
                raise mt4_error(
                    "TradeBadPrices",
                    f"Invalid price {price} for {TRADE_NAMES[cmd]} (bid {sym.bid}, ask {sym.ask})",
                )
            price = round(price, sym.digits)
        self.check_stops(sym, cmd, price, sl, tp)
        t = Trade(self.new_ticket(), acc.login, sym, cmd, volume, price, now, comment=comment)
        t.sl, t.tp, t.expiration = sl, tp, expiration
        acc.open.append(t)
        acc.calc_tick = -1
        if cmd <= SELL:
            info = self.margin_info(acc)
            if info["free"] < 0:
                acc.open.remove(t)
                acc.calc_tick = -1
                self.next_ticket -= 1
                raise mt4_error(
                    "TradeNoMoney",
                    f"Not enough money: free margin {info['free']:.2f} after the order",
                )
        self._index_add(t)
        self.log(
            now,
            "Trade",
            f"'{acc.login}': order #{t.ticket} {TRADE_NAMES[cmd]} "
            f"{volume / 100:.2f} {sym.name} at {price}",
        )
        self.refresh_level(acc)
        self.trade_changed(t, "Added")
        return t

    def check_stops(self, sym: Symbol, cmd: int, price: float, sl: float, tp: float) -> None:
        if sl < 0 or tp < 0:
            raise mt4_error("TradeBadStops", "Stops cannot be negative")
        buy_side = cmd in (BUY, BUY_LIMIT, BUY_STOP)
        ref = price if cmd > SELL else (sym.bid if cmd == BUY else sym.ask)
        gap = sym.stops_level * sym.point
        if buy_side:
            bad = (sl and sl >= ref - gap) or (tp and tp <= ref + gap)
        else:
            bad = (sl and sl <= ref + gap) or (tp and tp >= ref - gap)
        if bad:
            raise mt4_error(
                "TradeBadStops", f"Invalid stops sl={sl} tp={tp} for {TRADE_NAMES[cmd]} at {ref}"
            )

    def modify_trade(
        self,
        t: Trade,
        price: float,
        sl: float,
        tp: float,
        now: float,
        expiration: float | None = None,
    ) -> Trade:
        new_price = t.open_price
        if t.cmd > SELL and price > 0:
            new_price = round(price, t.sym.digits)
        self.check_stops(t.sym, t.cmd, new_price, sl, tp)
        t.open_price, t.sl, t.tp = new_price, sl, tp
        if expiration is not None:
            t.expiration = expiration
        t.mtime = now
        self.log(now, "Trade", f"'{t.login}': modify #{t.ticket} sl: {sl} tp: {tp}")
        self.trade_changed(t, "Updated")
        return t

    def close_trade(
        self,
        t: Trade,
        volume: int,
        now: float,
        comment: str | None = None,
        activation: str = "None",
    ) -> Trade:
        acc = self.accounts[t.login]
        if t.cmd > SELL:
            raise mt4_error("InvalidData", f"#{t.ticket} is a pending order; delete it instead")
        if volume <= 0:
            volume = t.volume
        if volume > t.volume:
            raise mt4_error(
                "TradeBadVolume", f"Close volume {volume} exceeds order volume {t.volume}"
            )
        sym = t.sym
        ccy = acc.group.currency
        close_price = sym.bid if t.cmd == BUY else sym.ask
        remainder = t.volume - volume
        if remainder:
            # MT4 closes the part under the original ticket and reopens the rest as a new one.
            rest = Trade(
                self.new_ticket(),
                t.login,
                sym,
                t.cmd,
                remainder,
                t.open_price,
                t.open_time,
                comment=f"from #{t.ticket}",
                reason=t.reason,
            )
            rest.sl, rest.tp, rest.mtime = t.sl, t.tp, now
            share = remainder / t.volume
            rest.storage = round(t.storage * share, 2)
            rest.commission = round(t.commission * share, 2)
            t.storage = round(t.storage - rest.storage, 2)
            t.commission = round(t.commission - rest.commission, 2)
            acc.open.append(rest)
            self._index_add(rest)
            t.comment = f"to #{rest.ticket}"
        t.volume = volume
        t.profit = self.market.trade_profit(sym, t.cmd, volume, t.open_price, ccy)
        t.close_price = close_price
        t.close_time = now
        t.mtime = now
        t.state = CLOSED_PART if remainder else CLOSED_NORMAL
        t.activation = activation
        if comment is not None:
            t.comment = comment
        acc.open.remove(t)
        self._index_remove(t)
        acc.closed.append(t)
        self.closed_index[t.ticket] = t
        acc.balance = round(acc.balance + t.profit + t.storage + t.commission, 2)
        acc.touch(now)
        self.log(
            now,
            "Trade",
            f"'{acc.login}': close #{t.ticket} {TRADE_NAMES[t.cmd]} "
            f"{volume / 100:.2f} {sym.name} at {close_price} (profit {t.profit:.2f})",
        )
        self.trade_changed(t, "Deleted")
        if remainder:
            self.trade_changed(rest, "Added")
        self.user_changed(acc)
        return t

    def delete_trade(self, t: Trade, now: float) -> Trade:
        acc = self.accounts[t.login]
        if t.cmd <= SELL:
            raise mt4_error("InvalidData", f"#{t.ticket} is a market order; close it instead")
        t.state = DELETED
        t.close_time = now
        t.close_price = t.sym.bid
        t.mtime = now
        acc.open.remove(t)
        self._index_remove(t)
        acc.closed.append(t)
        self.closed_index[t.ticket] = t
        self.log(now, "Trade", f"'{acc.login}': delete pending #{t.ticket}")
        self.trade_changed(t, "Deleted")
        return t

    def balance_op(self, acc: Account, cmd: int, amount: float, comment: str, now: float) -> Trade:
        if amount == 0:
            raise mt4_error("InvalidData", "Amount must not be zero")
        if cmd == BALANCE:
            if amount < 0:
                info = self.margin_info(acc)
                if acc.balance + amount < 0 or info["free"] + amount < 0:
                    raise mt4_error(
                        "TradeNoMoney",
                        f"Not enough money for a withdrawal of "
                        f"{-amount:.2f} (balance {acc.balance:.2f}, free margin "
                        f"{info['free']:.2f})",
                    )
            acc.balance = round(acc.balance + amount, 2)
        else:
            if acc.credit + amount < 0:
                raise mt4_error("TradeNoMoney", f"Credit cannot go below zero ({acc.credit:.2f})")
            acc.credit = round(acc.credit + amount, 2)
        t = Trade(self.new_ticket(), acc.login, None, cmd, 0, 0.0, now, comment=comment)
        t.profit = round(amount, 2)
        t.close_time = now
        t.state = CLOSED_NORMAL
        acc.closed.append(t)
        self.closed_index[t.ticket] = t
        acc.touch(now)
        kind = "balance" if cmd == BALANCE else "credit"
        self.log(now, "Trade", f"'{acc.login}': {kind} {amount:.2f} '{comment}' #{t.ticket}")
        self.user_changed(acc)
        self.check_stopout(acc, now)
        return t

    # ------------------------------------------------------------------ history
    def derived_history(self, acc: Account) -> list[Trade]:
        """The account's historic closed trades and deposit, derived from (seed, login)."""
        if not acc.history:
            return []
        login = acc.login
        rng = random.Random(self.seed * 1_000_003 + login)
        syms = list(self.market.symbols.values())
        count = 10 + int(rng.random() * 21)
        base = HIST_BASE + (login - FIRST_LOGIN) * HIST_SLOTS
        start = acc.reg_time
        span = max(self.anchor - 12 * DAY - start, DAY)
        times = sorted(start + DAY + rng.random() * span for _ in range(count))
        out = []
        total = 0.0
        ccy = acc.group.currency
        for k, t_open in enumerate(times):
            sym = syms[int(rng.random() * len(syms))]
            cmd = BUY if rng.random() < 0.5 else SELL
            volume = 1 + int(rng.random() * 200)
            o = self.market.path_price(sym, t_open)
            t_close = t_open + 600 + rng.random() * 3 * DAY
            c = self.market.path_price(sym, t_close)
            t = Trade(
                base + 1 + k,
                login,
                sym,
                cmd,
                volume,
                round(o, sym.digits),
                float(int(t_open)),
                reason="Client",
            )
            t.close_time = float(int(t_close))
            t.close_price = round(c, sym.digits)
            t.state = CLOSED_NORMAL
            raw = (c - o) if cmd == BUY else (o - c)
            t.profit = round(
                self.market.static_convert(raw * sym.contract * volume / 100.0, sym.quote, ccy), 2
            )
            # keep history plausible: cap a single trade's result
            cap = acc.init_balance * 0.1 + 50
            t.profit = max(-cap, min(cap, t.profit))
            t.storage = round(-rng.random() * volume * 0.03, 2)
            t.commission = round(-volume * 0.07, 2)
            t.mtime = t.close_time
            total += t.profit + t.storage + t.commission
            out.append(t)
        # the opening deposit (and a withdrawal when history was profitable) reconcile the
        # history with the generated starting balance: sum of all records == init_balance
        first = round(acc.init_balance - min(total, 0.0), 2)
        deposit = Trade(base, login, None, BALANCE, 0, 0.0, start, comment="Deposit")
        deposit.profit = first
        deposit.close_time = start
        deposit.state = CLOSED_NORMAL
        deposit.mtime = start
        rows = [deposit, *out]
        if total > 0:
            when = float(int(self.anchor - 11 * DAY))
            wd = Trade(
                base + HIST_SLOTS - 1, login, None, BALANCE, 0, 0.0, when, comment="Withdrawal"
            )
            wd.profit = round(-total, 2)
            wd.close_time = when
            wd.state = CLOSED_NORMAL
            wd.mtime = when
            rows.append(wd)
        return rows

    def history(self, acc: Account, t_from: float | None, t_to: float | None) -> list[Trade]:
        lo = t_from if t_from is not None else float("-inf")
        hi = t_to if t_to is not None else float("inf")
        rows = [t for t in self.derived_history(acc) + acc.closed if lo <= t.close_time <= hi]
        rows.sort(key=lambda t: t.ticket)
        return rows

    def find_trade(self, ticket: int) -> Trade | None:
        t = self.trades.get(ticket) or self.closed_index.get(ticket)
        if t is not None:
            return t
        if HIST_BASE <= ticket < OPEN_BASE:
            login = FIRST_LOGIN + (ticket - HIST_BASE) // HIST_SLOTS
            acc = self.accounts.get(login)
            if acc is not None:
                for h in self.derived_history(acc):
                    if h.ticket == ticket:
                        return h
        return None

    # ------------------------------------------------------------------ users
    def add_account(self, acc: Account) -> None:
        self.accounts[acc.login] = acc
        bisect.insort(self.logins, acc.login)
        self.user_changed(acc, "Added")

    def remove_account(self, login: int, now: float) -> None:
        acc = self.accounts.pop(login, None)
        if acc is None:
            return
        i = bisect.bisect_left(self.logins, login)
        if i < len(self.logins) and self.logins[i] == login:
            del self.logins[i]
        for t in list(acc.open):
            self._index_remove(t)
            t.state = DELETED
            t.mtime = now
            self.closed_index[t.ticket] = t
        self.log(now, "Info", f"'{login}': account deleted")
        self.user_changed(acc, "Deleted")

    def next_free_login(self) -> int:
        return (self.logins[-1] + 1) if self.logins else FIRST_LOGIN

    def group_matches(self, mask: str) -> list[str]:
        return [g for g in self.group_names if fnmatch.fnmatchcase(g, mask)]

    def iter_accounts(self) -> Iterator[Account]:
        for login in self.logins:
            yield self.accounts[login]

    # ------------------------------------------------------------------ sync
    def changed_trades(self, since: float, *, scan: bool = False) -> list[Trade]:
        """Open, closed and deleted trades modified at/after ``since``, by ticket.

        Read from the change log (:data:`CHANGE_LOG_FROM`) unless ``since`` is older than
        it (or ``scan``, which the tests compare with): then every trade is looked at.
        """
        if scan or since < CHANGE_LOG_FROM:
            candidates: Iterable[Trade] = [*self.trades.values(), *self.closed_index.values()]
        else:
            candidates = [t for t in list(_CHANGED_TRADES)
                          if self.trades.get(t.ticket) is t
                          or self.closed_index.get(t.ticket) is t]
        rows = [t for t in candidates if t.mtime >= since]
        rows.sort(key=lambda t: t.ticket)
        return rows

    def changed_accounts(self, since: float, *, scan: bool = False) -> list[Account]:
        """Accounts modified at/after ``since``, by login (change log as for trades)."""
        if scan or since < CHANGE_LOG_FROM:
            return [a for a in self.iter_accounts() if a.mtime >= since]
        rows = [a for a in list(_CHANGED_ACCOUNTS)
                if a.mtime >= since and self.accounts.get(a.login) is a]
        rows.sort(key=lambda a: a.login)
        return rows


TRADE_NAMES = [
    "buy",
    "sell",
    "buy limit",
    "sell limit",
    "buy stop",
    "sell stop",
    "balance",
    "credit",
]


def _default_plugins() -> list[dict]:
    return [
        {
            "plugin": {
                "file": "mtwebapi.dll",
                "name": "CPlugin WebAPI",
                "version": 2,
                "copyright": "CPlugin",
                "enabled": 1,
                "configurable": 1,
                "managerAccess": 1,
            },
            "params": [{"name": "Port", "value": "8443"}, {"name": "LogLevel", "value": "info"}],
        },
        {
            "plugin": {
                "file": "riskguard.dll",
                "name": "Risk Guard",
                "version": 5,
                "copyright": "Sandbox",
                "enabled": 1,
                "configurable": 1,
                "managerAccess": 0,
            },
            "params": [{"name": "MaxLots", "value": "50"}],
        },
    ]


def fail_if(cond: bool, fail: ApiFail) -> None:
    if cond:
        raise fail


__all__ = ["CREDIT", "SELL_STOP", "Account", "MT4Platform", "Trade", "iso"]
