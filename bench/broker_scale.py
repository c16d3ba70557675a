"""Benchmark: a broker of many trade servers. Ten platforms side by side, one of a million.

    nice -n 10 .venv/bin/python bench/broker_scale.py [--quick] [--db postgres|sqlite]
        [--platforms 10] [--users 100000] [--big-users 1000000] [--requests 200]

Starts ``--platforms`` sandboxes of ``--users`` accounts (~3 open trades each) and one of
``--big-users``, registers their MT4 platforms in a fresh database (PostgreSQL ``PG_URL``,
default ``postgres://postgres@127.0.0.1:5432/dashboard_bench_scale``, created and dropped here;
or SQLite with ``--db sqlite``) and, in child processes:

1. **fill**: snapshots the platforms with two worker processes (each runs ``execute_run`` for
   its half, full runs, as the reporting queue's two workers would), then (PostgreSQL) times
   plain ``COPY … FROM`` of the very same rows (``bench/snapshot_ingest.copy_limit``):
   ``snapshot_ratio`` = COPY's seconds ÷ our wall time. Then the big platform's full run (one
   worker; it reads cursor pages, ``SNAPSHOT_ONE_SHOT_MAX``).
2. **pages**: ``--requests`` requests each through Django's test client (server time, no
   network) to the overview, net exposure (all platforms), and the accounts and trades lists of
   the big platform (the query mix of ``bench/pages.py``: search / filter / sort / page); the
   search box across every platform.
3. **live**: the ASGI server with its in-process bridges to the ten platforms' hubs (the big one
   disabled), one WebSocket watching 50 accounts on each; every hub storms margin updates at
   once; ``live_p99_ms`` is emission on the hub → receipt on the socket.

``peak_rss_mb`` is the largest of our processes (workers, pages, ASGI); the sandboxes stand in
for the trade servers and are reported apart (``sandbox_peak_rss_mb``). Last line: one JSON
object. ``--quick`` (CI smoke run): three platforms of 5,000, the first doubling as the big
one, 15 requests, a 2-second storm.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import drop_database, percentile, recreate_database  # noqa: E402

PG_URL = os.environ.get("PG_URL", "postgres://postgres@127.0.0.1:5432/dashboard_bench_scale")


def ms(times: list[float]) -> dict:
    return {"p50_ms": round(statistics.median(times) * 1000, 1),
            "p99_ms": round(percentile(times, 0.99) * 1000, 1)}


def own_peak_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def peak_of(pid: int) -> float:
    """High-water mark of a running process (``VmHWM``), in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return 0.0


def setup_django(workdir: Path, db: str) -> None:
    os.environ["DASHBOARD_VAR_DIR"] = str(workdir)
    os.environ.pop("REDIS_URL", None)
    os.environ["DATABASE_URL"] = (PG_URL if db == "postgres"
                                  else f"sqlite:///{workdir / 'bench.sqlite3'}")
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    import django

    django.setup()


# ============================================================================ children
def child_worker(workdir: Path, db: str, pks: list[int]) -> dict:
    """One reporting worker: full runs of ``pks`` one after the other."""
    setup_django(workdir, db)
    from platforms.mirror.models import SnapshotRun
    from platforms.mirror.runs import execute_run

    started = time.time()
    runs = []
    for pk in pks:
        t0 = time.perf_counter()
        run = execute_run(SnapshotRun.objects.create(platform_id=pk, kind="full").pk)
        if run.state != "succeeded":
            raise SystemExit(f"run of platform {pk} failed: {run.error}")
        runs.append({"pk": pk, "s": round(time.perf_counter() - t0, 2),
                     "rows": run.rows_read})
    return {"start": started, "end": time.time(), "runs": runs, "peak_rss_mb": own_peak_mb()}


def run_child(mode: str, workdir: Path, db: str, *extra: str) -> subprocess.Popen:
    out = open(workdir / f"{mode}-{os.getpid()}-{time.monotonic_ns()}.out", "w+")  # noqa: SIM115
    process = subprocess.Popen(
        [sys.executable, __file__, "--child", mode, "--workdir", str(workdir), "--db", db,
         *extra], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT)
    process.out = out  # type: ignore[attr-defined]
    return process


def child_result(process: subprocess.Popen) -> dict:
    if process.wait():
        process.out.seek(0)  # type: ignore[attr-defined]
        sys.stderr.write(process.out.read()[-6000:])  # type: ignore[attr-defined]
        raise SystemExit(f"child {process.args[3]} failed")
    process.out.seek(0)  # type: ignore[attr-defined]
    return json.loads(process.out.read().strip().splitlines()[-1])  # type: ignore[attr-defined]


