"""Helpers for driving ``/ws/live/`` with Channels' WebsocketCommunicator."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable

from channels.routing import URLRouter
from channels.testing.websocket import WebsocketCommunicator

from platforms.live.routing import websocket_urlpatterns


async def open_socket(user) -> tuple[WebsocketCommunicator, bool, int | None]:
    communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), "/ws/live/")
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    return communicator, connected, code


async def next_message(communicator: WebsocketCommunicator, timeout: float) -> dict | None:
    """The next ASGI message the consumer sent, or None (reads the queue directly:
    ``receive_from`` cancels the application when it times out)."""
    try:
        return await asyncio.wait_for(communicator.output_queue.get(), timeout)
    except TimeoutError:
        return None


async def frames(communicator: WebsocketCommunicator, seconds: float) -> list[dict]:
    """Every frame sent within ``seconds``."""
    return await frames_until(communicator, lambda _: False, seconds)


async def frames_until(
    communicator: WebsocketCommunicator, done: Callable[[list[dict]], bool], timeout: float
) -> list[dict]:
    """Frames until ``done(frames)`` holds (or the timeout passes: the caller asserts)."""
    out: list[dict] = []
    deadline = time.monotonic() + timeout
    while not done(out) and (left := deadline - time.monotonic()) > 0:
        message = await next_message(communicator, left)
        if message is None:
            break
        assert message["type"] == "websocket.send", message
        out.append(json.loads(message["text"]))
    return out


def rows_of(frames: list[dict], pk: int) -> list[list]:
    """Every margin row the frames carried for platform ``pk`` (snapshots and updates)."""
    rows = []
    for frame in frames:
        if frame.get("t") == "snap" and frame.get("p") == pk:
            rows.extend(frame["rows"])
        elif frame.get("t") == "u":
            rows.extend(frame.get("rows", {}).get(str(pk), []))
    return rows


def events_of(frames: list[dict]) -> list[dict]:
    return [event for frame in frames if frame.get("t") == "u" for event in frame.get("events", [])]
