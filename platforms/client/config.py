"""Connection settings for one trade platform (no Django here: plain frozen dataclasses)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["PlatformConfig"]


@dataclass(frozen=True)
class PlatformConfig:
    """Everything the client needs to talk to one MT4/MT5 platform.

    ``client_secret`` is excluded from ``repr`` and never appears in logs or exception
    text. ``sidecar_base_url=None`` sends the x86-sidecar operations to ``api_base_url``,
    which is how the public service routes them.
    """

    platform_id: str
    kind: Literal["MT4", "MT5"]
    api_base_url: str
    authority: str
    client_id: str
    client_secret: str = field(repr=False)
    sidecar_base_url: str | None = None
    #: Space-separated OAuth scopes; ``None`` → no ``scope`` field is sent.
    scope: str | None = None
    max_connections: int = 20
    #: ``client_secret_post`` (form fields, like the vendor SDKs) or ``client_secret_basic``.
    token_auth_method: Literal["client_secret_post", "client_secret_basic"] = "client_secret_post"  # noqa: S105
    #: Refresh the token when fewer than this many seconds of its lifetime remain.
    token_refresh_skew: float = 60.0
    #: Connect timeout of the HTTP pool (seconds). The read timeout is deadline + 30 s.
    connect_timeout: float = 5.0

    def __post_init__(self) -> None:
        try:
            uuid.UUID(self.platform_id)
        except (ValueError, AttributeError, TypeError) as exc:
            raise ValueError(f"platform_id must be a GUID, got {self.platform_id!r}") from exc
        if self.kind not in ("MT4", "MT5"):
            raise ValueError(f"kind must be 'MT4' or 'MT5', got {self.kind!r}")
        for name in ("api_base_url", "authority", "sidecar_base_url"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, value.rstrip("/"))
        if self.max_connections < 1:
            raise ValueError("max_connections must be at least 1")

    @property
    def sidecar_url(self) -> str:
        """Base URL of the x86-sidecar operations."""
        return self.sidecar_base_url or self.api_base_url

