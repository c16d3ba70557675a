"""The asyncio client (``httpx.AsyncClient``) — Channels consumers, async views."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
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
from .retry import async_retrying

__all__ = ["AsyncManagerClient"]


class AsyncManagerClient(ClientCore):
    """The same API as :class:`~.sync.ManagerClient`; every call is awaited.

    ``iter_*`` return async iterators. ``event_hooks`` must be async callables.
    The pooled ``httpx.AsyncClient`` belongs to the event loop that first uses it.
    """

    def __init__(
        self,
        config: PlatformConfig,
        *,
        breaker: PlatformBreaker | None = None,
        sidecar_breaker: PlatformBreaker | None = None,
        event_hooks: Mapping[str, list[Callable]] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        retry: RetryPolicy | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        super().__init__(
            config, breaker=breaker, sidecar_breaker=sidecar_breaker, retry=retry, auth=auth
        )
        self._http = httpx.AsyncClient(
            auth=self.auth,
            limits=self._limits(),
            timeout=self._timeout(30.0),
            event_hooks=dict(event_hooks or {}),
            transport=transport,
            headers={"User-Agent": "broker-dashboard-manager-client/1"},
        )

    # ------------------------------------------------------------------ lifecycle
    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncManagerClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ send loop
    async def _send_once(self, call: PreparedCall) -> Any:
        call.attempts += 1
        with self._mapped_transport_errors(call, call.host, call.op.name):
            async with self._http.stream(
                call.method,
                request_url(call.url),
                params=call.params,
                headers=call.headers,
                content=call.content,
                timeout=self._timeout(call.http_timeout),
            ) as response:
                content = await self._read_body(response)
        return interpret(call, response.status_code, response.headers, content)

    @staticmethod
    async def _read_body(response: httpx.Response) -> bytes | bytearray:
        """The body, held once even when it is a 160 MB snapshot (see :class:`BodyBuffer`)."""
        if not BodyBuffer.wanted(response):
            return await response.aread()
        body = BodyBuffer(response.headers)
        async for chunk in response.aiter_bytes():
            body.add(chunk)
        return body.body()

    async def _attempt(self, call: PreparedCall) -> Any:
        return await self._breaker_of(call).call_async(lambda: self._send_once(call), call.op.name)

    async def _call(self, op: Operation, **kwargs: Any) -> Any:
        call = self._prepare(op, **kwargs)
        return await async_retrying(op, self.retry_policy)(self._attempt, call)

    async def _iterate(
        self, fetch, page_size: int, *args: Any, timeout: float | None = None
    ) -> AsyncIterator[Any]:
        cursor = None
        while True:
            page = await fetch(*args, page_size, cursor, timeout=timeout)
            for item in page.items:
                yield item
            if not page.has_more or not page.next_cursor:
                return
            cursor = page.next_cursor

    # ------------------------------------------------------------------ platform list
    async def list_trade_platforms(self) -> list[r.TradePlatformInfo]:
        """``GET /api/TradePlatforms`` (plain array; 401 → one refresh and resend)."""
        url = trade_platforms_url(self.config)
        host = httpx.URL(url).host
        with self._mapped_transport_errors(None, host, "TradePlatforms"):
            response = await self._http.get(url, headers={"Accept": "application/json"})
        return interpret_trade_platforms(url, response.status_code, response.content)
