"""The production layout as docs/deploy.md describes it, started the way an operator starts it:
``manage.py release``, then the ``Procfile`` under honcho with ``DJANGO_ENV=production`` on
PostgreSQL and Redis (TLS off through ``DJANGO_TLS=off``: plain HTTP on loopback). Chromium
signs in, watches a live margin frame arrive through ``manage.py stream`` and the Redis channel
layer, and deposits through the ``trading`` worker; ``/metrics`` answers for the whole layout;
then honcho stops every process it started, and none is left.

The layout gets a database of its own (created and dropped here) on the run's PostgreSQL server
(``DATABASE_URL`` when it names one, else the local server's default address) and a Redis
database of its own: it is database-independent by construction, so CI runs it once, in the
README's test command (pass 1), and leaves it out of its PostgreSQL + Redis pass.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx
import pytest
from cryptography.fernet import Fernet
from playwright.sync_api import expect
from prometheus_client.parser import text_string_to_metric_families

from tests.live.pages import _state, _wait
from tests.sandbox_process import start_sandbox
from tests.support.polling import wait_until
from tests.support.processes import alive, descendants_of, free_port

ROOT = Path(__file__).resolve().parents[2]
#: the PostgreSQL server the layout's own database is made on
_RUN_DATABASE = os.environ.get("DATABASE_URL", "")
DATABASE_URL = (_RUN_DATABASE if _RUN_DATABASE.startswith(("postgres://", "postgresql://"))
                else "postgres://postgres@127.0.0.1:5432/postgres")
#: The layout's Redis database on the run's Redis server (the run itself uses another);
#: ``PRODUCTION_LAYOUT_REDIS_URL`` overrides it.
LAYOUT_REDIS_DB = 12
DEPOSIT_LOGIN = 100023
METRICS_TOKEN = secrets.token_urlsafe(24)

pytestmark = pytest.mark.timeout(300)

timings: dict[str, float] = {}


def _layout_redis_url() -> str:
    if os.environ.get("PRODUCTION_LAYOUT_REDIS_URL"):
        return os.environ["PRODUCTION_LAYOUT_REDIS_URL"]
    run_redis = os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379"
    return re.sub(r"/\d*$", "", run_redis.rstrip("/")) + f"/{LAYOUT_REDIS_DB}"


def _server_url(database: str) -> str:
    parts = urlsplit(DATABASE_URL)
    return urlunsplit(parts._replace(path="/" + database))


def _admin_sql(statement: str) -> None:
    import psycopg

    with psycopg.connect(_server_url("postgres").replace("postgresql://", "postgres://"),
                         autocommit=True) as connection:
        connection.execute(statement)


class Layout:
    """The running layout: its URL, environment, honcho process and log."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.password = secrets.token_urlsafe(16)
        self.database = f"layout_{os.getpid()}_{secrets.token_hex(3)}"
        self.redis_url = _layout_redis_url()
        self.log = tmp / "honcho.log"
        self.honcho: subprocess.Popen | None = None
        self.processes: set[int] = set()
        keep = {k: v for k, v in os.environ.items() if not k.startswith(
            ("DJANGO_", "DASHBOARD_", "FIELD_", "CELERY_", "REALTIME_", "METRICS_", "SENTRY_",
             "PROMETHEUS_", "TRADING_", "MANAGER_API_"))}
        keep.pop("DATABASE_URL", None)
        keep.pop("REDIS_URL", None)
        self.env = {
            **keep,
            "PATH": f"{Path(sys.executable).parent}:{keep.get('PATH', '')}",
            "DJANGO_ENV": "production",
            "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
            "FIELD_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
            "DJANGO_TLS": "off",
            "DASHBOARD_REQUIRE_2FA": "false",  # the TOTP step has tests of its own
            "DASHBOARD_VAR_DIR": str(tmp / "var"),
            "DATABASE_URL": _server_url(self.database),
            "REDIS_URL": self.redis_url,
            "DJANGO_LOG_LEVEL": "INFO",  # honcho's log (in a failure's message) says what happened
            "METRICS_TOKEN": METRICS_TOKEN,
            "PROMETHEUS_MULTIPROC_DIR": str(tmp / "prometheus"),
            # small, for a shared 2-core CI box; production keeps the Procfile's defaults
            "WEB_CONCURRENCY": "2",
            "CELERY_TRADING_WORKER_CONCURRENCY": "4",
            "CELERY_REPORTING_CONCURRENCY": "1",
            "CELERY_DEFAULT_CONCURRENCY": "1",
        }

    def manage(self, *args: str, timeout: float = 180, **env: str) -> str:
        result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT,
                                env={**self.env, **env}, capture_output=True, text=True,
                                timeout=timeout)
        assert result.returncode == 0, (f"manage.py {' '.join(args)} exited with "
                                        f"{result.returncode}:\n{result.stdout}{result.stderr}")
        return result.stdout

    def start(self) -> None:
        self.honcho = subprocess.Popen(
            [sys.executable, "-m", "honcho", "-f", str(ROOT / "Procfile"), "-d", str(ROOT),
             "start", "-p", str(self.port)],
            cwd=ROOT, env=self.env, stdout=self.log.open("w"), stderr=subprocess.STDOUT,
            start_new_session=True,  # our own process group: nothing leaks into the run's
        )

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def kill(self) -> None:
        """Everything honcho started, by pid: each process runs in a session of its own, so
        signalling honcho's group would leave them running (and consuming the layout's
        queues in the next run)."""
        assert self.honcho is not None
        processes = descendants_of(self.honcho.pid)
        self.honcho.send_signal(signal.SIGTERM)
        try:
            self.honcho.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.honcho.kill()
            self.honcho.wait()
        for pid in processes:
            if alive(pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)

    def stop(self) -> int:
        """SIGTERM to honcho, as a service manager stops it; it stops every process."""
        assert self.honcho is not None
        self.processes = descendants_of(self.honcho.pid)
        self.honcho.send_signal(signal.SIGTERM)
        try:
            return self.honcho.wait(timeout=40)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError("honcho did not stop within 40 s:\n"
                                 + self.output()[-4000:]) from None


