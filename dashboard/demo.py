"""The demo stack: sandbox, ASGI server, Celery worker and beat as supervised child processes."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command

from platforms.coverage.services import register_sandbox_coverage_accounts
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


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log: Path


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


def _spawn(name: str, args: list[str], log_dir: Path) -> Child:
    log = log_dir / f"{name}.log"
    process = subprocess.Popen(
        [sys.executable, *args],
        cwd=ROOT,
        stdout=open(log, "a"),  # noqa: SIM115 - handed to the child
        stderr=subprocess.STDOUT,
        start_new_session=True,  # Ctrl-C reaches only us; we stop children in order
    )
    return Child(name, process, log)


def _stop(children: list[Child], sandbox: SandboxInfo | None) -> None:
    for child in reversed(children):
        if child.process.poll() is None:
            child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + 15
    for child in children:
        try:
            child.process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()
    if sandbox is not None:
        sandbox.stop()


def run(options: DemoOptions, say: Callable[[str], None]) -> int:
    """Start everything, print where to go, and stop it all cleanly on Ctrl-C or SIGTERM."""
    log_dir = Path(settings.VAR_DIR) / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    call_command("migrate", interactive=False, verbosity=0)
    username, password = ensure_demo_login()

    def _terminate(signum, frame):
        raise KeyboardInterrupt

    # Explicit for SIGINT too: a demo started in the background inherits SIGINT as ignored.
    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    children: list[Child] = []
    sandbox = None
    try:
        sandbox = start_sandbox(
            "--users", str(options.users), "--seed", "1",
            port=options.sandbox_port, sidecar_port=options.sidecar_port,
            bridge_port=_bridge_port(options), workdir=log_dir,
        )
        platforms = register_sandbox_platforms(sandbox)
        coverage = register_sandbox_coverage_accounts(sandbox, platforms)
        children.append(_spawn("web", [
            "-m", "uvicorn", "dashboard.asgi:application",
            "--host", options.host, "--port", str(options.port), "--no-access-log",
        ], log_dir))
        other_queues = [q for q in settings.CELERY_WORKER_QUEUES if q != "trading"]
        children.append(_spawn("worker", [
            "-m", "celery", "-A", "dashboard", "worker", "-l", "info",
            "-Q", ",".join(other_queues), "-c", "2", "-n", "worker@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ], log_dir))
        # trading is I/O-bound: its own worker, a thread pool (settings CELERY_TRADING_WORKER_*)
        children.append(_spawn("trading-worker", [
            "-m", "celery", "-A", "dashboard", "worker", "-l", "info", "-Q", "trading",
            "-P", settings.CELERY_TRADING_WORKER_POOL,
            "-c", str(settings.CELERY_TRADING_WORKER_CONCURRENCY), "-n", "trading@%h",
            "--without-gossip", "--without-mingle", "--without-heartbeat",
        ], log_dir))
        if settings.REALTIME_BRIDGE == "external":  # with Redis: the bridge is its own process
            children.append(_spawn("stream", ["manage.py", "stream"], log_dir))
        if options.beat:
            children.append(_spawn("beat", [
                "-m", "celery", "-A", "dashboard", "beat", "-l", "info",
                "--pidfile", str(log_dir / "beat.pid"),
            ], log_dir))
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
        while True:
            for child in children:
                if child.process.poll() is not None:
                    say(f"{child.name} exited with {child.process.returncode}; see {child.log}")
                    return 1
            if sandbox.process.poll() is not None:
                say(f"the sandbox exited; see {log_dir / 'sandbox-ready.log'}")
                return 1
            time.sleep(0.5)
    except KeyboardInterrupt:
        say("Stopping…")
        return 0
    finally:
        _stop(children, sandbox)
        say("Stopped.")
