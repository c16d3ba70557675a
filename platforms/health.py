"""Connection checks: can we authenticate and read the server clock, and how fast."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import datetime

from platforms.client import ManagerApiError
from platforms.connections import client_for
from platforms.models import PlatformKind, TradePlatform


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
        server_time = api.server_time()
    except ManagerApiError as exc:
        return ConnectionCheck(platform, False, None, None, str(exc), client.breaker_state)
    rtt_ms = (time.perf_counter() - started) * 1000
    return ConnectionCheck(platform, True, server_time, rtt_ms, "", client.breaker_state)