def child_fill(workdir: Path, db: str) -> dict:
    setup_django(workdir, db)
    from django.core.management import call_command
    from django.db import connections

    from platforms.models import PlatformEnvironment, TradePlatform

    call_command("migrate", verbosity=0)
    info = json.loads((workdir / "sandboxes.json").read_text())
    pks = []
    for i, sb in enumerate(info["sandboxes"]):
        platform = TradePlatform.objects.create(
            name=sb["name"], kind="MT4", environment=PlatformEnvironment.SANDBOX,
            api_base_url=sb["base_url"], sidecar_base_url=sb["sidecar_url"],
            oauth_authority=sb["authority"], client_id=sb["client_id"],
            client_secret=sb["client_secret"], platform_id=sb["mt4_id"], enabled=True)
        pks.append(platform.pk)
        sb["pk"] = platform.pk
        sb["index"] = i
    (workdir / "sandboxes.json").write_text(json.dumps(info))
    connections.close_all()
    small = [sb["pk"] for sb in info["sandboxes"] if not sb["big"]]
    workers = [run_child("worker", workdir, db, "--pks", ",".join(map(str, small[i::2])))
               for i in range(2)]
    halves = [child_result(w) for w in workers]
    wall = max(h["end"] for h in halves) - min(h["start"] for h in halves)
    result: dict = {"snapshot_wall_s": round(wall, 2),
                    "runs": [r for h in halves for r in h["runs"]],
                    "worker_peak_rss_mb": max(h["peak_rss_mb"] for h in halves)}
    if db == "postgres":
        from bench.snapshot_ingest import copy_limit

        rows, copy_s = copy_limit(workdir)
        result.update(copy_rows=rows, copy_s=round(copy_s, 2),
                      snapshot_ratio=round(copy_s / wall, 3))
    big = [sb["pk"] for sb in info["sandboxes"] if sb["big"]]
    if big:
        one = child_result(run_child("worker", workdir, db, "--pks", str(big[0])))
        result["big_run_s"] = one["runs"][0]["s"]
        result["worker_peak_rss_mb"] = max(result["worker_peak_rss_mb"], one["peak_rss_mb"])
    return result


def account_queries(rng: random.Random, n: int, groups: list[str]) -> list[dict]:
    from bench.pages import account_queries as mix

    return mix(rng, n, groups)


def child_pages(workdir: Path, db: str, requests: int) -> dict:
    setup_django(workdir, db)
    from django.contrib.auth import get_user_model
    from django.test import Client
    from django.test.utils import setup_test_environment

    from bench.pages import trade_queries
    from platforms.mirror.models import MirrorAccount

    setup_test_environment()
    info = json.loads((workdir / "sandboxes.json").read_text())
    big = next((sb["pk"] for sb in info["sandboxes"] if sb["big"]),
               info["sandboxes"][0]["pk"])  # no big platform (--quick): the first one
    boss = get_user_model().objects.create_superuser("bench", password="bench-password-1")
    http = Client()
    http.force_login(boss)
    groups = sorted(set(MirrorAccount.objects.filter(platform_id=big)
                        .values_list("group", flat=True).distinct()))
    masks = [g.split("\\")[0] + "\\*" for g in groups] + groups
    rng = random.Random(11)
    plans = {
        "overview": ("/", [{}] * requests),
        "exposure": ("/exposure/", [{}] * requests),
        "accounts_1m": (f"/platforms/{big}/accounts/", account_queries(rng, requests, masks)),
        "trades_1m": (f"/platforms/{big}/trades/", trade_queries(rng, requests)),
    }
    results: dict = {"accounts_big": MirrorAccount.objects.filter(platform_id=big).count()}
    for name, (url, queries) in plans.items():
        headers = {} if name in ("overview", "exposure") else {"HTTP_HX_REQUEST": "true"}
        first = http.get(url, queries[0], **headers)  # warm caches and connections
        assert first.status_code == 200, (url, first.status_code)
        times = []
        for query in queries:
            t0 = time.perf_counter()
            response = http.get(url, query, **headers)
            times.append(time.perf_counter() - t0)
            assert response.status_code == 200, (url, query, response.status_code)
        results[name] = ms(times)
    results["search"] = search_timing(http, requests, rng)
    results["peak_rss_mb"] = own_peak_mb()
    return results


def search_timing(http, requests: int, rng: random.Random) -> dict:
    """The top bar's search across every platform (issue 24, item 1), as its dropdown asks."""
    from django.urls import reverse

    url = reverse("dashboard:client-search")
    terms = ["ann", "smith", "10004", "lee", "mar", "@example", "1000"]
    times = []
    for _ in range(requests):
        t0 = time.perf_counter()
        response = http.get(url, {"q": rng.choice(terms)}, HTTP_HX_REQUEST="true")
        times.append(time.perf_counter() - t0)
        assert response.status_code == 200, (url, response.status_code)
    return ms(times)


