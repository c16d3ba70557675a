"""A coverage account's ``WS /events``, consumed in the stream process (never a Celery worker).

One :class:`AccountEvents` per enabled coverage account (``platforms.live.coverage_events`` runs
them beside the platforms' hub bridges, one per account across processes). It subscribes only to the
channels it uses — ``order`` (executions) and ``account`` (the account record after each one)
— and for every event:

* an execution (``order``): :func:`~platforms.coverage.hedging.record_execution` keeps it so a
  hedge trade task still awaiting its outcome is confirmed from it (``on_execution`` asks the
  trading domain to reconcile now), then the account's cached snapshot is refreshed
  (``/account`` + ``/positions``) and ``on_change`` nudges the exposure pages;
* ``account``: the same refresh (coalesced: one refresh in flight, at most one more queued).

The session is kept alive with heartbeats; a session the bridge expired or revoked (a 401 at
the handshake, an ``Unauthorized`` error frame, close code 4401) is forgotten and a new one
opened; a dropped socket, a 429, a 502 or no connection reconnect with exponential backoff and
full jitter. After every (re)connect the snapshot is refreshed at once: an execution missed
while away is in it (its hedge task is reconciled by the trading domain's replay meanwhile).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import sync_to_async

from platforms.coverage.client import (
    AsyncBridgeClient,
    BridgeApiError,
    BridgeConfig,
    RateLimited,
    Task,
    Unauthorized,
)
from platforms.coverage.hedging import record_execution
from platforms.coverage.services import arefresh_coverage_account

log = logging.getLogger("platforms.coverage")

#: The channels used: executions and the account record after each one (no quotes, depth or
#: per-tick profit: the page's figures move on fills; the periodic poll moves the rest).
CHANNELS = ("order", "account")

#: ``on_change(account_pk)`` and ``on_execution(account_pk, task)``; what they return is ignored.
OnChange = Callable[[int], Awaitable[Any]]
OnExecution = Callable[[int, Task], Awaitable[Any]]


async def _nothing(*args: Any) -> None:
    return None


class AccountEvents:
    """The ``/events`` stream of one coverage account (see the module docstring)."""

    def __init__(self, account_pk: int, config: BridgeConfig, *,
                 on_change: OnChange = _nothing, on_execution: OnExecution = _nothing,
                 options: dict | None = None) -> None:
        self.pk = account_pk
        self.config = config
        self.on_change = on_change
        self.on_execution = on_execution
        self.opts = {"reconnect_base": 0.5, "reconnect_max": 30.0, "keepalive_max": 60.0,
                     **(options or {})}
        self.connected = False
        self.connects = 0
        self.executions = 0
        self.refreshes = 0
        self._dirty = asyncio.Event()

    # ---------------------------------------------------------------- the loop
    async def run(self) -> None:
        """Forever: connect, consume, refresh; on loss reconnect with backoff and jitter."""
        attempt = 0
        client = AsyncBridgeClient(self.config)
        refresher = asyncio.create_task(self._refresher(client))
        try:
            while True:
                started = time.monotonic()
                wait: float | None = None
                try:
                    await self._connect_once(client)
                except Unauthorized:
                    client.auth.take()  # expired or revoked: the next connect opens a new one
                    log.info("coverage %s: /events session expired; reopening", self.pk)
                except RateLimited as exc:
                    wait = exc.retry_after
                    log.warning("coverage %s: /events rate limited", self.pk)
                except (BridgeApiError, OSError) as exc:
                    log.warning("coverage %s: /events lost (%s)", self.pk, type(exc).__name__)
                self.connected = False
                if time.monotonic() - started > 30:
                    attempt = 0  # it had been up for a while: start the backoff afresh
                cap = min(self.opts["reconnect_max"], self.opts["reconnect_base"] * 2**attempt)
                attempt += 1
                await asyncio.sleep(max(wait or 0.0, random.uniform(cap / 4, cap)))
        finally:
            refresher.cancel()
            with contextlib.suppress(BaseException):
                await refresher
            with contextlib.suppress(Exception):
                await client.aclose()

    async def _connect_once(self, client: AsyncBridgeClient) -> None:
        async with client.events(CHANNELS) as stream:
            self.connected = True
            self.connects += 1
            self._dirty.set()  # gap fill: what changed while away is in the next read
            keepalive = asyncio.create_task(self._keepalive(client))
            try:
                async for event in stream:
                    if event.channel == "order" and isinstance(event.data, Task):
                        await self._execution(event.data)
                    self._dirty.set()
                    if keepalive.done():  # a failed heartbeat: the session is gone
                        keepalive.result()
            finally:
                keepalive.cancel()
                with contextlib.suppress(BaseException):
                    await keepalive

    async def _keepalive(self, client: AsyncBridgeClient) -> None:
        """Heartbeat the session well before it expires (the socket does not extend it)."""
        while True:
            left = client.auth.expires_in
            await asyncio.sleep(max(0.2, min(self.opts["keepalive_max"], left / 3)))
            await client.heartbeat()

    async def _execution(self, task: Task) -> None:
        self.executions += 1
        try:
            await sync_to_async(record_execution, thread_sensitive=False)(self.pk, task)
            await self.on_execution(self.pk, task)
        except Exception:  # a cache or broker hiccup: the trading domain's replay still works
            log.exception("coverage %s: recording execution %s failed", self.pk, task.task_id)

    async def _refresher(self, client: AsyncBridgeClient) -> None:
        """Refresh the cached snapshot after events, one read at a time (events that come
        during a read are covered by the next one), then nudge the pages."""
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await arefresh_coverage_account(self.pk, client)
                self.refreshes += 1
            except BridgeApiError as exc:
                log.warning("coverage %s: refresh after an event failed (%s)", self.pk,
                            type(exc).__name__)
                continue
            try:
                await self.on_change(self.pk)
            except Exception:
                log.exception("coverage %s: announcing a change failed", self.pk)
