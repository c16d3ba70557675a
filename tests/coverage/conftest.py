"""Fixtures for coverage: one sandbox whose LP bridge has short sessions, raw HTTP helpers
over its wire, and bridge-client configurations (breakers and retries come from
``tests.support.transport``)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from platforms.coverage.client import BridgeConfig
from platforms.transport import reset_breakers
from tests.sandbox_process import SandboxInfo, start_sandbox
from tests.support.control import SandboxControl

SESSION_TTL = 4.0
LOGIN = 900001


@pytest.fixture(scope="session")
def lp() -> SandboxInfo:
    """A sandbox of our own: frozen market, 4 s bridge sessions, tasks run 0.2 s after."""
    info = start_sandbox("--users", "20", "--seed", "5", "--tick-rate", "0",
                         "--bridge-session-ttl", str(SESSION_TTL),
                         "--bridge-exec-delay", "0.2")
    yield info
    info.stop()


class Wire(SandboxControl):
    """Raw HTTP over the bridge's wire (no client code), plus its control API."""

    def __init__(self, info: SandboxInfo) -> None:
        super().__init__(info)
        self.base = info.bridge_url
        self.http = httpx.Client(timeout=30)

    def key(self, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.info.bridge_api_key}", **extra}

    def open(self, login: int = LOGIN, **overrides: Any) -> str:
        body = {"accountId": f"acct-{login}", "server": self.info.bridge_server,
                "login": login, "password": self.info.bridge_password, **overrides}
        answer = self.http.post(f"{self.base}/session/open", json=body, headers=self.key())
        assert answer.status_code == 200, answer.text
        return answer.json()["sessionId"]

    def session_headers(self, session_id: str, **extra: str) -> dict[str, str]:
        return self.key(**{"x-session-id": session_id, **extra})

    def get(self, path: str, session_id: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(f"{self.base}{path}", headers=self.session_headers(session_id),
                             **kwargs)

    def write(self, method: str, path: str, session_id: str, body: Any = None,
              request_id: str | None = None) -> httpx.Response:
        headers = self.session_headers(session_id)
        if request_id is not None:
            headers["x-request-id"] = request_id
        return self.http.request(method, f"{self.base}{path}", json=body, headers=headers)

    def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.info.bridge_control(method, path, **kwargs)

    def state(self, login: int = LOGIN) -> dict[str, Any]:
        return self.control("GET", f"/accounts/{login}").json()

    def main_control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.info.control(method, path, **kwargs)


@pytest.fixture
def wire(lp: SandboxInfo) -> Wire:
    helper = Wire(lp)
    helper.control("DELETE", "/faults")
    helper.control("POST", "/execution", json={"paused": False})
    helper.control("DELETE", "/stats")
    yield helper
    helper.control("DELETE", "/faults")
    helper.control("POST", "/execution", json={"paused": False})
    helper.http.close()


@pytest.fixture(autouse=True)
def _fresh_breakers():
    reset_breakers()
    yield
    reset_breakers()


def bridge_config(info: SandboxInfo, login: int = LOGIN, **overrides: Any) -> BridgeConfig:
    values: dict[str, Any] = dict(
        base_url=info.bridge_url, api_key=info.bridge_api_key, account_id=f"acct-{login}",
        server=info.bridge_server, login=login, password=info.bridge_password,
        heartbeat_margin=1.0, timeout=10.0,
    )
    values.update(overrides)
    return BridgeConfig(**values)
