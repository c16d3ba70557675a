"""The manager API's wire on the transport core, shared by the sync and async clients:
configuration, auth, the sidecar's own breaker, the namespaces, the retry rule and this
client's error classes. Sending itself is :mod:`platforms.transport.core`."""

from __future__ import annotations

import dataclasses
from typing import Any, Unpack

import httpx

from platforms import transport

from .auth import ClientCredentialsAuth
from .config import PlatformConfig
from .errors import CircuitOpen, ConnectionNotMade, TransportError, WriteTransportError
from .namespaces import MT4Namespace, MT5Namespace
from .protocol import (
    REQUEST_TIMEOUT_HEADER,
    Operation,
    PreparedCall,
    format_deadline,
    interpret,
    prepare,
)
from .retry import should_retry

__all__ = ["ClientCore"]


class ClientCore(transport.TransportCore[PreparedCall]):
    """Base of :class:`ManagerClient` and :class:`AsyncManagerClient`.

    Takes the platform's ``config`` and, optionally, ``breaker`` / ``sidecar_breaker`` (by
    default the process-wide ones), ``auth``, and the transport's options (``retry``,
    ``transport``, ``event_hooks``: :class:`~platforms.transport.TransportOptions`).
    """

    failures = transport.FailureKinds(
        ConnectionNotMade, TransportError, WriteTransportError, CircuitOpen,
        write_note="; the write may or may not have been applied")
    user_agent = "broker-dashboard-manager-client/1"

    def __init__(
        self,
        config: PlatformConfig,
        *,
        breaker: transport.CircuitBreaker | None = None,
        sidecar_breaker: transport.CircuitBreaker | None = None,
        auth: httpx.Auth | None = None,
        **options: Unpack[transport.TransportOptions],
    ) -> None:
        self.config = config
        breaker = breaker if breaker is not None else transport.breaker_for(config.platform_id)
        # The x86 sidecar is a separate process: its outage must not stop the main API.
        # Without a sidecar URL both share one host, hence one breaker.
        if sidecar_breaker is None:
            sidecar_breaker = (
                transport.breaker_for(f"{config.platform_id}/sidecar")
                if config.sidecar_base_url and config.sidecar_base_url != config.api_base_url
                else breaker
            )
        self.sidecar_breaker = sidecar_breaker
        super().__init__(
            breaker=breaker,
            auth=auth if auth is not None else ClientCredentialsAuth(config),
            max_connections=config.max_connections,
            timeout=30.0,
            connect_timeout=config.connect_timeout,
            **options,
        )
        self.mt4 = MT4Namespace(self)
        self.mt5 = MT5Namespace(self)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(platform={self.config.platform_id}, "
            f"kind={self.config.kind}, api={self.config.api_base_url})"
        )

    def _prepare(self, op: Operation, **kwargs: Any) -> PreparedCall:
        return prepare(self.config, op, **kwargs)

    def _call(self, op: Operation, **kwargs: Any) -> Any:
        """Send ``op`` (awaitable in the async client)."""
        return self._send(self._prepare(op, **kwargs))

    def _iterate(self, fetch, page_size: int, *args: Any, timeout: float | None = None):
        raise NotImplementedError  # pragma: no cover - overridden

    # ------------------------------------------------------------------ the transport's hooks
    def _breaker_of(self, call: PreparedCall) -> transport.CircuitBreaker:
        return self.sidecar_breaker if call.op.sidecar else self.breaker

    def _retry_kwargs(self, call: PreparedCall) -> dict:
        op, policy = call.op, self.retry_policy
        return transport.retry_kwargs(op.name, policy, lambda exc: should_retry(exc, op, policy))

    def _with_deadline(self, call: PreparedCall, seconds: float) -> PreparedCall:
        """The read with ``X-Request-Timeout`` lowered to what is left of the page's budget,
        so the server answers ``Timeout`` in time instead of holding the page."""
        deadline = min(call.deadline, round(seconds, 3))
        if deadline >= call.deadline:
            return call
        headers = {**call.headers, REQUEST_TIMEOUT_HEADER: format_deadline(deadline)}
        return dataclasses.replace(call, deadline=deadline, headers=headers)

    def _interpret(self, call: PreparedCall, status: int, headers: httpx.Headers,
                   content: bytes | bytearray) -> Any:
        return interpret(call, status, headers, content)
