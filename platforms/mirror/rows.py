"""Rows: the wire records of the manager API mapped to the mirror's columns.

One place says which field of ``MT4User`` / ``MT4Trade`` / ``MT5Position`` … lands in which
column, how the wire's quirks are read (MT4's epoch "unset" dates, its little-endian
``lastIP``, strings longer than a column), and which trades count as open.
"""

from __future__ import annotations

import calendar
import functools
from datetime import UTC, datetime, timedelta
from typing import Any

from platforms.client import records as r
from platforms.client import split_flags

#: Trade record states of an open (market or pending) MT4 trade; anything else is closed.
OPEN_STATES = frozenset({"OpenNormal", "OpenRemand", "OpenRestored"})
PENDING_COMMANDS = frozenset(
    {"BuyLimit", "SellLimit", "BuyStop", "SellStop", "BuyStopLimit", "SellStopLimit"}
)


def is_open(t: r.MT4Trade) -> bool:
    """A trade from a snapshot or sync read that belongs in the open table."""
    return (t.trade_record_state or "OpenNormal") in OPEN_STATES


def server_seconds(value: datetime) -> int:
    """Server time as the sync calls want it: Unix seconds of the server's wall clock."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return calendar.timegm(value.timetuple())


def _wall(value: datetime | None) -> datetime | None:
    """Wire date-times are server-local wall clock; MT4's "unset" is the epoch."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value.year <= 1970:
        return None
    return value


def _s(value: Any, limit: int) -> str:
    return (value or "")[:limit] if isinstance(value, str) else ("" if value is None else
                                                                  str(value)[:limit])


def _ipv4(value: int) -> str:
    """MT4's ``lastIP`` is the raw in_addr integer (network byte order read little-endian)."""
    if not value:
        return ""
    value &= 0xFFFFFFFF
    return ".".join(str((value >> shift) & 0xFF) for shift in (0, 8, 16, 24))


#: The margin columns of an account, in the order of :func:`margin_values`.
MARGIN_COLUMNS = ("equity", "margin", "free_margin", "margin_level", "margin_state",
                  "margin_controlling_type", "margin_updated_at")
NO_MARGIN = (None, None, None, None, "", "", None)


def margin_values(m: r.MT4MarginLevel, offset_minutes: int = 0) -> tuple:
    """The :data:`MARGIN_COLUMNS` of one margin record (no level without margin in use);
    ``updated`` is the server's clock, stored as the instant (``offset_minutes`` its zone)."""
    return (
        m.equity, m.margin, m.free, m.level if m.margin else None, m.level_type or "",
        m.controlling_type or "",
        _epoch(m.updated - offset_minutes * 60) if m.updated > 0 else None,
    )


@functools.lru_cache(maxsize=4096)
def _epoch(seconds: int) -> datetime:
    # 100,000 margin records share a few distinct "updated" seconds: convert each once.
    return datetime.fromtimestamp(seconds, tz=UTC)


def apply_margin(row: dict[str, Any], m: r.MT4MarginLevel | None,
                 offset_minutes: int = 0) -> None:
    """Set the margin columns of an MT4 account row (all empty without a margin record)."""
    values = NO_MARGIN if m is None else margin_values(m, offset_minutes)
    row.update(zip(MARGIN_COLUMNS, values, strict=True))