@pytest.fixture(scope="module")
def layout(tmp_path_factory):
    import redis

    tmp = tmp_path_factory.mktemp("layout")
    layout = Layout(tmp)
    redis.Redis.from_url(layout.redis_url).flushdb()
    _admin_sql(f'CREATE DATABASE "{layout.database}"')
    started = time.monotonic()
    release = subprocess.Popen([sys.executable, "manage.py", "release"], cwd=ROOT,
                               env=layout.env, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True)
    sandbox = start_sandbox("--users", "200", "--seed", "5", "--tick-rate", "0")  # meanwhile
    try:
        out, _ = release.communicate(timeout=240)
        timings["release"] = time.monotonic() - started
        assert release.returncode == 0 and "release: done" in out, out
        info = {k: getattr(sandbox, k) for k in (
            "base_url", "sidecar_url", "authority", "client_id", "client_secret", "mt4_id",
            "mt5_id", "control_url", "bridge_url", "bridge_control_url", "bridge_api_key",
            "bridge_server", "bridge_logins", "bridge_password")}
        seeded = layout.manage("shell", "-c", (Path(__file__).parent / "seed_layout.py")
                               .read_text(), LAYOUT_SANDBOX=json.dumps(info),
                               LAYOUT_PASSWORD=layout.password)
        layout.pks = json.loads(seeded.strip().splitlines()[-1])
        layout.sandbox = sandbox
        started = time.monotonic()
        layout.start()

        def web_answers():
            assert layout.honcho.poll() is None, "honcho exited:\n" + layout.output()[-4000:]
            try:
                return httpx.get(layout.url + "/accounts/login/", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(web_answers, lambda: "web never answered:\n" + layout.output()[-4000:],
                   timeout=90, interval=0.2)
        timings["start"] = time.monotonic() - started
        yield layout
    finally:
        if layout.honcho is not None and layout.honcho.poll() is None:
            layout.kill()  # a failed test's leftovers only
        sandbox.stop()
        _admin_sql(f'DROP DATABASE IF EXISTS "{layout.database}" WITH (FORCE)')
        redis.Redis.from_url(layout.redis_url).flushdb()
        print("production layout timings (s):",
              {k: round(v, 1) for k, v in timings.items()})


def test_release_collects_hashed_compressed_static_files(layout):
    static = Path(layout.env["DASHBOARD_VAR_DIR"]) / "static"
    manifest = json.loads((static / "staticfiles.json").read_text())["paths"]
    hashed = manifest["dashboard/page.js"]
    assert re.fullmatch(r"dashboard/page\.[0-9a-f]{12}\.js", hashed), hashed
    assert (static / (hashed + ".gz")).exists()
    page = httpx.get(layout.url + "/accounts/login/").text
    assert f"/static/{hashed}" in page  # templates name the hashed file
    served = httpx.get(f"{layout.url}/static/{hashed}", headers={"Accept-Encoding": "gzip"})
    assert served.status_code == 200 and served.headers["content-encoding"] == "gzip"
    assert "immutable" in served.headers["cache-control"]
    # no finders in production: only what collectstatic wrote is served
    assert httpx.get(f"{layout.url}/static/dashboard/page.js").status_code == 200
    assert httpx.get(f"{layout.url}/static/dashboard/not-collected.js").status_code == 404


def test_chromium_sees_a_live_margin_frame_and_a_confirmed_deposit(layout, browser, artifacts):
    started = time.monotonic()
    mt4 = layout.pks[0]
    sandbox = layout.sandbox
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(layout.url + "/accounts/login/")
    page.fill("input[name=username]", "ops")
    page.fill("input[name=password]", layout.password)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login" not in url)

    # The margin monitor: hydrated, then live over the socket; a margin call pushed into the
    # platform's hub reaches the page through `manage.py stream` and the Redis channel layer.
    frames: list[str] = []
    page.on("websocket", lambda socket: socket.on(
        "framereceived", lambda frame: frames.append(str(frame))))
    page.goto(f"{layout.url}/platforms/{mt4}/margins/")
    _wait(page, lambda: _state(page) == "live", timeout=30, what="live indicator")
    # the page may show "live" from its server-rendered state before the socket subscribed:
    # its own snapshot frame comes after the subscription, so a pushed event cannot be missed
    _wait(page, lambda: any('"t":"snap"' in f and f'"p":{mt4},' in f for f in frames),
          timeout=15, what="the socket's snapshot frame")
    rows = page.eval_on_selector_all(
        f'[data-live-monitor="{mt4}"] tbody tr',
        "rows => rows.map(r => [r.dataset.liveAccount, +r.dataset.lt])")
    healthy = [key for key, level in rows if level == 0]
    assert healthy, rows
    key = healthy[-1]
    httpx.post(f"{sandbox.control_url}/hubs/margin-call",
               json={"login": int(key.split(":")[1])}).raise_for_status()
    selector = f'[data-live-account="{key}"]'
    try:
        _wait(page, lambda: "lt-1" in (page.get_attribute(selector, "class") or ""),
              timeout=10, what=f"the margin-call frame for {key}")
    except AssertionError as missed:
        raise AssertionError(f"{missed}\n{layout.output()[-8000:]}") from None
    timings["live frame"] = time.monotonic() - started

    # A deposit: review, re-authenticate, and the trading worker confirms it.
    before = Decimal(str(sandbox.control("GET", f"/accounts/{DEPOSIT_LOGIN}").json()["balance"]))
    page.goto(f"{layout.url}/platforms/{mt4}/accounts/{DEPOSIT_LOGIN}/operations/deposit/")
    page.fill("#id_amount", "42.50")
    page.fill("#id_comment", "production layout")
    page.click("#review-button")
    expect(page.locator("#confirmation")).to_be_visible(timeout=30_000)
    page.fill("#reauth input[name=password]", layout.password)
    page.click("#confirm-button")
    page.wait_for_url("**/operations/tasks/**")
    expect(page.locator("#task-state-value")).to_have_attribute("data-state", "confirmed",
                                                                timeout=30_000)
    page.screenshot(path=artifacts / "layout-deposit-confirmed.png", full_page=True)
    after = Decimal(str(sandbox.control("GET", f"/accounts/{DEPOSIT_LOGIN}").json()["balance"]))
    assert after == before + Decimal("42.50")
    timings["browser"] = time.monotonic() - started


def _scrape(layout) -> dict[str, list]:
    response = httpx.get(layout.url + "/metrics",
                         headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200, response.text
    return {family.name: family.samples
            for family in text_string_to_metric_families(response.text)}


def test_metrics_cover_the_whole_layout(layout):
    """After the browser test: every web worker's requests, the workers' task outcomes and
    the stream's hub state, read through one web process."""
    assert httpx.get(layout.url + "/metrics").status_code == 403
    assert httpx.get(layout.url + "/metrics",
                     headers={"Authorization": "Bearer wrong"}).status_code == 403
    families = _scrape(layout)
    views = {s.labels["view"] for s in families["dashboard_http_request_duration_seconds"]}
    assert {"dashboard:platform-margins", "dashboard:operation-task", "login"} <= views, views
    assert not [v for v in views if "/" in v and v != "<unresolved>"], views  # names, no paths
    outcomes = {(s.labels["task"], s.labels["outcome"]): s.value
                for s in families["dashboard_celery_tasks"] if s.name.endswith("_total")}
    assert any(task.startswith("platforms.trading.") and outcome == "success" and value >= 1
               for (task, outcome), value in outcomes.items()), outcomes
    states = {s.labels["state"]: s.value for s in families["dashboard_trade_tasks"]}
    assert states["confirmed"] == 1, states
    depth = {s.labels["queue"]: s.value for s in families["dashboard_celery_queue_depth"]}
    assert set(depth) == {"trading", "reporting", "default"}, depth
    up = {s.labels["platform"]: s.value for s in families["dashboard_realtime_hub_up"]}
    assert up[str(layout.pks[0])] == 1, up
    ages = {s.labels["platform"]: s.value
            for s in families["dashboard_realtime_last_frame_age_seconds"]}
    assert 0 <= ages[str(layout.pks[0])] < 30, ages
    breakers = {(s.labels["platform"], s.labels["state"]): s.value
                for s in families["dashboard_platform_breaker_state"]}
    assert breakers[(str(layout.pks[0]), "closed")] == 1, breakers
    errors = {s.labels["family"]: s.value for s in families["dashboard_metrics_collect_errors"]}
    assert len(errors) == 8 and not any(errors.values()), errors


def test_honcho_stops_every_process_cleanly(layout):
    started = time.monotonic()
    code = layout.stop()
    timings["stop"] = time.monotonic() - started
    output = layout.output()
    assert len(layout.processes) >= 6, layout.processes  # web, stream, 3 workers, beat (+pools)
    # honcho's own status for "stopped by SIGTERM" (128 + 15); each process's is 0
    assert code == 143, f"honcho exited with {code}:\n{output[-4000:]}"
    for name in ("web", "stream", "trading", "reporting", "default", "beat"):
        assert f"{name}.1 stopped (rc=0)" in output, f"{name} did not stop cleanly:\n{output}"
    assert not [pid for pid in layout.processes if alive(pid)], output[-4000:]
