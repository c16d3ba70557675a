"""Command line: build the simulator, serve the main port and the x86 sidecar in one loop."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import uvicorn

from . import MT4_PLATFORM_ID, MT5_PLATFORM_ID
from .app import build_app
from .bridge import BASE_PATH, DEFAULT_API_KEY, DEFAULT_PASSWORD, DEFAULT_SERVER, Bridge
from .bridge import faults as bridge_faults
from .bridge.app import build_bridge_app
from .faults import FaultError, parse_spec
from .simulator import Config, Sandbox


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m platforms.sandbox",
        description="Sandbox CPlugin WebAPI v2 trade server (MT4 + MT5).",
    )
    p.add_argument(
        "--host", default="127.0.0.1", help="listen address (loopback; default 127.0.0.1)"
    )
    p.add_argument("--port", type=int, default=8100, help="main API port (0 = pick a free port)")
    p.add_argument(
        "--sidecar-port", type=int, default=8101, help="x86 sidecar port (0 = free port)"
    )
    p.add_argument("--users", type=int, default=500, help="number of MT4 accounts (default 500)")
    p.add_argument(
        "--mt5-users",
        type=int,
        default=None,
        help="number of MT5 users (default users/10, 50..5000)",
    )
    p.add_argument("--seed", type=int, default=1, help="seed for everything random (default 1)")
    p.add_argument(
        "--tick-rate",
        type=float,
        default=4.0,
        help="market ticks per second; 0 freezes the market (default 4)",
    )
    p.add_argument("--token-lifetime", type=int, default=3600, help="token expires_in seconds")
    p.add_argument("--client-id", default="sandbox")
    p.add_argument("--client-secret", default="sandbox-secret")
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="OP:error=Busy[:rate=0.5][:times=3][:port=sidecar] | OP:latency=0.3 | "
        "OP:html502 (repeatable)",
    )
    p.add_argument(
        "--record-exchanges",
        action="store_true",
        help="keep every request/response for GET /_sandbox/exchanges",
    )
    p.add_argument("--ready-file", default=None, help="write connection info JSON here when ready")
    p.add_argument(
        "--exit-with-parent", type=int, default=None, metavar="PID",
        help="stop once process PID is no longer this one's parent (the demo and the tests pass "
        "their own: a parent killed outright leaves no sandbox holding its ports)",
    )
    bridge = p.add_argument_group("LP terminal bridge (coverage accounts, docs/coverage.md)")
    bridge.add_argument(
        "--bridge-port", type=int, default=8102, help="bridge API port (0 = free port)"
    )
    bridge.add_argument("--bridge-api-key", default=DEFAULT_API_KEY, help="workspace API key")
    bridge.add_argument(
        "--bridge-session-ttl", type=float, default=300.0,
        help="seconds a bridge session lives without a heartbeat (default 300)",
    )
    bridge.add_argument(
        "--bridge-exec-delay", type=float, default=0.2,
        help="seconds between an order task's submission and its execution (default 0.2)",
    )
    bridge.add_argument(
        "--bridge-fault",
        action="append",
        default=[],
        metavar="SPEC",
        help="OP:error=RateLimited[:retryAfter=2][:times=3][:rate=0.5] | "
        "OP:error=BridgeUnavailable | OP:latency=0.3 | events:drop (repeatable)",
    )
    return p


class _Server(uvicorn.Server):
    """A uvicorn server that leaves signal handling to us (two servers share one loop)."""

    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[override]
        yield


def _bind(host: str, port: int) -> socket.socket:
    # proto must be IPPROTO_TCP: asyncio only sets TCP_NODELAY on accepted sockets whose proto
    # says TCP, and without it Nagle + delayed ACK add 40 ms to every keep-alive answer.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _server(app) -> _Server:
    config = uvicorn.Config(
        app,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        timeout_keep_alive=5,
    )
    return _Server(config)


def _shown(secret: str) -> str:
    """Secrets are printed for a person at a terminal only; when the output goes to a file
    (the demo's and the tests' logs) they are not, and the ready file carries them instead."""
    return secret if sys.stdout.isatty() else "(not shown: output is not a terminal)"


def _write_ready(path: str, info: dict) -> None:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".ready-", suffix=".tmp")
    with os.fdopen(fd, "w") as fh:
        json.dump(info, fh)
    os.replace(tmp, target)


async def serve(
    args: argparse.Namespace, faults: list[dict], bridge_rules: list[dict] | None = None
) -> int:
    t0 = time.monotonic()
    config = Config(
        host=args.host,
        port=args.port,
        sidecar_port=args.sidecar_port,
        users=args.users,
        seed=args.seed,
        tick_rate=args.tick_rate,
        token_lifetime=args.token_lifetime,
        client_id=args.client_id,
        client_secret=args.client_secret,
        faults=faults,
        record_exchanges=args.record_exchanges,
        mt5_users=args.mt5_users,
    )
    sb = Sandbox(config)
    bridge = Bridge(
        sb.market, seed=args.seed, api_key=args.bridge_api_key,
        session_ttl=args.bridge_session_ttl, exec_delay=args.bridge_exec_delay,
    )
    for rule in bridge_rules or []:
        bridge.faults.add(rule)
    build_s = time.monotonic() - t0

    main_sock = _bind(args.host, args.port)
    side_sock = _bind(args.host, args.sidecar_port)
    bridge_sock = _bind(args.host, args.bridge_port)
    main_port = main_sock.getsockname()[1]
    side_port = side_sock.getsockname()[1]
    sb.base_url = f"http://{args.host}:{main_port}"
    sb.sidecar_url = f"http://{args.host}:{side_port}"
    bridge_root = f"http://{args.host}:{bridge_sock.getsockname()[1]}"

    main_app = build_app(sb, "main")
    side_app = build_app(sb, "sidecar")

    main_server = _server(main_app)
    main_task = asyncio.create_task(main_server.serve(sockets=[main_sock]))
    side: dict = {"server": _server(side_app)}
    side["task"] = asyncio.create_task(side["server"].serve(sockets=[side_sock]))
    bridge_server = _server(build_bridge_app(bridge))
    bridge_task = asyncio.create_task(bridge_server.serve(sockets=[bridge_sock]))
    lock = asyncio.Lock()

    async def sidecar_control(up: bool) -> None:
        async with lock:
            if up == sb.sidecar_is_up:
                return
            if not up:
                side["server"].should_exit = True
                await side["task"]
                sb.sidecar_is_up = False
                return
            sock = _bind(args.host, side_port)
            side["server"] = _server(side_app)
            side["task"] = asyncio.create_task(side["server"].serve(sockets=[sock]))
            while not side["server"].started:
                if side["task"].done():
                    raise RuntimeError("sidecar failed to restart")
                await asyncio.sleep(0.01)
            sb.sidecar_is_up = True

    sb.sidecar_control = sidecar_control

    while not (main_server.started and side["server"].started and bridge_server.started):
        if main_task.done() or side["task"].done() or bridge_task.done():
            print("sandbox: a listener failed to start", file=sys.stderr)
            return 1
        await asyncio.sleep(0.01)

    info = {
        "base_url": sb.base_url,
        "sidecar_url": sb.sidecar_url,
        "authority": sb.base_url,
        "client_id": args.client_id,
        "client_secret": args.client_secret,
        "platforms": {"MT4": MT4_PLATFORM_ID, "MT5": MT5_PLATFORM_ID},
        "control_url": f"{sb.base_url}/_sandbox",
        "bridge_url": f"{bridge_root}{BASE_PATH}",
        "bridge_control_url": f"{bridge_root}/_sandbox/bridge",
        "bridge_api_key": args.bridge_api_key,
        "bridge_server": DEFAULT_SERVER,
        "bridge_logins": sorted(bridge.lp.accounts),
        "bridge_password": DEFAULT_PASSWORD,
    }
    print(
        f"Sandbox CPlugin WebAPI v2 ready in {time.monotonic() - t0:.2f}s "
        f"(state built in {build_s:.2f}s; {len(sb.mt4.accounts)} MT4 accounts, "
        f"{len(sb.mt4.trades)} open orders, {len(sb.mt5.users)} MT5 users)"
    )
    print(f"  base URL      {sb.base_url}")
    print(f"  sidecar URL   {sb.sidecar_url}")
    print(f"  authority     {sb.base_url}  (token endpoint {sb.base_url}/connect/token)")
    print(f"  client id     {args.client_id}")
    print(f"  client secret {_shown(args.client_secret)}")
    print(f"  MT4 platform  {MT4_PLATFORM_ID}")
    print(f"  MT5 platform  {MT5_PLATFORM_ID}")
    print(
        f"  control API   {sb.base_url}/_sandbox  (tick rate {args.tick_rate}/s, seed {args.seed})"
    )
    logins = sorted(bridge.lp.accounts)
    print(f"  LP bridge     {bridge_root}{BASE_PATH}  (control {bridge_root}/_sandbox/bridge)")
    print(f"  bridge key    {_shown(args.bridge_api_key)}")
    print(
        f"  coverage      server {DEFAULT_SERVER}, logins {logins[0]}-{logins[-1]}, "
        f"terminal password {_shown(DEFAULT_PASSWORD)}"
    )
    sys.stdout.flush()
    if args.ready_file:
        _write_ready(args.ready_file, info)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async def ticker() -> None:
        interval = 1.0 / args.tick_rate
        while True:
            await asyncio.sleep(interval)
            sb.tick(1)

    async def watch_parent(pid: int) -> None:
        while os.getppid() == pid:
            await asyncio.sleep(0.5)
        print(f"sandbox: parent {pid} is gone, stopping")
        stop.set()

    background = [asyncio.create_task(ticker())] if args.tick_rate > 0 else []
    if args.exit_with_parent is not None:
        background.append(asyncio.create_task(watch_parent(args.exit_with_parent)))
    await stop.wait()
    for task in background:
        task.cancel()
    main_server.should_exit = True
    side["server"].should_exit = True
    bridge_server.should_exit = True
    await asyncio.gather(main_task, side["task"], bridge_task, return_exceptions=True)
    print("sandbox: stopped")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.users < 0:
        parser.error("--users must be >= 0")
    if args.tick_rate < 0:
        parser.error("--tick-rate must be >= 0")
    if args.token_lifetime < 1:
        parser.error("--token-lifetime must be >= 1")
    if args.bridge_session_ttl <= 0 or args.bridge_exec_delay < 0:
        parser.error("--bridge-session-ttl must be > 0 and --bridge-exec-delay >= 0")
    try:
        faults = [parse_spec(spec) for spec in args.fault]
        bridge_rules = [bridge_faults.parse_spec(spec) for spec in args.bridge_fault]
    except FaultError as exc:
        parser.error(str(exc))
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        return asyncio.run(serve(args, faults, bridge_rules))
    except KeyboardInterrupt:
        return 0
