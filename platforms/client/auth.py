"""OAuth2 client credentials as an ``httpx.Auth`` flow (sync and async from one class).

* OIDC discovery (``{authority}/.well-known/openid-configuration``) is fetched once per
  authority per process and cached.
* The token is fetched with ``grant_type=client_credentials`` (secret in the form, or
  HTTP Basic with ``client_secret_basic``) and refreshed when fewer than
  ``refresh_skew`` seconds remain.
* Single flight: threads share a ``threading.Lock``; coroutines share an
  ``asyncio.Lock`` *per event loop* (an asyncio lock binds to the loop it was first used
  on, and Django/Channels/Celery may run several loops in one process).
* A 401 on an API call forces one refresh and resends the request once (the server
  rejects unauthenticated requests before running them, so this is safe for writes).

The discovery and token requests are *yielded* from the auth flow, so httpx sends them
with the same client, pool and transport as the API calls (sync or async) and the token
logic below is written once, sans-IO.
"""

from __future__ import annotations

import asyncio
import base64
import threading
import time
import weakref
from collections.abc import Generator
from urllib.parse import quote

import httpx

from .config import PlatformConfig
from .errors import AuthenticationFailed

__all__ = ["ClientCredentialsAuth", "clear_discovery_cache"]

_DISCOVERY: dict[str, dict] = {}
_DISCOVERY_LOCK = threading.Lock()

TokenFlow = Generator[httpx.Request, httpx.Response, str]


def clear_discovery_cache() -> None:
    with _DISCOVERY_LOCK:
        _DISCOVERY.clear()


class ClientCredentialsAuth(httpx.Auth):
    """Bearer tokens from the platform's identity server, refreshed before they expire."""

    def __init__(self, config: PlatformConfig, *, refresh_skew: float | None = None) -> None:
        self._authority = config.authority
        self._client_id = config.client_id
        self._secret = config.client_secret
        self._scope = config.scope
        self._basic = config.token_auth_method == "client_secret_basic"  # noqa: S105
        self._skew = config.token_refresh_skew if refresh_skew is None else refresh_skew
        self._token: tuple[str, float, int] | None = None  # (token, expires_at, generation)
        self._generation = 0
        self._thread_lock = threading.Lock()
        self._loop_locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock]
        self._loop_locks = weakref.WeakKeyDictionary()
        self._loop_locks_guard = threading.Lock()
        self.tokens_fetched = 0

    def __repr__(self) -> str:  # never show the secret or the token
        return (
            f"ClientCredentialsAuth(authority={self._authority!r}, client_id={self._client_id!r})"
        )

    # ------------------------------------------------------------------ state

    def _fresh(self) -> tuple[str, float, int] | None:
        token = self._token
        if token is not None and token[1] - time.monotonic() > self._skew:
            return token
        return None

    @property
    def expires_in(self) -> float:
        token = self._token
        return 0.0 if token is None else max(0.0, token[1] - time.monotonic())

    def invalidate(self) -> None:
        """Forget the cached token (the next call fetches a new one)."""
        self._token = None

    def _loop_lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        with self._loop_locks_guard:
            lock = self._loop_locks.get(loop)
            if lock is None:
                lock = self._loop_locks[loop] = asyncio.Lock()
            return lock

    # ------------------------------------------------------------------ sans-IO token machine

    def _token_flow(self) -> TokenFlow:
        """Yield the discovery (if not cached) and token requests; return the access token."""
        doc = _DISCOVERY.get(self._authority)
        if doc is None:
            url = f"{self._authority}/.well-known/openid-configuration"
            response = yield httpx.Request("GET", url, headers={"Accept": "application/json"})
            try:
                doc = response.json()
                doc["token_endpoint"]
            except (ValueError, KeyError, TypeError):
                raise AuthenticationFailed(
                    message=(
                        f"OIDC discovery at {self._authority} answered HTTP "
                        f"{response.status_code} without a token_endpoint"
                    ),
                    operation="TokenRequest",
                    http_status=response.status_code,
                ) from None
            with _DISCOVERY_LOCK:
                _DISCOVERY[self._authority] = doc
        form = {"grant_type": "client_credentials"}
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/x-www-form-urlencoded",
        }
        if self._basic:
            pair = f"{quote(self._client_id, safe='')}:{quote(self._secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form["client_id"] = self._client_id
            form["client_secret"] = self._secret
        if self._scope:
            form["scope"] = self._scope
        started = time.monotonic()
        response = yield httpx.Request("POST", doc["token_endpoint"], data=form, headers=headers)
        try:
            body = response.json()
        except ValueError:
            body = None
        if response.status_code != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            description = body.get("error_description") if isinstance(body, dict) else None
            raise AuthenticationFailed(
                code="AuthenticationFailed",
                message=(
                    f"the identity server {self._authority} refused client "
                    f"{self._client_id!r}: HTTP {response.status_code}"
                    + (f" {error}" if error else "")
                    + (f" ({description})" if description else "")
                ),
                operation="TokenRequest",
                http_status=response.status_code,
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise AuthenticationFailed(
                message=f"the identity server {self._authority} sent no access_token",
                operation="TokenRequest",
                http_status=response.status_code,
            )
        expires_in = body.get("expires_in")
        if not isinstance(expires_in, int | float) or expires_in <= 0:
            expires_in = 3600
        self._generation += 1
        self._token = (token, started + float(expires_in), self._generation)
        self.tokens_fetched += 1
        return token

    @staticmethod
    def _set(request: httpx.Request, token: tuple[str, float, int]) -> None:
        request.headers["Authorization"] = f"Bearer {token[0]}"

    # ------------------------------------------------------------------ sync

    @staticmethod
    def _drive_sync(flow: TokenFlow) -> Generator[httpx.Request, httpx.Response, None]:
        request = next(flow)
        while True:
            response = yield request
            response.read()
            try:
                request = flow.send(response)
            except StopIteration:
                return

    def sync_auth_flow(self, request: httpx.Request):
        token = self._fresh()
        if token is None:
            with self._thread_lock:
                token = self._fresh()
                if token is None:
                    yield from self._drive_sync(self._token_flow())
                    token = self._token
        self._set(request, token)
        response = yield request
        if response.status_code != 401:
            return
        with self._thread_lock:
            current = self._token
            if current is None or current[2] == token[2]:
                yield from self._drive_sync(self._token_flow())
            token = self._token
        self._set(request, token)
        yield request

    # ------------------------------------------------------------------ async
    # An async generator cannot ``yield from``; the token machine is relayed by hand.

    async def async_auth_flow(self, request: httpx.Request):
        token = self._fresh()
        if token is None:
            async with self._loop_lock():
                token = self._fresh()
                if token is None:
                    flow = self._token_flow()
                    sub = next(flow)
                    while True:
                        response = yield sub
                        await response.aread()
                        try:
                            sub = flow.send(response)
                        except StopIteration:
                            break
                    token = self._token
        self._set(request, token)
        response = yield request
        if response.status_code != 401:
            return
        async with self._loop_lock():
            current = self._token
            if current is None or current[2] == token[2]:
                flow = self._token_flow()
                sub = next(flow)
                while True:
                    response = yield sub
                    await response.aread()
                    try:
                        sub = flow.send(response)
                    except StopIteration:
                        break
            token = self._token
        self._set(request, token)
        yield request
