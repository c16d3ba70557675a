"""The asyncio client (``httpx.AsyncClient``) — Channels consumers, async views."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx

from platforms.transport import AsyncTransport

from . import records as r
from ._core import ClientCore
from .protocol import PreparedCall, interpret_trade_platforms, trade_platforms_url

__all__ = ["AsyncManagerClient"]


class AsyncManagerClient(ClientCore, AsyncTransport[PreparedCall]):
    """The same API as :class:`~.sync.ManagerClient`; every call is awaited.

    ``iter_*`` return async iterators. ``event_hooks`` must be async callables and
    ``transport`` an ``httpx.AsyncBaseTransport``. The pooled ``httpx.AsyncClient`` belongs
    to the event loop that first uses it.
    """

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
        with self._mapped_failures(httpx.URL(url).host, "TradePlatforms"):
            response = await self._http.get(url, headers={"Accept": "application/json"})
        return interpret_trade_platforms(url, response.status_code, response.content)
