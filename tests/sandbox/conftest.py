"""Helpers for the sandbox tests: an authenticated httpx client bound to the fixture's process."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from functools import lru_cache
from typing import Any

import httpx
import pytest

from tests.conformance.openapi_judge import SPEC_PATH
from tests.sandbox_process import SandboxInfo

_logins = itertools.count(100050)


def fetch_token(info: SandboxInfo) -> str:
    r = httpx.post(
        f"{info.authority}/connect/token",
        data={
            "grant_type": "client_credentials",
            "client_id": info.client_id,
            "client_secret": info.client_secret,
        },
        timeout=10,
    )
    r.raise_for_status()
    return r.json()["access_token"]


class Api:
    """Thin wrapper: ``api.mt4("GET", "UsersRequest", params=...)`` → httpx.Response."""

    def __init__(self, info: SandboxInfo, token: str) -> None:
        self.info = info
        self.token = token
        self.http = httpx.Client(timeout=30, headers={"Authorization": f"Bearer {token}"})

    def mt4_url(self, action: str, *, sidecar: bool = False) -> str:
        base = self.info.sidecar_url if sidecar else self.info.base_url
        return f"{base}/api/v2/MT4/{self.info.mt4_id}/{action}"

    def mt5_url(self, action: str) -> str:
        return f"{self.info.base_url}/api/v2/MT5/{self.info.mt5_id}/{action}"

    def mt4(self, method: str, action: str, *, sidecar: bool = False, **kw: Any) -> httpx.Response:
        return self.http.request(method, self.mt4_url(action, sidecar=sidecar), **kw)

    def mt5(self, method: str, action: str, **kw: Any) -> httpx.Response:
        return self.http.request(method, self.mt5_url(action), **kw)

    def ok(self, response: httpx.Response) -> Any:
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["error"] is None, body
        return body["data"]

    def err(self, response: httpx.Response) -> dict:
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["error"] is not None, body
        assert "data" not in body or body["data"] is None
        assert len(body["meta"]["activityId"]) == 32
        return body["error"]

    def tx(self, body: dict, **kw: Any) -> httpx.Response:
        return self.mt4("POST", "TradeTransaction", json=body, **kw)

    def account(self, login: int) -> dict:
        return self.info.control("GET", f"/accounts/{login}").json()

    def close(self) -> None:
        self.http.close()


@pytest.fixture
def api(clean_sandbox: SandboxInfo) -> Iterator[Api]:
    client = Api(clean_sandbox, fetch_token(clean_sandbox))
    yield client
    client.close()


@pytest.fixture
def fresh_login(api: Api) -> int:
    """A login no other test in this session touches (each test mutates its own accounts)."""
    while True:
        login = next(_logins)
        state = api.info.control("GET", f"/accounts/{login}").json()
        if any(t["tradeCommand"] in ("Buy", "Sell") for t in state["openTrades"]):
            return login


@lru_cache(maxsize=1)
def spec() -> dict:
    return json.loads(SPEC_PATH.read_text())


def response_schema(method: str, action_path: str) -> dict:
    """The 200 JSON schema of ``/api/v2/<action_path>`` (``MT4/{tradePlatform}/X``)."""
    doc = spec()
    op = doc["paths"][f"/api/v2/{action_path}"][method.lower()]
    content = op["responses"]["200"]["content"]
    media = content.get("application/json") or next(iter(content.values()))
    return {**media["schema"], "components": doc["components"]}


def validate_envelope(method: str, action_path: str, body: Any) -> None:
    from openapi_schema_validator import OAS30Validator, oas30_format_checker

    # The document marks ``error`` as ``{allOf: [ApiError], nullable: true}`` (Swashbuckle's way of
    # saying "nullable reference"); openapi-schema-validator ignores ``nullable`` next to a bare
    # ``allOf``, so a literal ``"error": null`` (always serialised on success, per the reference)
    # is checked here separately rather than through that quirk.
    if isinstance(body, dict) and "error" in body and body["error"] is None:
        body = {k: v for k, v in body.items() if k != "error"}
    validator = OAS30Validator(
        response_schema(method, action_path), format_checker=oas30_format_checker
    )
    errors = sorted(validator.iter_errors(body), key=lambda e: list(e.absolute_path))
    assert not errors, "\n".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:10])
