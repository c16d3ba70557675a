"""OAuth2 client credentials as an ``httpx.Auth`` flow (sync and async from one class).

* OIDC discovery (``{authority}/.well-known/openid-configuration``) is fetched once per
  authority per process and cached.
* The token is fetched with ``grant_type=client_credentials`` (secret in the form, or
  HTTP Basic with ``client_secret_basic``) and refreshed when fewer than
  ``refresh_skew`` seconds remain.
* Single flight, and a 401 on an API call forcing one refresh and one resend, come from
  :class:`platforms.transport.RefreshingAuth`; this module is the token's wire only.

The discovery and token requests are *yielded* from the token flow, so httpx sends them
with the same client, pool and transport as the API calls (sync or async).
"""

from __future__ import annotations

import base64
import threading
import time
from urllib.parse import quote

import httpx

from platforms.transport import Credential, CredentialFlow, RefreshingAuth

from .config import PlatformConfig
from .errors import AuthenticationFailed

__all__ = ["ClientCredentialsAuth", "clear_discovery_cache"]

_DISCOVERY: dict[str, dict] = {}
_DISCOVERY_LOCK = threading.Lock()


def clear_discovery_cache() -> None:
    with _DISCOVERY_LOCK:
        _DISCOVERY.clear()


class ClientCredentialsAuth(RefreshingAuth):
    """Bearer tokens from the platform's identity server, refreshed before they expire."""

    def __init__(self, config: PlatformConfig, *, refresh_skew: float | None = None) -> None:
        super().__init__(
            margin=config.token_refresh_skew if refresh_skew is None else refresh_skew
        )
        self._authority = config.authority
        self._client_id = config.client_id
        self._secret = config.client_secret
        self._scope = config.scope
        self._basic = config.token_auth_method == "client_secret_basic"  # noqa: S105
        self.tokens_fetched = 0

    def __repr__(self) -> str:  # never show the secret or the token
        return (
            f"ClientCredentialsAuth(authority={self._authority!r}, client_id={self._client_id!r})"
        )

    # ------------------------------------------------------------------ sans-IO token machine

    def _token_flow(self) -> CredentialFlow:
        """Yield the discovery (if not cached) and token requests; return the token."""
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
        self.tokens_fetched += 1
        return self._issue(token, started + float(expires_in))

    # A token near its end and a token refused are both answered with a new token.
    _refresh_flow = _renew_flow = _token_flow

    def _stamp(self, request: httpx.Request, credential: Credential) -> None:
        request.headers["Authorization"] = f"Bearer {credential.value}"