def child_live(workdir: Path, db: str, seconds: float, rate: int) -> dict:
    """ASGI with in-process bridges to every small platform; one socket watching all."""
    setup_django(workdir, db)
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore

    from platforms.models import TradePlatform

    info = json.loads((workdir / "sandboxes.json").read_text())
    small = [sb for sb in info["sandboxes"] if not sb["big"]]
    TradePlatform.objects.filter(pk__in=[sb["pk"] for sb in info["sandboxes"] if sb["big"]]) \
        .update(enabled=False)
    user = get_user_model().objects.filter(username="bench").first() or \
        get_user_model().objects.create_superuser("bench", password="bench-password-1")
    session = SessionStore()
    session["_auth_user_id"] = str(user.pk)
    session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
    session["_auth_user_hash"] = user.get_session_auth_hash()
    session.create()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = dict(os.environ, REALTIME_BRIDGE="in-process")
    asgi = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "dashboard.asgi:application", "--port", str(port),
         "--no-access-log", "--log-level", "warning"],
        cwd=ROOT, env=env, stdout=open(workdir / "asgi.log", "w"),  # noqa: SIM115
        stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or asgi.poll() is not None:
                    raise RuntimeError("the ASGI server did not start") from None
                time.sleep(0.2)
        result = asyncio.run(_drive_live(port, session.session_key, small, seconds, rate))
        result["asgi_peak_rss_mb"] = peak_of(asgi.pid)
        return result
    finally:
        asgi.send_signal(signal.SIGINT)
        try:
            asgi.wait(10)
        except subprocess.TimeoutExpired:
            asgi.kill()


