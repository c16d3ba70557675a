"""Benchmark: a full snapshot of a large MT4 server into the PostgreSQL mirror, against COPY.

    python bench/snapshot_ingest.py [--users 100000] [--repeat 3] [--incremental-repeat 3]
                                    [--quick] [--keep-db]

Starts a sandbox with ``--users`` accounts (~3 open trades and ~20 closed trades each), creates
its own database (``DATABASE_URL``, default
``postgres://postgres@127.0.0.1:5432/dashboard_bench_ingest``; dropped at the end), migrates it,
and then ``--repeat`` times, in this one process, on an emptied mirror:

1. times a full run (``UsersSnapshot`` + ``TradesSnapshot`` on the sidecar, ``MarginsGet``,
   groups, symbols) and a history run (``ReportsRequest`` in batches of logins): the whole
   mirror, read over HTTP, decoded and written;
2. times PostgreSQL ``COPY … FROM`` of the very same rows (exported to a CSV file first) into
   empty copies of the mirror tables with the same indexes and constraints: the physical limit;
3. ``--incremental-repeat`` times, changes 1 % of the accounts and open trades on the server
   and times an incremental run (a run of under a second is noisy on a shared machine).

Each repetition gives a ratio (our rows/s ÷ COPY's rows/s, measured back to back, so a busy
machine weighs on both) and an incremental ratio (the median of its incremental runs' seconds
÷ its full run's seconds); the medians over the repetitions are reported. Prints the machine's
core count, each repetition's figures, the peak RSS of this process and, as its last line, one
JSON object:
``{"ratio", "rows_per_s", "copy_rows_per_s", "peak_rss_mb", "incremental_ratio", ...}``.
``--quick`` = 1,000 users, one round with one incremental unless told otherwise (CI smoke run).
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
sys.path.insert(0, str(ROOT))

from bench._common import (  # noqa: E402 - after the path set-up
    drop_database,
    peak_rss_mb,
    recreate_database,
)

DEFAULT_URL = "postgres://postgres@127.0.0.1:5432/dashboard_bench_ingest"
TABLES = ["platforms_mirroraccount", "platforms_mirroropentrade", "platforms_mirrorclosedtrade"]
MIRROR = [*TABLES, "platforms_mirrorgroup", "platforms_mirrorsymbol"]


def run_snapshot(platform, kind: str):
    from platforms.mirror.models import SnapshotRun
    from platforms.mirror.runs import execute_run

    run = SnapshotRun.objects.create(platform=platform, kind=kind, trigger="schedule")
    started = time.perf_counter()
    run = execute_run(run.pk)
    elapsed = time.perf_counter() - started
    if run.state != "succeeded":
        raise SystemExit(f"{kind} run failed: {run.error}")
    return run, elapsed


def empty_mirror(platform) -> None:
    """Back to a platform never snapshotted: empty tables, no "as of" stamps."""
    from django.db import connection

    from platforms.mirror.models import MirrorState

    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {', '.join(MIRROR)}")
    MirrorState.objects.filter(platform=platform).delete()


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
            files[table].unlink()
    return total_rows, elapsed


def one_round(mt4, sandbox, workdir: Path, seed: int, incremental_repeat: int) -> dict:
    """A first load (full + history), COPY of the same rows, and ``incremental_repeat``
    incrementals, each after another 1 % changed (their median counts)."""
    from platforms.mirror.models import MirrorAccount, MirrorClosedTrade, MirrorOpenTrade
    from platforms.mirror.sources import SYNC_OVERLAP_SECONDS

    empty_mirror(mt4)
    full, full_s = run_snapshot(mt4, "full")
    print(f"  full run: {full.rows_read:,} rows in {full_s:.1f} s "
          f"({full.rows_read / full_s:,.0f} rows/s)", flush=True)
    history, history_s = run_snapshot(mt4, "history")
    print(f"  history run: {history.rows_read:,} closed trades in {history_s:.1f} s "
          f"({history.rows_read / history_s:,.0f} rows/s)", flush=True)
    rows = (MirrorAccount.objects.filter(platform=mt4).count()
            + MirrorOpenTrade.objects.filter(platform=mt4).count()
            + MirrorClosedTrade.objects.filter(platform=mt4).count())
    ours_rate = rows / (full_s + history_s)
    copy_rows, copy_s = copy_limit(workdir)
    copy_rate = copy_rows / copy_s
    print(f"  mirror: {rows:,} rows in {full_s + history_s:.1f} s → {ours_rate:,.0f} rows/s "
          f"(network + decode + write); COPY FROM of the same {copy_rows:,} rows (same "
          f"indexes): {copy_s:.1f} s → {copy_rate:,.0f} rows/s", flush=True)

    incrementals = []
    for number in range(incremental_repeat):
        changed = sandbox.control("POST", "/mirror/perturb",
                                  json={"fraction": 0.01, "seed": seed * 100 + number}).json()
        # Each run re-reads SYNC_OVERLAP_SECONDS before the previous run's start: let these
        # changes be older than that by the time of the next run, so it reads only its own.
        time.sleep(SYNC_OVERLAP_SECONDS + 1)
        incremental, incremental_s = run_snapshot(mt4, "incremental")
        incrementals.append(incremental_s)
        print(f"  incremental {number + 1} after 1 % changed ({changed}): "
              f"{incremental.rows_read:,} rows read, "
              f"{incremental.rows_inserted + incremental.rows_updated + incremental.rows_deleted:,}"
              f" written, {incremental_s:.2f} s = {incremental_s / full_s:.1%} of the full run",
              flush=True)
    incremental_s = statistics.median(incrementals)
    return {
        "ratio": ours_rate / copy_rate, "rows_per_s": ours_rate, "copy_rows_per_s": copy_rate,
        "incremental_ratio": incremental_s / full_s, "rows": rows, "full_s": full_s,
        "history_s": history_s, "incremental_s": incremental_s, "copy_s": copy_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=None,
                        help="rounds; medians are reported (default 3, --quick 1)")
    parser.add_argument("--incremental-repeat", type=int, default=None,
                        help="incremental runs per round, each after 1 %% changed; their "
                             "median counts (default 3, --quick 1)")
    parser.add_argument("--quick", action="store_true", help="1,000 users (CI smoke run)")
    parser.add_argument("--keep-db", action="store_true")
    args = parser.parse_args()
    users = 1000 if args.quick else args.users
    if args.repeat is None:
        args.repeat = 1 if args.quick else 3
    if args.incremental_repeat is None:
        args.incremental_repeat = 1 if args.quick else 3
    print(f"cores: {os.cpu_count()} (sandbox, PostgreSQL and this process share them)",
          flush=True)

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

    from platforms.sandbox.process import start_sandbox
    from platforms.services import register_sandbox_platforms

    call_command("migrate", verbosity=0)
    print(f"sandbox: starting with {users:,} accounts ...", flush=True)
    sandbox = start_sandbox("--users", str(users), "--seed", "1", "--tick-rate", "0",
                            timeout=300)
    rounds = []
    try:
        mt4, _ = register_sandbox_platforms(sandbox)
        rss_before = peak_rss_mb()
        for number in range(1, args.repeat + 1):
            print(f"round {number}/{args.repeat}:", flush=True)
            rounds.append(one_round(mt4, sandbox, workdir, seed=1 + number,
                                    incremental_repeat=args.incremental_repeat))
    finally:
        sandbox.stop()
        if not args.keep_db:
            from django.db import connections

            connections.close_all()
            drop_database(url)

    def median(key: str) -> float:
        return statistics.median(r[key] for r in rounds)

    peak = peak_rss_mb()
    print(f"median of {len(rounds)}: {median('rows_per_s'):,.0f} rows/s = "
          f"{median('ratio'):.2f} of COPY; incremental {median('incremental_ratio'):.1%} of a "
          f"full run; peak RSS {peak:.0f} MB (before the runs {rss_before:.0f})", flush=True)
    print(json.dumps({
        "ratio": round(median("ratio"), 4),
        "rows_per_s": round(median("rows_per_s")),
        "copy_rows_per_s": round(median("copy_rows_per_s")),
        "peak_rss_mb": round(peak, 1),
        "incremental_ratio": round(median("incremental_ratio"), 4),
        "cores": os.cpu_count(),
        "users": users,
        "repeat": len(rounds),
        "rows": rounds[-1]["rows"],
        "full_s": round(median("full_s"), 2),
        "history_s": round(median("history_s"), 2),
        "incremental_s": round(median("incremental_s"), 3),
        "copy_s": round(median("copy_s"), 2),
        "ratios": [round(r["ratio"], 4) for r in rounds],
        "incremental_ratios": [round(r["incremental_ratio"], 4) for r in rounds],
    }))


if __name__ == "__main__":
    main()
