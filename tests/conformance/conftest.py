"""Fixtures for the conformance suite: a recording sandbox, a bearer token, vendor-SDK clients.

The shared ``sandbox`` fixture (``tests/conftest.py``) is reused when it records exchanges
(``--record-exchanges``); otherwise this folder starts its own recording sandbox with the same
population, so the judge always has every exchange to look at.
"""

from __future__ import annotations

import httpx
import pytest
from cplugin_webapi_sdk import CPluginWebApiClient

from tests.sandbox_process import SandboxInfo, start_sandbox

SANDBOX_ARGS = ("--users", "300", "--seed", "7", "--tick-rate", "0", "--record-exchanges")


def _records_exchanges(info: SandboxInfo) -> bool:
    """True when a probe request shows up in the control API's ``/exchanges`` log."""
    try:
        before = httpx.get(f"{info.control_url}/exchanges", params={"since": 0}, timeout=10)
        if before.status_code != 200:
            return False
        since = before.json().get("next", 0)
        httpx.get(f"{info.base_url}/api/TradePlatforms", timeout=10)  # 401: no token
        after = httpx.get(f"{info.control_url}/exchanges", params={"since": since}, timeout=10)
        return after.status_code == 200 and any(
            ex.get("path", "").startswith("/api/TradePlatforms")
            for ex in after.json().get("exchanges", [])
        )
    except (httpx.HTTPError, ValueError):
        return False


@pytest.fixture(scope="session")
def conformance_sandbox(request: pytest.FixtureRequest) -> SandboxInfo:
    """A sandbox that records every exchange (the shared one when it already does)."""
    shared: SandboxInfo = request.getfixturevalue("sandbox")
    if _records_exchanges(shared):
        shared.clear_faults()
        yield shared
        return
    own = start_sandbox(*SANDBOX_ARGS)
    try:
        yield own
    finally:
        own.stop()


@pytest.fixture
def csb(conformance_sandbox: SandboxInfo) -> SandboxInfo:
    """The conformance sandbox with no faults injected before and after the test."""
    conformance_sandbox.clear_faults()
    yield conformance_sandbox
    conformance_sandbox.clear_faults()


@pytest.fixture(scope="session")
def bearer_token(conformance_sandbox: SandboxInfo) -> str:
    """One client-credentials token, fetched the way the SDKs do (OIDC discovery first)."""
    info = conformance_sandbox
    discovery = httpx.get(f"{info.authority}/.well-known/openid-configuration", timeout=30)
    discovery.raise_for_status()
    answer = httpx.post(
        discovery.json()["token_endpoint"],
        data={
            "grant_type": "client_credentials",
            "client_id": info.client_id,
            "client_secret": info.client_secret,
        },
        headers={"Accept": "application/json"},
        timeout=30,
    )
    answer.raise_for_status()
    return answer.json()["access_token"]


@pytest.fixture(scope="session")
def sdk(conformance_sandbox: SandboxInfo) -> CPluginWebApiClient:
    """The vendor SDK pointed at the sandbox's main port."""
    info = conformance_sandbox
    client = CPluginWebApiClient(
        env="custom",
        api_base_url=info.base_url,
        authority=info.authority,
        client_id=info.client_id,
        client_secret=info.client_secret,
    )
    yield client
    client.close()


@pytest.fixture(scope="session")
def sidecar_sdk(conformance_sandbox: SandboxInfo) -> CPluginWebApiClient:
    """A second SDK client on the x86 sidecar port (the SDK sends everything to one base URL)."""
    info = conformance_sandbox
    client = CPluginWebApiClient(
        env="custom",
        api_base_url=info.sidecar_url,
        authority=info.authority,
        client_id=info.client_id,
        client_secret=info.client_secret,
    )
    yield client
    client.close()
