"""Live margins end to end: sandbox hub storm → bridge → channel layer → consumers → clients.

A sandbox with 10 000 accounts emits 5 000 ``StreamMarginCallUpdates`` items a second for 30 s;
50 WebSocket clients each watch a 50-row monitor (50 accounts). Printed per channel layer
(in-memory: bridge inside the ASGI process; Redis: ``manage.py stream`` + ASGI on Redis):
end-to-end latency (sandbox emission time → client receipt) p50/p99, frames and bytes per
client per second, CPU of the ASGI and bridge processes; and the bytes a naive design would
send (every upstream event to every client, measured as the hub stream's own bytes).
Last line: one JSON object with ``ratio`` (naive bytes / ours), ``p50_ms``, ``p99_ms``.

    .venv/bin/python bench/live_margins.py [--quick] [--layers memory,redis]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
REDIS_BENCH_URL = "redis://127.0.0.1:6379/2"
CLK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


# ------------------------------------------------------------------------ one layer (child)


def run_layer(layer: str, args: argparse.Namespace) -> dict:
    """Runs in a fresh interpreter whose environment selects the layer (see ``main``)."""
    import django

    django.setup()
    import httpx
    from django.contrib.auth import get_user_model
    from django.contrib.sessions.backends.db import SessionStore
    from django.core.management import call_command

    from platforms.sandbox.process import start_sandbox
    from platforms.services import register_sandbox_platforms

    call_command("migrate", interactive=False, verbosity=0)
    sandbox = start_sandbox("--users", str(args.accounts), "--seed", "3", "--tick-rate", "0")
    children: list[subprocess.Popen] = []
    try:
        mt4, _ = register_sandbox_platforms(sandbox)
        user = get_user_model().objects.create_superuser("bench", "b@example.com", "bench-pw-1")
        sessions = []
        for _ in range(args.clients):
            s = SessionStore()
            s["_auth_user_id"] = str(user.pk)
            s["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
            s["_auth_user_hash"] = user.get_session_auth_hash()
            s.create()
            sessions.append(s.session_key)
        port = free_port()
        env = dict(os.environ)
        log = open(Path(env["DASHBOARD_VAR_DIR"]) / "asgi.log", "w")  # noqa: SIM115
        asgi = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "dashboard.asgi:application",
                "--port",
                str(port),
                "--no-access-log",
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        children.append(asgi)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline or asgi.poll() is not None:
                    raise RuntimeError("the ASGI server did not start") from None
                time.sleep(0.1)
        bridge_pid = asgi.pid
        if layer == "redis":
            stream = subprocess.Popen(
                [sys.executable, "manage.py", "stream"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            children.append(stream)
            bridge_pid = stream.pid
        result = asyncio.run(
            drive(args, sandbox, port, sessions, mt4.pk, asgi.pid, bridge_pid, layer)
        )
        httpx.get(sandbox.control_url)  # still alive
        return result
    finally:
        for child in children:
            child.send_signal(signal.SIGINT)
        for child in children:
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()
        sandbox.stop()


async def drive(args, sandbox, port, sessions, pk, asgi_pid, bridge_pid, layer) -> dict:
    import httpx
    import websockets

    from platforms.live.signalr import HubConnection

    logins = list(range(100001, 100001 + args.accounts))
    received: list[list[tuple[float, int, list]]] = [[] for _ in sessions]
    stop = asyncio.Event()
    ready = [asyncio.Event() for _ in sessions]

    async def client(i: int, session: str) -> None:
        watched = logins[(i * 50) % len(logins) :][:50]
        async with websockets.connect(
            f"ws://127.0.0.1:{port}/ws/live/",
            additional_headers={
                "Cookie": f"sessionid={session}",
                "Origin": f"http://127.0.0.1:{port}",
            },
            max_size=None,
            compression=None,
        ) as ws:
            await ws.send(
                json.dumps({"type": "watch", "platforms": [pk], "accounts": {str(pk): watched}})
            )
            while not stop.is_set():
                try:
                    raw = await asyncio.wait_for(ws.recv(), 0.5)
                except TimeoutError:
                    continue
                now = time.time()
                frame = json.loads(raw)
                if frame.get("t") == "snap":
                    received[i].append((now, len(raw), []))
                    if frame.get("up"):
                        ready[i].set()
                if frame.get("t") == "u":
                    if frame.get("status", {}).get(str(pk)):
                        ready[i].set()
                    received[i].append((now, len(raw), frame.get("rows", {}).get(str(pk), [])))

    async def guarded(i: int, session: str) -> None:
        try:
            await client(i, session)
        except Exception as exc:
            print(f"client {i}: {exc!r}", file=sys.stderr, flush=True)
            raise

    tasks = [asyncio.create_task(guarded(i, s)) for i, s in enumerate(sessions)]
    # a direct hub subscriber: exactly the bytes a naive forwarder would relay to each client
    async with httpx.AsyncClient() as http:
        token = (
            await http.post(
                f"{sandbox.base_url}/connect/token",
                data={
                    "grant_type": "client_credentials",
                    "client_id": sandbox.client_id,
                    "client_secret": sandbox.client_secret,
                },
            )
        ).json()["access_token"]
    naive_http = httpx.AsyncClient(headers={"Authorization": f"Bearer {token}"})
    naive = HubConnection(
        f"{sandbox.base_url}/hubs/mt4/v2?tradePlatform={sandbox.mt4_id}",
        naive_http,
        server_timeout=3600,
    )
    await naive.open()
    await naive.stream("StreamMarginCallUpdates")
    naive_items = 0

    async def naive_reader() -> None:
        nonlocal naive_items
        async for _ in naive.messages():
            naive_items += 1

    naive_task = asyncio.create_task(naive_reader())
    deadline = time.monotonic() + 60
    while not all(e.is_set() for e in ready):
        if time.monotonic() > deadline:
            firsts = [
                [(f[1], len(f[2])) for f in r[:4]]
                for r, e in zip(received, ready, strict=True)
                if not e.is_set()
            ]
            raise RuntimeError(
                f"{sum(not e.is_set() for e in ready)} clients never saw the "
                f"bridge up; first frames: {firsts[:3]}"
            )
        await asyncio.sleep(0.1)
    await asyncio.sleep(1.0)
    for r in received:
        r.clear()
    naive_start_bytes = naive.bytes_received
    cpu0 = {p: cpu_seconds(p) for p in {asgi_pid, bridge_pid}}
    t0 = time.monotonic()
    async with httpx.AsyncClient(timeout=30) as http:
        await http.post(
            f"{sandbox.control_url}/hubs/storm",
            json={"rate": args.rate, "seconds": args.seconds, "accounts": args.accounts},
        )
        while (await http.get(f"{sandbox.control_url}/hubs/storm")).json()["running"]:
            await asyncio.sleep(0.5)
        await asyncio.sleep(1.5)  # let the tail arrive
        duration = time.monotonic() - t0
        cpu1 = {p: cpu_seconds(p) for p in cpu0}
        times = (await http.get(f"{sandbox.control_url}/hubs/storm", params={"times": 1})).json()[
            "times"
        ]
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    naive_task.cancel()
    await naive.close()
    await naive_http.aclose()
    naive_bytes = naive.bytes_received - naive_start_bytes

    latencies = []
    frames = total_bytes = 0
    for per_client in received:
        frames += len(per_client)
        for t_recv, size, rows in per_client:
            total_bytes += size
            for row in rows:
                k = round((row[1] - 10000) * 100)
                if 0 <= k < len(times):
                    latencies.append((t_recv - times[k]) * 1000)
    storm_seconds = args.seconds
    n = len(sessions)
    ours_bps = total_bytes / n / duration
    naive_bps = naive_bytes / duration
    return {
        "layer": layer,
        "events": len(times),
        "events_per_s": round(len(times) / storm_seconds),
        "naive_items": naive_items,
        "p50_ms": round(pct(latencies, 0.50), 1),
        "p99_ms": round(pct(latencies, 0.99), 1),
        "rows_measured": len(latencies),
        "frames_per_client_s": round(frames / n / duration, 2),
        "bytes_per_client_s": round(ours_bps),
        "naive_bytes_per_client_s": round(naive_bps),
        "ratio": round(naive_bps / ours_bps, 1) if ours_bps else None,
        "cpu_asgi_pct": round(100 * (cpu1[asgi_pid] - cpu0[asgi_pid]) / duration, 1),
        "cpu_bridge_pct": round(100 * (cpu1[bridge_pid] - cpu0[bridge_pid]) / duration, 1),
        "bridge_in_asgi": asgi_pid == bridge_pid,
        "mean_ms": round(statistics.fmean(latencies), 1) if latencies else None,
    }


# ------------------------------------------------------------------------ parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small and short (CI)")
    parser.add_argument("--layers", default="memory,redis")
    parser.add_argument("--accounts", type=int, default=None)
    parser.add_argument("--rate", type=float, default=None)
    parser.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--clients", type=int, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    defaults = (2000, 1000.0, 5.0, 10) if args.quick else (10000, 5000.0, 30.0, 50)
    for name, value in zip(("accounts", "rate", "seconds", "clients"), defaults, strict=True):
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.child:
        print("RESULT " + json.dumps(run_layer(args.child, args)), flush=True)
        return 0

    results = []
    for layer in [x for x in args.layers.split(",") if x]:
        var = tempfile.mkdtemp(prefix=f"bench-live-{layer}-")
        env = {
            **os.environ,
            "DASHBOARD_VAR_DIR": var,
            "DJANGO_ENV": "demo",
            "DJANGO_SETTINGS_MODULE": "dashboard.settings",
            "DATABASE_URL": f"sqlite:///{var}/db.sqlite3",
        }
        env.pop("REDIS_URL", None)
        if layer == "redis":
            import redis

            redis.Redis.from_url(REDIS_BENCH_URL).flushdb()
            env["REDIS_URL"] = REDIS_BENCH_URL
            env["REALTIME_BRIDGE"] = "external"
        else:
            env["REALTIME_BRIDGE"] = "in-process"
        cmd = [
            sys.executable,
            __file__,
            "--child",
            layer,
            "--accounts",
            str(args.accounts),
            "--rate",
            str(args.rate),
            "--seconds",
            str(args.seconds),
            "--clients",
            str(args.clients),
        ]
        out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        line = next((x for x in out.stdout.splitlines() if x.startswith("RESULT ")), None)
        if line is None:
            print(out.stdout[-3000:], out.stderr[-3000:], file=sys.stderr)
            return 1
        result = json.loads(line[7:])
        results.append(result)
        print(
            f"{layer:>6}: {result['events']} events ({result['events_per_s']}/s) → "
            f"{args.clients} clients x 50 rows: latency p50 {result['p50_ms']} ms, "
            f"p99 {result['p99_ms']} ms; {result['frames_per_client_s']} frames/s and "
            f"{result['bytes_per_client_s']} B/s per client (naive "
            f"{result['naive_bytes_per_client_s']} B/s, ratio {result['ratio']}x); CPU "
            f"ASGI {result['cpu_asgi_pct']} %"
            + ("" if result["bridge_in_asgi"] else f", bridge {result['cpu_bridge_pct']} %")
        )
    worst = max(results, key=lambda r: r["p99_ms"])
    summary = {
        "ratio": min(r["ratio"] for r in results),
        "p50_ms": max(r["p50_ms"] for r in results),
        "p99_ms": worst["p99_ms"],
        "accounts": args.accounts,
        "rate": args.rate,
        "seconds": args.seconds,
        "clients": args.clients,
        "layers": results,
    }
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
