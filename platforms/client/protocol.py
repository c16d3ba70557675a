"""The WebAPI v2 wire protocol, sans-IO: the operation catalogue, how a call is written and
how its answer is read. Shared by the sync and async clients.

* :data:`MT4` / :data:`MT5` — one :class:`Operation` per action, as data. Adding an
  operation is one line (plus, if wanted, a named method in :mod:`.namespaces`).
* :func:`prepare` — builds a :class:`PreparedCall` (URL, query, headers, body, deadline)
  without doing any I/O.
* :func:`interpret` — turns (status, headers, body bytes) into the typed result or the
  right :class:`~.errors.ManagerApiError`.

Sending (pool, breaker, retries, transport failures) is :mod:`platforms.transport.core`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import Enum
from typing import Any, Generic, TypeVar
from urllib.parse import quote, urlsplit

import msgspec

from . import records as r
from .config import PlatformConfig
from .errors import (
    AuthenticationFailed,
    InvalidResponse,
    ManagerApiError,
    WriteInvalidResponse,
    error_for_code,
)

T = TypeVar("T")

__all__ = [
    "MT4",
    "MT5",
    "Kind",
    "Operation",
    "Page",
    "PreparedCall",
    "WriteResult",
    "interpret",
    "prepare",
    "validate_idempotency_key",
]

REQUEST_TIMEOUT_HEADER = "X-Request-Timeout"
APPLIED_TIMEOUT_HEADER = "X-Request-Timeout-Applied"
OUTCOME_HEADER = "X-Request-Outcome"
IDEMPOTENCY_KEY_HEADER = "Idempotency-Key"
#: The HTTP client waits this much longer than the server deadline (the server may add up
#: to 20 s to open the platform connection, plus network).
TRANSPORT_MARGIN = 30.0


class Kind(float, Enum):
    """Operation kind → default server deadline in seconds (``X-Request-Timeout``)."""

    TRADE = 5.0
    READ = 10.0
    CHANGE = 15.0
    HISTORY = 30.0
    MAINTENANCE = 60.0


@dataclass(frozen=True, slots=True)
class Operation:
    """One WebAPI action. ``path`` is relative to ``/api/v2/{MT4|MT5}/{platform}/``."""

    name: str
    method: str
    path: str
    kind: Kind
    response: Any
    platform: str = "MT4"
    sidecar: bool = False
    paged: bool = False

    @property
    def is_write(self) -> bool:
        """Every non-GET action may change state: it gets an Idempotency-Key, no blind retry."""
        return self.method != "GET"

    @property
    def decoder(self) -> msgspec.json.Decoder:
        return r.envelope_decoder(self.response)


def _ops(platform: str, *rows: tuple) -> dict[str, Operation]:
    out = {}
    for row in rows:
        name, method, path, kind, response, *flags = row
        out[name] = Operation(
            name=name,
            method=method,
            path=path,
            kind=kind,
            response=response,
            platform=platform,
            sidecar="sidecar" in flags,
            paged="paged" in flags,
        )
    return out


G, P, PA = "GET", "POST", "PATCH"
K = Kind

# name, method, path template, kind (deadline), data type, flags
MT4: dict[str, Operation] = _ops(
    "MT4",
    ("ServerTime", G, "ServerTime", K.READ, datetime),
    ("ManagerCommon", G, "ManagerCommon", K.READ, r.MT4Common),
    ("JournalRequest", G, "JournalRequest", K.HISTORY, list[r.MT4ServerLog]),
    ("UsersRequest", G, "UsersRequest", K.READ, list[r.MT4User], "paged"),
    ("UserRecordGet", G, "UserRecordGet/{login}", K.READ, r.MT4User),
    ("UserRecordRequest", G, "UserRecordRequest/{login}", K.READ, r.MT4User),
    ("UserRecordsRequest", G, "UserRecordsRequest", K.READ, list[r.MT4User]),
    ("TradesRequest", G, "TradesRequest", K.READ, list[r.MT4Trade], "paged"),
    ("TradesGet", G, "TradesGet", K.READ, list[r.MT4Trade], "paged"),
    ("TradesGetByLogin", G, "TradesGetByLogin/{login}/{group}", K.READ, list[r.MT4Trade]),
    ("TradeRecordGet", G, "TradeRecordGet/{order}", K.READ, r.MT4Trade),
    ("TradesUserHistory", G, "TradesUserHistory/{login}", K.HISTORY, list[r.MT4Trade]),
    ("ReportsRequest", G, "ReportsRequest", K.HISTORY, list[r.MT4Trade]),
    ("DailyReportsRequest", G, "DailyReportsRequest", K.HISTORY, list[r.MT4DailyReport]),
    ("MarginsGet", G, "MarginsGet", K.READ, list[r.MT4MarginLevel]),
    ("MarginLevelGet", G, "MarginLevelGet/{login}", K.READ, r.MT4MarginLevel),
    ("MarginLevelRequest", G, "MarginLevelRequest/{login}", K.READ, r.MT4MarginLevel),
    ("OnlineRequest", G, "OnlineRequest", K.READ, list[r.MT4Online], "paged"),
    ("GroupsRequest", G, "GroupsRequest", K.READ, list[r.MT4Group], "paged"),
    ("GroupRecordGet", G, "GroupRecordGet/{group}", K.READ, r.MT4Group),
    ("CfgRequestSymbols", G, "CfgRequestSymbol", K.READ, list[r.MT4SymbolConfig]),
    ("CfgRequestSymbol", G, "CfgRequestSymbol/{symbol}", K.READ, r.MT4SymbolConfig),
    ("SymbolInfoGet", G, "SymbolInfoGet", K.READ, r.MT4SymbolInfo),
    ("ChartRequest", G, "ChartRequest/{symbol}", K.HISTORY, list[r.MT4ChartBar]),
    ("TickInfoLast", G, "TickInfoLast/{symbol}", K.READ, r.MT4TickInfo),
    ("UsersSyncStart", P, "UsersSyncStart", K.MAINTENANCE, bool),
    ("TradesSyncStart", P, "TradesSyncStart", K.MAINTENANCE, bool),
    # writes
    ("TradeTransaction", P, "TradeTransaction", K.TRADE, r.MT4TradeTransaction),
    ("UserRecordNew", P, "UserRecordNew", K.CHANGE, r.MT4User),
    ("UserRecordUpdate", P, "UserRecordUpdate/{login}", K.CHANGE, r.MT4User),
    ("UserRecordPatch", PA, "UserRecord/{login}", K.CHANGE, r.MT4User),
    ("UserPasswordSet", P, "UserPasswordSet/{login}", K.CHANGE, bool),
    ("UsersGroupOp", P, "UsersGroupOp", K.MAINTENANCE, bool),
    # x86 sidecar
    ("UsersSnapshot", G, "UsersSnapshot", K.HISTORY, list[r.MT4User], "sidecar"),
    ("UsersSyncRead", G, "UsersSyncRead", K.HISTORY, list[r.MT4User], "sidecar"),
    ("TradesSnapshot", G, "TradesSnapshot", K.HISTORY, list[r.MT4Trade], "sidecar"),
    ("TradesSyncRead", G, "TradesSyncRead", K.HISTORY, list[r.MT4Trade], "sidecar"),
    ("MailSend", P, "MailSend", K.CHANGE, bool, "sidecar"),
    ("NewsSend", P, "NewsSend", K.CHANGE, bool, "sidecar"),
    ("MailsRequest", G, "MailsRequest", K.HISTORY, list[r.MT4MailBox], "sidecar"),
    ("PluginsGet", G, "PluginsGet", K.READ, list[r.MT4Plugin], "sidecar"),
    ("PluginParamGet", G, "PluginParamGet/{pos}", K.READ, r.MT4PluginParam, "sidecar"),
    ("PluginUpdate", P, "PluginUpdate", K.CHANGE, bool, "sidecar"),
    ("CfgRequestPlugin", G, "CfgRequestPlugin", K.READ, list[r.MT4PluginParam], "sidecar"),
    ("CfgUpdatePlugin", P, "CfgUpdatePlugin", K.CHANGE, bool, "sidecar"),
    (
        "ExternalCommandBinary",
        P,
        "ExternalCommandBinary",
        K.MAINTENANCE,
        r.MT4ExternalCommandBinaryResponse,
        "sidecar",
    ),
)

MT5: dict[str, Operation] = _ops(
    "MT5",
    ("ServerTime", G, "ServerTime", K.READ, datetime),
    ("TimeGet", G, "TimeGet", K.READ, r.MT5Time),
    ("ManagerCurrent", G, "ManagerCurrent", K.READ, r.MT5ConManager),
    ("GroupGet", G, "GroupGet/{group}", K.READ, r.MT5ConGroup),
    ("GroupRecordPatch", PA, "GroupRecord/{group}", K.CHANGE, r.MT5ConGroup),
    ("UserGet", G, "UserGet/{login}", K.READ, r.MT5User),
    ("UserRecordPatch", PA, "UserRecord/{login}", K.CHANGE, r.MT5User),
    ("SymbolGet", G, "SymbolGet/{symbol}", K.READ, r.MT5Symbol),
    ("SymbolRecordPatch", PA, "SymbolRecord/{symbol}", K.CHANGE, r.MT5Symbol),
    ("PositionByGroup", G, "PositionByGroup/{mask}", K.READ, list[r.MT5Position], "paged"),
    ("OrderByGroup", G, "OrderByGroup/{mask}", K.READ, list[r.MT5Order], "paged"),
    ("DealByGroup", G, "DealByGroup/{mask}", K.HISTORY, list[r.MT5Deal], "paged"),
)


# --------------------------------------------------------------------------- results


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a cursor-paged list."""

    items: list[T]
    next_cursor: str | None
    has_more: bool
    activity_id: str | None

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


