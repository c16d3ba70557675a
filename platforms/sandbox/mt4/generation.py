"""The MT4 server's generated data: accounts with their open trades, and each account's
closed-trade history, all derived from (seed, login) so that every run sees the same server.

History is not stored: :func:`derived_history` recomputes an account's historic trades when a
report asks, which keeps ``--users 100000`` small and quick to build.
"""

from __future__ import annotations

import random

from ..market import BALANCE, BUY, BUY_LIMIT, BUY_STOP, SELL, SELL_LIMIT, SELL_STOP, Group, Market
from ..people import COUNTRIES, FIRST_NAMES, LAST_NAMES
from .records import CLOSED_NORMAL, Account, Trade

FIRST_LOGIN = 100001
HIST_BASE = 1_000_000  # historic tickets: HIST_BASE + index*HIST_SLOTS + k
HIST_SLOTS = 40
OPEN_BASE = 10_000_000
DAY = 86400
#: How often each symbol is drawn for a generated trade (in the market's symbol order).
SYMBOL_WEIGHTS = [14, 10, 9, 5, 6, 5, 4, 10, 3, 4, 5, 4]


def generate_accounts(
    seed: int, users: int, market: Market, groups: list[Group], first_ticket: int
) -> list[Account]:
    """``users`` accounts from ``FIRST_LOGIN`` on, each with its open trades (tickets from
    ``first_ticket`` on, in login order); about 6% sit near their margin call."""
    rng = random.Random(seed)
    syms = list(market.symbols.values())
    gweights = [g.weight for g in groups]
    anchor = market.anchor
    choices = rng.choices
    rnd = rng.random
    ticket = first_ticket
    accounts: list[Account] = []
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
            sym = choices(syms, SYMBOL_WEIGHTS)[0]
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
                ticket,
                login,
                sym,
                cmd,
                volume,
                price,
                float(int(anchor - rnd() * 10 * DAY)),
                reason="Client",
            )
            t.mtime = t.open_time
            ticket += 1
            if cmd <= SELL:
                t.storage = round(-rnd() * volume * 0.05, 2)
                margin_total += market.trade_margin(
                    sym, cmd, volume, price, acc.leverage, group.currency
                )
                floating += market.trade_profit(sym, cmd, volume, price, group.currency) + t.storage
            acc.open.append(t)
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
        accounts.append(acc)
    return accounts


def sample_online(seed: int, logins: list[int]) -> list[int]:
    """The logins shown as connected: a tenth of the accounts (at least one), sorted."""
    if not logins:
        return []
    rng = random.Random(seed * 31 + 5)
    return sorted(rng.sample(logins, k=min(len(logins), max(1, len(logins) // 10))))


def historic_login(ticket: int) -> int | None:
    """The login whose derived history holds ``ticket``, or None for any other ticket."""
    if HIST_BASE <= ticket < OPEN_BASE:
        return FIRST_LOGIN + (ticket - HIST_BASE) // HIST_SLOTS
    return None


def derived_history(seed: int, market: Market, acc: Account) -> list[Trade]:
    """The account's historic closed trades and deposit, derived from (seed, login)."""
    if not acc.history:
        return []
    login = acc.login
    anchor = market.anchor
    rng = random.Random(seed * 1_000_003 + login)
    syms = list(market.symbols.values())
    count = 10 + int(rng.random() * 21)
    base = HIST_BASE + (login - FIRST_LOGIN) * HIST_SLOTS
    start = acc.reg_time
    span = max(anchor - 12 * DAY - start, DAY)
    times = sorted(start + DAY + rng.random() * span for _ in range(count))
    out = []
    total = 0.0
    ccy = acc.group.currency
    for k, t_open in enumerate(times):
        sym = syms[int(rng.random() * len(syms))]
        cmd = BUY if rng.random() < 0.5 else SELL
        volume = 1 + int(rng.random() * 200)
        o = market.path_price(sym, t_open)
        t_close = t_open + 600 + rng.random() * 3 * DAY
        c = market.path_price(sym, t_close)
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
            market.static_convert(raw * sym.contract * volume / 100.0, sym.quote, ccy), 2
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
        when = float(int(anchor - 11 * DAY))
        wd = Trade(base + HIST_SLOTS - 1, login, None, BALANCE, 0, 0.0, when, comment="Withdrawal")
        wd.profit = round(-total, 2)
        wd.close_time = when
        wd.state = CLOSED_NORMAL
        wd.mtime = when
        rows.append(wd)
    return rows


def default_plugins() -> list[dict]:
    """The server plugins the sidecar's plugin operations list and update."""
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
