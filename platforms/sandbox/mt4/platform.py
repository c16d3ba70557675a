"""The simulated MT4 server: margin and stop-outs, trade changes, history, users and syncs.

Equity and margin are computed on demand (cached per market tick), the risk sweep goes over a
chunk of accounts per tick, and syncs ("changed since T") read the records' change log. Its
accounts and their history come from :mod:`.generation`; its records are in :mod:`.records`.
"""

from __future__ import annotations

import bisect
import collections
import fnmatch
import time
from collections.abc import Iterable, Iterator

from ..market import (
    BALANCE,
    BUY,
    BUY_LIMIT,
    BUY_STOP,
    SELL,
    SELL_LIMIT,
    SELL_STOP,
    Group,
    Market,
    Symbol,
    default_groups,
)
from ..wire import mt4_error, not_found
from .generation import (
    FIRST_LOGIN,
    OPEN_BASE,
    default_plugins,
    derived_history,
    generate_accounts,
    historic_login,
    sample_online,
)
from .records import (
    CHANGE_LOG_FROM,
    CHANGED_ACCOUNTS,
    CHANGED_TRADES,
    CLOSED_NORMAL,
    CLOSED_PART,
    DELETED,
    TRADE_NAMES,
    Account,
    Trade,
)


class MT4Platform:
    """One simulated MT4 server: generated deterministically from (seed, users)."""

    #: The server's clock runs on UTC+2 (EET, as most MT4 servers do): its wire times are
    #: that wall clock (see ``wire.server_clock``) and ``ManagerCommon.timeZone`` says 2.
    utc_offset_seconds = 2 * 3600

    def __init__(self, seed: int, users: int, market: Market, *, now: float | None = None) -> None:
        self.seed = seed
        self.market = market
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
        self.plugins = default_plugins()
        self.created = now or time.time()
        self._populate(users, self.created)

    def _populate(self, users: int, now: float) -> None:
        groups = [self.groups[n] for n in self.group_names]
        for acc in generate_accounts(self.seed, users, self.market, groups, self.next_ticket):
            self.accounts[acc.login] = acc
            self.logins.append(acc.login)
            for t in acc.open:
                self.trades[t.ticket] = t
                self.tickets.append(t.ticket)
        self.next_ticket += len(self.tickets)
        self.online = sample_online(self.seed, self.logins)
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
    def history(self, acc: Account, t_from: float | None, t_to: float | None) -> list[Trade]:
        lo = t_from if t_from is not None else float("-inf")
        hi = t_to if t_to is not None else float("inf")
        derived = derived_history(self.seed, self.market, acc)
        rows = [t for t in derived + acc.closed if lo <= t.close_time <= hi]
        rows.sort(key=lambda t: t.ticket)
        return rows

    def find_trade(self, ticket: int) -> Trade | None:
        t = self.trades.get(ticket) or self.closed_index.get(ticket)
        if t is not None:
            return t
        login = historic_login(ticket)
        if login is not None:
            acc = self.accounts.get(login)
            if acc is not None:
                for h in derived_history(self.seed, self.market, acc):
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
            candidates = [t for t in list(CHANGED_TRADES)
                          if self.trades.get(t.ticket) is t
                          or self.closed_index.get(t.ticket) is t]
        rows = [t for t in candidates if t.mtime >= since]
        rows.sort(key=lambda t: t.ticket)
        return rows

    def changed_accounts(self, since: float, *, scan: bool = False) -> list[Account]:
        """Accounts modified at/after ``since``, by login (change log as for trades)."""
        if scan or since < CHANGE_LOG_FROM:
            return [a for a in self.iter_accounts() if a.mtime >= since]
        rows = [a for a in list(CHANGED_ACCOUNTS)
                if a.mtime >= since and self.accounts.get(a.login) is a]
        rows.sort(key=lambda a: a.login)
        return rows
