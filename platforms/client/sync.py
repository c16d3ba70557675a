"""The blocking client (``httpx.Client``) — Django views, Celery tasks, scripts."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from platforms.transport import SyncTransport, request_url

from . import records as r
from ._core import ClientCore
from .protocol import Operation, PreparedCall, interpret_trade_platforms, trade_platforms_url

__all__ = ["ManagerClient"]


class ManagerClient(ClientCore, SyncTransport[PreparedCall]):
    """Manager API client for one platform, with a pooled ``httpx.Client``.

    Keep one instance per platform per process and share it between threads; close it
    (or use it as a context manager) when done. Arguments: see :class:`~._core.ClientCore`
    (``transport`` is an ``httpx.BaseTransport``).
    """

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
        with self._call_failures(call):
            response = self._http.request(
                call.method, request_url(call.url), **self._request_options(call)
            )
        return response.status_code, response.content

    # ------------------------------------------------------------------ platform list
    def list_trade_platforms(self) -> list[r.TradePlatformInfo]:
        """``GET /api/TradePlatforms`` (plain array; 401 → one refresh and resend)."""
        url = trade_platforms_url(self.config)
        with self._mapped_failures(httpx.URL(url).host, "TradePlatforms"):
            response = self._http.get(url, headers={"Accept": "application/json"})
        return interpret_trade_platforms(url, response.status_code, response.content)