@dataclass(frozen=True, slots=True)
class WriteResult(Generic[T]):
    """Result of a write: the data, the server's activity id and the key that was sent."""

    data: T
    activity_id: str | None
    idempotency_key: str


# --------------------------------------------------------------------------- building

_PRINTABLE_ASCII = re.compile(r"^[\x20-\x7e]{1,255}$")


def validate_idempotency_key(key: str | None) -> str:
    """Return ``key`` (or a fresh UUID4 when ``None``); ≤255 printable ASCII characters."""
    if key is None:
        return str(uuid.uuid4())
    if not isinstance(key, str) or not _PRINTABLE_ASCII.match(key):
        raise ValueError("Idempotency-Key must be 1-255 printable ASCII characters")
    return key


def format_deadline(seconds: float) -> str:
    seconds = float(seconds)
    if not 1.0 <= seconds <= 300.0:
        raise ValueError(f"request timeout must be between 1 and 300 seconds, got {seconds}")
    return f"{seconds:.3f}".rstrip("0").rstrip(".")


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return str(value.value)
    return str(value)


def _query(params: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    out: list[tuple[str, str]] = []
    for name, value in (params or {}).items():
        if value is None:
            continue
        if isinstance(value, list | tuple | set | frozenset):
            out.extend((name, _query_value(v)) for v in value)
        else:
            out.append((name, _query_value(value)))
    return tuple(out)  # a tuple: httpx's parameter type is covariant in it, a list is not


_ENCODER = msgspec.json.Encoder()


@dataclass(slots=True)
class PreparedCall:
    """Everything needed to send one attempt; reused unchanged for retries."""

    op: Operation
    platform_id: str
    method: str
    url: str
    params: tuple[tuple[str, str], ...]
    headers: dict[str, str]
    content: bytes | None
    deadline: float
    idempotency_key: str | None = None
    attempts: int = field(default=0)

    @property
    def http_timeout(self) -> float:
        return self.deadline + TRANSPORT_MARGIN

    # ------------------------------------------------ what the transport core reads
    timeout = http_timeout
    extensions = None

    @property
    def host(self) -> str:
        return urlsplit(self.url).netloc

    @property
    def operation(self) -> str:
        return self.op.name

    @property
    def write(self) -> bool:
        return self.op.is_write


def prepare(
    config: PlatformConfig,
    op: Operation,
    *,
    path: Mapping[str, Any] | None = None,
    query: Mapping[str, Any] | None = None,
    body: Any = None,
    timeout: float | None = None,
    idempotency_key: str | None = None,
) -> PreparedCall:
    """Build the request for ``op`` on ``config``'s platform (no I/O)."""
    segment = op.path
    for name, value in (path or {}).items():
        segment = segment.replace("{" + name + "}", quote(_query_value(value), safe=""))
    if "{" in segment:
        raise ValueError(f"{op.name}: missing path parameter in {op.path}")
    base = config.sidecar_url if op.sidecar else config.api_base_url
    url = f"{base}/api/v2/{op.platform}/{config.platform_id}/{segment}"
    deadline = float(timeout) if timeout is not None else float(op.kind.value)
    headers = {"Accept": "application/json", REQUEST_TIMEOUT_HEADER: format_deadline(deadline)}
    key = None
    if op.is_write:
        key = validate_idempotency_key(idempotency_key)
        headers[IDEMPOTENCY_KEY_HEADER] = key
    elif idempotency_key is not None:
        raise ValueError(f"{op.name} is a read; it takes no Idempotency-Key")
    content = None
    if body is not None:
        content = _ENCODER.encode(body)
        headers["Content-Type"] = "application/json"
    elif op.is_write:
        content = b""
    return PreparedCall(
        op=op,
        platform_id=config.platform_id,
        method=op.method,
        url=url,
        params=_query(query),
        headers=headers,
        content=content,
        deadline=deadline,
        idempotency_key=key,
    )


# --------------------------------------------------------------------------- decoding


def _looks_like_json_object(content: bytes | bytearray) -> bool:
    return content[:64].lstrip()[:1] == b"{"


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value.strip().lower() if value and value.strip() else None


def interpret(call: PreparedCall, status: int, headers: Mapping[str, str],
              content: bytes | bytearray) -> Any:
    """Decode one answer into the operation's result, or raise the mapped error."""
    op = call.op
    invalid = WriteInvalidResponse if op.is_write else InvalidResponse
    try:
        envelope = op.decoder.decode(content)
    except msgspec.ValidationError as exc:
        # Envelope-shaped but the data did not match: could be an error envelope
        # carrying odd data, or a server sending a different shape.
        try:
            envelope = r.RAW_ENVELOPE.decode(content)
        except msgspec.DecodeError:
            envelope = None
        if envelope is None or envelope.error is None:
            raise invalid(
                message=(
                    f"HTTP {status} from {call.host}: the answer did not match the "
                    f"documented {op.name} shape ({exc})"
                ),
                operation=op.name,
                http_status=status,
            ) from None
    except msgspec.DecodeError:
        envelope = None
    if envelope is None:
        if status == 401:
            raise AuthenticationFailed(
                message=f"HTTP 401 from {call.host}: the API refused a freshly issued token",
                operation=op.name,
                http_status=status,
            )
        if status >= 500 or content[:64].lstrip()[:1] == b"<":
            raise invalid(
                message=f"HTTP {status} from {call.host}: not a WebAPI answer (proxy page)",
                operation=op.name,
                http_status=status,
            )
        if status != 200 or not _looks_like_json_object(content):
            hint = " (no such endpoint on this host)" if status == 404 else ""
            raise invalid(
                message=f"HTTP {status} from {call.host}: not a WebAPI answer{hint}",
                operation=op.name,
                http_status=status,
            )
        raise invalid(
            message=f"HTTP {status} from {call.host}: the body is not valid JSON",
            operation=op.name,
            http_status=status,
        )
    meta = envelope.meta
    activity_id = meta.activity_id if meta is not None else None
    if envelope.error is not None:
        err = envelope.error
        cls = error_for_code(err.code)
        outcome = _header(headers, OUTCOME_HEADER)
        if op.is_write and err.code == "Timeout":
            # The spec fails non-read kinds as OutcomeUnknown; a server answering Timeout
            # to a write contradicts it, so the client stays on the safe side.
            cls = error_for_code("OutcomeUnknown")
        raise cls(
            code=err.code,
            message=err.message,
            manager_code=err.manager_code,
            activity_id=activity_id,
            outcome=outcome,
            operation=op.name,
            http_status=status,
        )
    if status != 200:
        raise invalid(
            message=f"HTTP {status} from {call.host}: envelope without error on a failure status",
            operation=op.name,
            http_status=status,
            activity_id=activity_id,
        )
    data = envelope.data
    if op.paged:
        paging = meta.paging if meta is not None else None
        return Page(
            items=data or [],
            next_cursor=(paging.next_cursor or None) if paging else None,
            has_more=bool(paging and paging.has_more and paging.next_cursor),
            activity_id=activity_id,
        )
    if op.is_write:
        assert call.idempotency_key is not None, "prepare() gives every write its key"
        return WriteResult(data=data, activity_id=activity_id, idempotency_key=call.idempotency_key)
    return data


# --------------------------------------------------------------------------- TradePlatforms

TRADE_PLATFORMS_DECODER = msgspec.json.Decoder(list[r.TradePlatformInfo])


def trade_platforms_url(config: PlatformConfig) -> str:
    return f"{config.api_base_url}/api/TradePlatforms"


def interpret_trade_platforms(url: str, status: int, content: bytes) -> list[r.TradePlatformInfo]:
    """``GET /api/TradePlatforms`` answers a plain array, errors are HTTP statuses."""
    host = urlsplit(url).netloc
    if status == 200:
        try:
            return TRADE_PLATFORMS_DECODER.decode(content)
        except msgspec.DecodeError as exc:
            raise InvalidResponse(
                message=f"HTTP 200 from {host}: TradePlatforms answer was not a list ({exc})",
                operation="TradePlatforms",
                http_status=status,
            ) from None
    if status == 401:
        raise AuthenticationFailed(
            message=f"HTTP 401 from {host}: the API refused a freshly issued token",
            operation="TradePlatforms",
            http_status=status,
        )
    cls: type[ManagerApiError] = {
        403: error_for_code("Forbidden"),
        404: error_for_code("NotFound"),
    }.get(status, InvalidResponse)
    raise cls(
        message=f"HTTP {status} from {host}: the platform list is not available",
        operation="TradePlatforms",
        http_status=status,
    )


def as_list(values: Iterable[Any] | None) -> list[Any] | None:
    return None if values is None else list(values)
