"""Benchmark: the net-exposure page over a 100,000-account / ~300,000-trade mirror and 5
coverage accounts, against computing the same figures live on every request.

    python bench/net_exposure.py [--users 100000] [--requests 200] [--quick]

On PostgreSQL and Redis (``DATABASE_URL`` / ``REDIS_URL``; defaults: a scratch database
``dash_exposure`` on the local server, created and dropped here, and Redis database 9): starts
a sandbox with ``--users`` accounts (~3 open trades each) and its LP bridge, fills the mirror
with a real full snapshot run, registers the five sandbox coverage accounts, opens hedges on
them and polls them (the Celery task's body), then times through Django (server time: the test
client, no network), as a risk user with a platform grant:

* ``page`` — ``--requests`` htmx refreshes of ``/platforms/<pk>/exposure/`` (what a browser
  polling the page sends; the clients' side is cached per mirror version);
* ``cold`` — the same request with the cache cleared first (the first read after a snapshot);
* ``naive`` — the design not taken: every request reads every open trade from the manager API
  and every coverage account's positions from the bridge, and sums them.

Live update latency (client trade → browser) is not measured here: the socket path waits for
the live rewrite (docs/coverage.md); the page refreshes by htmx polling every 2 s meanwhile.

Last line, one JSON object: ``p50_ms`` / ``p99_ms`` (``page``), ``ratio`` = naive p50 ÷ page
p50, ``aim_ratio`` = 100 ms ÷ page p99 (≥ 1 meets the aim), the other figures and the core
count. ``--quick``: 10,000 users, 60 requests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import drop_database, peak_rss_mb, percentile, recreate_database  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/dash_exposure"
DEFAULT_REDIS = "redis://127.0.0.1:6379/9"
AIM_PAGE_MS = 100.0
HEDGES = [(0, "EURUSD", "buy", 3.0), (1, "EURUSD", "sell", 1.0), (2, "GBPUSD", "buy", 2.0),
          (3, "USDJPY", "sell", 1.5), (4, "XAUUSD", "buy", 0.5)]


def figures(times: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(times) * 1000, 2),
            "p99_ms": round(percentile(times, 0.99) * 1000, 2), "n": len(times)}


def naive_exposure(manager, accounts, bridge_config) -> dict[str, float]:
    """The baseline: every open trade from the manager API, every position from the bridges."""
    from platforms.coverage.client import BridgeClient

    net: dict[str, float] = {}
    for trade in manager.mt4.iter_trades_get():
        if trade.trade_command in ("Buy", "Sell") and (
                trade.trade_record_state or "OpenNormal").startswith("Open"):
            sign = 1 if trade.trade_command == "Buy" else -1
            net[trade.symbol] = net.get(trade.symbol, 0.0) + sign * trade.volume_lots
    for account in accounts:
        with BridgeClient(bridge_config(account)) as bridge:
            for position in bridge.positions().positions:
                sign = 1 if position.type == "buy" else -1
                net[position.symbol] = net.get(position.symbol, 0.0) - sign * position.volume
    return net


def run(args: argparse.Namespace) -> dict:
    db_url = os.environ.setdefault("DATABASE_URL", DEFAULT_DB)
    os.environ.setdefault("REDIS_URL", DEFAULT_REDIS)
    os.environ.setdefault("DASHBOARD_VAR_DIR", tempfile.mkdtemp(prefix="bench-exposure-"))
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    recreate_database(db_url)
    import django

    django.setup()
    import redis
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.core.management import call_command
    from django.test import Client
    from django.test.utils import setup_test_environment

    from platforms.access.models import PlatformAccess
    from platforms.access.roles import sync_roles
    from platforms.connections import client_for
    from platforms.coverage.client import BridgeClient
    from platforms.coverage.services import (
        bridge_config,
        poll_coverage_account,
        register_sandbox_coverage_accounts,
    )
    from platforms.mirror.models import MirrorAccount, MirrorOpenTrade, SnapshotRun
    from platforms.mirror.runs import execute_run
    from platforms.sandbox.process import start_sandbox
    from platforms.services import register_sandbox_platforms

    redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
    setup_test_environment()
    call_command("migrate", verbosity=0)
    sync_roles()
    sandbox = start_sandbox("--users", str(args.users), "--tick-rate", "0", timeout=300)
    try:
        mt4, _mt5 = register_sandbox_platforms(sandbox)
        started = time.perf_counter()
        execute_run(SnapshotRun.objects.create(platform=mt4, kind="full").pk)
        fill_s = time.perf_counter() - started
        accounts = register_sandbox_coverage_accounts(sandbox, [mt4])
        tasks = []
        for index, symbol, side, lots in HEDGES:
            with BridgeClient(bridge_config(accounts[index])) as bridge:
                tasks.append((accounts[index], bridge.submit_order(symbol, side, lots).task_id))
        deadline = time.monotonic() + 30
        for account, task_id in tasks:
            with BridgeClient(bridge_config(account)) as bridge:
                while not bridge.positions().by_task(task_id):
                    assert time.monotonic() < deadline, "hedge not executed"
                    time.sleep(0.1)
        for account in accounts:
            poll_coverage_account(account)

        from django.contrib.auth.models import Group

        user = get_user_model().objects.create_user("bench-risk", password="bench-pw-12345",
                                                    is_staff=True)
        user.groups.add(Group.objects.get(name="risk"))
        PlatformAccess.objects.create(user=user, platform=mt4, group_masks="")
        http = Client()
        http.force_login(user)
        url = f"/platforms/{mt4.pk}/exposure/"

        def timed(clear: bool) -> float:
            if clear:  # the clients' aggregate goes; the coverage polls are put back
                cache.clear()
                for account in accounts:
                    poll_coverage_account(account)
            t0 = time.perf_counter()
            response = http.get(url, HTTP_HX_REQUEST="true")
            elapsed = time.perf_counter() - t0
            assert response.status_code == 200, response.status_code
            return elapsed

        timed(False)  # warm connections and the cache
        page = [timed(False) for _ in range(args.requests)]
        cold = [timed(True) for _ in range(max(5, args.requests // 10))]
        manager = client_for(mt4)
        naive = []
        for _ in range(args.naive_requests):
            t0 = time.perf_counter()
            naive_exposure(manager, accounts, bridge_config)
            naive.append(time.perf_counter() - t0)
        results = {
            "accounts": MirrorAccount.objects.filter(platform=mt4).count(),
            "open_trades": MirrorOpenTrade.objects.filter(platform=mt4).count(),
            "coverage_accounts": len(accounts), "fill_s": round(fill_s, 2),
            "page": figures(page), "cold": figures(cold), "naive": figures(naive),
        }
    finally:
        sandbox.stop()
        from django.db import connections

        connections.close_all()
        if not os.environ.get("BENCH_KEEP_DB"):
            drop_database(db_url)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--naive-requests", type=int, default=3)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.users, args.requests, args.naive_requests = 10_000, 60, 2
    cores = os.cpu_count()
    print(f"cores: {cores}")
    results = run(args)
    print(json.dumps(results))
    page, naive = results["page"], results["naive"]
    summary = {
        "p50_ms": page["p50_ms"], "p99_ms": page["p99_ms"],
        "ratio": round(naive["p50_ms"] / page["p50_ms"], 1),
        "aim_ratio": round(AIM_PAGE_MS / page["p99_ms"], 2),
        "cold_p50_ms": results["cold"]["p50_ms"], "cold_p99_ms": results["cold"]["p99_ms"],
        "naive_p50_ms": naive["p50_ms"], "live_p99_ms": None,
        "accounts": results["accounts"], "open_trades": results["open_trades"],
        "coverage_accounts": results["coverage_accounts"], "cores": cores,
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
