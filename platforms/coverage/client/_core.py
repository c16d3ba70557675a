"""The bridge's wire, shared by the sync and async clients: the endpoint catalogue, request
preparation, answer interpretation, the retry rule and this client's error classes.

The transport itself — pool, breaker, retry loop, the mapping of httpx's failures — is
:mod:`platforms.transport.core`; :class:`BridgeCore` only fills in the wire's part of it.
"""

from __future__ import annotations

import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any, Unpack
from urllib.parse import quote

import httpx
import msgspec

from platforms import transport

from . import records as r
from .auth import SESSION_PATH, BridgeSessionAuth
from .config import BridgeConfig
from .errors import (
    CircuitOpen,
    ConnectionNotMade,
    RateLimited,
    TransportError,
    WriteOutcomeUnknown,
)
from .interpret import decode_answer

__all__ = [
    "ENDPOINTS",
    "ORDER_TYPES",
    "BridgeCore",
    "Endpoint",
    "PreparedCall",
    "order_body",
    "release_headers",
    "should_retry",
]

class _RedactSessionIds(logging.Filter):
    """httpx logs every URL at INFO, and the wire puts the session id in some paths."""

    _pattern = re.compile(r"sess_[A-Za-z0-9_-]+")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "sess_" in message:
            record.msg, record.args = self._pattern.sub("sess_***", message), None
        return True


def _install_redaction() -> None:
    logger = logging.getLogger("httpx")
    if not any(isinstance(f, _RedactSessionIds) for f in logger.filters):
        logger.addFilter(_RedactSessionIds())


_install_redaction()


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One bridge call. ``path`` is relative to the base URL; ``{session}`` is filled by the
    session flow, other ``{names}`` from the call's arguments."""

    name: str
    method: str
    path: str
    response: Any
    write: bool = False


ENDPOINTS: dict[str, Endpoint] = {
    e.name: e
    for e in (
        Endpoint("session.get", "GET", "/session/{session}", r.SessionState),
        Endpoint("session.heartbeat", "POST", "/session/{session}/heartbeat", r.SessionOpened),
        Endpoint("account", "GET", "/account", r.Account),
        Endpoint("positions", "GET", "/positions", r.Positions),
        Endpoint("symbols", "GET", "/symbols", r.SymbolList),
        Endpoint("quotes.history", "GET", "/quotes/history", r.QuoteHistory),
        Endpoint("orders.submit", "POST", "/orders", r.Task, write=True),
        Endpoint("orders.modify", "PATCH", "/orders/{task_id}", r.Task, write=True),
        Endpoint("positions.close", "POST", "/positions/{ticket}/close", r.Task, write=True),
    )
}


@dataclass
class PreparedCall:
    """One call, sent unchanged by every attempt (a :class:`platforms.transport.Call`)."""

    endpoint: Endpoint
    url: str
    params: dict[str, Any] | None
    headers: dict[str, str]
    content: bytes | None
    extensions: dict[str, Any]
    request_id: str | None
    host: str
    timeout: float
    attempts: int = 0
    history: list[str] = field(default_factory=list)

    @property
    def method(self) -> str:
        return self.endpoint.method

    @property
    def operation(self) -> str:
        return self.endpoint.name

    @property
    def write(self) -> bool:
        return self.endpoint.write


def should_retry(exc: BaseException, endpoint: Endpoint, config: BridgeConfig) -> bool:
    """Reads: nothing sent, or 429. Writes (always with their one ``x-request-id``): the
    same, plus — an idempotent replay — once after the answer was lost."""
    if isinstance(exc, ConnectionNotMade | RateLimited):
        return True
    if endpoint.write:
        return (config.replay_lost_writes and isinstance(exc, WriteOutcomeUnknown)
                and exc.http_status is None)
    return False


def _server_delay(exc: BaseException) -> float | None:
    return exc.retry_after if isinstance(exc, RateLimited) else None


