"""What the sync and async clients share: configuration, breaker, auth, namespaces and
the mapping of httpx transport exceptions onto client errors."""

from __future__ import annotations

import contextlib
import functools
from typing import Any

import httpx

from .auth import ClientCredentialsAuth
from .breaker import PlatformBreaker, breaker_for
from .config import PlatformConfig, RetryPolicy
from .errors import ConnectionNotMade, TransportError, WriteTransportError
from .namespaces import MT4Namespace, MT5Namespace
from .operations import PreparedCall, prepare

__all__ = ["BodyBuffer", "ClientCore", "request_url"]

#: Nothing was sent: the connection (or a pooled slot) was never obtained.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@functools.lru_cache(maxsize=1024)
def request_url(url: str) -> httpx.URL:
    """``url`` parsed once: httpx parses a URL string on every request (the host through
    ``ipaddress``), a tenth of a money call's CPU in the client, and a call's URL repeats.
    ``httpx.URL`` is immutable, so one object serves every request to it."""
    return httpx.URL(url)


#: Answers up to this size are read the ordinary way (``response.read()``, one ``bytes``).
LARGE_BODY = 1 << 20


class BodyBuffer:
    """A large answer's body, gathered into ONE buffer as its chunks arrive.

    ``response.read()`` keeps every chunk and then joins them: at the ``TradesSnapshot`` of
    100,000 accounts (~160 MB) that is the body twice, the peak memory of a whole snapshot
    run. Here the buffer is sized from ``Content-Length`` up front (grown in place when the
    length is unknown or the body is compressed), so the body is held once. The bytes on the
    wire are unchanged; the decoders read a ``bytearray`` as they read ``bytes`` (and
    ``msgspec.Raw`` items stay views into it).
    """

    __slots__ = ("buffer", "size")

    def __init__(self, headers: httpx.Headers) -> None:
        length = headers.get("content-length", "")
        identity = headers.get("content-encoding", "identity") in ("", "identity")
        self.buffer = bytearray(int(length)) if identity and length.isdigit() else bytearray()
        self.size = 0

    @staticmethod
    def wanted(response: httpx.Response) -> bool:
        """Worth it: a body whose length is unknown or at least :data:`LARGE_BODY`."""
        length = response.headers.get("content-length", "")
        return not length.isdigit() or int(length) >= LARGE_BODY

    def add(self, chunk: bytes) -> None:
        end = self.size + len(chunk)
        if end <= len(self.buffer):
            self.buffer[self.size : end] = chunk
        else:  # longer than announced (or unknown): grow in place
            del self.buffer[self.size :]
            self.buffer += chunk
        self.size = end

    def body(self) -> bytearray:
        if self.size < len(self.buffer):
            del self.buffer[self.size :]
        return self.buffer


class ClientCore:
    """Base of :class:`ManagerClient` and :class:`AsyncManagerClient`."""

    def __init__(
        self,
        config: PlatformConfig,
        *,
        breaker: PlatformBreaker | None = None,
        sidecar_breaker: PlatformBreaker | None = None,
        retry: RetryPolicy | None = None,
        auth: httpx.Auth | None = None,
    ) -> None:
        self.config = config
        self.breaker = breaker if breaker is not None else breaker_for(config.platform_id)
        # The x86 sidecar is a separate process: its outage must not stop the main API.
        # Without a sidecar URL both share one host, hence one breaker.
        if sidecar_breaker is None:
            sidecar_breaker = (
                breaker_for(f"{config.platform_id}/sidecar")
                if config.sidecar_base_url and config.sidecar_base_url != config.api_base_url
                else self.breaker
            )
        self.sidecar_breaker = sidecar_breaker
        self.retry_policy = retry or RetryPolicy()
        self.auth = auth if auth is not None else ClientCredentialsAuth(config)
        self.mt4 = MT4Namespace(self)
        self.mt5 = MT5Namespace(self)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(platform={self.config.platform_id}, "
            f"kind={self.config.kind}, api={self.config.api_base_url})"
        )

    @property
    def breaker_state(self) -> str:
        """ "closed", "open" or "half-open"."""
        return self.breaker.state

    def _breaker_of(self, call: PreparedCall) -> PlatformBreaker:
        return self.sidecar_breaker if call.op.sidecar else self.breaker

    def _limits(self) -> httpx.Limits:
        n = self.config.max_connections
        return httpx.Limits(max_connections=n, max_keepalive_connections=n)

    def _timeout(self, seconds: float) -> httpx.Timeout:
        return httpx.Timeout(seconds, connect=self.config.connect_timeout)

    def _prepare(self, op, **kwargs: Any) -> PreparedCall:
        return prepare(self.config, op, **kwargs)

    @contextlib.contextmanager
    def _mapped_transport_errors(self, call: PreparedCall | None, host: str, operation: str):
        """Turn httpx exceptions into ConnectionNotMade / TransportError (no secrets)."""
        try:
            yield
        except _NOT_SENT as exc:
            raise ConnectionNotMade(
                message=f"could not connect to {host}: {str(exc) or type(exc).__name__}",
                operation=operation,
            ) from None
        except httpx.TransportError as exc:
            write = call is not None and call.op.is_write
            cls = WriteTransportError if write else TransportError
            suffix = "; the write may or may not have been applied" if write else ""
            raise cls(
                message=(
                    f"connection to {host} failed after sending: "
                    f"{type(exc).__name__} {exc}".rstrip()
                    + suffix
                ),
                operation=operation,
            ) from None

    def _call(self, op, **kwargs: Any) -> Any:  # pragma: no cover - overridden
        raise NotImplementedError

    def _iterate(self, fetch, page_size: int, *args: Any, timeout: float | None = None):
        raise NotImplementedError  # pragma: no cover - overridden
