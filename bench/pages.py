"""Benchmark: the accounts and trades lists served from the mirror, against reading live.

    python bench/pages.py [--users 100000] [--requests 200] [--quick]

Starts a sandbox with ``--users`` accounts (~3 open trades each), then for SQLite and for
PostgreSQL (``PG_URL``, default ``postgres://postgres@127.0.0.1:5432/dashboard_bench_pages``,
created and dropped here) in a child process each: migrates an empty database, fills the mirror
with a real full snapshot run, and times ``--requests`` requests through Django (server time:
the test client, no network) to the accounts list (mixed search / filter / sort / page) and to
the trades list. In the same process it times the naive design, the same accounts page computed
by reading ``UsersRequest`` from the sandbox on every request, as the baseline.

Last line, one JSON object: ``ratio`` (baseline p50 ÷ PostgreSQL accounts p50), ``p50_ms`` and
``p99_ms`` (PostgreSQL, both lists), the SQLite figures, the baseline's, and ``peak_rss_mb``.
``--quick`` (CI smoke run): 2,000 users (the 40 pages the queries pick from), 15 requests, 2
baseline requests, the two databases' children side by side. ``BENCH_KEEP_DB=1`` keeps the
PostgreSQL database for ``EXPLAIN ANALYZE`` afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402
    child_django,
    child_finished,
    peak_rss_mb,
    percentile,
    sandbox_from_ready_file,
)

PG_URL = os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/dashboard_bench_pages")
SORTS = ["login", "-margin_level", "margin_level", "name", "-equity", "group", "-balance",
         "country", "-registered_at"]


def figures(times: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(times) * 1000, 2),
            "p99_ms": round(percentile(times, 0.99) * 1000, 2)}


def account_queries(rng: random.Random, n: int, groups: list[str]) -> list[dict]:
    queries = []
    for _ in range(n):
        query = {"sort": rng.choice(SORTS), "page": str(rng.randint(1, 40))}
        kind = rng.random()
        if kind < 0.25:
            query["q"] = rng.choice(["ann", "smith", "10004", "lee", "mar"])
        elif kind < 0.5:
            query["group"] = rng.choice(groups)
        elif kind < 0.75:
            query["level_max"] = str(rng.choice([100, 150, 300]))
        else:
            query["equity_min"] = str(rng.choice([100, 1000, 10000]))
        queries.append(query)
    return queries


def trade_queries(rng: random.Random, n: int) -> list[dict]:
    symbols = ["EURUSD", "GBPUSD", "XAUUSD", "USDJPY", "US500"]
    return [{"sort": rng.choice(["ticket", "-profit", "symbol", "-open_time"]),
             "page": str(rng.randint(1, 40)),
             **({"symbol": rng.choice(symbols)} if rng.random() < 0.6 else {})}
            for _ in range(n)]


def naive_accounts_page(client, query: dict) -> list:
    """The baseline: every request reads every account live, then filters, sorts and pages."""
    users = list(client.mt4.iter_users(page_size=5000))
    if "q" in query:
        needle = query["q"].lower()
        users = [u for u in users if needle in (u.name or "").lower() or needle in str(u.login)]
    if "group" in query:
        prefix = query["group"].rstrip("*").lower()
        users = [u for u in users if (u.group or "").lower().startswith(prefix)]
    key = query["sort"].lstrip("-")
    attr = {"margin_level": "balance", "equity": "balance", "registered_at": "registration_date",
            "last_access_at": "last_date"}.get(key, key)
    users.sort(key=lambda u: (getattr(u, attr, None) is None, getattr(u, attr, None) or 0)
               if attr not in ("name", "group", "country") else (getattr(u, attr) or ""),
               reverse=query["sort"].startswith("-"))
    page = int(query["page"])
    return users[(page - 1) * 50: page * 50]


def child(db: str, ready_file: str, requests: int, baseline_requests: int) -> dict:
    child_django(db, "bench-pages", PG_URL)
    from django.contrib.auth import get_user_model
    from django.test import Client

    from platforms.connections import client_for
    from platforms.mirror.models import MirrorAccount, MirrorOpenTrade, SnapshotRun
    from platforms.mirror.runs import execute_run
    from platforms.services import register_sandbox_platforms

    sandbox = sandbox_from_ready_file(ready_file)
    mt4, _ = register_sandbox_platforms(sandbox)
    started = time.perf_counter()
    execute_run(SnapshotRun.objects.create(platform=mt4, kind="full").pk)
    fill_s = time.perf_counter() - started
    accounts = MirrorAccount.objects.filter(platform=mt4).count()
    trades = MirrorOpenTrade.objects.filter(platform=mt4).count()
    groups = sorted(set(MirrorAccount.objects.values_list("group", flat=True)))
    masks = [g.split("\\")[0] + "\\*" for g in groups] + groups

    boss = get_user_model().objects.create_superuser("bench", password="bench-password-1")
    http = Client()
    http.force_login(boss)
    rng = random.Random(7)
    results = {"db": db, "accounts": accounts, "open_trades": trades, "fill_s": round(fill_s, 2)}
    for name, url, queries in (
        ("accounts", f"/platforms/{mt4.pk}/accounts/", account_queries(rng, requests, masks)),
        ("trades", f"/platforms/{mt4.pk}/trades/", trade_queries(rng, requests)),
    ):
        http.get(url, queries[0], HTTP_HX_REQUEST="true")  # warm caches and connections
        times = []
        for query in queries:
            t0 = time.perf_counter()
            response = http.get(url, query, HTTP_HX_REQUEST="true")
            times.append(time.perf_counter() - t0)
            assert response.status_code == 200, (url, query, response.status_code)
        results[name] = figures(times)
    if baseline_requests:
        client = client_for(mt4)
        times = []
        for query in account_queries(rng, baseline_requests, masks):
            t0 = time.perf_counter()
            naive_accounts_page(client, query)
            times.append(time.perf_counter() - t0)
        results["baseline"] = figures(times)
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    child_finished(db, PG_URL)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--baseline-requests", type=int, default=10)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", choices=["sqlite", "postgres"])
    parser.add_argument("--ready-file")
    args = parser.parse_args()
    if args.quick:
        args.users, args.requests, args.baseline_requests = 2_000, 15, 2
    if args.child:
        print(json.dumps(child(args.child, args.ready_file, args.requests,
                               args.baseline_requests)))
        return

    from platforms.sandbox.process import start_sandbox

    sandbox = start_sandbox("--users", str(args.users), "--tick-rate", "0", timeout=300)
    ready = Path(tempfile.mkdtemp(prefix="bench-pages-")) / "ready.json"
    ready.write_text(json.dumps({
        "base_url": sandbox.base_url, "sidecar_url": sandbox.sidecar_url,
        "authority": sandbox.authority, "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret, "control_url": sandbox.control_url,
        "platforms": {"MT4": sandbox.mt4_id, "MT5": sandbox.mt5_id}}))
    def start_child(db: str) -> subprocess.Popen:
        """The child for ``db``; its output goes to files beside the ready file (two children
        side by side must not block on a full pipe that is not being read)."""
        return subprocess.Popen(
            [sys.executable, __file__, "--child", db, "--ready-file", str(ready),
             "--requests", str(args.requests),
             "--baseline-requests", str(args.baseline_requests if db == "postgres" else 0)],
            cwd=ROOT, stdout=open(ready.with_name(f"{db}.out"), "w"),
            stderr=open(ready.with_name(f"{db}.err"), "w"))

    try:
        runs = {}
        # The real run times one database at a time. The smoke run's figures mean nothing, and
        # its time goes mostly to each child's migrations: it runs the two side by side.
        started = {db: start_child(db) for db in ("sqlite", "postgres")} if args.quick else {}
        for db in ("sqlite", "postgres"):
            child_process = started.get(db) or start_child(db)
            if child_process.wait():
                sys.stderr.write(ready.with_name(f"{db}.err").read_text())
                raise SystemExit(f"{db} run failed")
            runs[db] = json.loads(
                ready.with_name(f"{db}.out").read_text().strip().splitlines()[-1])
            print(f"{db}: {runs[db]}")
    finally:
        sandbox.stop()
    pg, lite = runs["postgres"], runs["sqlite"]
    summary = {
        "ratio": round(pg["baseline"]["p50_ms"] / pg["accounts"]["p50_ms"], 1),
        "p50_ms": max(pg["accounts"]["p50_ms"], pg["trades"]["p50_ms"]),
        "p99_ms": max(pg["accounts"]["p99_ms"], pg["trades"]["p99_ms"]),
        "pg_accounts": pg["accounts"], "pg_trades": pg["trades"],
        "sqlite_accounts": lite["accounts"], "sqlite_trades": lite["trades"],
        "baseline": pg["baseline"], "users": args.users, "requests": args.requests,
        "peak_rss_mb": max(pg["peak_rss_mb"], lite["peak_rss_mb"]),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
