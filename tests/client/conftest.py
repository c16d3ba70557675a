"""Fixtures for the manager API client tests: real sandbox process, fresh breakers."""

from __future__ import annotations

import httpx
import pytest

from platforms.client import (
    AsyncManagerClient,
    ManagerClient,
    PlatformConfig,
)
from platforms.client.auth import clear_discovery_cache
from platforms.transport import reset_breakers
from tests.sandbox_process import SandboxInfo
from tests.support.control import SandboxControl
from tests.support.transport import FAST_RETRY, fresh_breaker


def make_config(sandbox: SandboxInfo, *, kind: str = "MT4", **overrides) -> PlatformConfig:
    values = dict(
        platform_id=sandbox.mt4_id if kind == "MT4" else sandbox.mt5_id,
        kind=kind,
        api_base_url=sandbox.base_url,
        sidecar_base_url=sandbox.sidecar_url,
        authority=sandbox.authority,
        client_id=sandbox.client_id,
        client_secret=sandbox.client_secret,
    )
    values.update(overrides)
    return PlatformConfig(**values)


class Recorder:
    """httpx event hooks that remember every request and response (token calls too)."""

    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []
        self.responses: list[httpx.Response] = []

    def on_request(self, request: httpx.Request) -> None:
        self.requests.append(request)

    def on_response(self, response: httpx.Response) -> None:
        self.responses.append(response)

    async def aon_request(self, request: httpx.Request) -> None:
        self.on_request(request)

    async def aon_response(self, response: httpx.Response) -> None:
        self.on_response(response)

    def hooks(self) -> dict:
        return {"request": [self.on_request], "response": [self.on_response]}

    def ahooks(self) -> dict:
        return {"request": [self.aon_request], "response": [self.aon_response]}

    def statuses(self) -> list[int]:
        return [r.status_code for r in self.responses]

    def api_requests(self) -> list[httpx.Request]:
        return [r for r in self.requests if "/api/v2/" in r.url.path]


class Sandbox(SandboxControl):
    """Thin helper over the manager API's sandbox control API."""

    def control(self, method: str, path: str, **kwargs) -> httpx.Response:
        return self.info.control(method, path, **kwargs)

    def clear_faults(self) -> None:
        self.info.clear_faults()

    def stats(self) -> dict:
        return self.control("GET", "/stats").json()

    def reset_stats(self) -> None:
        self.info.control("DELETE", "/stats")

    def revoke_tokens(self) -> None:
        self.info.control("POST", "/tokens/revoke")

    def sidecar(self, up: bool) -> None:
        self.info.control("POST", "/sidecar", json={"up": up})


@pytest.fixture(autouse=True)
def _isolated_state():
    """Each test gets its own breakers and discovery cache."""
    reset_breakers()
    clear_discovery_cache()
    yield
    reset_breakers()


@pytest.fixture
def sb(clean_sandbox: SandboxInfo) -> Sandbox:
    helper = Sandbox(clean_sandbox)
    helper.reset_stats()
    yield helper
    helper.sidecar(True)


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def manager_client(sb: Sandbox, recorder: Recorder):
    config = make_config(sb.info)
    with ManagerClient(
        config,
        breaker=fresh_breaker(config.platform_id),
        sidecar_breaker=fresh_breaker(config.platform_id + "/sidecar"),
        retry=FAST_RETRY,
        event_hooks=recorder.hooks(),
    ) as c:
        yield c


@pytest.fixture
async def async_manager_client(sb: Sandbox, recorder: Recorder):
    config = make_config(sb.info)
    async with AsyncManagerClient(
        config,
        breaker=fresh_breaker(config.platform_id),
        sidecar_breaker=fresh_breaker(config.platform_id + "/sidecar"),
        retry=FAST_RETRY,
        event_hooks=recorder.ahooks(),
    ) as c:
        yield c
