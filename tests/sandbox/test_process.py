"""Process-level contract: --fault specs, --record-exchanges, ready file, clean SIGINT exit."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.sandbox.conftest import Api, fetch_token
from tests.sandbox_process import start_sandbox


@pytest.fixture(scope="module")
def recording():
    info = start_sandbox(
        "--users",
        "40",
        "--seed",
        "3",
        "--tick-rate",
        "0",
        "--record-exchanges",
        "--fault",
        "ServerTime:error=Busy:times=1",
        "--fault",
        "UsersSnapshot:latency=0.2:port=sidecar",
    )
    yield info
    info.stop()
    assert info.process.returncode == 0


def test_fault_flags_and_exchange_recording(recording) -> None:
    api = Api(recording, fetch_token(recording))
    rules = recording.control("GET", "/faults").json()["rules"]
    assert {r["operation"] for r in rules} == {"ServerTime", "UsersSnapshot"}
    first = api.mt4("GET", "ServerTime")
    assert api.err(first)["code"] == "Busy" and first.headers["x-request-outcome"] == "not-started"
    assert api.ok(api.mt4("GET", "ServerTime"))
    assert api.ok(api.mt4("GET", "UsersSnapshot", sidecar=True, params={"limit": 2}))
    out = recording.control("GET", "/exchanges").json()
    ex = out["exchanges"]
    paths = [(e["port"], e["method"], e["path"]) for e in ex]
    assert ("main", "POST", "/connect/token") in paths
    assert ("sidecar", "GET", f"/api/v2/MT4/{recording.mt4_id}/UsersSnapshot") in paths
    last = ex[-1]
    assert last["status"] == 200 and '"data"' in last["responseBody"] and last["query"] == "limit=2"
    assert {
        "seq",
        "port",
        "method",
        "path",
        "query",
        "requestHeaders",
        "requestBody",
        "status",
        "responseHeaders",
        "responseBody",
    } <= set(last)
    later = recording.control("GET", f"/exchanges?since={out['next']}").json()
    assert later["exchanges"] == []
    api.close()


def test_same_seed_same_data(recording) -> None:
    other = start_sandbox("--users", "40", "--seed", "3", "--tick-rate", "0")
    try:
        a = Api(recording, fetch_token(recording))
        b = Api(other, fetch_token(other))
        ua = a.ok(a.mt4("GET", "UsersRequest"))
        ub = b.ok(b.mt4("GET", "UsersRequest"))
        assert [(u["login"], u["name"], u["group"]) for u in ua] == [
            (u["login"], u["name"], u["group"]) for u in ub
        ]
        assert (
            a.ok(a.mt4("GET", "TickInfoLast"))[0]["bid"]
            == b.ok(b.mt4("GET", "TickInfoLast"))[0]["bid"]
        )
        assert a.ok(a.mt4("GET", "TradesUserHistory/100005")) == b.ok(
            b.mt4("GET", "TradesUserHistory/100005")
        )
    finally:
        other.stop()
    assert other.process.returncode == 0


def test_control_api_rejects_bad_input(recording) -> None:
    r = httpx.post(f"{recording.control_url}/market/tick", json={"count": 0})
    assert r.status_code == 400
    r = httpx.get(f"{recording.control_url}/accounts/1")
    assert r.status_code == 404


def test_secrets_never_reach_the_sandbox_log(tmp_path) -> None:
    """Printed for a person at a terminal only: the log the demo and tests keep has no secret."""
    info = start_sandbox("--users", "5", "--tick-rate", "0",
                         "--client-secret", "client-secret-under-test",
                         "--bridge-api-key", "bridge-key-under-test", workdir=tmp_path)
    try:
        assert info.client_secret == "client-secret-under-test" and fetch_token(info)
    finally:
        info.stop()
    log = (tmp_path / "sandbox-ready.log").read_text()
    assert "client secret" in log and "bridge key" in log  # the lines are there …
    for secret in ("client-secret-under-test", "bridge-key-under-test", info.bridge_password):
        assert secret not in log  # … their values are not


def _gone(pid: int) -> bool:
    """Exited: reaped, or a zombie nobody has reaped yet (its ports are closed either way)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_a_sandbox_whose_parent_was_killed_stops_by_itself(tmp_path) -> None:
    """A test run or demo killed outright (SIGKILL, an OOM kill) leaves no sandbox holding
    ports: the sandbox notices that the process that started it is gone, and stops."""
    starter = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from platforms.sandbox.process import start_sandbox\n"
        "info = start_sandbox('--users', '5', '--tick-rate', '0', workdir=Path(sys.argv[1]))\n"
        "print(info.process.pid, info.base_url, flush=True)\n"
        "time.sleep(300)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", starter, str(tmp_path)],
                              cwd=Path(__file__).resolve().parents[2], stdout=subprocess.PIPE,
                              text=True)
    try:
        pid, base_url = parent.stdout.readline().split()
        assert httpx.get(f"{base_url}/_sandbox/faults", timeout=5).status_code == 200
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 10
        while not _gone(int(pid)):
            assert time.monotonic() < deadline, "the orphaned sandbox is still running"
            time.sleep(0.1)
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{base_url}/_sandbox/faults", timeout=5)
        assert "parent" in (tmp_path / "sandbox-ready.log").read_text()  # it said why
    finally:
        parent.kill()
