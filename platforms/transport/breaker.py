"""A circuit breaker per upstream target (a trade platform, a coverage account's bridge), on
top of ``pybreaker``.

What counts as a failure: the unreachable kind only — an answer saying the platform behind
the upstream is down (:class:`~.errors.UpstreamDown`: ``NoConnect``, ``BridgeUnavailable``),
an answer that is not the upstream's with a 5xx or no status (:class:`~.errors.ForeignAnswer`:
HTML proxy pages), nothing sent (:class:`~.errors.NothingSent`) and a connection lost after
sending (:class:`~.errors.MaybeSent`). Every other outcome, business errors included,
counts as a success: the upstream answered.

An open circuit raises the calling client's own :class:`~.errors.CircuitOpen` subclass
(``refusal=``), built here directly: no client translates another's error.

Why not pybreaker's own ``CircuitBreaker.call()``: it holds its (re-entrant) lock for the whole
guarded call, which would serialise every request to a platform in a process, and its
``call_async`` needs Tornado. :class:`CircuitBreaker` therefore uses pybreaker's state
machine and storage (memory, or ``CircuitRedisStorage`` shared by web and worker
processes) but holds the lock only for the bookkeeping before and after the call, so the
same code guards a blocking call and an awaited one. While half-open, exactly one probe
per process is let through; other calls fail fast until it has finished.

The hot path reads no shared state: pybreaker's Redis storage costs a GET before and a GET
plus a SET after every call, each under the breaker's process-wide lock, which serialised a
busy worker's calls behind Redis round trips. Each breaker keeps a local view of the shared
state and failure count, re-read at most every ``refresh_seconds`` (one pipelined round
trip, by one thread, outside any lock). While the view says "closed" with no failures
counted, a call is admitted and its success recorded without touching Redis; failures, a
count to reset, and every open / half-open decision take the authoritative path through
pybreaker, and refresh the view. So a circuit opened by another process is seen here within
``refresh_seconds``, and the introspection (:attr:`state`, :attr:`fail_counter`) always
reads the storage itself.

The registry (:func:`breaker_for`) keeps one breaker per target per process, so all clients
of one target share it, whichever upstream they speak to.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import pybreaker
import redis

from .errors import CircuitOpen, ForeignAnswer, MaybeSent, NothingSent, UpstreamDown

__all__ = [
    "CircuitBreaker",
    "breaker_for",
    "configure_breakers",
    "counts_as_failure",
    "reset_breakers",
]

log = logging.getLogger(__name__)
T = TypeVar("T")

#: ``listener(platform_id, old_state, new_state)`` with states "closed"/"open"/"half-open".
StateListener = Callable[[str, str, str], None]


#: What an open circuit raises: ``refusal(target, retry_in, operation)``.
Refusal = Callable[[str, float, str | None], CircuitOpen]


def counts_as_failure(exc: BaseException) -> bool:
    """Whether ``exc`` says the target is unreachable (as opposed to 'it answered no')."""
    if isinstance(exc, UpstreamDown | NothingSent | MaybeSent):
        return True
    if isinstance(exc, ForeignAnswer):
        status = exc.http_status or 0
        return status >= 500 or status == 0
    return False


class _Relay(pybreaker.CircuitBreakerListener):
    def __init__(self, owner: CircuitBreaker) -> None:
        self._owner = owner

    def state_change(self, cb, old_state, new_state) -> None:
        old = old_state.name if old_state is not None else "closed"
        new = new_state.name
        if old == new:
            return
        log.warning("circuit for platform %s: %s -> %s", self._owner.platform_id, old, new)
        for listener in list(self._owner.listeners):
            try:
                listener(self._owner.platform_id, old, new)
            except Exception:  # a listener must never break a call
                log.exception("circuit listener failed")


class CircuitBreaker:
    """Guards calls to one target. Use :meth:`call` (sync) or :meth:`call_async`.

    ``platform_id`` names the target (a platform GUID, or a coverage bridge's target).
    """

    #: Raised when the circuit is open and a call names no ``refusal`` of its own.
    refusal: Refusal = CircuitOpen

    def __init__(
        self,
        platform_id: str,
        *,
        fail_max: int = 5,
        reset_timeout: float = 30.0,
        storage: pybreaker.CircuitBreakerStorage | None = None,
        redis_url: str | None = None,
        listeners: list[StateListener] | None = None,
        is_failure: Callable[[BaseException], bool] = counts_as_failure,
        refresh_seconds: float = 0.25,
    ) -> None:
        """``is_failure`` says which exceptions mean "unreachable" (by default the shared bases
        of :mod:`.errors` decide, for either upstream). ``refresh_seconds`` bounds how stale
        the local view of a shared (Redis) state may be; memory state is read directly."""
        self.platform_id = platform_id
        self._is_failure = is_failure
        self.listeners: list[StateListener] = list(listeners or [])
        if storage is None and redis_url:
            storage = pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED,
                redis.Redis.from_url(redis_url),
                namespace=f"manager-client:{platform_id}",
            )
        self._cb = pybreaker.CircuitBreaker(
            fail_max=fail_max,
            reset_timeout=reset_timeout,
            exclude=[lambda exc: not is_failure(exc)],
            listeners=[_Relay(self)],
            state_storage=storage,
            name=platform_id,
            throw_new_error_on_trip=False,
        )
        self._probe_lock = threading.Lock()
        self._probe_started: float | None = None
        self._shared = isinstance(self._cb._state_storage, pybreaker.CircuitRedisStorage)
        self._refresh_seconds = refresh_seconds if self._shared else 0.0
        self._view_lock = threading.Lock()  # one refresher at a time; others use the last view
        self._view: tuple[str, int, float] | None = None  # state, fail count, when read

    # ------------------------------------------------------------------ introspection

    def add_listener(self, listener: StateListener) -> None:
        self.listeners.append(listener)

    @property
    def state(self) -> str:
        """ "closed", "open" or "half-open" (as stored; shared when stored in Redis)."""
        return self._cb.current_state

    @property
    def fail_counter(self) -> int:
        return self._cb.fail_counter

    @property
    def reset_timeout(self) -> float:
        return self._cb.reset_timeout

    def seconds_until_probe(self) -> float:
        opened_at = self._cb._state_storage.opened_at
        if opened_at is None:
            return 0.0
        elapsed = (datetime.now(UTC) - opened_at).total_seconds()
        return max(0.0, self._cb.reset_timeout - elapsed)

    def reset(self) -> None:
        """Close the circuit by hand (admin action)."""
        self._cb.close()
        self._forget_view()

    def trip(self) -> None:
        """Open the circuit by hand (admin action)."""
        self._cb.open()
        self._forget_view()

    # ------------------------------------------------------------------ bookkeeping

    def _read_shared(self) -> tuple[str, int]:
        """The stored state and failure count, in one round trip when they live in Redis."""
        storage = self._cb._state_storage
        if self._shared:
            shared = cast(pybreaker.CircuitRedisStorage, storage)
            try:
                pipe = shared._redis.pipeline(transaction=False)
                pipe.get(shared._namespace("state"))
                pipe.get(shared._namespace("fail_counter"))
                state, fails = pipe.execute()
            except Exception:  # Redis down: pybreaker's own fallback decides below
                state = fails = None
            if state is not None:
                return state.decode(), int(fails or 0)
        return storage.state, storage.counter

    def _current_view(self) -> tuple[str, int]:
        """The local view of (state, failure count), refreshed when older than allowed."""
        view = self._view
        if view is not None and time.monotonic() - view[2] < self._refresh_seconds:
            return view[0], view[1]
        if not self._view_lock.acquire(blocking=view is None):
            return view[0], view[1]  # type: ignore[index]  # another thread is refreshing
        try:
            state, fails = self._read_shared()
            self._view = (state, fails, time.monotonic())
        finally:
            self._view_lock.release()
        return state, fails

    def _forget_view(self) -> None:
        self._view = None

    def _before(self, operation: str | None, refusal: Refusal | None) -> bool:
        """Admit a call or raise ``refusal``; returns True if the call is the probe."""
        if self._current_view()[0] == pybreaker.STATE_CLOSED:
            return False
        cb = self._cb
        try:
            with cb._lock:
                state = cb.state.name
                if state == pybreaker.STATE_OPEN:
                    wait = self.seconds_until_probe()
                    if wait > 0:
                        raise (refusal or self.refusal)(self.platform_id, wait, operation)
                    cb.half_open()
                    state = pybreaker.STATE_HALF_OPEN
                if state == pybreaker.STATE_HALF_OPEN:
                    with self._probe_lock:
                        if self._probe_started is not None and (
                            time.monotonic() - self._probe_started < 300
                        ):
                            raise (refusal or self.refusal)(self.platform_id, 0.0, operation)
                        self._probe_started = time.monotonic()
                    return True
                return False
        finally:
            self._forget_view()

    def _after(self, probe: bool, exc: BaseException | None) -> None:
        success = exc is None or (isinstance(exc, Exception) and not self._is_failure(exc))
        view = self._view
        if (success and not probe and view is not None
                and view[0] == pybreaker.STATE_CLOSED and view[1] == 0):
            return  # nothing to record: closed, and no failure count to reset
        if exc is not None and not isinstance(exc, Exception):
            # BaseException (cancellation): no verdict on the platform.
            if probe:
                with self._probe_lock:
                    self._probe_started = None
            return
        cb = self._cb
        try:
            with cb._lock:
                state = cb.state
                if success:
                    state._handle_success()
                elif isinstance(exc, Exception):
                    # pybreaker re-raises on a trip; the caller re-raises the original.
                    with contextlib.suppress(Exception):
                        state._handle_error(exc, reraise=False)
        finally:
            self._forget_view()
            if probe:
                with self._probe_lock:
                    self._probe_started = None

    # ------------------------------------------------------------------ guarded calls

    def call(
        self, func: Callable[[], T], operation: str | None = None, *,
        refusal: Refusal | None = None,
    ) -> T:
        """``func()`` unless the circuit is open; then ``refusal`` (or :attr:`refusal`)."""
        probe = self._before(operation, refusal)
        try:
            result = func()
        except BaseException as exc:
            self._after(probe, exc)
            raise
        self._after(probe, None)
        return result

    async def call_async(
        self, func: Callable[[], Awaitable[T]], operation: str | None = None, *,
        refusal: Refusal | None = None,
    ) -> T:
        """The awaited :meth:`call`."""
        probe = self._before(operation, refusal)
        try:
            result = await func()
        except BaseException as exc:
            self._after(probe, exc)
            raise
        self._after(probe, None)
        return result


# --------------------------------------------------------------------------- registry

_REGISTRY: dict[str, CircuitBreaker] = {}
_REGISTRY_LOCK = threading.Lock()
_DEFAULTS: dict[str, Any] = {"fail_max": 5, "reset_timeout": 30.0, "redis_url": None,
                              "listeners": None}


def configure_breakers(
    *, fail_max: int = 5, reset_timeout: float = 30.0, redis_url: str | None = None,
    listeners: list[StateListener] | None = None,
) -> None:
    """Set the settings of breakers created from now on (e.g. from Django settings).

    ``listeners`` are told of every state change of every breaker (the health page records
    them), including breakers created later in this process.
    """
    _DEFAULTS.update(fail_max=fail_max, reset_timeout=reset_timeout, redis_url=redis_url,
                     listeners=listeners)


def breaker_for(platform_id: str, **overrides: Any) -> CircuitBreaker:
    """The process-wide breaker of ``platform_id`` (created on first use)."""
    with _REGISTRY_LOCK:
        breaker = _REGISTRY.get(platform_id)
        if breaker is None:
            breaker = _REGISTRY[platform_id] = CircuitBreaker(
                platform_id, **{**_DEFAULTS, **overrides}
            )
        return breaker


def reset_breakers() -> None:
    """Forget every registered breaker (tests, reconfiguration)."""
    with _REGISTRY_LOCK:
        _REGISTRY.clear()
