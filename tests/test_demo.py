"""``manage.py demo`` brings up the whole product on embedded defaults, keeps it up, and stops it
cleanly."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx

from tests.support.polling import wait_until

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


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class _Output:
    """The demo's output, read by a thread: the test waits for lines without blocking on it."""

    def __init__(self, process: subprocess.Popen) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen) -> None:
        for line in process.stdout:
            self.lines.append(line)

    def text(self) -> str:
        return "".join(self.lines)

    def wait_for(self, pattern: str, process: subprocess.Popen, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while True:
            found = re.search(pattern, self.text())
            if found:
                return found
            assert process.poll() is None, "demo exited early:\n" + self.text()
            assert time.monotonic() < deadline, f"no {pattern!r} in:\n" + self.text()
            time.sleep(0.1)


def test_demo_fills_the_mirrors_supervises_its_children_and_stops_cleanly(tmp_path):
    """One demo: both platforms mirrored before the URL is printed (a first start shows
    data); a worker killed outright is started again with a log line while the page keeps
    answering; Ctrl-C still stops every process."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    env["DASHBOARD_VAR_DIR"] = str(tmp_path / "var")
    demo = subprocess.Popen(
        [sys.executable, "manage.py", "demo", "--port", str(port), "--sandbox-port", "0",
         "--sidecar-port", "0", "--users", "200"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    output = _Output(demo)
    processes: set[int] = set()
    try:
        username, password = output.wait_for(r"log in as: (\S+) / (\S+)", demo, 120).groups()
        before_url = output.text().split("demo is running")[0]
        assert re.search(r"Sandbox MT4: [1-9]\d* rows read into the mirror \(succeeded", before_url)
        assert re.search(r"Sandbox MT5: [1-9]\d* rows read into the mirror \(succeeded", before_url)
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
            counts = re.findall(r"<dt>Accounts</dt><dd[^>]*>([\d,]+)</dd>", overview)
            assert len(counts) >= 2 and all(int(c.replace(",", "")) > 0 for c in counts), counts
            assert "run a snapshot" not in overview  # no platform's mirror is empty
            health_urls = re.findall(r'hx-get="(/platforms/\d+/health/)"', overview)
            assert len(health_urls) == 2
            for url in health_urls:
                health = http.get(url, headers={"HX-Request": "true"}).text
                assert 'data-state="ok"' in health, health
                assert re.search(r"\d+ ms", health)
            children = _children_of(demo.pid)
            assert len(children) >= 4  # sandbox, web, worker, beat
            worker_log = Path(env["DASHBOARD_VAR_DIR"]) / "logs" / "worker.log"
            wait_until(lambda: "ready" in worker_log.read_text(), "the worker to be ready",
                       timeout=30, interval=0.2)
            [worker] = [pid for pid in children if " -Q default" in _cmdline(pid)]
            assert len(_descendants_of(demo.pid)) > len(children)  # the prefork pool as well

            os.kill(worker, signal.SIGKILL)  # as the OOM killer, or the JSONDecodeError, did
            output.wait_for(r"worker exited with -9 .*restarting in \d+ s \(restart 1\)",
                            demo, 30)
            assert http.get("/").status_code == 200  # the page keeps answering meanwhile
            restarted = int(output.wait_for(r"worker restarted \(pid (\d+)\)", demo, 30)[1])
            assert restarted != worker and restarted in _children_of(demo.pid)
            wait_until(lambda: worker_log.read_text().count("ready.") >= 2,
                       "the restarted worker to be ready", timeout=60, interval=0.2)
            assert demo.poll() is None and _alive(worker) is False
        processes = _descendants_of(demo.pid)
    finally:
        demo.send_signal(signal.SIGINT)
        demo.wait(timeout=60)
    output._thread.join(timeout=5)
    assert demo.returncode == 0, output.text()
    assert "Stopped." in output.text()
    assert not [pid for pid in processes if _alive(pid)]
