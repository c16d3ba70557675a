"""The blocking client (``httpx.Client``) — Django views, Celery tasks, scripts."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from . import records as r
from ._core import BodyBuffer, ClientCore, request_url
from .breaker import PlatformBreaker
from .config import PlatformConfig, RetryPolicy
from .operations import (
    Operation,
    PreparedCall,
    interpret,
    interpret_trade_platforms,
    trade_platforms_url,
)
from .retry import sync_retrying

__all__ = ["ManagerClient"]


class ManagerClient(ClientCore):
    """Manager API client for one platform, with a pooled ``httpx.Client``.

    Keep one instance per platform per process and share it between threads; close it
    (or use it as a context manager) when done.
    """

    def __init__(
        self,
        config: PlatformConfig,
        *,
        breaker: PlatformBreaker | None = None,
        sidecar_breaker: PlatformBreaker | None = None,
        event_hooks: Mapping[str, list[Callable]] | None = None,
        transport: httpx.BaseTransport | None = None,
        retry: RetryPolicy | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        super().__init__(
            config, breaker=breaker, sidecar_breaker=sidecar_breaker, retry=retry, auth=auth
        )
        self._http = httpx.Client(
            auth=self.auth,
            limits=self._limits(),
            timeout=self._timeout(30.0),
            event_hooks=dict(event_hooks or {}),
            transport=transport,
            headers={"User-Agent": "broker-dashboard-manager-client/1"},
        )

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ManagerClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ send loop
    def _send_once(self, call: PreparedCall) -> Any:
        call.attempts += 1
        with (
            self._mapped_transport_errors(call, call.host, call.op.name),
            self._http.stream(
                call.method,
                request_url(call.url),
                params=call.params,
                headers=call.headers,
                content=call.content,
                timeout=self._timeout(call.http_timeout),
            ) as response,
        ):
            content = self._read_body(response)
        return interpret(call, response.status_code, response.headers, content)

    @staticmethod
    def _read_body(response: httpx.Response) -> bytes | bytearray:
        """The body, held once even when it is a 160 MB snapshot (see :class:`BodyBuffer`)."""
        if not BodyBuffer.wanted(response):
            return response.read()
        body = BodyBuffer(response.headers)
        for chunk in response.iter_bytes():
            body.add(chunk)
        return body.body()

    def _attempt(self, call: PreparedCall) -> Any:
        return self._breaker_of(call).call(lambda: self._send_once(call), call.op.name)

    def _call(self, op: Operation, **kwargs: Any) -> Any:
        call = self._prepare(op, **kwargs)
        return sync_retrying(op, self.retry_policy)(self._attempt, call)

    def _iterate(
        self, fetch, page_size: int, *args: Any, timeout: float | None = None
    ) -> Iterator[Any]:
        cursor = None
        while True:
            page = fetch(*args, page_size, cursor, timeout=timeout)
            yield from page.items
            if not page.has_more or not page.next_cursor:
                return
            cursor = page.next_cursor

    def fetch_raw(self, op: Operation, **kwargs: Any) -> tuple[int, bytes]:
        """Send ``op`` once (auth, no retry, no breaker) and return (status, raw body).

        For diagnostics and benchmarks; normal code uses the typed methods.
        """
        call = self._prepare(op, **kwargs)
        with self._mapped_transport_errors(call, call.host, op.name):
            response = self._http.request(
                call.method,
                request_url(call.url),
                params=call.params,
                headers=call.headers,
                content=call.content,
                timeout=self._timeout(call.http_timeout),
            )
        return response.status_code, response.content

    # ------------------------------------------------------------------ platform list
    def list_trade_platforms(self) -> list[r.TradePlatformInfo]:
        """``GET /api/TradePlatforms`` (plain array; 401 → one refresh and resend)."""
        url = trade_platforms_url(self.config)
        host = httpx.URL(url).host
        with self._mapped_transport_errors(None, host, "TradePlatforms"):
            response = self._http.get(url, headers={"Accept": "application/json"})
        return interpret_trade_platforms(url, response.status_code, response.content)
