"""Supervising the bridges: which platforms, one bridge each, started where.

``run_bridges()`` runs until cancelled: every enabled platform (or the ones asked for) gets a
:class:`~platforms.live.hub_relay.PlatformBridge` behind a :class:`~.locks.BridgeLock`; the
platform list is re-read every ``RESCAN_SECONDS`` so an added, disabled or edited platform
(new URL or secret) is picked up. Beside them, every enabled coverage account's ``/events``
(``platforms.live.coverage_events``), also one per account across processes.

``ensure_started()`` is the lazy in-process start used by the consumers when
``REALTIME_BRIDGE = "in-process"`` (the demo): the first WebSocket starts it on the ASGI
server's event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import Iterable

from asgiref.sync import sync_to_async
from django.conf import settings

from platforms.connections import async_client_for
from platforms.live import store
from platforms.live.coverage_events import run_coverage_events
from platforms.live.hub_relay import PlatformBridge
from platforms.live.locks import BridgeLock
from platforms.models import TradePlatform

log = logging.getLogger("platforms.live")
RESCAN_SECONDS = 30.0

_started: dict[int, asyncio.Task] = {}  # id(loop) -> supervisor task


def _enabled(pks: Iterable[int] | None) -> list[TradePlatform]:
    qs = TradePlatform.objects.filter(enabled=True)
    if pks:
        qs = qs.filter(pk__in=list(pks))
    return list(qs)


async def _guarded(platform: TradePlatform, options: dict | None) -> None:
    """Hold the platform's lock while its bridge runs; stand by while another holds it."""
    lock = BridgeLock(platform.pk)
    try:
        while True:
            if not await lock.acquire():
                await asyncio.sleep(lock.renew_every)
                continue
            bridge = PlatformBridge(platform, async_client_for(platform), options=options)
            store.local_bridges[platform.pk] = bridge
            task = asyncio.create_task(bridge.run())
            try:
                while not task.done():
                    await asyncio.wait({task}, timeout=lock.renew_every)
                    if not task.done() and not await lock.renew():
                        log.warning("realtime %s: lost the bridge lock", platform.name)
                        break
            finally:
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task
                if store.local_bridges.get(platform.pk) is bridge:
                    del store.local_bridges[platform.pk]
            await asyncio.sleep(1.0)
    finally:
        await lock.release()


async def run_bridges(pks: Iterable[int] | None = None, options: dict | None = None, *,
                      coverage: bool = True) -> None:
    """Run a bridge per platform (and, with ``coverage``, a listener per coverage account)
    until cancelled (see the module docstring)."""
    freeze_startup_heap()
    wanted = list(pks) if pks else None
    running: dict[int, tuple[object, asyncio.Task]] = {}
    events = asyncio.create_task(run_coverage_events()) if coverage else None
    try:
        while True:
            platforms = await sync_to_async(_enabled)(wanted)
            current = {p.pk: p for p in platforms}
            for pk, (stamp, task) in list(running.items()):
                p = current.get(pk)
                if p is None or p.updated_at != stamp or task.done():
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task
                    del running[pk]
            for pk, p in current.items():
                if pk not in running:
                    running[pk] = (p.updated_at, asyncio.create_task(_guarded(p, options)))
            await asyncio.sleep(RESCAN_SECONDS)
    finally:
        tasks = [t for _, t in running.values()] + ([events] if events is not None else [])
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


_frozen = False


def freeze_startup_heap() -> None:
    """Once per process: move everything alive now (Django, the app, settings, templates),
    which lives as long as the process, out of the garbage collector's reach. Its full passes
    otherwise walk all of it and paused the event loop 130-180 ms every few seconds under a
    5 000 updates/s stream, in the bridge's process and in the sockets' alike."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


def ensure_started() -> None:
    """Start the in-process bridges on the running loop once (demo / in-memory layer); in any
    mode, the first live socket of a process freezes its startup heap."""
    freeze_startup_heap()
    if settings.REALTIME_BRIDGE != "in-process":
        return
    loop = asyncio.get_running_loop()
    task = _started.get(id(loop))
    if task is not None and not task.done():
        return
    _started[id(loop)] = loop.create_task(run_bridges())


async def stop_started() -> None:
    """Stop the in-process bridges of the running loop (tests, shutdown)."""
    task = _started.pop(id(asyncio.get_running_loop()), None)
    if task is not None:
        task.cancel()
        with contextlib.suppress(BaseException):
            await task
