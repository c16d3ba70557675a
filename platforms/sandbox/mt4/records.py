"""The MT4 server's records: accounts and trades, and the change log their modification times feed.

Compact by design so ``--users 100000`` builds in seconds: ``__slots__`` records, the encoded
user JSON cached per account, and a change log that answers syncs from what changed rather than
from a scan of every record.
"""

from __future__ import annotations

import time
import weakref
from typing import Any

from ..market import Group, Symbol

#: Records modified at or after this time (the process start) are remembered in
#: :data:`CHANGED_ACCOUNTS` / :data:`CHANGED_TRADES` by their ``mtime`` setters; generated
#: and derived records carry earlier times. A sync ("changed since T") with T at or after it
#: reads those sets, in proportion to what changed since the start, instead of scanning every
#: account, open trade and closed trade.
CHANGE_LOG_FROM = time.time()
CHANGED_ACCOUNTS: weakref.WeakSet[Account] = weakref.WeakSet()
CHANGED_TRADES: weakref.WeakSet[Trade] = weakref.WeakSet()


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

#: Log and error wording of the trade commands, by MT4 TradeCommand number.
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


class Trade:
    """One ticket: a market or pending order, open or closed, or a balance/credit operation
    (``sym`` None); ``volume`` in lots x 100, times in server seconds."""

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
    mtime = _ChangeLogged(CHANGED_TRADES)


class Account:
    """One user record with its open trades and the closed ones made since the start (older
    history is derived from the seed on demand: see :mod:`.generation`)."""

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
    mtime = _ChangeLogged(CHANGED_ACCOUNTS)

    def touch(self, now: float) -> None:
        self.mtime = now
        self.json = None
        self.calc_tick = -1
