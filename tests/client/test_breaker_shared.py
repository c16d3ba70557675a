"""The circuit breaker's shared (Redis) state seen through each process's local view."""

from __future__ import annotations

import os
import time
import uuid

import pybreaker
import pytest
import redis

from platforms.client import CircuitOpen, NoConnect, PlatformBreaker, Validation

REDIS_URL = os.environ.get("BREAKER_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
REFRESH = 0.2


class CountingRedis(redis.Redis):
    """A Redis client that counts the round trips it makes (a pipeline counts once)."""

    round_trips = 0

    def execute_command(self, *args, **options):
        CountingRedis.round_trips += 1
        return super().execute_command(*args, **options)

    def pipeline(self, transaction=True, shard_hint=None):
        CountingRedis.round_trips += 1
        return super().pipeline(transaction, shard_hint)


@pytest.fixture
def platform_id():
    """A fresh platform id whose keys are removed afterwards (Redis must be running)."""
    platform = str(uuid.uuid4())
    yield platform
    conn = redis.Redis.from_url(REDIS_URL)
    keys = list(conn.scan_iter(f"*manager-client:{platform}*"))
    if keys:
        conn.delete(*keys)


def breaker(platform: str, **kwargs) -> PlatformBreaker:
    """One process's breaker of ``platform`` (two of them stand for two processes)."""
    return PlatformBreaker(platform, redis_url=REDIS_URL, refresh_seconds=REFRESH, **kwargs)


def fail() -> None:
    raise NoConnect(message="unreachable")


def test_a_circuit_opened_by_another_process_fails_calls_here_within_the_refresh_window(
    platform_id,
):
    web, worker = breaker(platform_id), breaker(platform_id)
    assert worker.call(lambda: "ok") == "ok"
    web.trip()
    time.sleep(REFRESH * 1.5)
    with pytest.raises(CircuitOpen):
        worker.call(lambda: "not sent")
    web.reset()
    time.sleep(REFRESH * 1.5)
    assert worker.call(lambda: "ok") == "ok"


def test_failures_trip_the_shared_circuit_only_when_consecutive_across_processes(platform_id):
    web, worker = breaker(platform_id, fail_max=2), breaker(platform_id, fail_max=2)
    with pytest.raises(NoConnect):
        web.call(fail)
    time.sleep(REFRESH * 1.5)
    assert worker.call(lambda: "ok") == "ok"  # a success elsewhere resets the count
    assert web.fail_counter == 0
    with pytest.raises(NoConnect):
        web.call(fail)
    assert web.state == "closed"
    with pytest.raises(NoConnect):
        worker.call(fail)
    assert web.state == worker.state == "open"


def test_business_errors_and_successes_of_a_healthy_platform_cost_no_redis_round_trip(
    platform_id,
):
    storage = pybreaker.CircuitRedisStorage(
        pybreaker.STATE_CLOSED, CountingRedis.from_url(REDIS_URL),
        namespace=f"manager-client:{platform_id}",
    )
    guarded = PlatformBreaker(platform_id, storage=storage, refresh_seconds=60)
    guarded.call(lambda: "warm")  # the first call reads the shared state once
    CountingRedis.round_trips = 0
    for _ in range(50):
        guarded.call(lambda: "ok")
        with pytest.raises(Validation):
            guarded.call(lambda: (_ for _ in ()).throw(Validation(message="bad volume")))
    assert CountingRedis.round_trips == 0
    assert guarded.state == "closed"
