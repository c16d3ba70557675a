"""Benchmark: a full snapshot of a large MT4 server into the PostgreSQL mirror, against COPY.

    python bench/snapshot_ingest.py [--users 100000] [--quick] [--keep-db]

Starts a sandbox with ``--users`` accounts (~3 open trades and ~20 closed trades each), creates
its own database (``DATABASE_URL``, default ``postgres://postgres@127.0.0.1:5432/dashboard_bench``;
dropped at the end), migrates it, and times, in this one process:

1. a full run (``UsersSnapshot`` + ``TradesSnapshot`` on the sidecar, ``MarginsGet``, groups,
   symbols) and a history run (``ReportsRequest`` in batches of logins) — the whole mirror;
2. PostgreSQL ``COPY … FROM`` of the very same rows (exported to a CSV file first) into empty
   copies of the mirror tables with the same indexes and constraints: the physical limit;
3. an incremental run after 1 % of the accounts and open trades changed on the server.

Prints rows/s, the peak RSS of this process and, as its last line, one JSON object:
``{"ratio": ours ÷ COPY rows/s, "rows_per_s", "copy_rows_per_s", "peak_rss_mb",
"incremental_ratio": incremental seconds ÷ full seconds, ...}``. ``--quick`` = 5,000 users.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402 - after the path set-up
    drop_database,
    peak_rss_mb,
    recreate_database,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/dashboard_bench"
TABLES = ["platforms_mirroraccount", "platforms_mirroropentrade", "platforms_mirrorclosedtrade"]


def run_snapshot(platform, kind: str):
    from platforms.mirror.models import SnapshotRun
    from platforms.mirror.snapshots import execute_run

    run = SnapshotRun.objects.create(platform=platform, kind=kind, trigger="schedule")
    started = time.perf_counter()
    run = execute_run(run.pk)
    elapsed = time.perf_counter() - started
    if run.state != "succeeded":
        raise SystemExit(f"{kind} run failed: {run.error}")
    return run, elapsed


def copy_limit(workdir: Path) -> tuple[int, float]:
    """COPY the mirror's rows out to CSV, then time COPY FROM into empty look-alike tables."""
    from django.db import connection

    total_rows = 0
    files = {}
    with connection.cursor() as cursor:
        raw = cursor.cursor  # psycopg 3 cursor: COPY support
        for table in TABLES:
            path = workdir / f"{table}.csv"
            with open(path, "wb") as out, raw.copy(f"COPY {table} TO STDOUT (FORMAT csv)") as cp:
                for block in cp:
                    out.write(block)
            files[table] = path
            raw.execute(f"DROP TABLE IF EXISTS copy_{table}")
            raw.execute(f"CREATE TABLE copy_{table} (LIKE {table} INCLUDING ALL)")
        connection.commit() if not connection.get_autocommit() else None
        started = time.perf_counter()
        for table in TABLES:
            with open(files[table], "rb") as source, raw.copy(
                f"COPY copy_{table} FROM STDIN (FORMAT csv)"
            ) as cp:
                while block := source.read(1 << 20):
                    cp.write(block)
        elapsed = time.perf_counter() - started
        for table in TABLES:
            raw.execute(f"SELECT count(*) FROM copy_{table}")  # noqa: S608 - our own table
            total_rows += raw.fetchone()[0]
            raw.execute(f"DROP TABLE copy_{table}")
    return total_rows, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--quick", action="store_true", help="5,000 users (CI smoke run)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    users = 5000 if args.quick else args.users

    url = os.environ.get("DATABASE_URL") or DEFAULT_URL
    if not url.startswith("postgres"):
        url = DEFAULT_URL
    recreate_database(url)
    workdir = Path(tempfile.mkdtemp(prefix="snapshot-bench-"))
    os.environ["DATABASE_URL"] = url
    os.environ["DASHBOARD_VAR_DIR"] = str(workdir / "var")
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")
    os.environ.setdefault("DJANGO_LOG_LEVEL", "WARNING")

    import django

    django.setup()
    from django.core.management import call_command

    from platforms.mirror.models import MirrorAccount, MirrorClosedTrade, MirrorOpenTrade
    from platforms.sandbox.process import start_sandbox
    from platforms.services import register_sandbox_platforms

    call_command("migrate", verbosity=0)
    print(f"sandbox: starting with {users:,} accounts ...", flush=True)
    sandbox = start_sandbox("--users", str(users), "--seed", "1", "--tick-rate", "0",
                            timeout=300)
    try:
        mt4, _ = register_sandbox_platforms(sandbox)
        rss_before = peak_rss_mb()
        full, full_s = run_snapshot(mt4, "full")
        print(f"full run: {full.rows_read:,} rows in {full_s:.1f} s "
              f"({full.rows_read / full_s:,.0f} rows/s), peak RSS {peak_rss_mb():.0f} MB",
              flush=True)
        history, history_s = run_snapshot(mt4, "history")
        print(f"history run: {history.rows_read:,} closed trades in {history_s:.1f} s "
              f"({history.rows_read / history_s:,.0f} rows/s)", flush=True)
        accounts = MirrorAccount.objects.filter(platform=mt4).count()
        open_trades = MirrorOpenTrade.objects.filter(platform=mt4).count()
        closed = MirrorClosedTrade.objects.filter(platform=mt4).count()
        ours_rows = accounts + open_trades + closed
        ours_s = full_s + history_s
        ours_rate = ours_rows / ours_s
        peak = peak_rss_mb()
        print(f"mirror: {accounts:,} accounts, {open_trades:,} open trades, {closed:,} closed "
              f"trades = {ours_rows:,} rows in {ours_s:.1f} s → {ours_rate:,.0f} rows/s "
              f"(network + decode + write); peak RSS {peak:.0f} MB (before runs {rss_before:.0f})",
              flush=True)

        copy_rows, copy_s = copy_limit(workdir)
        copy_rate = copy_rows / copy_s
        print(f"COPY FROM of the same {copy_rows:,} rows (same indexes): {copy_s:.1f} s → "
              f"{copy_rate:,.0f} rows/s", flush=True)

        changed = sandbox.control("POST", "/mirror/perturb",
                                  json={"fraction": 0.01, "seed": 2}).json()
        incremental, incremental_s = run_snapshot(mt4, "incremental")
        print(f"incremental after 1 % changed ({changed}): {incremental.rows_read:,} rows read, "
              f"{incremental_s:.2f} s vs full {full_s:.1f} s", flush=True)
    finally:
        sandbox.stop()
        if not args.keep_db:
            from django.db import connections

            connections.close_all()
            drop_database(url)

    print(json.dumps({
        "ratio": round(ours_rate / copy_rate, 4),
        "rows_per_s": round(ours_rate),
        "copy_rows_per_s": round(copy_rate),
        "peak_rss_mb": round(peak, 1),
        "incremental_ratio": round(incremental_s / full_s, 4),
        "users": users,
        "rows": ours_rows,
        "full_s": round(full_s, 2),
        "history_s": round(history_s, 2),
        "incremental_s": round(incremental_s, 2),
        "copy_s": round(copy_s, 2),
    }))


if __name__ == "__main__":
    main()
