"""``manage.py demo`` brings up the whole product on embedded defaults and stops it cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _children_of(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(entry.name))
    return found


def _descendants_of(pid: int) -> set[int]:
    """Children, their children and so on (a prefork worker's pool processes too)."""
    found: set[int] = set()
    frontier = {pid}
    while frontier:
        frontier = set().union(*map(_children_of, frontier)) - found
        found |= frontier
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_demo_serves_both_sandbox_platforms_healthy_and_stops_cleanly(tmp_path):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["DASHBOARD_VAR_DIR"] = str(tmp_path / "var")
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(port), "--sandbox-port", "0",
         "--sidecar-port", "0", "--users", "200"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = []
    try:
        deadline = time.monotonic() + 120
        login = None
        while login is None:
            line = demo.stdout.readline()
            assert line or demo.poll() is None, "demo exited early:\n" + "".join(output)
            output.append(line)
            login = re.search(r"log in as: (\S+) / (\S+)", line)
            assert time.monotonic() < deadline, "".join(output)
        username, password = login.groups()
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, timeout=30) as http:
            for _ in range(100):  # uvicorn may still be binding
                try:
                    form = http.get("/accounts/login/")
                    break
                except httpx.ConnectError:
                    time.sleep(0.2)
            token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text).group(1)
            signed_in = http.post("/accounts/login/", data={
                "username": username, "password": password, "csrfmiddlewaretoken": token,
            })
            assert signed_in.status_code == 302
            overview = http.get("/").text
            assert "Sandbox MT4" in overview and "Sandbox MT5" in overview
            health_urls = re.findall(r'hx-get="(/platforms/\d+/health/)"', overview)
            assert len(health_urls) == 2
            for url in health_urls:
                health = http.get(url, headers={"HX-Request": "true"}).text
                assert 'data-state="ok"' in health, health
                assert re.search(r"\d+ ms", health)
        children = _children_of(demo.pid)
        assert len(children) >= 4  # sandbox, web, worker, beat
        worker_log = Path(env["DASHBOARD_VAR_DIR"]) / "logs" / "worker.log"
        for _ in range(100):
            if "ready" in worker_log.read_text():
                break
            time.sleep(0.2)
        assert "ready" in worker_log.read_text()
        processes = _descendants_of(demo.pid)
        assert len(processes) > len(children)  # the prefork worker's pool as well
    finally:
        demo.send_signal(signal.SIGINT)
        rest, _ = demo.communicate(timeout=60)
        output.append(rest)
    assert demo.returncode == 0, "".join(output)
    assert "Stopped." in "".join(output)
    assert not [pid for pid in processes if _alive(pid)]
