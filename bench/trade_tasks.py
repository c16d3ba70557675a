"""Benchmark: balance operations through the task pipeline vs direct TradeTransaction calls.

On PostgreSQL and Redis (``DATABASE_URL`` / ``REDIS_URL``; defaults: a scratch database
``dashboard_trade_bench`` on the local server and Redis database 7 on the local Redis), with a
sandbox and real Celery workers on the ``trading`` queue, one per core as the README's
deployment advice has it (``--workers``), each with the configured pool and concurrency
(``CELERY_TRADING_WORKER_POOL`` / ``CELERY_TRADING_WORKER_CONCURRENCY``; defaults ``threads``,
16):

* ours — N deposits submitted from 4 threads (4 web requests at once) with
  ``platforms.trading.submit.submit`` (a row and its audit event, an on-commit drain
  request), executed by the workers (the platform's drains, at most one per worker process,
  claim the queued tasks in batches, TradeTransaction under each request id from
  ``TRADING_DRAIN_SENDERS`` threads, one balance read per batch, confirmations and audit rows
  per batch); timed from the first submit to the last ``confirmed``; per task, submit →
  confirmed latency from the row's own timestamps;
* the limit — N ``client.mt4.trade_transaction`` calls from 4 threads, nothing else.

Both sides run five rounds (``--quick``: one), alternating (ours, direct, ours, …); ``ratio`` is
the median of the five rounds' ours / direct ratios (each round against the direct round right
after it: the box's speed drifts within a run, and a pair shares it), ``ratio_of_medians`` the
median rates' ratio; rates, p50 and p99 are the median-rate round's.
Each round also reports the CPU each side spent per task (this process's submits, the workers,
the sandbox, the database's server processes): where the time goes, and a figure that other
load on the machine moves less.

N = 1,000. ``--quick`` (CI smoke run): 40 operations, one round of each side, one worker. The
scratch database can be named with ``TRADE_BENCH_DATABASE_URL`` and the Redis database with
``TRADE_BENCH_REDIS_URL`` (so that runs side by side do not share them). The last line printed
is one JSON object (``ratio``, ``tasks_per_s``, ``p50_ms``, ``p99_ms`` …).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench._common import cpu_seconds, drop_database, percentile, recreate_database  # noqa: E402

DEFAULT_DB = "postgres://postgres@127.0.0.1:5432/dashboard_trade_bench"
DEFAULT_REDIS = "redis://127.0.0.1:6379/7"
#: staff submitting at once (web requests), and the direct calls' threads: the same on both sides
SUBMIT_THREADS = DIRECT_THREADS = 4
ROUNDS = 5
LOGINS = list(range(100001, 100201))


def _cpu_or_zero(pid: int) -> float:
    try:
        return cpu_seconds(pid)
    except OSError:  # gone since it was listed
        return 0.0


def start_worker(log: Path, pool: str, concurrency: int) -> subprocess.Popen:
    """A ``trading`` worker, named after its log file (several run side by side)."""
    cmd = [sys.executable, "-m", "celery", "-A", "dashboard", "worker", "-Q", "trading",
           "-P", pool, "-c", str(concurrency), "--without-gossip", "--without-mingle",
           "--without-heartbeat", "-n", f"trade-bench-{os.getpid()}-{log.stem}@%h",
           "--loglevel", "INFO"]
    out = open(log, "w")  # noqa: SIM115 - lives as long as the worker
    process = subprocess.Popen(cmd, cwd=ROOT, env=os.environ, stdout=out,
                               stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + 60
    while "ready." not in log.read_text():
        if process.poll() is not None or time.monotonic() > deadline:
            stop_worker(process)
            raise RuntimeError("worker did not start:\n" + log.read_text())
        time.sleep(0.1)
    return process


def stop_worker(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--quick", action="store_true",
                        help="40 operations, 1 round, 1 worker (CI smoke run)")
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--workers", type=int, default=None,
                        help="trading worker processes (default: one per core; --quick 1)")
    args = parser.parse_args()
    count = 40 if args.quick else args.count
    rounds_count = 1 if args.quick else ROUNDS
    if args.workers is None:
        args.workers = 1 if args.quick else os.cpu_count() or 1

    db_url = os.environ.get("DATABASE_URL") or DEFAULT_DB
    if not db_url.startswith("postgres"):
        db_url = DEFAULT_DB
    db_url = os.environ.get("TRADE_BENCH_DATABASE_URL") or urlunsplit(
        urlsplit(db_url)._replace(path="/dashboard_trade_bench"))
    recreate_database(db_url)
    workdir = Path(tempfile.mkdtemp(prefix="trade-bench-"))
    os.environ.update({
        "DATABASE_URL": db_url,
        "REDIS_URL": os.environ.get("TRADE_BENCH_REDIS_URL", DEFAULT_REDIS),
        "DASHBOARD_VAR_DIR": str(workdir / "var"),
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        "DJANGO_LOG_LEVEL": "WARNING",
    })

    import django

    django.setup()
    from django.conf import settings

    pool = settings.CELERY_TRADING_WORKER_POOL
    concurrency = settings.CELERY_TRADING_WORKER_CONCURRENCY
    senders = settings.TRADING_DRAIN_SENDERS
    print(f"os.cpu_count() = {os.cpu_count()}; {args.workers} worker(s) -P {pool} "
          f"-c {concurrency}; {senders} drain senders; "
          f"{settings.TRADING_DRAINS_PER_PLATFORM} drain slots per platform", flush=True)
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connection

    from platforms.audit import Actor
    from platforms.connections import client_for
    from platforms.sandbox.process import start_sandbox
    from platforms.services import register_sandbox_platforms
    from platforms.trading.models import TaskState, TradeTask
    from platforms.trading.submit import submit

    call_command("migrate", verbosity=0)
    import redis

    # the bench's own Redis database: drop messages an interrupted earlier run left behind
    redis.Redis.from_url(os.environ["REDIS_URL"]).delete("trading")
    sandbox = start_sandbox("--users", "1000", "--seed", "3", "--tick-rate", "0")
    workers: list[subprocess.Popen] = []
    try:
        mt4, _ = register_sandbox_platforms(sandbox)
        user = get_user_model().objects.create_superuser("bench", password="bench-pass-1")
        actor = Actor(user, "127.0.0.1")
        workers = [start_worker(workdir / f"worker{n}.log", pool, concurrency)
                   for n in range(args.workers)]

        # warm-up: tokens, pools and the worker's imports
        for login in LOGINS[:8]:
            submit(actor=actor, platform=mt4, kind="deposit", login=login,
                   payload={"amount": "1.00", "comment": "warm"}, request_id=uuid.uuid4())
        while TradeTask.objects.exclude(state=TaskState.CONFIRMED).exists():
            time.sleep(0.05)
        TradeTask.objects.all().delete()

        print(f"ours: {count:,} deposits through submit → queue → worker → confirm; direct: "
              f"{count:,} TradeTransaction calls; {rounds_count} round(s) of each ...", flush=True)
        def submit_one(i: int) -> None:  # each thread keeps its own database connection
            submit(actor=actor, platform=mt4, kind="deposit", login=LOGINS[i % len(LOGINS)],
                   payload={"amount": f"{1 + i % 500}.25", "comment": f"bench {i}"},
                   request_id=uuid.uuid4())

        sides = {"submit": [None], "worker": [w.pid for w in workers],
                 "sandbox": [sandbox.process.pid]}

        def database_pids() -> list[int]:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                               " AND pid <> pg_backend_pid()")
                return [row[0] for row in cursor.fetchall()]

        database_seen: dict[int, float] = {}
        database_total = [0.0]

        def cpu() -> dict[str, float]:
            """CPU seconds so far per side. The database's share: its server processes for this
            database, each counted from when it was last seen (one opened meanwhile from 0)."""
            used = {side: sum(cpu_seconds(pid) for pid in pids) for side, pids in sides.items()}
            server = {pid: _cpu_or_zero(pid) for pid in database_pids()}
            database_total[0] += sum(seconds - database_seen.get(pid, 0.0)
                                     for pid, seconds in server.items())
            database_seen.update(server)
            return {**used, "database": database_total[0]}

        def cpu_ms_per_task(before: dict[str, float], *skip: str) -> dict[str, float]:
            return {side: round((used - before[side]) * 1000 / count, 2)
                    for side, used in cpu().items() if side not in skip}

        def ours_round() -> tuple[float, float, float, dict[str, float]]:
            TradeTask.objects.all().delete()
            cpu_before = cpu()
            started = time.perf_counter()
            with ThreadPoolExecutor(SUBMIT_THREADS) as threads:
                list(threads.map(submit_one, range(count)))
            submitted_s = time.perf_counter() - started
            while TradeTask.objects.filter(state__in=[TaskState.QUEUED, TaskState.SENT,
                                                      TaskState.OUTCOME_UNKNOWN]).exists():
                time.sleep(0.02)
            ours_s = time.perf_counter() - started
            states = set(TradeTask.objects.values_list("state", flat=True))
            assert states == {TaskState.CONFIRMED}, states
            latencies = [(done - created).total_seconds() * 1000 for created, done in
                         TradeTask.objects.values_list("created_at", "finished_at")
                         if done is not None]
            cpu_ms = cpu_ms_per_task(cpu_before)
            rate = count / ours_s
            p50, p99 = statistics.median(latencies), percentile(latencies, 0.99)
            print(f"  ours: {rate:,.1f} tasks/s ({ours_s:.2f} s; submitting took "
                  f"{submitted_s:.2f} s); submit→confirmed p50 {p50:.0f} ms, p99 {p99:.0f} ms; "
                  f"CPU ms per task {cpu_ms}", flush=True)
            return rate, p50, p99, cpu_ms

        client = client_for(mt4)

        def direct(i: int) -> None:
            client.mt4.trade_transaction(
                {"tradeTransactionType": "BrBalance", "tradeCommand": "Balance",
                 "orderBy": LOGINS[i % len(LOGINS)], "price": 1.25, "comment": "direct"},
                idempotency_key=str(uuid.uuid4()))

        def direct_round() -> tuple[float, dict[str, float]]:
            cpu_before = cpu()
            started = time.perf_counter()
            with ThreadPoolExecutor(DIRECT_THREADS) as threads:
                list(threads.map(direct, range(count)))
            rate = count / (time.perf_counter() - started)
            cpu_ms = cpu_ms_per_task(cpu_before, "worker", "database")
            print(f"  direct TradeTransaction from {DIRECT_THREADS} threads: {rate:,.1f} "
                  f"calls/s; CPU ms per call {cpu_ms}", flush=True)
            return rate, cpu_ms

        # the two sides alternate, round by round, so that a machine getting busier or quieter
        # during the run weighs on both alike
        rounds, directs = [], []
        for n in range(rounds_count):
            print(f"round {n + 1}/{rounds_count}:", flush=True)
            rounds.append(ours_round())
            directs.append(direct_round())
        ours_rate, p50, p99, ours_cpu = sorted(rounds, key=lambda r: r[0])[len(rounds) // 2]
        direct_rate = statistics.median(rate for rate, _ in directs)
        # the headline: each round's ours against the direct round right after it, then the
        # median of those ratios (the box's speed drifts within a run; a pair shares it)
        paired = [ours[0] / direct[0] for ours, direct in zip(rounds, directs, strict=True)]
        ratio = statistics.median(paired)
        print(f"median: ours {ours_rate:,.1f} tasks/s, direct {direct_rate:,.1f} calls/s; "
              f"ratio per round {[round(r, 3) for r in paired]}, median {ratio:.3f}", flush=True)
    finally:
        for worker in workers:
            stop_worker(worker)
        sandbox.stop()
        if not args.keep_db:
            from django.db import connections

            connections.close_all()
            drop_database(db_url)

    print(json.dumps({
        "ratio": round(ratio, 4),
        "ratio_of_medians": round(ours_rate / direct_rate, 4),
        "tasks_per_s": round(ours_rate, 1),
        "p50_ms": round(p50, 1),
        "p99_ms": round(p99, 1),
        "direct_calls_per_s": round(direct_rate, 1),
        "cpu_ms_per_task": ours_cpu,
        "count": count,
        "pool": pool,
        "concurrency": concurrency,
        "workers": args.workers,
        "drain_senders": senders,
        "cpu_count": os.cpu_count(),
    }))


if __name__ == "__main__":
    main()
