"""An ``httpx.Auth`` whose credential expires: fetched on first use, refreshed before it
runs out, renewed once after a 401 — written once for sync and async, single flight.

A client's auth (the manager's OAuth2 token, the bridge's session) subclasses
:class:`RefreshingAuth` and writes only its wire: the sans-IO flows that fetch the credential
(they *yield* the requests, so httpx sends them over the same pool, sync or async) and how
a request carries it. The locking lives here: threads share a ``threading.Lock``; coroutines
share an ``asyncio.Lock`` *per event loop* (an asyncio lock binds to the loop it was first
used on, and Django/Channels/Celery may run several loops in one process).

A 401 answer makes one renewal and one resend: the upstream refuses an unauthenticated
request before running it, so this is safe for writes. If another caller renewed the
credential meanwhile, its new credential is used without fetching again.
"""

from __future__ import annotations

import asyncio
import threading
import time
import weakref
from collections.abc import Generator
from dataclasses import dataclass

import httpx

__all__ = ["Credential", "CredentialFlow", "RefreshingAuth"]


@dataclass(frozen=True, slots=True)
class Credential:
    """A token or session id, when it runs out (``time.monotonic()``) and which fetch made it."""

    value: str
    deadline: float
    generation: int


#: A sans-IO flow: yields the requests to send, is sent their answers, returns the credential.
CredentialFlow = Generator[httpx.Request, httpx.Response, Credential]


class RefreshingAuth(httpx.Auth):
    """Base of an expiring credential's auth flow (see the module docstring)."""

    def __init__(self, *, margin: float) -> None:
        """``margin``: refresh when fewer than this many seconds of the credential remain."""
        self._margin = margin
        self._credential: Credential | None = None
        self._generation = 0
        self._thread_lock = threading.Lock()
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
        self._loop_locks = weakref.WeakKeyDictionary()
        self._loop_locks_guard = threading.Lock()

    # ------------------------------------------------------------------ the wire's part
    def _refresh_flow(self) -> CredentialFlow:
        """Fetch a credential before a request (none yet, or close to its deadline)."""
        raise NotImplementedError

    def _renew_flow(self) -> CredentialFlow:
        """Fetch a new credential after the upstream refused the current one (a 401)."""
        raise NotImplementedError

    def _stamp(self, request: httpx.Request, credential: Credential) -> None:
        """Make ``request`` carry ``credential``."""
        raise NotImplementedError

    # ------------------------------------------------------------------ state
    def _issue(self, value: str, deadline: float) -> Credential:
        """Record a freshly fetched credential (a new generation)."""
        self._generation += 1
        self._credential = Credential(value, deadline, self._generation)
        return self._credential

    def _fresh(self) -> Credential | None:
        credential = self._credential
        if credential is not None and credential.deadline - time.monotonic() > self._margin:
            return credential
        return None

    @property
    def expires_in(self) -> float:
        credential = self._credential
        return 0.0 if credential is None else max(0.0, credential.deadline - time.monotonic())

    def invalidate(self) -> None:
        """Forget the credential (the next call fetches a new one)."""
        self._credential = None

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._loop_locks_guard:
            lock = self._loop_locks.get(loop)
            if lock is None:
                lock = self._loop_locks[loop] = asyncio.Lock()
            return lock

    # ------------------------------------------------------------------ sync
    @staticmethod
    def _drive_sync(flow: CredentialFlow) -> Generator[httpx.Request, httpx.Response, Credential]:
        request = next(flow)
        while True:
            response = yield request
            response.read()
            try:
                request = flow.send(response)
            except StopIteration as done:
                return done.value

    def sync_auth_flow(self, request: httpx.Request):
        credential = self._fresh()
        if credential is None:
            with self._thread_lock:
                credential = self._fresh() or (yield from self._drive_sync(self._refresh_flow()))
        self._stamp(request, credential)
        response = yield request
        if response.status_code != 401:
            return
        with self._thread_lock:
            current = self._credential
            if current is None or current.generation == credential.generation:
                credential = yield from self._drive_sync(self._renew_flow())
            else:  # renewed by another caller meanwhile
                credential = current
        self._stamp(request, credential)
        yield request

    # ------------------------------------------------------------------ async
    # An async generator cannot ``yield from``: the sans-IO flow is stepped by a _Stepper.
    async def async_auth_flow(self, request: httpx.Request):
        credential = self._fresh()
        if credential is None:
            async with self._loop_lock():
                credential = self._fresh()
                if credential is None:
                    step = _Stepper(self._refresh_flow())
                    while step.running:
                        step.send(await _read((yield step.request)))
                    credential = step.result
        self._stamp(request, credential)
        response = yield request
        if response.status_code != 401:
            return
        async with self._loop_lock():
            current = self._credential
            if current is None or current.generation == credential.generation:
                step = _Stepper(self._renew_flow())
                while step.running:
                    step.send(await _read((yield step.request)))
                credential = step.result
            else:  # renewed by another caller meanwhile
                credential = current
        self._stamp(request, credential)
        yield request


async def _read(response: httpx.Response) -> httpx.Response:
    await response.aread()
    return response


class _Stepper:
    """Steps a sans-IO flow from an async auth flow: ``request`` is what to send next,
    ``send`` hands back its answer, ``result`` is the credential once the flow has finished."""

    def __init__(self, flow: CredentialFlow) -> None:
        self._flow = flow
        self.request: httpx.Request = next(flow)
        self._result: Credential | None = None
        self.running = True

    @property
    def result(self) -> Credential:
        assert self._result is not None, "the credential flow has not finished"
        return self._result

    def send(self, response: httpx.Response) -> None:
        try:
            self.request = self._flow.send(response)
        except StopIteration as done:
            self._result, self.running = done.value, False