class MirrorRows:
    """Row dicts (column → value) of one platform, stamped with the run that read them."""

    def __init__(self, platform_id: int, stamp: datetime, offset_minutes: int = 0) -> None:
        self.platform_id = platform_id
        self.stamp = stamp
        #: the server clock's zone: every server time is stored as the true UTC instant
        self.offset_minutes = offset_minutes
        self.offset = timedelta(minutes=offset_minutes)

    def _dt(self, value: datetime | None) -> datetime | None:
        wall = _wall(value)
        return wall - self.offset if wall is not None and self.offset else wall

    def mt4_account(self, u: r.MT4User, m: r.MT4MarginLevel | None,
                     currency: dict[str, str]) -> dict[str, Any]:
        row = dict(
            platform_id=self.platform_id, login=u.login, group=_s(u.group, 64),
            name=_s(u.name, 128),
            email=_s(u.email, 128), phone=_s(u.phone, 64), country=_s(u.country, 64),
            city=_s(u.city, 64), state=_s(u.state, 64), zip_code=_s(u.zip_code, 32),
            address=_s(u.address, 256), external_id=_s(u.external_id, 64),
            status=_s(u.status, 32), lead_source=_s(u.lead_source, 64),
            comment=_s(u.comment, 256), currency=currency.get(u.group or "", ""),
            leverage=u.leverage, agent_account=u.agent_account,
            enabled=bool(u.enable_flags & 0x01), read_only=bool(u.enable_flags & 0x04),
            enable_flags=u.enable_flags, last_ip=_ipv4(u.last_ip),
            registered_at=self._dt(u.registration_date), last_access_at=self._dt(u.last_date),
            balance=u.balance, credit=u.credit, prev_balance=u.prev_balance,
            prev_month_balance=u.prev_month_balance, prev_equity=u.prev_equity,
            prev_month_equity=u.prev_month_equity, interest_rate=u.interest_rate,
            taxes=u.taxes, last_seen_at=self.stamp,
        )
        apply_margin(row, m, self.offset_minutes)
        return row

    def mt4_trade_fields(self, t: r.MT4Trade, group_of: dict[int, str]) -> dict[str, Any]:
        return {
            "platform_id": self.platform_id, "ticket": t.order, "login": t.login,
            "group": group_of.get(t.login, ""), "symbol": _s(t.symbol, 32),
            "command": t.trade_command or "Buy", "digits": t.digits, "volume": t.volume,
            "volume_lots": t.volume_lots, "open_price": t.open_price, "sl": t.sl, "tp": t.tp,
            "open_time": self._dt(t.open_time), "commission": t.commission,
            "commission_agent": t.commission_agent, "swap": t.storage, "profit": t.profit,
            "taxes": t.taxes, "magic": t.magic, "comment": _s(t.comment, 128),
            "state": t.trade_record_state or "", "reason": t.trade_record_reason or "",
            "activation": t.activation_type or "", "margin_rate": t.margin_rate,
            "modified_at": self._dt(t.time_stamp), "last_seen_at": self.stamp,
        }

    def mt4_open(self, t: r.MT4Trade, group_of: dict[int, str]) -> dict[str, Any]:
        row = self.mt4_trade_fields(t, group_of)
        row["is_pending"] = (t.trade_command or "") in PENDING_COMMANDS
        row["current_price"] = t.close_price
        row["expiration"] = self._dt(t.expiration)
        return row

    def mt4_closed(self, t: r.MT4Trade, group_of: dict[int, str]) -> dict[str, Any]:
        row = self.mt4_trade_fields(t, group_of)
        row["close_price"] = t.close_price
        row["close_time"] = self._dt(t.close_time)
        if row["close_time"] is None and t.trade_command in ("Balance", "Credit"):
            # A balance/credit operation's time is its open time on MT4.
            row["close_time"] = row["open_time"]
        return row

    def mt4_group(self, g: r.MT4Group) -> dict[str, Any]:
        return dict(
            platform_id=self.platform_id, name=_s(g.group, 64), company=_s(g.company, 128),
            currency=_s(g.currency, 16), enabled=bool(g.enable),
            default_leverage=g.default_leverage, default_deposit=g.default_deposit,
            margin_call=g.margin_call, stop_out=g.margin_stopout,
            stop_out_mode=g.margin_controlling_type or "", margin_mode=g.margin_mode or "",
            interest_rate=g.interest_rate, credit=g.credit, max_positions=g.max_positions,
            hedge_prohibited=bool(g.hedge_prohibited), last_seen_at=self.stamp,
        )

    def mt4_symbol(self, s: r.MT4SymbolConfig) -> dict[str, Any]:
        return dict(
            platform_id=self.platform_id, symbol=_s(s.symbol, 32),
            description=_s(s.description, 128),
            currency_profit=_s(s.currency, 16), currency_margin=_s(s.margin_currency, 16),
            digits=s.digits, point=s.point, contract_size=s.contract_size,
            tick_value=s.tick_value, tick_size=s.tick_size, spread=s.spread,
            stops_level=s.stops_level, freeze_level=s.freeze_level,
            trade_mode=s.trade_mode or "", execution_mode=s.symbol_exec_mode or "",
            profit_mode=s.profit_calculation_mode or "",
            margin_mode=s.margin_calculation_mode or "", margin_initial=s.margin_initial,
            margin_maintenance=s.margin_maintenance, margin_hedged=s.margin_hedged,
            margin_divider=s.margin_divider, percentage=s.percentage,
            swap_type=s.swap_type or "", swap_long=s.swap_long, swap_short=s.swap_short,
            last_seen_at=self.stamp,
        )

    def mt5_account(self, u: r.MT5User, currency: dict[str, str],
                     floating: dict[int, float]) -> dict[str, Any]:
        rights = split_flags(u.rights)
        return dict(
            platform_id=self.platform_id, login=u.login, group=_s(u.group, 64),
            name=_s(u.name, 128),
            first_name=_s(u.first_name, 64), last_name=_s(u.last_name, 64),
            email=_s(u.e_mail, 128), phone=_s(u.phone, 64), country=_s(u.country, 64),
            city=_s(u.city, 64), state=_s(u.state, 64), zip_code=_s(u.zip_code, 32),
            address=_s(u.address, 256), company=_s(u.company, 128), external_id=_s(u.id, 64),
            status=_s(u.status, 32), lead_source=_s(u.lead_source, 64),
            comment=_s(u.comment, 256), currency=currency.get(u.group or "", ""),
            leverage=u.leverage, agent_account=u.agent, enabled="Enabled" in rights,
            read_only="TradeDisabled" in rights, rights=_s(u.rights, 256),
            last_ip=_s(u.last_ip, 45), registered_at=self._dt(u.registration),
            last_access_at=self._dt(u.last_access), balance=u.balance, credit=u.credit,
            prev_balance=u.balance_prev_day, prev_month_balance=u.balance_prev_month,
            prev_equity=u.equity_prev_day, prev_month_equity=u.equity_prev_month,
            interest_rate=u.interest_rate,
            equity=round(u.balance + u.credit + floating.get(u.login, 0.0), 2),
            last_seen_at=self.stamp,
        )

    def mt5_position(self, p: r.MT5Position, group_of: dict[int, str]) -> dict[str, Any]:
        return dict(
            platform_id=self.platform_id, ticket=p.position or 0, login=p.login or 0,
            group=group_of.get(p.login or 0, ""), symbol=_s(p.symbol, 32),
            command=p.action or "Buy", digits=p.digits or 0, volume=p.volume or 0,
            volume_lots=(p.volume or 0) / 10000.0, open_price=p.price_open or 0.0,
            sl=p.price_sl or 0.0, tp=p.price_tp or 0.0, open_time=self._dt(p.time_create),
            swap=p.storage or 0.0, profit=p.profit or 0.0, magic=p.expert_id or 0,
            comment=_s(p.comment, 128), state="Open", reason=p.reason or "",
            activation=p.activation_mode or "", margin_rate=p.rate_margin or 0.0,
            position_id=p.position or 0, modified_at=self._dt(p.time_update),
            is_pending=False, current_price=p.price_current or 0.0, last_seen_at=self.stamp,
        )

    def mt5_order(self, o: r.MT5Order, group_of: dict[int, str]) -> dict[str, Any]:
        return dict(
            platform_id=self.platform_id, ticket=o.order or 0, login=o.login or 0,
            group=group_of.get(o.login or 0, ""), symbol=_s(o.symbol, 32),
            command=o.type or "BuyLimit", digits=o.digits or 0,
            volume=o.volume_current or 0, volume_lots=(o.volume_current or 0) / 10000.0,
            open_price=o.price_order or 0.0, sl=o.price_sl or 0.0, tp=o.price_tp or 0.0,
            open_time=self._dt(o.time_setup), magic=o.expert_id or 0, comment=_s(o.comment, 128),
            state=o.state or "", reason=o.reason or "", margin_rate=o.rate_margin or 0.0,
            position_id=o.position_id or 0, is_pending=True,
            current_price=o.price_current or 0.0, expiration=self._dt(o.time_expiration),
            last_seen_at=self.stamp,
        )

    def mt5_deal(self, d: r.MT5Deal, group_of: dict[int, str]) -> dict[str, Any]:
        return dict(
            platform_id=self.platform_id, ticket=d.deal, login=d.login or 0,
            group=group_of.get(d.login or 0, ""), symbol=_s(d.symbol, 32),
            command=d.action or "", digits=d.digits or 0, volume=d.volume or 0,
            volume_lots=(d.volume or 0) / 10000.0, open_price=d.price_position or 0.0,
            sl=d.price_sl or 0.0, tp=d.price_tp or 0.0, commission=d.commission or 0.0,
            swap=d.storage or 0.0, profit=d.profit or 0.0, magic=d.expert_id or 0,
            comment=_s(d.comment, 128), reason=d.reason or "",
            margin_rate=d.rate_margin or 0.0, position_id=d.position_id or 0,
            close_price=d.price or 0.0, close_time=self._dt(d.time), entry=_s(d.entry, 8),
            order=d.order or 0, last_seen_at=self.stamp,
        )

    def mt5_group(self, g: r.MT5ConGroup) -> dict[str, Any]:
        return dict(
            platform_id=self.platform_id, name=_s(g.group, 64), company=_s(g.company, 128),
            currency=_s(g.currency, 16), currency_digits=g.currency_digits or 2,
            default_leverage=g.demo_leverage or 0, default_deposit=g.demo_deposit or 0.0,
            margin_call=g.margin_call or 0.0, stop_out=g.margin_stop_out or 0.0,
            stop_out_mode=g.margin_so_mode or "", margin_mode=g.margin_mode or "",
            interest_rate=g.trade_interest_rate or 0.0,
            credit=g.trade_virtual_credit or 0.0, max_positions=g.limit_positions or 0,
            last_seen_at=self.stamp,
        )

    def mt5_symbol(self, s: r.MT5Symbol) -> dict[str, Any]:
        return dict(
            platform_id=self.platform_id, symbol=_s(s.symbol, 32),
            description=_s(s.description, 128),
            currency_base=_s(s.currency_base, 16), currency_profit=_s(s.currency_profit, 16),
            currency_margin=_s(s.currency_margin, 16), digits=s.digits or 0,
            point=s.point or 0.0, contract_size=s.contract_size or 0.0,
            tick_value=s.tick_value or 0.0, tick_size=s.tick_size or 0.0,
            spread=s.spread or 0, stops_level=s.stops_level or 0,
            freeze_level=s.freeze_level or 0, trade_mode=s.trade_mode or "",
            execution_mode=s.exec_mode or "", profit_mode=s.calc_mode or "",
            margin_mode=s.calc_mode or "", margin_initial=s.margin_initial or 0.0,
            margin_maintenance=s.margin_maintenance or 0.0,
            margin_hedged=s.margin_hedged or 0.0, swap_type=s.swap_mode or "",
            swap_long=s.swap_long or 0.0, swap_short=s.swap_short or 0.0,
            volume_min=(s.volume_min or 0) / 10000.0, volume_max=(s.volume_max or 0) / 10000.0,
            volume_step=(s.volume_step or 0) / 10000.0, last_seen_at=self.stamp,
        )

