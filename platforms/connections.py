"""One pooled manager client per platform per process, built from the ``TradePlatform`` row.

Views, tasks and consumers ask here instead of building clients, so that connection pools,
tokens and circuit breakers are shared, and so that an edited platform (new URL or secret)
gets a fresh client on its next use.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings

from platforms.client import AsyncManagerClient, ManagerApiError, ManagerClient, PlatformConfig
from platforms.models import PlatformKind, TradePlatform
from platforms.timezones import server_to_utc

_lock = threading.Lock()
_sync_clients: dict[int, tuple[datetime, ManagerClient]] = {}
_async_clients: dict[tuple[int, int], tuple[datetime, AsyncManagerClient]] = {}


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
@dataclass(frozen=True)
class ConnectionCheck:
    platform: TradePlatform
    ok: bool
    server_time: datetime | None
    rtt_ms: float | None
    error: str
    breaker_state: str


def check_connection(platform: TradePlatform) -> ConnectionCheck:
    """Authenticate and call ``ServerTime``; the error text is exactly what the API said."""
    client = client_for(platform)
    api = client.mt4 if platform.kind == PlatformKind.MT4 else client.mt5
    started = time.perf_counter()
    try:
        # the server's wall clock, sent as if UTC: the true instant, for pages to show in a zone
        server_time = server_to_utc(api.server_time(), platform.utc_offset_minutes)
    except ManagerApiError as exc:
        return ConnectionCheck(platform, False, None, None, str(exc), client.breaker_state)
    rtt_ms = (time.perf_counter() - started) * 1000
    return ConnectionCheck(platform, True, server_time, rtt_ms, "", client.breaker_state)
