"""The bridge session as an ``httpx.Auth`` flow: API key, session open → heartbeat → reopen.

Every call carries ``Authorization: Bearer <api-key>`` and ``x-session-id``. The flow opens
a session on first use (``POST /session/open``), sends a heartbeat when fewer than
``heartbeat_margin`` seconds are left, and after a ``401`` (expired, revoked or released
session) opens a new one and resends the request once. A 401 is answered before anything
runs, so resending is safe for writes too (they also keep their ``x-request-id``).

Written once, sans-IO, on :class:`platforms.transport.RefreshingAuth` (which holds the single
flight and the 401 → renew → resend): the open and heartbeat requests are *yielded*, so httpx
sends them over the same pool (sync or async). This module is the session's wire only.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import httpx
import msgspec

from platforms.transport import Credential, CredentialFlow, RefreshingAuth

from . import records as r
from .config import BridgeConfig
from .errors import InvalidResponse
from .interpret import error_from_answer

__all__ = ["BridgeSessionAuth", "key_headers"]

SESSION_PATH = "bridge_session_path"  # request extension: a path template with {session}


def key_headers(config: BridgeConfig) -> dict[str, str]:
    return {"Authorization": f"Bearer {config.api_key}", "Accept": "application/json"}


def _deadline(expires_at: datetime) -> float:
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=UTC)
    return time.monotonic() + (expires_at - datetime.now(UTC)).total_seconds()


class BridgeSessionAuth(RefreshingAuth):
    """API key + bridge session for every request of one coverage account's client."""

    def __init__(self, config: BridgeConfig) -> None:
        super().__init__(margin=config.heartbeat_margin)
        self._config = config
        self.sessions_opened = 0
        self.heartbeats_sent = 0

    def __repr__(self) -> str:  # never the key, the password or the session id
        return f"BridgeSessionAuth(target={self._config.target!r})"

    # ------------------------------------------------------------------ state
    @property
    def session_id(self) -> str | None:
        """The current session id (for the ``/events`` socket); never log it."""
        return self._credential.value if self._credential else None

    def extend(self, session_id: str, expires_at: datetime) -> None:
        """Record a heartbeat's new expiry (explicit ``client.heartbeat()``)."""
        s = self._credential
        if s is not None and s.value == session_id:
            self._credential = Credential(s.value, _deadline(expires_at), s.generation)

    def take(self) -> str | None:
        """Forget the session and return its id, to release it."""
        s, self._credential = self._credential, None
        return s.value if s else None

    # ------------------------------------------------------------------ sans-IO session machine
    def _open_flow(self) -> CredentialFlow:
        c = self._config
        body = {"accountId": c.account_id, "server": c.server, "login": c.login,
                "password": c.password}
        response = yield httpx.Request(
            "POST", f"{c.base_url}/session/open", headers=key_headers(c),
            content=msgspec.json.encode(body),
        )
        if response.status_code != 200:
            raise error_from_answer("session.open", response.status_code, response.headers,
                                    response.content)
        try:
            opened = r.decoder(r.SessionOpened).decode(response.content)
        except msgspec.DecodeError:
            raise InvalidResponse("the bridge's answer to session/open is not a session",
                                  operation="session.open",
                                  http_status=response.status_code) from None
        self.sessions_opened += 1
        return self._issue(opened.session_id, _deadline(opened.expires_at))

    def _heartbeat_flow(self) -> CredentialFlow:
        """Heartbeat the session when it is near expiry; open one when there is none or the
        heartbeat says it is gone."""
        s = self._credential
        if s is None:
            return (yield from self._open_flow())
        c = self._config
        response = yield httpx.Request(
            "POST", f"{c.base_url}/session/{s.value}/heartbeat",
            headers={**key_headers(c), "x-session-id": s.value},
        )
        if response.status_code == 401:
            return (yield from self._open_flow())
        if response.status_code != 200:
            raise error_from_answer("session.heartbeat", response.status_code, response.headers,
                                    response.content)
        try:
            beat = r.decoder(r.SessionOpened).decode(response.content)
        except msgspec.DecodeError:
            raise InvalidResponse("the bridge's answer to a heartbeat is not a session",
                                  operation="session.heartbeat",
                                  http_status=response.status_code) from None
        self._credential = Credential(s.value, _deadline(beat.expires_at), s.generation)
        self.heartbeats_sent += 1
        return self._credential

    # Near its expiry the session gets a heartbeat; refused (401), a new session.
    _refresh_flow = _heartbeat_flow
    _renew_flow = _open_flow

    def _stamp(self, request: httpx.Request, credential: Credential) -> None:
        request.headers.update(key_headers(self._config))
        request.headers["x-session-id"] = credential.value
        template = request.extensions.get(SESSION_PATH)
        if template:
            request.url = request.url.copy_with(path=template.format(session=credential.value))
