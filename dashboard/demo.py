"""The demo stack: sandbox, ASGI server, Celery workers and beat as supervised child processes
(each one that exits is started again), on mirrors filled before the URL is printed."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

from platforms.coverage.services import register_sandbox_coverage_accounts
from platforms.mirror.models import SnapshotKind
from platforms.mirror.runs import execute_run, request_run
from platforms.models import TradePlatform
from platforms.sandbox.process import SandboxInfo, start_sandbox
from platforms.services import register_sandbox_platforms

ROOT = Path(settings.BASE_DIR)


@dataclass
class DemoOptions:
    host: str = "127.0.0.1"
    port: int = 8000
    sandbox_port: int = 8100
    sidecar_port: int = 8101
    #: The LP bridge's port; None = the sidecar's + 1 (8102), or a free one when the
    #: sidecar's is picked freely (0), so parallel demos and tests never collide.
    bridge_port: int | None = None
    users: int = 2000
    beat: bool = True


#: First wait before a child that exited is started again; doubled after each quick exit.
RESTART_FIRST_SECONDS = 1.0
RESTART_MAX_SECONDS = 30.0
#: A child that ran this long before it exited had recovered: its next restart waits the least.
RESTART_STABLE_SECONDS = 60.0


@dataclass
class Child:
    """One supervised process: how to start it, and when it may be started again."""

    name: str
    args: list[str]
    log: Path
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    restarts: int = 0
    backoff: float = 0.0
    restart_at: float | None = None

    def start(self) -> subprocess.Popen:
        with open(self.log, "a") as log:  # the child keeps its own copy of the handle
            self.process = process = subprocess.Popen(
                [sys.executable, *self.args],
                cwd=ROOT,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
            )
        self.started_at = time.monotonic()
        return process

    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None


class Supervisor:
    """Keeps every child running: one that exits is started again after a growing pause, with
    a line saying so, while the others (and the page) carry on.

    A demo that stopped everything when one worker died (as it did after a minute under load)
    is no demo; and Celery's acknowledge-late messages plus the trading sweeper mean a worker
    started again finishes what the dead one left.
    """

    def __init__(self, log_dir: Path, say: Callable[[str], None]) -> None:
        self.log_dir = log_dir
        self.say = say
        self.children: list[Child] = []

    def spawn(self, name: str, args: list[str]) -> Child:
        child = Child(name, args, self.log_dir / f"{name}.log")
        child.start()
        self.children.append(child)
        return child

    def check(self, now: float | None = None) -> None:
        """Notice children that exited and start those whose pause is over."""
        now = time.monotonic() if now is None else now
        for child in self.children:
            if child.restart_at is None and not child.running():
                ran = now - child.started_at
                child.backoff = (RESTART_FIRST_SECONDS if ran >= RESTART_STABLE_SECONDS
                                 or not child.backoff
                                 else min(child.backoff * 2, RESTART_MAX_SECONDS))
                child.restart_at = now + child.backoff
                code = child.process.returncode if child.process is not None else None
                if child.process is not None:  # what it leaves behind (a prefork pool) goes too
                    with suppress(ProcessLookupError, PermissionError):
                        os.killpg(child.process.pid, signal.SIGKILL)
                self.say(f"{child.name} exited with {code} after {ran:.0f} s; restarting in "
                         f"{child.backoff:.0f} s (restart {child.restarts + 1}); see {child.log}")
            elif child.restart_at is not None and now >= child.restart_at:
                child.restart_at = None
                child.restarts += 1
                process = child.start()
                self.say(f"{child.name} restarted (pid {process.pid})")

    def stop(self) -> None:
        """SIGTERM to every child, newest first; SIGKILL to any still running after 15 s."""
        for child in reversed(self.children):
            if child.running() and child.process is not None:
                child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for child in self.children:
            if child.process is None:
                continue
            try:
                child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.process.kill()
                child.process.wait()


def _bridge_port(options: DemoOptions) -> int:
    if options.bridge_port is not None:
        return options.bridge_port
    return options.sidecar_port + 1 if options.sidecar_port else 0


def ensure_demo_login() -> tuple[str, str]:
    """Create the demo staff login once; its password is generated and kept under ``var/``."""
    path = Path(settings.VAR_DIR) / "demo-login.json"
    user_model = get_user_model()
    if path.exists():
        saved = json.loads(path.read_text())
        if user_model.objects.filter(username=saved["username"]).exists():
            return saved["username"], saved["password"]
    username, password = "demo", secrets.token_urlsafe(12)
    user, _ = user_model.objects.get_or_create(username=username)
    user.is_staff = user.is_superuser = True
    user.set_password(password)
    user.save()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"username": username, "password": password}, fh)
    return username, password


def fill_mirrors(platforms: list[TradePlatform], say: Callable[[str], None]) -> None:
    """Read every platform into the mirror once, before the URL is printed.

    Without it a new user saw "0 accounts" until the first scheduled incremental (a minute
    for MT4, five for MT5). The sandbox starts afresh each time, so this runs on every start;
    the queued message the run also sends finds it finished and does nothing.
    """
    for platform in platforms:
        started = time.monotonic()
        run, _ = request_run(platform, SnapshotKind.FULL)
        try:
            run = execute_run(run.pk) or run
        except Exception as exc:  # recorded on the run; the schedule tries again
            say(f"  {platform.name}: the first snapshot failed ({type(exc).__name__}); the "
                "scheduled runs will fill the mirror")
            continue
        say(f"  {platform.name}: {run.rows_read} rows read into the mirror "
            f"({run.state}, {time.monotonic() - started:.1f} s)")


def _restart_sandbox(options: DemoOptions, old: SandboxInfo, log_dir: Path) -> SandboxInfo:
    """The sandbox again on the ports it had (what the workers and the page know)."""
    port = urlsplit(old.base_url).port or 0
    sidecar = urlsplit(old.sidecar_url).port or 0
    bridge = urlsplit(old.bridge_url).port or 0
    sandbox = start_sandbox("--users", str(options.users), "--seed", "1", port=port,
                            sidecar_port=sidecar, bridge_port=bridge, workdir=log_dir)
    platforms = register_sandbox_platforms(sandbox)
    register_sandbox_coverage_accounts(sandbox, platforms)
    return sandbox


def run(options: DemoOptions, say: Callable[[str], None]) -> int:
    """Start everything, fill the mirrors, print where to go, keep every child running, and
    stop it all cleanly on Ctrl-C or SIGTERM."""
    log_dir = Path(settings.VAR_DIR) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)
    username, password = ensure_demo_login()

    def _terminate(signum, frame):
        raise KeyboardInterrupt

    # Explicit for SIGINT too: a demo started in the background inherits SIGINT as ignored.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    supervisor = Supervisor(log_dir, say)
    sandbox = None
    try:
        sandbox = start_sandbox(
            "--users", str(options.users), "--seed", "1",
            port=options.sandbox_port, sidecar_port=options.sidecar_port,
            bridge_port=_bridge_port(options), workdir=log_dir,
        )
        platforms = register_sandbox_platforms(sandbox)
        coverage = register_sandbox_coverage_accounts(sandbox, platforms)
        say("Reading both platforms into the mirror…")
        fill_mirrors(platforms, say)
        supervisor.spawn("web", [
            "-m", "uvicorn", "dashboard.asgi:application",
            "--host", options.host, "--port", str(options.port), "--no-access-log",
        ])
        other_queues = [q for q in settings.CELERY_WORKER_QUEUES if q != "trading"]
        supervisor.spawn("worker", [
            "-m", "celery", "-A", "dashboard", "worker", "-l", "info",
            "-Q", ",".join(other_queues), "-c", "2", "-n", "worker@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ])
        # trading is I/O-bound: its own worker, a thread pool (settings CELERY_TRADING_WORKER_*)
        supervisor.spawn("trading-worker", [
            "-m", "celery", "-A", "dashboard", "worker", "-l", "info", "-Q", "trading",
            "-P", settings.CELERY_TRADING_WORKER_POOL,
            "-c", str(settings.CELERY_TRADING_WORKER_CONCURRENCY), "-n", "trading@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ])
        if settings.REALTIME_BRIDGE == "external":  # with Redis: the bridge is its own process
            supervisor.spawn("stream", ["manage.py", "stream"])
        if options.beat:
            supervisor.spawn("beat", [
                "-m", "celery", "-A", "dashboard", "beat", "-l", "info",
                "--pidfile", str(log_dir / "beat.pid"),
            ])
        url = f"http://{options.host}:{options.port}/"
        say(
            f"\nBroker back office demo is running: {url}\n"
            f"  log in as: {username} / {password}\n"
            f"  sandbox WebAPI: {sandbox.base_url} (sidecar {sandbox.sidecar_url}), "
            f"client {sandbox.client_id}\n"
            f"  LP bridge: {sandbox.bridge_url} ({len(coverage)} coverage accounts on "
            f"{sandbox.bridge_server})\n"
            f"  logs: {log_dir}\n"
            "Press Ctrl-C to stop.\n"
        )
        sandbox_backoff = RESTART_FIRST_SECONDS
        while True:
            supervisor.check()
            if sandbox.process.poll() is not None:
                say(f"the sandbox exited with {sandbox.process.returncode}; restarting it on "
                    f"the same ports; see {log_dir / 'sandbox-ready.log'}")
                try:
                    sandbox = _restart_sandbox(options, sandbox, log_dir)
                    say("sandbox restarted")
                    sandbox_backoff = RESTART_FIRST_SECONDS
                except RuntimeError as exc:
                    say(f"the sandbox did not start ({exc}); trying again in "
                        f"{sandbox_backoff:.0f} s")
                    time.sleep(sandbox_backoff)
                    sandbox_backoff = min(sandbox_backoff * 2, RESTART_MAX_SECONDS)
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("Stopping…")
        return 0
    finally:
        supervisor.stop()
        if sandbox is not None:
            sandbox.stop()
        say("Stopped.")
