"""The upstream clients' test settings, the same for the manager and the bridge client: retries
that give up within seconds, and a breaker of its own per test that trips after three failures."""

from __future__ import annotations

import uuid
from typing import Any

from platforms.client import PlatformBreaker
from platforms.transport import RetryPolicy

FAST_RETRY = RetryPolicy(attempts=3, initial_wait=0.01, max_wait=0.05, jitter=0.01, total_time=5)


def fresh_breaker(target: str | None = None, **kwargs: Any) -> PlatformBreaker:
    """A closed breaker for ``target`` (by default a name no other test uses)."""
    kwargs.setdefault("fail_max", 3)
    kwargs.setdefault("reset_timeout", 1.0)
    return PlatformBreaker(target or f"test-{uuid.uuid4()}", **kwargs)
