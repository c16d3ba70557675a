"""One pooled manager client per platform per process, built from the ``TradePlatform`` row.

Views, tasks and consumers ask here instead of building clients, so that connection pools,
tokens and circuit breakers are shared, and so that an edited platform (new URL or secret)
gets a fresh client on its next use.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.conf import settings

from platforms import audit
from platforms.client import (
    AsyncManagerClient,
    ManagerApiError,
    ManagerClient,
    PlatformConfig,
    RequestTimeout,
    TransportError,
)
from platforms.models import PlatformKind, TradePlatform
from platforms.timezones import (
    mt4_offset_minutes,
    mt5_offset_minutes,
    server_to_utc,
    valid_offset,
)

_lock = threading.Lock()
_sync_clients: dict[int, tuple[datetime, ManagerClient]] = {}
_async_clients: dict[tuple[int, int], tuple[datetime, AsyncManagerClient]] = {}

log = logging.getLogger(__name__)


def platform_config(platform: TradePlatform) -> PlatformConfig:
    return PlatformConfig(
        platform_id=str(platform.platform_id),
        kind=platform.kind,
        api_base_url=platform.api_base_url,
        sidecar_base_url=platform.sidecar_base_url or None,
        authority=platform.oauth_authority,
        client_id=platform.client_id,
        client_secret=platform.client_secret,
        scope=platform.oauth_scope or None,
        max_connections=settings.MANAGER_API["MAX_CONNECTIONS"],
    )


def client_for(platform: TradePlatform) -> ManagerClient:
    """The process-wide sync client for ``platform`` (thread-safe; httpx clients are)."""
    with _lock:
        cached = _sync_clients.get(platform.pk)
        if cached and cached[0] == platform.updated_at:
            return cached[1]
        client = ManagerClient(platform_config(platform))
        _sync_clients[platform.pk] = (platform.updated_at, client)
    if cached:
        cached[1].close()
    return client


def async_client_for(platform: TradePlatform) -> AsyncManagerClient:
    """The async client for ``platform`` on the running event loop (httpx pools are per loop)."""
    key = (platform.pk, id(asyncio.get_running_loop()))
    with _lock:
        cached = _async_clients.get(key)
        if cached and cached[0] == platform.updated_at:
            return cached[1]
        client = AsyncManagerClient(platform_config(platform))
        _async_clients[key] = (platform.updated_at, client)
    return client


def forget_clients() -> None:
    """Drop every cached client (tests, and after settings change)."""
    with _lock:
        for _, client in _sync_clients.values():
            client.close()
        _sync_clients.clear()
        _async_clients.clear()


# --------------------------------------------------------------------------- connection checks
#: An answer later than this makes the check "slow": a page reading live would wait as long.
SLOW_MS = 1000.0


@dataclass(frozen=True)
class ConnectionCheck:
    platform: TradePlatform
    ok: bool
    server_time: datetime | None
    #: Measured for an answer, and for a check that ran out of time (how long it waited).
    rtt_ms: float | None
    error: str
    breaker_state: str
    #: The platform answered late (over :data:`SLOW_MS`) or not within the deadline.
    slow: bool = False


def _timed_out(exc: ManagerApiError) -> bool:
    """The server's ``Timeout``, or the client stopped waiting for an answer."""
    return isinstance(exc, RequestTimeout) or (
        isinstance(exc, TransportError) and "Timeout" in str(exc))


def check_connection(platform: TradePlatform) -> ConnectionCheck:
    """Authenticate and call ``ServerTime``; the error text is exactly what the API said.

    Inside a page the read has the page's interactive deadline
    (:mod:`platforms.transport.interactive`): a slow platform is reported "slow" with the
    time waited, within that deadline."""
    client = client_for(platform)
    api = client.mt4 if platform.kind == PlatformKind.MT4 else client.mt5
    started = time.perf_counter()
    try:
        server_time = api.server_time()
    except ManagerApiError as exc:
        waited = (time.perf_counter() - started) * 1000
        slow = _timed_out(exc)
        return ConnectionCheck(platform, False, None, waited if slow else None, str(exc),
                               client.breaker_state, slow)
    rtt_ms = (time.perf_counter() - started) * 1000
    # the server's wall clock, sent as if UTC: the true instant, for pages to show in a zone
    instant = server_to_utc(server_time, platform.utc_offset_minutes)
    return ConnectionCheck(platform, True, instant, rtt_ms, "", client.breaker_state,
                           rtt_ms > SLOW_MS)


def read_server_offset(platform: TradePlatform, client: Any) -> int | None:
    """What the server says its clock's zone is, in minutes east of UTC (MT4
    ``ManagerCommon.timeZone``, MT5 ``TimeGet``); None if it could not say."""
    try:
        if platform.kind == PlatformKind.MT5:
            minutes = mt5_offset_minutes(client.mt5.time_get())
        else:
            minutes = mt4_offset_minutes(client.mt4.manager_common())
    except ManagerApiError as exc:
        log.warning("platform %s: time zone not read (%s)", platform.pk, type(exc).__name__)
        return None
    return minutes if valid_offset(minutes) else None


def learn_server_zone(platform: TradePlatform) -> int:
    """Ask the server's zone if nobody has yet, and return the platform's offset. Called when a
    platform is registered or its connection tested, never inside a page (its interactive
    deadline is for the page's own reads): pages use ``utc_offset_minutes`` as known, and
    every snapshot run asks again (stored rows are re-based only by runs, see
    ``platforms/mirror/zones.py``)."""
    if platform.time_zone_override is None and platform.time_zone_reported is None:
        minutes = read_server_offset(platform, client_for(platform))
        if minutes is not None and TradePlatform.objects.filter(
                pk=platform.pk, time_zone_reported__isnull=True).update(
                time_zone_reported=minutes):
            audit.record(actor=None, action="platform.time_zone", platform=platform,
                         target=platform.name, before={"reported": None},
                         after={"reported": minutes}, detail="first read of the server's zone")
        if minutes is not None:
            platform.time_zone_reported = minutes
    return platform.utc_offset_minutes
