"""Several ``manage.py stream`` processes share the platforms by the Redis lock: each platform
is relayed by exactly one of them, and a process that dies leaves its platforms to another."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest
import redis

from platforms.models import PlatformEnvironment, TradePlatform
from platforms.sandbox.process import ROOT
from tests.support.polling import wait_until
from tests.workers import worker_env

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]
REDIS_URL = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/1"


def _holders(r: redis.Redis, platforms) -> dict[int, int | None]:
    """platform pk → pid of the process holding its bridge lock (None: nobody)."""
    held = {}
    for p in platforms:
        value = r.get(f"realtime:bridge:{p.pk}")
        held[p.pk] = int(value.decode().split(":")[1]) if value else None
    return held


def _connected(log: str, name: str) -> int:
    return len(re.findall(rf"realtime {re.escape(name)}: connected", log))


def test_two_stream_processes_share_three_platforms_and_take_over(sandbox, tmp_path):
    r = redis.Redis.from_url(REDIS_URL)
    platforms = [
        TradePlatform.objects.create(
            name=f"Stream {n}", kind="MT4", environment=PlatformEnvironment.SANDBOX,
            # one sandbox platform under three names (the URL is unique with the platform id)
            api_base_url=sandbox.base_url + "/" * n, sidecar_base_url=sandbox.sidecar_url,
            oauth_authority=sandbox.authority, client_id=sandbox.client_id,
            client_secret=sandbox.client_secret, platform_id=sandbox.mt4_id)
        for n in range(3)]
    r.delete(*[f"realtime:bridge:{p.pk}" for p in platforms])
    env = worker_env({}, REDIS_URL=REDIS_URL, REALTIME_BRIDGE_LOCK_SECONDS="2",
                     DJANGO_LOG_LEVEL="INFO")
    logs = [tmp_path / f"stream-{i}.log" for i in range(2)]
    procs = [subprocess.Popen([sys.executable, "manage.py", "stream"], cwd=ROOT, env=env,
                              stdout=open(log, "w"), stderr=subprocess.STDOUT,  # noqa: SIM115
                              start_new_session=True) for log in logs]
    try:
        pids = {p.pid for p in procs}
        wait_until(lambda: all(h in pids for h in _holders(r, platforms).values()),
                   "every platform's bridge held by one of the processes", timeout=60)
        wait_until(lambda: all(sum(_connected(log.read_text(), p.name) for log in logs) == 1
                               for p in platforms), "every platform relayed", timeout=60)
        time.sleep(3)  # renewals went by: still one relay each, nobody took a held lock
        for p in platforms:
            assert sum(_connected(log.read_text(), p.name) for log in logs) == 1, p.name

        held = _holders(r, platforms)
        victim = max(procs, key=lambda proc: list(held.values()).count(proc.pid))
        survivor = next(proc for proc in procs if proc is not victim)
        os.killpg(victim.pid, signal.SIGKILL)  # no release: its locks must expire
        victim.wait(10)
        wait_until(lambda: set(_holders(r, platforms).values()) == {survivor.pid},
                   "the survivor holds every platform", timeout=30)
        survivor_log = logs[procs.index(survivor)]
        wait_until(lambda: all(_connected(survivor_log.read_text(), p.name) >= 1
                               for p in platforms), "the survivor relays them all", timeout=30)
    finally:
        for proc in procs:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
        r.delete(*[f"realtime:bridge:{p.pk}" for p in platforms])