class BridgeCore(transport.TransportCore[PreparedCall]):
    """The bridge's wire on the transport core; base of :class:`BridgeClient` and
    :class:`AsyncBridgeClient`."""

    auth: BridgeSessionAuth

    # httpx's text of a lost connection is not quoted: it may name a URL holding a session id.
    failures = transport.FailureKinds(
        ConnectionNotMade, TransportError, WriteOutcomeUnknown, CircuitOpen,
        write_note="; the write may or may not have created a task", quote_detail=False)
    user_agent = "broker-dashboard-bridge-client/1"

    def __init__(self, config: BridgeConfig, *, breaker: transport.CircuitBreaker | None = None,
                 **options: Unpack[transport.TransportOptions]) -> None:
        """``breaker``: by default the process-wide one of ``config.target``."""
        self.config = config
        self._host = httpx.URL(config.base_url).host
        if breaker is None:
            breaker = transport.breaker_for(config.target)
        super().__init__(breaker=breaker,
                         auth=BridgeSessionAuth(config), max_connections=config.max_connections,
                         timeout=config.timeout, connect_timeout=config.connect_timeout,
                         **options)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target={self.config.target})"

    # ------------------------------------------------------------------ sans-IO
    def _prepare(
        self,
        name: str,
        *,
        path_args: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        body: Any = None,
        request_id: str | None = None,
    ) -> PreparedCall:
        endpoint = ENDPOINTS[name]
        quoted = {k: quote(str(v), safe="") for k, v in (path_args or {}).items()}
        path = endpoint.path.format(session="{session}", **quoted)
        url = f"{self.config.base_url}{path}"
        headers = {"Accept": "application/json"}
        extensions: dict[str, Any] = {}
        if "{session}" in path:
            url = f"{self.config.base_url}{path.replace('{session}', '_')}"
            extensions[SESSION_PATH] = httpx.URL(self.config.base_url).path.rstrip("/") + path
        content = None
        if body is not None:
            content = msgspec.json.encode(body)
            headers["Content-Type"] = "application/json"
        if endpoint.write:
            request_id = request_id or str(uuid.uuid4())
            headers["x-request-id"] = request_id
        clean = {k: v for k, v in (params or {}).items() if v is not None}
        return PreparedCall(endpoint, url, clean or None, headers, content, extensions,
                            request_id if endpoint.write else None, self._host,
                            self.config.timeout)

    def _call(self, name: str, **kwargs: Any) -> Any:
        """Send endpoint ``name`` (awaitable in the async client)."""
        return self._send(self._prepare(name, **kwargs))

    # ------------------------------------------------------------------ the transport's hooks
    def _interpret(self, call: PreparedCall, status: int, headers: httpx.Headers,
                   content: bytes | bytearray) -> Any:
        endpoint = call.endpoint
        result = decode_answer(endpoint.name, endpoint.response, status, headers, content,
                               request_id=call.request_id, write=endpoint.write)
        if isinstance(result, r.Task) and headers.get("x-idempotent-replay") == "true":
            result = msgspec.structs.replace(result, replayed=True)
        if endpoint.name == "session.heartbeat":
            self.auth.extend(result.session_id, result.expires_at)
            result = r.SessionExpiry(expires_at=result.expires_at)
        return result

    def _retry_kwargs(self, call: PreparedCall) -> dict:
        endpoint = call.endpoint
        return transport.retry_kwargs(
            endpoint.name, self.retry_policy,
            lambda exc: should_retry(exc, endpoint, self.config),
            server_delay=_server_delay,
        )

    def _failure_details(self, call: PreparedCall) -> dict[str, Any]:
        return {"request_id": call.request_id}


def release_headers(config: BridgeConfig, session_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {config.api_key}", "x-session-id": session_id,
            "Accept": "application/json"}


#: Order types as the bridge spells them (the order engines' own payloads use these); the
#: bridge refuses any other spelling with ``400 ValidationError``.
ORDER_TYPES = ("BUY", "SELL", "BUY_LIMIT", "SELL_LIMIT", "BUY_STOP", "SELL_STOP")


def order_body(symbol: str, type: str, volume: float, *, sl: float = 0.0, tp: float = 0.0,
               comment: str = "", price: float | None = None) -> dict[str, Any]:
    """``POST /orders`` body: always the same bytes for the same arguments, so a retried or
    resubmitted write matches its first payload. ``type`` is one of :data:`ORDER_TYPES`
    (anything else is refused here, before a request the bridge would refuse)."""
    if type not in ORDER_TYPES:
        raise ValueError(f"order type must be one of {', '.join(ORDER_TYPES)}, got {type!r}")
    body: dict[str, Any] = {"symbol": symbol, "type": type, "volume": volume, "sl": sl,
                            "tp": tp, "comment": comment}
    if price is not None:
        body["price"] = price
    return body