async def _drive_live(port: int, session: str, sandboxes: list[dict], seconds: float,
                      rate: int) -> dict:
    import httpx
    import websockets

    storm_accounts = 500
    watched = {str(sb["pk"]): sb["logins"][:storm_accounts][::10] for sb in sandboxes}
    up: set[str] = set()
    received: list[tuple[float, str, list]] = []
    stop = asyncio.Event()

    async def reader() -> None:
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws/live/",
            additional_headers={"Cookie": f"sessionid={session}",
                                "Origin": f"http://127.0.0.1:{port}"},
            max_size=None, compression=None,
        ) as ws:
            await ws.send(json.dumps({"type": "watch",
                                      "platforms": [int(pk) for pk in watched],
                                      "accounts": watched}))
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                now = time.time()
                frame = json.loads(raw)
                if frame.get("t") == "snap" and frame.get("up"):
                    up.add(str(frame.get("p")))
                if frame.get("t") == "u":
                    up.update(pk for pk, ok in (frame.get("status") or {}).items() if ok)
                    for pk, rows in (frame.get("rows") or {}).items():
                        received.append((now, pk, rows))

    task = asyncio.create_task(reader())
    deadline = time.monotonic() + 180
    while not set(watched) <= up:
        if task.done():
            task.result()
        if time.monotonic() > deadline:
            raise RuntimeError(f"bridges up: {sorted(up)} of {sorted(watched)}")
        await asyncio.sleep(0.2)
    await asyncio.sleep(1.0)
    received.clear()
    async with httpx.AsyncClient(timeout=60) as http:
        await asyncio.gather(*(http.post(f"{sb['control_url']}/hubs/storm",
                                         json={"rate": rate, "seconds": seconds,
                                               "accounts": storm_accounts})
                               for sb in sandboxes))
        for sb in sandboxes:
            while (await http.get(f"{sb['control_url']}/hubs/storm")).json()["running"]:
                await asyncio.sleep(0.3)
        await asyncio.sleep(1.5)
        times = {str(sb["pk"]): (await http.get(f"{sb['control_url']}/hubs/storm",
                                                params={"times": 1})).json()["times"]
                 for sb in sandboxes}
    stop.set()
    await task
    latencies = []
    for t_recv, pk, rows in received:
        emitted = times.get(pk) or []
        for row in rows:
            k = round((row[1] - 10000) * 100) if isinstance(row[1], (int, float)) else -1
            if 0 <= k < len(emitted):
                latencies.append((t_recv - emitted[k]) * 1000)
    if not latencies:
        return {"live_p99_ms": None, "rows_measured": 0}
    ordered = sorted(latencies)
    return {"live_p50_ms": round(ordered[len(ordered) // 2], 1),
            "live_p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 1),
            "rows_measured": len(latencies), "hubs": len(sandboxes),
            "events": sum(len(t) for t in times.values())}


# ============================================================================ main
def start_sandboxes(sizes: list[tuple[str, int, bool]]) -> list:
    """Start the sandboxes side by side (each generates its accounts on start)."""
    from platforms.sandbox.process import start_sandbox

    started: dict[int, object] = {}
    errors: list[BaseException] = []

    def one(i: int, users: int) -> None:
        try:
            started[i] = start_sandbox("--users", str(users), "--seed", str(i + 1),
                                       "--tick-rate", "0", timeout=1800)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(i, users)) for i, (_, users, _) in
               enumerate(sizes)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        for sb in started.values():
            sb.stop()
        raise errors[0]
    return [started[i] for i in range(len(sizes))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--db", choices=["postgres", "sqlite"], default="postgres")
    parser.add_argument("--platforms", type=int, default=10)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--big-users", type=int, default=1_000_000)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--storm-seconds", type=float, default=10.0)
    parser.add_argument("--storm-rate", type=int, default=200, help="updates/s per hub")
    parser.add_argument("--child")
    parser.add_argument("--workdir")
    parser.add_argument("--pks", default="")
    args = parser.parse_args()
    if args.child:
        workdir = Path(args.workdir)
        if args.child == "worker":
            out = child_worker(workdir, args.db, [int(p) for p in args.pks.split(",") if p])
        elif args.child == "fill":
            out = child_fill(workdir, args.db)
        elif args.child == "pages":
            out = child_pages(workdir, args.db, args.requests)
        else:
            out = child_live(workdir, args.db, args.storm_seconds, args.storm_rate)
        print(json.dumps(out))
        return
    if args.quick:
        args.platforms, args.users, args.big_users, args.requests = 3, 5_000, 0, 15
        args.storm_seconds = 2.0
    began = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="bench-scale-"))
    sizes = [(f"Bench {i + 1}", args.users, False) for i in range(args.platforms)]
    if args.big_users:
        sizes.append(("Bench big", args.big_users, True))
    print(f"cores {os.cpu_count()}, load {os.getloadavg()[0]:.1f}; starting {len(sizes)} "
          f"sandboxes", flush=True)
    sandboxes = start_sandboxes(sizes)
    print(f"sandboxes ready in {time.monotonic() - began:.0f} s", flush=True)
    try:
        records = []
        for (name, users, big), sb in zip(sizes, sandboxes, strict=True):
            records.append({
                "name": name, "big": big, "users": users, "base_url": sb.base_url,
                "sidecar_url": sb.sidecar_url, "authority": sb.authority,
                "client_id": sb.client_id, "client_secret": sb.client_secret,
                "mt4_id": sb.mt4_id, "control_url": sb.control_url,
                "logins": list(range(100001, 100001 + 600)),
            })
        (workdir / "sandboxes.json").write_text(json.dumps({"sandboxes": records,
                                                            "quick": args.quick}))
        if args.db == "postgres":
            recreate_database(PG_URL)
        fill = child_result(run_child("fill", workdir, args.db))
        print(f"fill: {fill}", flush=True)
        pages = child_result(run_child("pages", workdir, args.db,
                                       "--requests", str(args.requests)))
        print(f"pages: {pages}", flush=True)
        live = child_result(run_child("live", workdir, args.db,
                                      "--storm-seconds", str(args.storm_seconds),
                                      "--storm-rate", str(args.storm_rate)))
        print(f"live: {live}", flush=True)
        sandbox_peak = max(peak_of(sb.process.pid) for sb in sandboxes)
    finally:
        for sb in sandboxes:
            sb.stop()
        if args.db == "postgres" and not os.environ.get("BENCH_KEEP_DB"):
            drop_database(PG_URL)
    summary = {
        "search_p99_ms": pages["search"]["p99_ms"],
        "overview_p99_ms": pages["overview"]["p99_ms"],
        "exposure_p99_ms": pages["exposure"]["p99_ms"],
        "accounts_1m_p99_ms": pages["accounts_1m"]["p99_ms"],
        "trades_1m_p99_ms": pages["trades_1m"]["p99_ms"],
        "snapshot_ratio": fill.get("snapshot_ratio"),
        "live_p99_ms": live.get("live_p99_ms"),
        "peak_rss_mb": max(fill["worker_peak_rss_mb"], pages["peak_rss_mb"],
                           live.get("asgi_peak_rss_mb", 0.0)),
        "sandbox_peak_rss_mb": sandbox_peak,
        "p50_ms": {k: pages[k]["p50_ms"] for k in ("overview", "exposure", "accounts_1m",
                                                   "trades_1m")},
        "live_p50_ms": live.get("live_p50_ms"), "live_rows_measured": live.get("rows_measured"),
        "worker_peak_rss_mb": fill["worker_peak_rss_mb"],
        "asgi_peak_rss_mb": live.get("asgi_peak_rss_mb"),
        "snapshot_wall_s": fill["snapshot_wall_s"], "copy_s": fill.get("copy_s"),
        "big_run_s": fill.get("big_run_s"), "big_accounts": pages["accounts_big"],
        "platforms": args.platforms, "users": args.users, "big_users": args.big_users,
        "db": args.db, "requests": args.requests,
        "seconds": round(time.monotonic() - began, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
