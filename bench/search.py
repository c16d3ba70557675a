"""Benchmark: "find a client anywhere" (the top bar's search) at 100,000 accounts, both databases.

    python bench/search.py [--users 100000] [--requests 200] [--quick]

Starts a sandbox with ``--users`` accounts, then for SQLite and for PostgreSQL (``PG_URL``,
default ``postgres://postgres@127.0.0.1:5432/dashboard_bench_search``, created and dropped here)
in a child process each: migrates an empty database, fills the mirror with a real full snapshot
run of both sandbox platforms (the indexes kept as every snapshot keeps them), and times
``--requests`` searches through Django (the test client: server time, no network) as the top
bar's dropdown asks for them, by two users: an administrator (every platform, personal fields)
and a support user without ``view_personal_data`` inside a group mask. Terms are drawn from the
mirror: exact logins, login prefixes and substrings, name, e-mail, phone, comment and IP
fragments, and terms that match nothing.

The baseline is the naive design: the same requests with the substring match written as
Django's ``icontains`` (``UPPER(col) LIKE`` on PostgreSQL, ``LIKE`` on SQLite), which no index
serves, so each is a scan of the platform's accounts (cut short by the LIMIT when a term is
common). Also timed: building each index over the loaded mirror (``REINDEX`` of the GIN index;
FTS5 ``rebuild``), what a first load pays for it.

Last line, one JSON object: ``ratio`` (baseline p50 ÷ indexed p50, PostgreSQL), ``p50_ms`` and
``p99_ms`` (PostgreSQL), the SQLite figures, the baselines', ``index_build_s`` per database and
``peak_rss_mb``. ``--quick`` (CI smoke run): 3,000 users, 20 requests, the two databases'
children side by side.
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

PG_URL = os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/dashboard_bench_search")
NO_MATCH = ["zzqx", "qwxz", "xjqv@", "999.999"]


def figures(times: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(times) * 1000, 2),
            "p99_ms": round(percentile(times, 0.99) * 1000, 2)}


def fragment(rng: random.Random, text: str, prefix: bool) -> str | None:
    text = (text or "").strip()
    if len(text) < 3:
        return None
    size = rng.randint(3, min(8, len(text)))
    start = 0 if prefix else rng.randint(0, len(text) - size)
    return text[start:start + size].strip() or None


def search_terms(rng: random.Random, n: int, rows: list[dict]) -> list[str]:
    terms: list[str] = []
    while len(terms) < n:
        row = rng.choice(rows)
        kind = rng.choice(["login", "login_prefix", "login_sub", "name", "name", "email",
                           "phone", "comment", "ip", "none"])
        prefix = rng.random() < 0.5
        term = {
            "login": str(row["login"]),
            "login_prefix": str(row["login"])[:rng.randint(2, 5)],
            "login_sub": fragment(rng, str(row["login"])[1:], False),
            "name": fragment(rng, row["name"], prefix),
            "email": fragment(rng, row["email"], prefix),
            "phone": fragment(rng, row["phone"], prefix),
            "comment": fragment(rng, row["comment"], prefix),
            "ip": fragment(rng, row["last_ip"], True),
            "none": rng.choice(NO_MATCH),
        }[kind]
        if term and (term.isdigit() or len(term) >= 3):
            terms.append(term)
    return terms


def naive_substring(accounts, term, columns):
    """The baseline: Django's ``icontains`` on each column, which no index serves."""
    from django.db.models import Q

    match = Q()
    for column in columns:
        match |= Q(**{f"{column}__icontains": term})
    return accounts.filter(match)


def time_requests(http, terms: list[str]) -> list[float]:
    times = []
    for term in terms:
        t0 = time.perf_counter()
        response = http.get("/search/", {"q": term}, HTTP_HX_REQUEST="true")
        times.append(time.perf_counter() - t0)
        assert response.status_code == 200, (term, response.status_code)
    return times


def index_build_seconds(connection) -> float:
    from platforms.mirror.search_index import PG_INDEX, SEARCH_TABLE

    t0 = time.perf_counter()
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(f"REINDEX INDEX {PG_INDEX}")
        else:
            cursor.execute(f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}) VALUES ('rebuild')")  # noqa: S608
    return round(time.perf_counter() - t0, 2)


