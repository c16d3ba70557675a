"""The bridge session as an ``httpx.Auth`` flow: API key, session open → heartbeat → reopen.

Every call carries ``Authorization: Bearer <api-key>`` and ``x-session-id``. The flow opens
a session on first use (``POST /session/open``), sends a heartbeat when fewer than
``heartbeat_margin`` seconds are left, and after a ``401`` (expired, revoked or released
session) opens a new one and resends the request once. A 401 is answered before anything
runs, so resending is safe for writes too (they also keep their ``x-request-id``).

Written once, sans-IO, like :mod:`platforms.client.auth`: the open and heartbeat requests are
*yielded*, so httpx sends them over the same pool (sync or async). Single flight: threads
share a lock; coroutines an ``asyncio.Lock`` per event loop.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Generator
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
import msgspec

from . import records as r
from .config import BridgeConfig
from .errors import InvalidResponse
from .interpret import error_from_answer

__all__ = ["BridgeSessionAuth", "key_headers"]

SESSION_PATH = "bridge_session_path"  # request extension: a path template with {session}
SessionFlow = Generator[httpx.Request, httpx.Response, "_Session"]


async def _read(response: httpx.Response) -> httpx.Response:
    await response.aread()
    return response


class _Relay:
    """Steps a (sync) session flow from an async auth flow, which cannot ``yield from`` it:
    ``request`` is what to send next, ``send`` hands back the answer, ``result`` is the session
    once the flow has finished."""

    def __init__(self, flow: SessionFlow) -> None:
        self._flow = flow
        self.request: httpx.Request = next(flow)
        self._result: _Session | None = None
        self.running = True

    @property
    def result(self) -> _Session:
        assert self._result is not None, "the session flow has not finished"
        return self._result

    def send(self, response: httpx.Response) -> None:
        try:
            self.request = self._flow.send(response)
        except StopIteration as done:
            self._result, self.running = done.value, False


@dataclass(frozen=True)
class _Session:
    id: str
    deadline: float  # time.monotonic() when it expires
    generation: int


def key_headers(config: BridgeConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {config.api_key}", "Accept": "application/json"}


def _deadline(expires_at: datetime) -> float:
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return time.monotonic() + (expires_at - datetime.now(UTC)).total_seconds()


class BridgeSessionAuth(httpx.Auth):
    """API key + bridge session for every request of one coverage account's client."""

    def __init__(self, config: BridgeConfig) -> None:
        self._config = config
        self._session: _Session | None = None
        self._generation = 0
        self._thread_lock = threading.Lock()
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
        self._loop_locks = weakref.WeakKeyDictionary()
        self._loop_locks_guard = threading.Lock()
        self.sessions_opened = 0
        self.heartbeats_sent = 0

    def __repr__(self) -> str:  # never the key, the password or the session id
        return f"BridgeSessionAuth(target={self._config.target!r})"

    # ------------------------------------------------------------------ state
    @property
    def session_id(self) -> str | None:
        """The current session id (for the ``/events`` socket); never log it."""
        return self._session.id if self._session else None

    @property
    def expires_in(self) -> float:
        s = self._session
        return 0.0 if s is None else max(0.0, s.deadline - time.monotonic())

    def _usable(self) -> _Session | None:
        s = self._session
        if s is not None and s.deadline - time.monotonic() > self._config.heartbeat_margin:
            return s
        return None

    def extend(self, session_id: str, expires_at: datetime) -> None:
        """Record a heartbeat's new expiry (explicit ``client.heartbeat()``)."""
        s = self._session
        if s is not None and s.id == session_id:
            self._session = _Session(s.id, _deadline(expires_at), s.generation)

    def take(self) -> str | None:
        """Forget the session and return its id, to release it."""
        s, self._session = self._session, None
        return s.id if s else None

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._loop_locks_guard:
            lock = self._loop_locks.get(loop)
            if lock is None:
                lock = self._loop_locks[loop] = asyncio.Lock()
            return lock

    # ------------------------------------------------------------------ sans-IO session machine
    def _open_flow(self) -> SessionFlow:
        c = self._config
        body = {"accountId": c.account_id, "server": c.server, "login": c.login,
                "password": c.password}
        response = yield httpx.Request(
            "POST", f"{c.base_url}/session/open", headers=key_headers(c),
            content=msgspec.json.encode(body),
        )
        if response.status_code != 200:
            raise error_from_answer("session.open", response.status_code, response.headers,
                                    response.content)
        try:
            opened = r.decoder(r.SessionOpened).decode(response.content)
        except msgspec.DecodeError:
            raise InvalidResponse("the bridge's answer to session/open is not a session",
                                  operation="session.open",
                                  http_status=response.status_code) from None
        self._generation += 1
        self._session = _Session(opened.session_id, _deadline(opened.expires_at),
                                 self._generation)
        self.sessions_opened += 1
        return self._session

    def _renew_flow(self) -> SessionFlow:
        """Heartbeat the session when it is near expiry; open one when there is none or the
        heartbeat says it is gone."""
        s = self._session
        if s is None:
            return (yield from self._open_flow())
        c = self._config
        response = yield httpx.Request(
            "POST", f"{c.base_url}/session/{s.id}/heartbeat",
            headers={**key_headers(c), "x-session-id": s.id},
        )
        if response.status_code == 401:
            return (yield from self._open_flow())
        if response.status_code != 200:
            raise error_from_answer("session.heartbeat", response.status_code, response.headers,
                                    response.content)
        try:
            beat = r.decoder(r.SessionOpened).decode(response.content)
        except msgspec.DecodeError:
            raise InvalidResponse("the bridge's answer to a heartbeat is not a session",
                                  operation="session.heartbeat",
                                  http_status=response.status_code) from None
        self._session = _Session(s.id, _deadline(beat.expires_at), s.generation)
        self.heartbeats_sent += 1
        return self._session

    def _stamp(self, request: httpx.Request, session: _Session) -> None:
        request.headers.update(key_headers(self._config))
        request.headers["x-session-id"] = session.id
        template = request.extensions.get(SESSION_PATH)
        if template:
            request.url = request.url.copy_with(path=template.format(session=session.id))

    def _stale(self, used: _Session) -> bool:
        current = self._session
        return current is None or current.generation == used.generation

    # ------------------------------------------------------------------ sync
    @staticmethod
    def _drive_sync(flow: SessionFlow) -> Generator[httpx.Request, httpx.Response, _Session]:
        request = next(flow)
        while True:
            response = yield request
            response.read()
            try:
                request = flow.send(response)
            except StopIteration as done:
                return done.value

    def sync_auth_flow(self, request: httpx.Request):
        session = self._usable()
        if session is None:
            with self._thread_lock:
                session = self._usable() or (yield from self._drive_sync(self._renew_flow()))
        self._stamp(request, session)
        response = yield request
        if response.status_code != 401:
            return
        with self._thread_lock:
            if self._stale(session):
                session = yield from self._drive_sync(self._open_flow())
            else:
                session = self._session  # type: ignore[assignment]
        assert session is not None
        self._stamp(request, session)
        yield request

    # ------------------------------------------------------------------ async
    # An async generator cannot ``yield from``: the session machine is stepped by a _Relay.
    async def async_auth_flow(self, request: httpx.Request):
        session = self._usable()
        if session is None:
            async with self._loop_lock():
                session = self._usable()
                if session is None:
                    relay = _Relay(self._renew_flow())
                    while relay.running:
                        relay.send(await _read((yield relay.request)))
                    session = relay.result
        self._stamp(request, session)
        response = yield request
        if response.status_code != 401:
            return
        async with self._loop_lock():
            if self._stale(session):
                relay = _Relay(self._open_flow())
                while relay.running:
                    relay.send(await _read((yield relay.request)))
                session = relay.result
            else:
                session = self._session  # type: ignore[assignment]
        assert session is not None
        self._stamp(request, session)
        yield request
