"""The embedded identity server: OIDC discovery and client-credentials tokens."""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
import time
from urllib.parse import parse_qs, unquote_plus

from starlette.requests import Request
from starlette.responses import JSONResponse

SCOPES = ["webapi", "webapi.read", "webapi.write"]


class TokenStore:
    def __init__(self, client_id: str, client_secret: str, lifetime: int) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.lifetime = lifetime
        self.tokens: dict[str, float] = {}
        self.issued = 0

    def issue(self) -> str:
        token = "sbx." + secrets.token_urlsafe(32)
        self.tokens[token] = time.time() + self.lifetime
        self.issued += 1
        if len(self.tokens) > 10000:
            now = time.time()
            self.tokens = {t: exp for t, exp in self.tokens.items() if exp > now}
        return token

    def valid(self, token: str) -> bool:
        exp = self.tokens.get(token)
        return exp is not None and exp > time.time()

    def revoke_all(self) -> int:
        n = len(self.tokens)
        self.tokens.clear()
        return n

    def check_authorization(self, header: str | None) -> bool:
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        return scheme.lower() == "bearer" and self.valid(token.strip())


def discovery(authority: str) -> dict:
    return {
        "issuer": authority,
        "jwks_uri": f"{authority}/.well-known/openid-configuration/jwks",
        "token_endpoint": f"{authority}/connect/token",
        "grant_types_supported": ["client_credentials"],
        "response_types_supported": ["token"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "scopes_supported": ["openid", "profile", "email", "offline_access", "roles", *SCOPES],
        "claims_supported": ["sub", "client_id", "scope"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }


def _err(error: str, description: str, status: int = 400) -> JSONResponse:
    return JSONResponse(
        {"error": error, "error_description": description},
        status_code=status,
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )


async def token_endpoint(request: Request, store: TokenStore) -> JSONResponse:
    raw = (await request.body()).decode("utf-8", "replace")
    form = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
    client_id = form.get("client_id")
    client_secret = form.get("client_secret")
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            decoded = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, ValueError, UnicodeDecodeError):
            return _err("invalid_client", "Malformed Basic credentials", 401)
        user, _, pw = decoded.partition(":")
        client_id, client_secret = unquote_plus(user), unquote_plus(pw)
    grant = form.get("grant_type")
    if not grant:
        return _err("invalid_request", "grant_type is required")
    if grant != "client_credentials":
        return _err("unsupported_grant_type", f"grant_type '{grant}' is not supported")
    if not (
        client_id
        and client_secret
        and hmac.compare_digest(client_id, store.client_id)
        and hmac.compare_digest(client_secret, store.client_secret)
    ):
        return _err("invalid_client", "Unknown client or wrong secret", 401 if auth else 400)
    requested = form.get("scope", "").split()
    bad = [s for s in requested if s not in SCOPES]
    if bad:
        return _err("invalid_scope", f"Unknown scope(s): {' '.join(bad)}")
    scope = " ".join(requested) if requested else " ".join(SCOPES)
    return JSONResponse(
        {
            "access_token": store.issue(),
            "token_type": "Bearer",
            "expires_in": store.lifetime,
            "scope": scope,
        },
        headers={"Cache-Control": "no-store", "Pragma": "no-cache"},
    )