def child(db: str, ready_file: str, requests: int) -> dict:
    child_django(db, "bench-search", PG_URL)
    from django.contrib.auth import get_user_model
    from django.db import connection, transaction
    from django.test import Client

    from platforms.mirror import search
    from platforms.mirror.models import MirrorAccount, SnapshotRun
    from platforms.mirror.runs import execute_run
    from platforms.services import register_sandbox_platforms
    from tests.support.staff import make_staff

    sandbox = sandbox_from_ready_file(ready_file)
    platforms = register_sandbox_platforms(sandbox)
    started = time.perf_counter()
    for platform in platforms:
        execute_run(SnapshotRun.objects.create(platform=platform, kind="full").pk)
    fill_s = time.perf_counter() - started
    with transaction.atomic():
        build_s = index_build_seconds(connection)
    accounts = MirrorAccount.objects.count()
    groups = sorted(set(MirrorAccount.objects.values_list("group", flat=True)))
    rng = random.Random(11)
    sample = list(MirrorAccount.objects.order_by("?").values(
        "login", "name", "email", "phone", "comment", "last_ip")[:2000])
    admin_terms = search_terms(rng, requests, sample)
    support_terms = search_terms(rng, requests, sample)

    admin = get_user_model().objects.create_superuser("bench", password="bench-password-1")
    mask = groups[0].split("\\")[0] + "\\*"
    support = make_staff(*platforms, username="bench-support", masks=mask)
    results = {"db": db, "accounts": accounts, "fill_s": round(fill_s, 2),
               "index_build_s": build_s, "mask": mask}
    clients = {}
    for name, user in (("admin", admin), ("support", support)):
        clients[name] = Client()
        clients[name].force_login(user)
        clients[name].get("/search/", {"q": "warm"}, HTTP_HX_REQUEST="true")
    results["search"] = figures(time_requests(clients["admin"], admin_terms)
                                + time_requests(clients["support"], support_terms))
    indexed = (search._substring, search.sqlite_index_ready)
    search._substring = naive_substring
    search.sqlite_index_ready = lambda connection: False  # SQLite: the LIKE scan, not FTS5
    try:
        naive = (time_requests(clients["admin"], admin_terms)
                 + time_requests(clients["support"], support_terms))
    finally:
        search._substring, search.sqlite_index_ready = indexed
    results["baseline"] = figures(naive)
    results["peak_rss_mb"] = round(peak_rss_mb(), 1)
    child_finished(db, PG_URL)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", choices=["sqlite", "postgres"])
    parser.add_argument("--ready-file")
    parser.add_argument("--only", choices=["sqlite", "postgres"],
                        help="time one database only (the other's figures are null)")
    args = parser.parse_args()
    if args.quick:
        args.users, args.requests = 3_000, 20
    if args.child:
        print(json.dumps(child(args.child, args.ready_file, args.requests)))
        return

    from platforms.sandbox.process import start_sandbox

    sandbox = start_sandbox("--users", str(args.users), "--tick-rate", "0", timeout=300)
    ready = Path(tempfile.mkdtemp(prefix="bench-search-")) / "ready.json"
    ready.write_text(json.dumps({
        "base_url": sandbox.base_url, "sidecar_url": sandbox.sidecar_url,
        "authority": sandbox.authority, "client_id": sandbox.client_id,
        "client_secret": sandbox.client_secret, "control_url": sandbox.control_url,
        "platforms": {"MT4": sandbox.mt4_id, "MT5": sandbox.mt5_id}}))

    def start_child(db: str) -> subprocess.Popen:
        return subprocess.Popen(
            [sys.executable, __file__, "--child", db, "--ready-file", str(ready),
             "--requests", str(args.requests)],
            cwd=ROOT, stdout=open(ready.with_name(f"{db}.out"), "w"),
            stderr=open(ready.with_name(f"{db}.err"), "w"))

    databases = [args.only] if args.only else ["sqlite", "postgres"]
    runs: dict[str, dict] = {}
    try:
        started = {db: start_child(db) for db in databases} if args.quick else {}
        for db in databases:
            child_process = started.get(db) or start_child(db)
            if child_process.wait():
                sys.stderr.write(ready.with_name(f"{db}.err").read_text())
                raise SystemExit(f"{db} run failed")
            runs[db] = json.loads(
                ready.with_name(f"{db}.out").read_text().strip().splitlines()[-1])
            print(f"{db}: {runs[db]}")
    finally:
        sandbox.stop()
    pg, lite = runs.get("postgres"), runs.get("sqlite")
    main_run = pg or lite
    summary = {
        "ratio": round(main_run["baseline"]["p50_ms"] / main_run["search"]["p50_ms"], 1),
        "p50_ms": main_run["search"]["p50_ms"], "p99_ms": main_run["search"]["p99_ms"],
        "pg_search": pg and pg["search"], "pg_baseline": pg and pg["baseline"],
        "sqlite_search": lite and lite["search"], "sqlite_baseline": lite and lite["baseline"],
        "sqlite_ratio": lite and round(lite["baseline"]["p50_ms"] / lite["search"]["p50_ms"], 1),
        "index_build_s": {db: run["index_build_s"] for db, run in runs.items()},
        "fill_s": {db: run["fill_s"] for db, run in runs.items()},
        "accounts": main_run["accounts"], "users": args.users,
        "requests": 2 * args.requests,
        "peak_rss_mb": max(run["peak_rss_mb"] for run in runs.values()),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
