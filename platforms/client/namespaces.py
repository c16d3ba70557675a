"""``client.mt4.<op>(...)`` and ``client.mt5.<op>(...)`` — one code base for both clients.

Each method only maps its arguments onto an :class:`~.protocol.Operation` and returns
``client._call(...)``. With :class:`~.sync.ManagerClient` that is the result; with
:class:`~.aio.AsyncManagerClient` it is a coroutine to await. ``iter_*`` return an
iterator (sync) or an async iterator (async) over every record of every page.

Every method accepts ``timeout=`` (server deadline in seconds, 1-300; the default comes
from the operation kind). Writes accept ``idempotency_key=`` (a fresh UUID4 when
omitted) and return a :class:`~.protocol.WriteResult`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec

from . import records as r
from .protocol import MT4, MT5, as_list

if TYPE_CHECKING:  # pragma: no cover
    from ._core import ClientCore

__all__ = ["MT4Namespace", "MT5Namespace"]


def _body(value: Any, struct: type[msgspec.Struct] | None = None) -> Any:
    """Accept a record or a plain mapping (validated into ``struct`` when given)."""
    if isinstance(value, msgspec.Struct) or struct is None:
        return value
    if isinstance(value, Mapping):
        return msgspec.convert(dict(value), struct, from_attributes=False)
    raise TypeError(f"expected {struct.__name__} or a mapping, got {type(value).__name__}")


class _Namespace:
    def __init__(self, client: ClientCore) -> None:
        self._c = client


class MT4Namespace(_Namespace):
    """MT4 operations of the bound platform."""

    _ops = MT4

    def _run(self, name: str, **kwargs: Any) -> Any:
        return self._c._call(MT4[name], **kwargs)

    # ---------------------------------------------------------------- common
    def server_time(self, *, timeout: float | None = None) -> datetime:
        return self._run("ServerTime", timeout=timeout)

    def manager_common(self, *, timeout: float | None = None) -> r.MT4Common:
        return self._run("ManagerCommon", timeout=timeout)

    def journal_request(
        self,
        from_: datetime,
        to: datetime,
        mode: str | None = None,
        filter: str | None = None,
        *,
        timeout: float | None = None,
    ) -> list[r.MT4ServerLog]:
        query = {"from": from_, "to": to, "mode": mode, "filter": filter}
        return self._run("JournalRequest", query=query, timeout=timeout)

    # ---------------------------------------------------------------- users
    def users_request(
        self, limit: int | None = None, cursor: str | None = None, *, timeout: float | None = None
    ):
        return self._run("UsersRequest", query={"limit": limit, "cursor": cursor}, timeout=timeout)

    def iter_users(self, page_size: int = 5000, *, timeout: float | None = None):
        return self._c._iterate(self.users_request, page_size, timeout=timeout)

    def user_record_get(self, login: int, *, timeout: float | None = None) -> r.MT4User:
        return self._run("UserRecordGet", path={"login": login}, timeout=timeout)

    def user_record_request(self, login: int, *, timeout: float | None = None) -> r.MT4User:
        return self._run("UserRecordRequest", path={"login": login}, timeout=timeout)

    def user_records_request(
        self, logins: Iterable[int], *, timeout: float | None = None
    ) -> list[r.MT4User]:
        return self._run("UserRecordsRequest", query={"logins": as_list(logins)}, timeout=timeout)

    def users_sync_start(
        self,
        timestamp: int = 0,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        """Open a sync session (server-local Unix seconds; 0 = everything)."""
        return self._run(
            "UsersSyncStart",
            query={"timestamp": int(timestamp)},
            idempotency_key=idempotency_key,
            timeout=timeout,
        )

    # ---------------------------------------------------------------- trades
    def trades_request(
        self,
        group: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        *,
        timeout: float | None = None,
    ):
        query = {"group": group, "limit": limit, "cursor": cursor}
        return self._run("TradesRequest", query=query, timeout=timeout)

    def iter_trades(
        self, group: str | None = None, page_size: int = 5000, *, timeout: float | None = None
    ):
        return self._c._iterate(self.trades_request, page_size, group, timeout=timeout)

    def trades_get(
        self, limit: int | None = None, cursor: str | None = None, *, timeout: float | None = None
    ):
        return self._run("TradesGet", query={"limit": limit, "cursor": cursor}, timeout=timeout)

    def iter_trades_get(self, page_size: int = 5000, *, timeout: float | None = None):
        return self._c._iterate(self.trades_get, page_size, timeout=timeout)

    def trades_get_by_login(
        self, login: int, group: str, *, timeout: float | None = None
    ) -> list[r.MT4Trade]:
        return self._run("TradesGetByLogin", path={"login": login, "group": group}, timeout=timeout)

    def trade_record_get(self, order: int, *, timeout: float | None = None) -> r.MT4Trade:
        return self._run("TradeRecordGet", path={"order": order}, timeout=timeout)

    def trades_user_history(
        self,
        login: int,
        from_time: datetime | None = None,
        to_time: datetime | None = None,
        *,
        timeout: float | None = None,
    ) -> list[r.MT4Trade]:
        return self._run(
            "TradesUserHistory",
            path={"login": login},
            query={"fromTime": from_time, "toTime": to_time},
            timeout=timeout,
        )

    def trades_sync_start(
        self,
        timestamp: int = 0,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        """Open a sync session (server-local Unix seconds; 0 = everything)."""
        return self._run(
            "TradesSyncStart",
            query={"timestamp": int(timestamp)},
            idempotency_key=idempotency_key,
            timeout=timeout,
        )

    # ---------------------------------------------------------------- reports
    def reports_request(
        self,
        from_: datetime,
        to: datetime,
        logins: Iterable[int],
        name: str | None = None,
        *,
        timeout: float | None = None,
    ) -> list[r.MT4Trade]:
        query = {"from": from_, "to": to, "logins": as_list(logins), "name": name}
        return self._run("ReportsRequest", query=query, timeout=timeout)

    def daily_reports_request(
        self,
        from_: datetime,
        to: datetime,
        logins: Iterable[int],
        name: str | None = None,
        *,
        timeout: float | None = None,
    ) -> list[r.MT4DailyReport]:
        query = {"from": from_, "to": to, "logins": as_list(logins), "name": name}
        return self._run("DailyReportsRequest", query=query, timeout=timeout)

    # ---------------------------------------------------------------- margins
    def margins_get(self, *, timeout: float | None = None) -> list[r.MT4MarginLevel]:
        return self._run("MarginsGet", timeout=timeout)

    def margin_level_get(self, login: int, *, timeout: float | None = None) -> r.MT4MarginLevel:
        return self._run("MarginLevelGet", path={"login": login}, timeout=timeout)

    def margin_level_request(self, login: int, *, timeout: float | None = None) -> r.MT4MarginLevel:
        return self._run("MarginLevelRequest", path={"login": login}, timeout=timeout)

    # ---------------------------------------------------------------- online, groups
    def online_request(
        self, limit: int | None = None, cursor: str | None = None, *, timeout: float | None = None
    ):
        return self._run("OnlineRequest", query={"limit": limit, "cursor": cursor}, timeout=timeout)

    def iter_online(self, page_size: int = 5000, *, timeout: float | None = None):
        return self._c._iterate(self.online_request, page_size, timeout=timeout)

    def groups_request(
        self, limit: int | None = None, cursor: str | None = None, *, timeout: float | None = None
    ):
        return self._run("GroupsRequest", query={"limit": limit, "cursor": cursor}, timeout=timeout)

    def iter_groups(self, page_size: int = 5000, *, timeout: float | None = None):
        return self._c._iterate(self.groups_request, page_size, timeout=timeout)

    def group_record_get(self, group: str, *, timeout: float | None = None) -> r.MT4Group:
        return self._run("GroupRecordGet", path={"group": group}, timeout=timeout)

    # ---------------------------------------------------------------- symbols, prices
    def cfg_request_symbol(self, symbol: str | None = None, *, timeout: float | None = None):
        """All symbol configs (``symbol=None``) or the config of one symbol."""
        if symbol is None:
            return self._run("CfgRequestSymbols", timeout=timeout)
        return self._run("CfgRequestSymbol", path={"symbol": symbol}, timeout=timeout)

    def symbol_info_get(self, symbol: str, *, timeout: float | None = None) -> r.MT4SymbolInfo:
        return self._run("SymbolInfoGet", query={"symbol": symbol}, timeout=timeout)

    def tick_info_last(self, symbol: str, *, timeout: float | None = None) -> r.MT4TickInfo:
        return self._run("TickInfoLast", path={"symbol": symbol}, timeout=timeout)

    def chart_request(
        self,
        symbol: str,
        period: str,
        start: datetime,
        end: datetime,
        mode: str = "RangeIn",
        *,
        timeout: float | None = None,
    ) -> list[r.MT4ChartBar]:
        query = {"period": period, "start": start, "end": end, "mode": mode}
        return self._run("ChartRequest", path={"symbol": symbol}, query=query, timeout=timeout)

    # ---------------------------------------------------------------- writes
    def trade_transaction(
        self,
        tx: r.MT4TradeTransaction | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        return self._run(
            "TradeTransaction",
            body=_body(tx, r.MT4TradeTransaction),
            idempotency_key=idempotency_key,
            timeout=timeout,
        )

    def user_record_new(
        self,
        user: r.MT4UserCreate | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        return self._run(
            "UserRecordNew",
            body=_body(user, r.MT4UserCreate),
            idempotency_key=idempotency_key,
            timeout=timeout,
        )

    def user_record_update(
        self,
        login: int,
        user: r.MT4UserUpdate | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        return self._run(
            "UserRecordUpdate",
            path={"login": login},
            body=_body(user, r.MT4UserUpdate),
            idempotency_key=idempotency_key,
            timeout=timeout,
        )

    def user_record_patch(
        self,
        login: int,
        changes: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        """JSON Merge Patch with wire (camelCase) field names, e.g. ``{"leverage": 200}``."""
        return self._run(
            "UserRecordPatch",
            path={"login": login},
            body=dict(changes),
            idempotency_key=idempotency_key,
            timeout=timeout,
        )

    def user_password_set(
        self,
        login: int,
        password: str,
        *,
        change_investor: bool = False,
        clean_pubkey: bool = False,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        return self._run(
            "UserPasswordSet",
            path={"login": login},
            query={"changeInvestor": change_investor, "cleanPubkey": clean_pubkey},
            body=password,
            idempotency_key=idempotency_key,
            timeout=timeout,
        )

    def users_group_op(
        self,
        command: str,
        logins: Iterable[int],
        *,
        new_group: str | None = None,
        leverage: int = 0,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        body = r.MT4UsersGroupOp(
            command=command, logins=list(logins), new_group=new_group, leverage=leverage
        )
        return self._run(
            "UsersGroupOp", body=body, idempotency_key=idempotency_key, timeout=timeout
        )

    # ---------------------------------------------------------------- x86 sidecar
    def users_snapshot(self, limit: int | None = None, *, timeout: float | None = None):
        return self._run("UsersSnapshot", query={"limit": limit}, timeout=timeout)

    def users_sync_read(self, limit: int | None = None, *, timeout: float | None = None):
        return self._run("UsersSyncRead", query={"limit": limit}, timeout=timeout)

    def trades_snapshot(self, limit: int | None = None, *, timeout: float | None = None):
        return self._run("TradesSnapshot", query={"limit": limit}, timeout=timeout)

    def trades_sync_read(self, limit: int | None = None, *, timeout: float | None = None):
        return self._run("TradesSyncRead", query={"limit": limit}, timeout=timeout)

    def mail_send(
        self,
        subject: str,
        body: str,
        logins: Iterable[int],
        *,
        sender_login: int = 0,
        sender_name: str | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        mail = r.MT4MailSendRequest(
            sender_login=sender_login,
            sender_name=sender_name,
            subject=subject,
            body=body,
            logins=list(logins),
        )
        return self._run("MailSend", body=mail, idempotency_key=idempotency_key, timeout=timeout)

    def news_send(
        self,
        topic: str,
        body: str,
        *,
        category: str | None = None,
        high_priority: bool = False,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        news = r.MT4NewsSendRequest(
            topic=topic, body=body, category=category, high_priority=high_priority
        )
        return self._run("NewsSend", body=news, idempotency_key=idempotency_key, timeout=timeout)

    def mails_request(self, *, timeout: float | None = None) -> list[r.MT4MailBox]:
        return self._run("MailsRequest", timeout=timeout)

    def plugins_get(self, *, timeout: float | None = None) -> list[r.MT4Plugin]:
        return self._run("PluginsGet", timeout=timeout)

    def plugin_param_get(self, pos: int, *, timeout: float | None = None) -> r.MT4PluginParam:
        return self._run("PluginParamGet", path={"pos": pos}, timeout=timeout)

    def plugin_update(
        self,
        param: r.MT4PluginParam | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        return self._run(
            "PluginUpdate",
            body=_body(param, r.MT4PluginParam),
            idempotency_key=idempotency_key,
            timeout=timeout,
        )

    def cfg_request_plugin(self, *, timeout: float | None = None) -> list[r.MT4PluginParam]:
        return self._run("CfgRequestPlugin", timeout=timeout)

    def cfg_update_plugin(
        self,
        param: r.MT4PluginParam | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        return self._run(
            "CfgUpdatePlugin",
            body=_body(param, r.MT4PluginParam),
            idempotency_key=idempotency_key,
            timeout=timeout,
        )

    def external_command_binary(
        self,
        data: bytes,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        """Send raw bytes to the plugin; ``WriteResult.data.data`` holds the reply bytes."""
        return self._run(
            "ExternalCommandBinary",
            body={"data": bytes(data)},
            idempotency_key=idempotency_key,
            timeout=timeout,
        )


class MT5Namespace(_Namespace):
    """MT5 operations of the bound platform."""

    _ops = MT5

    def _run(self, name: str, **kwargs: Any) -> Any:
        return self._c._call(MT5[name], **kwargs)

    def server_time(self, *, timeout: float | None = None) -> datetime:
        return self._run("ServerTime", timeout=timeout)

    def time_get(self, *, timeout: float | None = None) -> r.MT5Time:
        return self._run("TimeGet", timeout=timeout)

    def manager_current(self, *, timeout: float | None = None) -> r.MT5ConManager:
        return self._run("ManagerCurrent", timeout=timeout)

    def group_get(self, group: str, *, timeout: float | None = None) -> r.MT5ConGroup:
        return self._run("GroupGet", path={"group": group}, timeout=timeout)

    def group_record_patch(
        self,
        group: str,
        changes: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        return self._run(
            "GroupRecordPatch",
            path={"group": group},
            body=dict(changes),
            idempotency_key=idempotency_key,
            timeout=timeout,
        )

    def user_get(self, login: int, *, timeout: float | None = None) -> r.MT5User:
        return self._run("UserGet", path={"login": login}, timeout=timeout)

    def user_record_patch(
        self,
        login: int,
        changes: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        return self._run(
            "UserRecordPatch",
            path={"login": login},
            body=dict(changes),
            idempotency_key=idempotency_key,
            timeout=timeout,
        )

    def symbol_get(self, symbol: str, *, timeout: float | None = None) -> r.MT5Symbol:
        return self._run("SymbolGet", path={"symbol": symbol}, timeout=timeout)

    def symbol_record_patch(
        self,
        symbol: str,
        changes: Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ):
        return self._run(
            "SymbolRecordPatch",
            path={"symbol": symbol},
            body=dict(changes),
            idempotency_key=idempotency_key,
            timeout=timeout,
        )

    def position_by_group(
        self,
        mask: str,
        limit: int | None = None,
        cursor: str | None = None,
        *,
        timeout: float | None = None,
    ):
        return self._run(
            "PositionByGroup",
            path={"mask": mask},
            query={"limit": limit, "cursor": cursor},
            timeout=timeout,
        )

    def order_by_group(
        self,
        mask: str,
        limit: int | None = None,
        cursor: str | None = None,
        *,
        timeout: float | None = None,
    ):
        return self._run(
            "OrderByGroup",
            path={"mask": mask},
            query={"limit": limit, "cursor": cursor},
            timeout=timeout,
        )

    def deal_by_group(
        self,
        mask: str,
        limit: int | None = None,
        cursor: str | None = None,
        *,
        timeout: float | None = None,
    ):
        return self._run(
            "DealByGroup",
            path={"mask": mask},
            query={"limit": limit, "cursor": cursor},
            timeout=timeout,
        )

    def iter_positions(self, mask: str, page_size: int = 5000, *, timeout: float | None = None):
        return self._c._iterate(self.position_by_group, page_size, mask, timeout=timeout)

    def iter_orders(self, mask: str, page_size: int = 5000, *, timeout: float | None = None):
        return self._c._iterate(self.order_by_group, page_size, mask, timeout=timeout)

    def iter_deals(self, mask: str, page_size: int = 5000, *, timeout: float | None = None):
        return self._c._iterate(self.deal_by_group, page_size, mask, timeout=timeout)
