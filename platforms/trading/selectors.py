"""Reads of the trading desk: live account state for forms and previews, task and audit lists."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from decimal import Decimal

from django.db.models import CharField, Q, QuerySet
from django.db.models.functions import Cast

from platforms.access.masks import group_allowed, masks_q
from platforms.access.personal import visible_fields
from platforms.access.scope import can_see_personal_data, group_masks_for, scope_for, valid_id
from platforms.client import ManagerApiError, NotFound
from platforms.connections import client_for
from platforms.mirror.models import MirrorAccount
from platforms.models import AuditEvent, TradePlatform
from platforms.trading import kinds as ops
from platforms.trading.models import FINAL_STATES, TradeTask

CENT = Decimal("0.01")


def _money(value) -> Decimal:
    return Decimal(str(value or 0)).quantize(CENT)


@dataclass
class AccountState:
    login: int
    group: str
    name: str
    leverage: int
    balance: Decimal
    credit: Decimal
    equity: Decimal | None = None
    margin: Decimal | None = None
    free_margin: Decimal | None = None
    margin_level: Decimal | None = None
    enabled: bool = True
    read_only: bool = False


class AccountMissing(Exception):
    """The login does not exist on this platform."""


def account_state(platform: TradePlatform, login: int) -> AccountState:
    """Live balance, credit and margin of one account (raises AccountMissing / client errors)."""
    client = client_for(platform)
    try:
        if platform.kind == "MT5":
            user = client.mt5.user_get(login)
            rights = ops_flags(user.rights)
            return AccountState(login, user.group or "", user.name or "", user.leverage or 0,
                                _money(user.balance), _money(user.credit),
                                enabled="enabled" in rights, read_only="readonly" in rights)
        user = client.mt4.user_record_get(login)
        level = client.mt4.margin_level_get(login)
    except NotFound as exc:
        raise AccountMissing(f"Account {login} does not exist on {platform.name}.") from exc
    return AccountState(
        login, user.group or "", user.name or "", user.leverage, _money(user.balance),
        _money(user.credit), equity=_money(level.equity), margin=_money(level.margin),
        free_margin=_money(level.free), margin_level=Decimal(str(level.level)).quantize(CENT),
        enabled=bool(user.enable_flags & ops.ENABLED_BIT),
        read_only=bool(user.enable_flags & ops.READONLY_BIT),
    )


def ops_flags(text: str | None) -> set[str]:
    return {x.strip().lower() for x in (text or "").split(",") if x.strip()}


def in_scope(user, platform: TradePlatform, group: str) -> bool:
    return group_allowed(group, group_masks_for(user, platform))


def login_in_scope(user, platform: TradePlatform, login: int) -> bool:
    """May ``user`` see account ``login``? Asked before any permission check, so an account
    outside the grant is "not found" for everyone. The group comes from the mirror, or from
    the platform when the mirror does not know the login yet."""
    if valid_id(login) is None:
        return False
    masks = group_masks_for(user, platform)
    if not masks.strip():
        return True
    group = (MirrorAccount.objects.filter(platform=platform, login=login)
             .values_list("group", flat=True).first())
    if group is None:
        try:
            group = account_state(platform, login).group
        except (AccountMissing, ManagerApiError):
            return False
    return group_allowed(group, masks)


def preview(state: AccountState, kind: str, payload: dict) -> dict:
    """What the confirmation step shows (and the audit keeps as 'before'): now → after."""
    out: dict = {"balance": str(state.balance), "credit": str(state.credit)}
    if state.equity is not None:
        out.update(equity=str(state.equity), margin=str(state.margin),
                   free_margin=str(state.free_margin), margin_level=str(state.margin_level))
    if kind in ops.MONEY_KINDS:
        delta = ops.signed_amount(kind, payload)
        field = "credit" if ops.MONEY_KINDS[kind][1] == "Credit" else "balance"
        out["amount"] = str(delta)
        out[f"{field}_after"] = str(getattr(state, field) + delta)
        if state.equity is not None:
            equity_after = state.equity + delta
            out["equity_after"] = str(equity_after)
            out["free_margin_after"] = str(state.free_margin + delta)
            if state.margin:
                out["margin_level_after"] = str((equity_after / state.margin * 100).quantize(CENT))
    return out


class Market:
    """Symbol and quote lookups for form validation, cached for one request."""

    def __init__(self, platform: TradePlatform) -> None:
        self.platform = platform
        self._symbols: dict[str, object | None] = {}

    def symbol(self, name: str):
        if name not in self._symbols:
            try:
                self._symbols[name] = client_for(self.platform).mt4.cfg_request_symbol(name)
            except NotFound:
                self._symbols[name] = None
        return self._symbols[name]

    def quote(self, name: str) -> tuple[float, float]:
        tick = client_for(self.platform).mt4.tick_info_last(name)
        return tick.bid, tick.ask

    def trade(self, order: int):
        try:
            return client_for(self.platform).mt4.trade_record_get(order)
        except NotFound:
            return None

    def groups(self) -> list[str]:
        try:
            return sorted(g.group for g in client_for(self.platform).mt4.iter_groups() if g.group)
        except ManagerApiError:
            return []

    def existing_logins(self, logins: list[int]) -> set[int]:
        users = client_for(self.platform).mt4.user_records_request(logins)
        return {u.login for u in users}


def tasks_for(user, platform: TradePlatform) -> QuerySet[TradeTask]:
    """The platform's tasks, newest first (the platform itself is already scope-checked;
    under group masks, only platform-wide tasks and those of accounts inside the masks)."""
    tasks = (TradeTask.objects.filter(platform=platform)
             .select_related("requested_by", "approval__decided_by")
             .defer("secret", "wire"))
    masks = group_masks_for(user, platform)
    if masks.strip():
        logins = (MirrorAccount.objects.filter(platform=platform).filter(masks_q("group", masks))
                  .values("login"))
        tasks = tasks.filter(Q(login__isnull=True) | Q(login__in=logins))
    return tasks


def has_unfinished_tasks(user, platform: TradePlatform) -> bool:
    """Whether any of the platform's tasks ``user`` sees may still change state: the task list
    polls only while one may (an idle list costs no request a second)."""
    return tasks_for(user, platform).exclude(state__in=FINAL_STATES).exists()


def audit_events(user) -> QuerySet[AuditEvent]:
    """Audit events of the platforms this user may see (all, plus platform-less, for admins)."""
    events = AuditEvent.objects.select_related("actor", "platform")
    if user.is_superuser:
        return events
    visible = Q(pk__in=[])
    for pk, masks in scope_for(user).platforms.items():
        if not masks.strip():
            visible |= Q(platform_id=pk)
            continue
        # under group masks, an event about an account (its target is the login) shows only
        # when the account is inside the masks
        logins = (MirrorAccount.objects.filter(platform_id=pk).filter(masks_q("group", masks))
                  .annotate(text=Cast("login", CharField())).values("text"))
        visible |= Q(platform_id=pk) & (~Q(target__regex=r"^[0-9]+$") | Q(target__in=logins))
    return events.filter(visible)


#: what a task page shows verbatim: the operation's parameters and the platform's answer
TASK_TEXT_FIELDS = ("payload", "result", "preview", "message")
#: what the audit page and its CSV show verbatim (the IP is the acting staff member's)
AUDIT_TEXT_FIELDS = ("ip_address", "target", "before", "after", "detail")


def visible_tasks(user, tasks: Iterable[TradeTask]) -> list[TradeTask]:
    """``tasks`` as ``user`` may read them: personal fields of their payloads and answers
    read "hidden" without ``view_personal_data`` (an edit_profile task carries the new email
    and phone), whoever requested the task."""
    personal = can_see_personal_data(user)
    return [visible_fields(personal, task, TASK_TEXT_FIELDS) for task in tasks]


def visible_task(user, task: TradeTask) -> TradeTask:
    return visible_tasks(user, [task])[0]


def visible_events(user, events: Iterable[AuditEvent]) -> Iterator[AuditEvent]:
    """Audit events as ``user`` may read them (lazily: the CSV streams every row); before and
    after values keep their personal keys, with the values reading "hidden"."""
    personal = can_see_personal_data(user)
    return (visible_fields(personal, event, AUDIT_TEXT_FIELDS) for event in events)
