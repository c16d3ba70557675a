"""Connection settings for one coverage account behind an MT4 terminal bridge (no Django)."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["BridgeConfig"]


@dataclass(frozen=True)
class BridgeConfig:
    """Everything the client needs for one coverage account.

    ``api_key`` (the workspace key) and ``password`` (the MT4 terminal password) are excluded
    from ``repr`` and never appear in logs or exception text.
    """

    #: e.g. ``https://bridge.example.com/mt4/client``; every path is relative to it.
    base_url: str
    api_key: str = field(repr=False)
    #: The bridge workspace's id for this account (``accountId`` of ``/session/open``).
    account_id: str
    server: str
    login: int
    password: str = field(repr=False)
    #: Name of the circuit breaker (one per target); default: base URL + server + login.
    target_id: str | None = None
    #: HTTP read timeout (seconds) of one request; connect timeout separately.
    timeout: float = 15.0
    connect_timeout: float = 5.0
    #: Send a heartbeat before a call when the session has fewer seconds than this left.
    heartbeat_margin: float = 30.0
    max_connections: int = 10
    #: After a write lost its answer, resend it once with the same ``x-request-id`` (the
    #: bridge returns the task it already has rather than creating a second one).
    replay_lost_writes: bool = True

    def __post_init__(self) -> None:
        if not self.base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an http(s) URL")
        object.__setattr__(self, "base_url", self.base_url.rstrip("/"))
        if isinstance(self.login, bool) or not isinstance(self.login, int) or self.login < 1:
            raise ValueError("login must be a positive integer")
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")

    @property
    def target(self) -> str:
        """The breaker's key: one circuit per coverage account's bridge session."""
        return self.target_id or f"coverage:{self.base_url}#{self.server}/{self.login}"
