"""What the sync and async bridge clients share: the endpoint catalogue, request preparation,
the retry predicate, the breaker and the mapping of httpx exceptions (sans-IO).

Only :mod:`.sync` and :mod:`.aio` differ: the httpx client, the tenacity loop and the breaker
call. Retries and the circuit breaker are the manager client's own pieces
(:class:`~platforms.client.RetryPolicy`, :func:`~platforms.client.retry.retry_kwargs`,
:class:`~platforms.client.PlatformBreaker`), given this API's failure and retry rules.
"""

from __future__ import annotations

import contextlib
import logging
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import msgspec

from platforms.client import PlatformBreaker, RetryPolicy, breaker_for
from platforms.client import errors as manager_errors
from platforms.client.retry import retry_kwargs

from . import records as r
from .auth import SESSION_PATH, BridgeSessionAuth
from .config import BridgeConfig
from .errors import (
    CircuitOpen,
    ConnectionNotMade,
    RateLimited,
    TransportError,
    WriteOutcomeUnknown,
    counts_as_failure,
)
from .interpret import decode_answer

__all__ = [
    "ENDPOINTS",
    "BridgeCore",
    "Endpoint",
    "PreparedCall",
    "order_body",
    "release_headers",
    "should_retry",
]

#: Nothing was sent: the connection (or a pooled slot) was never obtained.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


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
    endpoint: Endpoint
    url: str
    params: dict[str, Any] | None
    headers: dict[str, str]
    content: bytes | None
    extensions: dict[str, Any]
    request_id: str | None
    attempts: int = 0
    history: list[str] = field(default_factory=list)


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


class BridgeCore:
    """Base of :class:`BridgeClient` and :class:`AsyncBridgeClient`."""

    def __init__(
        self,
        config: BridgeConfig,
        *,
        breaker: PlatformBreaker | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        self.config = config
        self.breaker = breaker if breaker is not None else breaker_for(
            config.target, is_failure=counts_as_failure
        )
        self.retry_policy = retry or RetryPolicy()
        self.auth = BridgeSessionAuth(config)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(target={self.config.target})"

    @property
    def breaker_state(self) -> str:
        """ "closed", "open" or "half-open"."""
        return self.breaker.state

    def _limits(self) -> httpx.Limits:
        n = self.config.max_connections
        return httpx.Limits(max_connections=n, max_keepalive_connections=n)

    def _timeout(self) -> httpx.Timeout:
        return httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout)

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
                            request_id if endpoint.write else None)

    def _interpret(self, call: PreparedCall, response: httpx.Response) -> Any:
        endpoint = call.endpoint
        result = decode_answer(endpoint.name, endpoint.response, response.status_code,
                               response.headers, response.content, request_id=call.request_id,
                               write=endpoint.write)
        if isinstance(result, r.Task) and response.headers.get("x-idempotent-replay") == "true":
            result = msgspec.structs.replace(result, replayed=True)
        if endpoint.name == "session.heartbeat":
            self.auth.extend(result.session_id, result.expires_at)
            result = r.SessionExpiry(expires_at=result.expires_at)
        return result

    def _retry_kwargs(self, call: PreparedCall) -> dict:
        endpoint = call.endpoint
        return retry_kwargs(
            endpoint.name, self.retry_policy,
            lambda exc: should_retry(exc, endpoint, self.config),
            server_delay=_server_delay,
        )

    @contextlib.contextmanager
    def _mapped_errors(self, call: PreparedCall):
        """httpx exceptions → ConnectionNotMade / TransportError (no secrets in the text)."""
        host = httpx.URL(self.config.base_url).host
        operation = call.endpoint.name
        try:
            yield
        except _NOT_SENT as exc:
            raise ConnectionNotMade(
                f"could not connect to {host}: {str(exc) or type(exc).__name__}",
                operation=operation, request_id=call.request_id,
            ) from None
        except httpx.TransportError as exc:
            cls = WriteOutcomeUnknown if call.endpoint.write else TransportError
            suffix = "; the write may or may not have created a task" if call.endpoint.write \
                else ""
            raise cls(
                f"connection to {host} failed after sending: {type(exc).__name__}{suffix}",
                operation=operation, request_id=call.request_id,
            ) from None

    @contextlib.contextmanager
    def _circuit(self, call: PreparedCall):
        """The breaker's fail-fast error in this client's own terms."""
        try:
            yield
        except manager_errors.CircuitOpen as exc:
            raise CircuitOpen(self.config.target, exc.retry_in, call.endpoint.name) from None

    def _send_kwargs(self, call: PreparedCall) -> dict[str, Any]:
        return {"params": call.params, "headers": call.headers, "content": call.content,
                "extensions": call.extensions}


def release_headers(config: BridgeConfig, session_id: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {config.api_key}", "x-session-id": session_id,
            "Accept": "application/json"}


def order_body(symbol: str, type: str, volume: float, *, sl: float = 0.0, tp: float = 0.0,
               comment: str = "", price: float | None = None) -> dict[str, Any]:
    """``POST /orders`` body: always the same bytes for the same arguments, so a retried or
    resubmitted write matches its first payload."""
    body: dict[str, Any] = {"symbol": symbol, "type": type, "volume": volume, "sl": sl,
                            "tp": tp, "comment": comment}
    if price is not None:
        body["price"] = price
    return body
