"""Start the sandbox trade server as a real child process on loopback ports.

Used by the demo command, the test fixtures and the benchmarks: the sandbox is always a
separate process talking real HTTP, never an in-process fake.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]  # the repository (the sandbox runs with -m from there)


@dataclass
class SandboxInfo:
    """What the sandbox wrote to its ready file, plus a handle on its control endpoint."""

    base_url: str
    sidecar_url: str
    authority: str
    client_id: str
    client_secret: str
    mt4_id: str
    mt5_id: str
    control_url: str
    process: subprocess.Popen = field(repr=False)
    #: The LP terminal bridge (coverage accounts): base URL ``…/mt4/client`` and its controls.
    bridge_url: str = ""
    bridge_control_url: str = ""
    bridge_api_key: str = field(default="", repr=False)
    bridge_server: str = ""
    bridge_logins: list[int] = field(default_factory=list)
    bridge_password: str = field(default="", repr=False)

    def control(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Call the loopback-only control API (``/_sandbox/...``) and insist it succeeded."""
        response = httpx.request(method, f"{self.control_url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response

    def clear_faults(self) -> None:
        self.control("DELETE", "/faults")

    def bridge_control(self, method: str, path: str, **kwargs) -> httpx.Response:
        """Call the bridge port's loopback control API (``/_sandbox/bridge/...``)."""
        response = httpx.request(method, f"{self.bridge_control_url}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start_sandbox(
    *args: str, timeout: float = 60.0, port: int = 0, sidecar_port: int = 0,
    bridge_port: int = 0, workdir: Path | None = None,
) -> SandboxInfo:
    """Run ``python -m platforms.sandbox --port P --sidecar-port S --bridge-port B ...`` and
    wait until ready. The sandbox stops by itself once this process is gone (killed outright,
    it could not stop it).

    Port 0 picks a free port. The process's output goes to ``sandbox.log`` beside the ready
    file in ``workdir`` (a new temporary folder by default).
    """
    workdir = workdir or Path(tempfile.mkdtemp(prefix="sandbox-"))
    ready = workdir / "sandbox-ready.json"
    ready.unlink(missing_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "platforms.sandbox",
        "--port",
        str(port),
        "--sidecar-port",
        str(sidecar_port),
        "--bridge-port",
        str(bridge_port),
        "--ready-file",
        str(ready),
        "--exit-with-parent",
        str(os.getpid()),
        *args,
    ]
    log = open(ready.with_suffix(".log"), "w")  # noqa: SIM115 - lives as long as the process
    process = subprocess.Popen(
        cmd, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=os.environ, start_new_session=True
    )
    deadline = time.monotonic() + timeout
    while not ready.exists():
        if process.poll() is not None:
            raise RuntimeError(
                f"sandbox exited with {process.returncode}:\n"
                + ready.with_suffix(".log").read_text()
            )
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("sandbox did not become ready in time")
        time.sleep(0.05)
    info = json.loads(ready.read_text())
    return SandboxInfo(
        base_url=info["base_url"],
        sidecar_url=info["sidecar_url"],
        authority=info["authority"],
        client_id=info["client_id"],
        client_secret=info["client_secret"],
        mt4_id=info["platforms"]["MT4"],
        mt5_id=info["platforms"]["MT5"],
        control_url=info["control_url"],
        process=process,
        bridge_url=info["bridge_url"],
        bridge_control_url=info["bridge_control_url"],
        bridge_api_key=info["bridge_api_key"],
        bridge_server=info["bridge_server"],
        bridge_logins=info["bridge_logins"],
        bridge_password=info["bridge_password"],
    )
