"""The asyncio bridge client (``httpx.AsyncClient``), with the ``/events`` stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

import httpx
import msgspec
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from platforms.transport import AsyncTransport

from . import records as r
from ._core import BridgeCore, PreparedCall, order_body, release_headers
from .errors import ConnectionNotMade, EventStreamLost, InvalidResponse, ValidationError
from .interpret import error_from_answer

#: The release carries its own headers: no session flow (it would open a session to close it).
_NO_SESSION = httpx.Auth()

__all__ = ["AsyncBridgeClient", "EventStream"]

log = logging.getLogger(__name__)


class _Frame(msgspec.Struct):
    type: str = ""
    channel: str = ""
    channels: list[str] = []
    data: msgspec.Raw = msgspec.Raw(b"null")
    error: r.ErrorDetail | None = None


_FRAME = msgspec.json.Decoder(_Frame)


class EventStream:
    """An open ``/events`` socket subscribed to some channels; iterate it for events.

    Control frames (``ready``, ``subscribed``, ``pong``) are consumed here; an error frame
    is raised as its exception (``Unauthorized`` when the session expired), a closed socket
    as :class:`EventStreamLost`.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> r.BridgeEvent:
        return await self.next()

    async def next(self, timeout: float | None = None) -> r.BridgeEvent:
        """The next event; ``TimeoutError`` after ``timeout`` seconds without one."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self._frame()
                if frame.type == "event":
                    kind = r.EVENT_TYPES.get(frame.channel)
                    data: Any = (msgspec.json.decode(frame.data, type=kind) if kind
                                 else msgspec.json.decode(frame.data))
                    return r.BridgeEvent(frame.channel, data)

    async def subscribe(self, channels: Iterable[str], symbols: Iterable[str] = ()) -> list[str]:
        """Add channels (and symbols for quote/depth); returns the socket's channels."""
        await self._ws.send(msgspec.json.encode(
            {"action": "subscribe", "channels": list(channels), "symbols": list(symbols)}
        ).decode())
        while True:
            frame = await self._frame()
            if frame.type == "subscribed":
                return frame.channels

    async def _frame(self) -> _Frame:
        try:
            raw = await self._ws.recv()
        except ConnectionClosed as exc:
            raise EventStreamLost(
                f"the /events socket closed (code {exc.rcvd.code if exc.rcvd else 'none'})",
                operation="events",
            ) from None
        try:
            frame = _FRAME.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError):
            raise InvalidResponse("an /events frame is not the bridge's JSON",
                                  operation="events") from None
        if frame.type == "error" and frame.error is not None:
            status = {"Unauthorized": 401, "ValidationError": 400}.get(frame.error.code, 0)
            body = msgspec.json.encode({"error": {"code": frame.error.code,
                                                  "message": frame.error.message}})
            raise error_from_answer("events", status, {}, body)
        return frame

    async def close(self) -> None:
        await self._ws.close()


class AsyncBridgeClient(BridgeCore, AsyncTransport[PreparedCall]):
    """The same API as :class:`~.sync.BridgeClient`, awaited, plus :meth:`events`.

    ``transport`` is an ``httpx.AsyncBaseTransport``; the pooled ``httpx.AsyncClient``
    belongs to the event loop that first uses it.
    """

    async def aclose(self) -> None:
        """Release the session (best effort) and the pool."""
        session_id = self.auth.take()
        if session_id is not None:
            try:
                await self._http.delete(f"{self.config.base_url}/session/{session_id}",
                                        headers=release_headers(self.config, session_id),
                                        auth=_NO_SESSION)
            except httpx.HTTPError as exc:
                log.info("%s: session release failed (%s); it will expire",
                         self.config.target, type(exc).__name__)
        await super().aclose()

    # ------------------------------------------------------------------ session
    async def session(self) -> r.SessionState:
        return await self._call("session.get")

    async def heartbeat(self) -> r.SessionExpiry:
        return await self._call("session.heartbeat")

    # ------------------------------------------------------------------ reads
    async def account(self) -> r.Account:
        return await self._call("account")

    async def positions(self) -> r.Positions:
        return await self._call("positions")

    async def symbols(self) -> r.SymbolList:
        return await self._call("symbols")

    async def quote_history(self, symbol: str, timeframe: str = "H1", *, start: Any = None,
                            end: Any = None, limit: int | None = None) -> r.QuoteHistory:
        return await self._call("quotes.history", params={
            "symbol": symbol, "timeframe": timeframe, "from": start, "to": end, "limit": limit})

    # ------------------------------------------------------------------ writes (tasks)
    async def submit_order(self, symbol: str, type: str, volume: float, *, sl: float = 0.0,
                           tp: float = 0.0, comment: str = "", price: float | None = None,
                           request_id: str | None = None) -> r.Task:
        return await self._call("orders.submit", request_id=request_id, body=order_body(
            symbol, type, volume, sl=sl, tp=tp, comment=comment, price=price))

    async def modify_order(self, task_id: str, *, request_id: str | None = None,
                           **changes: Any) -> r.Task:
        return await self._call("orders.modify", path_args={"task_id": task_id}, body=changes,
                                request_id=request_id)

    async def close_position(self, ticket: int, volume: float | None = None, *,
                             request_id: str | None = None) -> r.Task:
        body = {} if volume is None else {"volume": volume}
        return await self._call("positions.close", path_args={"ticket": ticket}, body=body,
                                request_id=request_id)

    # ------------------------------------------------------------------ realtime
    @contextlib.asynccontextmanager
    async def events(self, channels: Iterable[str],
                     symbols: Iterable[str] = ()) -> AsyncIterator[EventStream]:
        """``WS /events`` subscribed to ``channels`` only (``order``, ``quote``, ``depth``,
        ``account``, ``profit``); the session is opened first if needed.

        A socket refused at the handshake raises the bridge's error (``Unauthorized``,
        ``RateLimited``...); a dropped one raises :class:`EventStreamLost` from the stream.
        """
        await self.session()  # an open, live session (heartbeat or reopen as needed)
        session_id = self.auth.session_id
        assert session_id is not None
        url = httpx.URL(f"{self.config.base_url}/events")
        ws_url = str(url.copy_with(scheme="wss" if url.scheme == "https" else "ws"))
        headers = release_headers(self.config, session_id)
        try:
            ws = await connect(ws_url, additional_headers=headers,
                               open_timeout=self.config.connect_timeout, max_size=2**22)
        except InvalidStatus as exc:
            response = exc.response
            raise error_from_answer("events", response.status_code,
                                    {k.lower(): v for k, v in response.headers.raw_items()},
                                    bytes(response.body or b"")) from None
        except OSError as exc:
            raise ConnectionNotMade(f"could not open the /events socket: {type(exc).__name__}",
                                    operation="events") from None
        stream = EventStream(ws)
        try:
            await _expect_ready(stream)
            wanted = list(channels)
            if not wanted:
                raise ValidationError("subscribe to at least one channel", operation="events")
            await stream.subscribe(wanted, symbols)
            yield stream
        finally:
            await stream.close()


async def _expect_ready(stream: EventStream) -> None:
    frame = await stream._frame()
    if frame.type != "ready":
        raise InvalidResponse(f"the /events socket opened with {frame.type!r}, not 'ready'",
                              operation="events")
