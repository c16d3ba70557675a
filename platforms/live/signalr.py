"""A small asyncio client for ASP.NET Core SignalR hubs (JSON hub protocol over WebSockets).

Why not a library: ``pysignalr`` (the maintained asyncio client) was evaluated. It takes a
*sync* token factory and only calls it at the WebSocket handshake (the negotiate POST goes
without a token), reconnects inside ``websockets``' own loop with the *old* connection token
(a real server refuses it), has no server-timeout (a stalled hub that still answers WebSocket
pings is never noticed), and its reconnect policy has no jitter. We need all four, so this is
the ~150 lines of protocol we use instead; reconnection policy lives in the bridge.

Wire (reference §6): ``POST {hub}/negotiate?negotiateVersion=1`` → ``connectionToken``; then
``ws(s)://{hub}?...&id=<token>`` with ``Authorization: Bearer``; handshake
``{"protocol":"json","version":1}`` 0x1E → ``{}`` 0x1E; records end with 0x1E.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

RS = "\x1e"
INVOCATION, STREAM_ITEM, COMPLETION, STREAM_INVOCATION, CANCEL, PING, CLOSE = range(1, 8)


class HubError(Exception):
    """The hub could not be reached, refused us, or the connection was lost."""


@dataclass(slots=True)
class HubMessage:
    """One decoded record: ``kind`` is ``"invocation"`` (``target`` set) or ``"item"``
    (``stream`` = the stream method name); ``payload`` is the first argument / the item."""

    kind: str
    name: str
    payload: Any


class HubConnection:
    """One negotiated WebSocket to a hub. Not reusable: make a new one to reconnect."""

    def __init__(
        self,
        hub_url: str,
        http: httpx.AsyncClient,
        *,
        server_timeout: float = 30.0,
        keep_alive: float = 15.0,
        open_timeout: float = 10.0,
    ) -> None:
        self.hub_url = hub_url
        self.http = http  # carries the OAuth auth flow: negotiate gets a fresh bearer token
        self.server_timeout = server_timeout
        self.keep_alive = keep_alive
        self.open_timeout = open_timeout
        self.ws: ClientConnection | None = None
        self.bytes_received = 0
        self._ids = itertools.count(1)
        self._streams: dict[str, str] = {}  # invocationId -> stream name
        self._pending: dict[str, asyncio.Future] = {}
        self._buffer = ""
        self._ping_task: asyncio.Task | None = None
        self._last_sent = time.monotonic()

    async def open(self) -> None:
        split = urlsplit(self.hub_url)
        negotiate = urlunsplit(
            (
                split.scheme,
                split.netloc,
                split.path.rstrip("/") + "/negotiate",
                split.query + ("&" if split.query else "") + "negotiateVersion=1",
                "",
            )
        )
        try:
            response = await self.http.post(negotiate, timeout=self.open_timeout)
        except httpx.HTTPError as exc:
            raise HubError(f"negotiate failed: {type(exc).__name__}") from None
        if response.status_code != 200:
            raise HubError(f"negotiate answered HTTP {response.status_code}")
        body = response.json()
        token = body.get("connectionToken") or body.get("connectionId")
        if not token:
            raise HubError("negotiate answered without a connection token")
        bearer = response.request.headers.get("authorization", "")
        query = split.query + ("&" if split.query else "") + urlencode({"id": token})
        ws_url = urlunsplit(
            ("wss" if split.scheme == "https" else "ws", split.netloc, split.path, query, "")
        )
        try:
            self.ws = await websockets.connect(
                ws_url,
                additional_headers={"Authorization": bearer} if bearer else None,
                open_timeout=self.open_timeout,
                ping_interval=None,  # SignalR has its own keep-alive and server timeout
                max_size=None,
                compression=None,
            )
            await self.ws.send(json.dumps({"protocol": "json", "version": 1}) + RS)
            first = await asyncio.wait_for(self.ws.recv(), self.open_timeout)
        except (OSError, TimeoutError, websockets.WebSocketException) as exc:
            await self.close()
            raise HubError(f"hub connection failed: {type(exc).__name__}") from None
        text = first if isinstance(first, str) else first.decode()
        hello, _, rest = text.partition(RS)
        if json.loads(hello or "{}").get("error"):
            await self.close()
            raise HubError("hub refused the handshake")
        self._buffer = rest
        self._ping_task = asyncio.create_task(self._pinger())

    async def _send(self, message: dict[str, Any]) -> None:
        if self.ws is None:
            raise HubError("not connected")
        try:
            await self.ws.send(json.dumps(message, separators=(",", ":")) + RS)
        except websockets.WebSocketException:
            raise HubError("connection lost while sending") from None
        self._last_sent = time.monotonic()

    async def _pinger(self) -> None:
        while True:
            await asyncio.sleep(self.keep_alive)
            if time.monotonic() - self._last_sent >= self.keep_alive:
                try:
                    await self._send({"type": PING})
                except HubError:
                    return

    async def stream(self, name: str, *args: Any) -> None:
        """Start a server-to-client stream; its items arrive from :meth:`messages`."""
        inv = str(next(self._ids))
        self._streams[inv] = name
        await self._send(
            {
                "type": STREAM_INVOCATION,
                "invocationId": inv,
                "target": name,
                "arguments": list(args),
            }
        )

    async def invoke(self, name: str, *args: Any) -> asyncio.Future:
        """Invoke a hub method; the returned future resolves on its completion (while
        :meth:`messages` is being consumed)."""
        inv = str(next(self._ids))
        future = asyncio.get_running_loop().create_future()
        self._pending[inv] = future
        await self._send(
            {"type": INVOCATION, "invocationId": inv, "target": name, "arguments": list(args)}
        )
        return future

    async def messages(self) -> AsyncIterator[HubMessage]:
        """Invocations and stream items until the connection ends (then :class:`HubError`).

        No record at all (pings included) within ``server_timeout`` counts as lost: that is
        how a stalled hub, which keeps the socket open, is detected.
        """
        if self.ws is None:
            raise HubError("not connected")
        while True:
            while RS not in self._buffer:
                try:
                    # asyncio.timeout, not wait_for: on Python 3.11 wait_for swallows a
                    # cancellation that lands as a message arrives, and a cancelled bridge
                    # then kept reading forever (the hub's pings kept it busy)
                    async with asyncio.timeout(self.server_timeout):
                        raw = await self.ws.recv()
                except TimeoutError:
                    raise HubError("server timeout: no message from the hub") from None
                except websockets.WebSocketException:
                    raise HubError("connection lost") from None
                chunk = raw if isinstance(raw, str) else raw.decode()
                self.bytes_received += len(chunk)
                self._buffer += chunk
            *records, self._buffer = self._buffer.split(RS)
            for raw_record in records:
                if not raw_record:
                    continue
                msg = json.loads(raw_record)
                kind = msg.get("type")
                if kind == INVOCATION:
                    args = msg.get("arguments") or [None]
                    yield HubMessage("invocation", msg.get("target", ""), args[0])
                elif kind == STREAM_ITEM:
                    name = self._streams.get(msg.get("invocationId"), "")
                    yield HubMessage("item", name, msg.get("item"))
                elif kind == COMPLETION:
                    inv = msg.get("invocationId")
                    future = self._pending.pop(inv, None)
                    if future is not None and not future.done():
                        if msg.get("error"):
                            future.set_exception(HubError(msg["error"]))
                        else:
                            future.set_result(msg.get("result"))
                    elif inv in self._streams:
                        name = self._streams.pop(inv)
                        raise HubError(f"stream {name} ended: {msg.get('error') or 'completed'}")
                elif kind == CLOSE:
                    raise HubError(f"hub closed the connection: {msg.get('error') or 'no reason'}")

    async def close(self) -> None:
        if self._ping_task is not None:
            self._ping_task.cancel()
        for future in self._pending.values():
            if not future.done():
                future.set_exception(HubError("connection closed"))
        self._pending.clear()
        if self.ws is not None:
            ws, self.ws = self.ws, None
            with contextlib.suppress(TimeoutError, websockets.WebSocketException, OSError):
                await asyncio.wait_for(ws.close(), 2)
