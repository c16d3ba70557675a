"""Soak: the demo under 8 concurrent crawling clients for 10 minutes keeps every process alive.

    python bench/soak.py [--minutes 10] [--clients 8] [--users 2000] [--quick]

Starts ``manage.py demo`` as a subprocess on free ports with its own ``var/`` in a temporary
folder (embedded defaults: SQLite and the filesystem broker, the layout that stopped after one
minute under a hostile crawl), waits for its URL, then:

1. **baseline**: one logged-in staff client crawls alone for a short while (requests per second);
2. **soak**: ``--clients`` logged-in staff clients crawl at once for ``--minutes``. Each follows
   every link it finds on the pages it reads (``href`` and ``hx-get``, the partials with
   ``HX-Request``), never logging out, and one request in four carries a hostile query string
   (negative and huge pages, SQL and HTML in searches, NUL bytes, bad dates, 4 KB values) or
   asks for a path that does not exist. Only GETs: a crawl must not move money.

It counts requests, 5xx answers, transport errors (refused, reset, timed out), the restarts the
demo's supervisor reports (its "… restarting in …" lines), samples the demo's process tree for
peak memory, and checks at the end that the demo and every one of its children are alive;
then stops the demo with SIGINT and checks that it stopped cleanly.

Last line, one JSON object: ``requests``, ``errors_5xx``, ``transport_errors``, ``restarts``,
``p50_ms`` / ``p99_ms`` (soak phase, all requests), ``peak_rss_mb`` (the demo's whole process
tree, summed, sampled every second), ``all_alive``, ``clean_stop``, ``pages`` (distinct paths
seen), and ``ratio``: soak requests per second divided by the baseline's single client. On the
2-core CI machine the server is the bottleneck, so ``ratio`` near 1 means eight clients get the
throughput one gets (no collapse under contention); well below 1 means contention costs
throughput. ``--quick`` (a smoke run, ~35 s): 200 accounts, 5 s baseline, 25 s soak.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._common import percentile  # noqa: E402

LINK = re.compile(r'(?:href|hx-get)="(/[^"#]*)"')
#: never followed: the crawl stays logged in, reads nothing static, and writes nothing
SKIP = ("/accounts/logout", "/static/", "/logout", "/media/")
HOSTILE_QUERIES = [
    "page=-1", "page=0", "page=99999999999999999999", "page=abc", "sort='%20OR%201=1--",
    "sort=-password", "q=%3Cscript%3Ealert(1)%3C/script%3E", "q=%00", "q=%27%22%5C",
    "login=-5", "login=1e309", "level_max=NaN", "level_min=inf", "from=2020-13-45",
    "to=9999-99-99", "group[]=x", "platform=../../etc/passwd", "q=" + "A" * 4096,
    "per_page=100000", "since=%FF%FE", "format=json&_=%E2%80%AE",
]
HOSTILE_PATHS = ["/nope/", "/platforms/999999/accounts/", "/platforms/abc/",
                 "/platforms/1/accounts/-1/", "/%2e%2e/%2e%2e/etc/passwd", "/admin/../.env"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children_of(pid: int) -> set[int]:
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


def tree_of(pid: int) -> set[int]:
    found, frontier = {pid}, {pid}
    while frontier:
        frontier = set().union(*map(children_of, frontier)) - found
        found |= frontier
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def rss_mb(pids: set[int]) -> float:
    total = 0
    for pid in pids:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except OSError:
            continue
    return total / 1024


class Demo:
    """``manage.py demo`` as a subprocess; its output read by a thread."""

    def __init__(self, users: int, var_dir: Path) -> None:
        self.port = free_port()
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
        env["DASHBOARD_VAR_DIR"] = str(var_dir)
        env["PYTHONUNBUFFERED"] = "1"
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "demo", "--port", str(self.port), "--sandbox-port",
             "0", "--sidecar-port", "0", "--users", str(users)],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.lines.append(line)
            if "restart" in line or "exited" in line:
                print(f"demo: {line.rstrip()}", file=sys.stderr)

    def text(self) -> str:
        return "".join(self.lines)

    def login(self, timeout: float = 300) -> tuple[str, str]:
        deadline = time.monotonic() + timeout
        while not (found := re.search(r"log in as: (\S+) / (\S+)", self.text())):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the demo did not start:\n" + self.text())
            time.sleep(0.2)
        return found[1], found[2]

    def restarts(self) -> int:
        return len(re.findall(r"restarting in|restarting it on", self.text()))

    def stop(self) -> bool:
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            return False
        time.sleep(0.5)  # the reader thread takes the last lines
        return self.process.returncode == 0 and "Stopped." in self.text()


class Crawl:
    """What all clients of one phase found and measured."""

    def __init__(self, seed: int) -> None:
        self.lock = threading.Lock()
        self.paths: list[str] = ["/"]
        self.known: set[str] = {"/"}
        self.times: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors_5xx: list[str] = []
        self.transport_errors: list[str] = []
        self.rng = random.Random(seed)

    def learn(self, html: str) -> None:
        with self.lock:
            for path in LINK.findall(html):
                path = path.replace("&amp;", "&")
                if path.startswith(SKIP) or path in self.known or len(self.known) > 20_000:
                    continue
                self.known.add(path)
                self.paths.append(path)

    def pick(self, rng: random.Random) -> tuple[str, bool]:
        """A path to read: a new one while there are some, else any; sometimes made hostile."""
        with self.lock:
            path = self.paths[-1 - rng.randrange(min(20, len(self.paths)))] if rng.random() < 0.5 \
                else rng.choice(self.paths)
        roll = rng.random()
        if roll < 0.05:
            return rng.choice(HOSTILE_PATHS), False
        if roll < 0.25:
            glue = "&" if "?" in path else "?"
            return f"{path}{glue}{rng.choice(HOSTILE_QUERIES)}", False
        return path, rng.random() < 0.2  # a fifth as htmx asks for a partial

    def record(self, path: str, status: int, seconds: float) -> None:
        with self.lock:
            self.times.append(seconds)
            self.statuses[status] = self.statuses.get(status, 0) + 1
            if status >= 500:
                self.errors_5xx.append(f"{status} {path}")


def signed_in_client(base: str, username: str, password: str) -> httpx.Client:
    http = httpx.Client(base_url=base, timeout=30)
    for _ in range(150):  # uvicorn may still be binding
        try:
            form = http.get("/accounts/login/")
            break
        except httpx.TransportError:
            time.sleep(0.2)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form.text)[1]
    answer = http.post("/accounts/login/", data={
        "username": username, "password": password, "csrfmiddlewaretoken": token})
    if answer.status_code != 302:
        raise SystemExit(f"login refused: {answer.status_code}")
    return http


def crawler(crawl: Crawl, http: httpx.Client, until: float, seed: int) -> None:
    rng = random.Random(seed)
    while time.monotonic() < until:
        path, partial = crawl.pick(rng)
        headers = {"HX-Request": "true"} if partial else {}
        started = time.monotonic()
        try:
            answer = http.get(path, headers=headers)
        except httpx.TransportError as exc:
            with crawl.lock:
                crawl.transport_errors.append(f"{type(exc).__name__} {path}")
            time.sleep(0.5)
            continue
        crawl.record(path, answer.status_code, time.monotonic() - started)
        if answer.status_code == 200 and "text/html" in answer.headers.get("content-type", ""):
            crawl.learn(answer.text)


def run_phase(base: str, login: tuple[str, str], clients: int, seconds: float,
              seed: int, crawl: Crawl | None = None) -> tuple[Crawl, float]:
    crawl = crawl or Crawl(seed)
    sessions = [signed_in_client(base, *login) for _ in range(clients)]
    started = time.monotonic()
    threads = [threading.Thread(target=crawler, args=(crawl, http, started + seconds, seed + i))
               for i, http in enumerate(sessions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    for http in sessions:
        http.close()
    return crawl, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--baseline-seconds", type=float, default=30.0)
    parser.add_argument("--quick", action="store_true", help="smoke run, ~35 s of load")
    args = parser.parse_args()
    if args.quick:
        args.minutes, args.users, args.baseline_seconds = 25 / 60, 200, 5.0

    with tempfile.TemporaryDirectory(prefix="soak-") as scratch:
        demo = Demo(args.users, Path(scratch) / "var")
        clean_stop = False
        try:
            login = demo.login()
            base = f"http://127.0.0.1:{demo.port}"
            print(f"demo up on {base}; baseline, 1 client, {args.baseline_seconds:.0f} s",
                  file=sys.stderr)
            baseline, baseline_elapsed = run_phase(base, login, 1, args.baseline_seconds, 1)
            baseline_rps = len(baseline.times) / baseline_elapsed
            children_before = children_of(demo.process.pid)

            peak = [0.0]
            sampling = threading.Event()

            def sample() -> None:
                while not sampling.wait(1.0):
                    peak[0] = max(peak[0], rss_mb(tree_of(demo.process.pid)))

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            print(f"soak: {args.clients} clients, {args.minutes:g} min", file=sys.stderr)
            # the soak starts from every page the baseline found
            soak = Crawl(2)
            soak.paths, soak.known = list(baseline.paths), set(baseline.known)
            soak, elapsed = run_phase(base, login, args.clients, args.minutes * 60, 2, soak)
            sampling.set()
            sampler.join()

            children_after = children_of(demo.process.pid)
            all_alive = (demo.process.poll() is None
                         and all(alive(pid) for pid in children_after)
                         and len(children_after) >= len(children_before))
            restarts = demo.restarts()
        finally:
            clean_stop = demo.stop()
        rps = len(soak.times) / elapsed
        for line in (soak.errors_5xx + soak.transport_errors)[:20]:
            print(f"error: {line}", file=sys.stderr)
        if restarts:
            print(demo.text()[-4000:], file=sys.stderr)
        pages = len({urlsplit(p).path for p in soak.known})
        print(json.dumps({
            "requests": len(soak.times),
            "errors_5xx": len(soak.errors_5xx),
            "transport_errors": len(soak.transport_errors),
            "restarts": restarts,
            "p50_ms": round(statistics.median(soak.times) * 1000, 1),
            "p99_ms": round(percentile(soak.times, 0.99) * 1000, 1),
            "peak_rss_mb": round(peak[0], 1),
            "all_alive": all_alive,
            "clean_stop": clean_stop,
            "pages": pages,
            "statuses": dict(sorted(soak.statuses.items())),
            "rps": round(rps, 1),
            "baseline_rps": round(baseline_rps, 1),
            "ratio": round(rps / baseline_rps, 2),
            "clients": args.clients,
            "minutes": round(args.minutes, 2),
        }))


if __name__ == "__main__":
    main()
