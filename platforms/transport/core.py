"""The transport core both upstream clients subclass: one pooled httpx client, the breaker,
the retry loop, and the mapping of httpx's failures onto the client's own errors.

A client (the manager's, the coverage bridge's) keeps only its wire: it prepares a call
(:class:`Call`), interprets the answer, says which failures it retries and names its error
classes (:class:`FailureKinds`). Everything between — limits, timeouts, streaming the body,
the breaker, tenacity, the error mapping — is written here once, in a blocking
(:class:`SyncTransport`) and an awaited (:class:`AsyncTransport`) flavour.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, Protocol, Self, TypedDict, TypeVar

import httpx
import tenacity

from . import interactive
from .breaker import CircuitBreaker
from .errors import CircuitOpen, MaybeSent, NothingSent
from .retry import RetryPolicy

__all__ = [
    "LARGE_BODY",
    "AsyncTransport",
    "BodyBuffer",
    "Call",
    "FailureKinds",
    "SyncTransport",
    "TransportCore",
    "TransportOptions",
    "request_url",
]

#: Nothing was sent: the connection (or a pooled slot) was never obtained.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)

#: Answers up to this size are read the ordinary way (``response.read()``, one ``bytes``).
LARGE_BODY = 1 << 20


@functools.lru_cache(maxsize=1024)
def request_url(url: str) -> httpx.URL:
    """``url`` parsed once: httpx parses a URL string on every request (the host through
    ``ipaddress``), a tenth of a money call's CPU in the client, and a call's URL repeats.
    ``httpx.URL`` is immutable, so one object serves every request to it."""
    return httpx.URL(url)


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


class Call(Protocol):
    """What the core needs of a wire's prepared call (reused unchanged for every attempt)."""

    attempts: int  # counted by the core

    @property
    def method(self) -> str: ...

    @property
    def url(self) -> str: ...

    @property
    def headers(self) -> dict[str, str]: ...

    @property
    def content(self) -> bytes | None: ...

    @property
    def operation(self) -> str: ...  # the name errors and logs carry

    @property
    def write(self) -> bool: ...  # a lost answer then leaves the outcome unknown

    @property
    def host(self) -> str: ...  # named in the messages of transport failures

    @property
    def params(self) -> Any: ...

    @property
    def extensions(self) -> dict[str, Any] | None: ...

    @property
    def timeout(self) -> float: ...  # read timeout of one attempt, seconds


C = TypeVar("C", bound=Call)


@dataclass(frozen=True)
class FailureKinds:
    """The classes one client raises for the transport's failures, and how it words them.

    Each class subclasses the shared base of :mod:`.errors`, so a caller may catch either
    client's failure by the base (``except NothingSent``) or by the client's own class.
    """

    #: Each is called with ``message=``, ``operation=`` and the client's failure details.
    nothing_sent: Callable[..., NothingSent]
    maybe_sent: Callable[..., MaybeSent]
    #: A write that lost its connection after sending: its outcome is unknown.
    write_maybe_sent: Callable[..., MaybeSent]
    circuit_open: Callable[[str, float, str | None], CircuitOpen]
    #: Appended to a lost write's message.
    write_note: str
    #: Quote httpx's text of a lost connection (off where it may carry a secret: the
    #: bridge's URLs hold a session id).
    quote_detail: bool = True


class TransportOptions(TypedDict, total=False):
    """What every client's caller may pass through to the transport."""

    #: Backoff of the retries (default :class:`RetryPolicy()`); which failures: the wire's.
    retry: RetryPolicy | None
    #: An httpx transport of the client's flavour (``BaseTransport`` / ``AsyncBaseTransport``).
    transport: Any
    #: httpx event hooks (async callables for the async flavour).
    event_hooks: Mapping[str, list[Callable]] | None


class TransportCore(Generic[C]):
    """Shared state and rules of both flavours; a client's core adds its wire to it."""

    failures: ClassVar[FailureKinds]
    user_agent: ClassVar[str]

    def __init__(
        self,
        *,
        breaker: CircuitBreaker,
        auth: httpx.Auth,
        max_connections: int,
        timeout: float,
        connect_timeout: float,
        retry: RetryPolicy | None = None,
        transport: Any = None,
        event_hooks: Mapping[str, list[Callable]] | None = None,
    ) -> None:
        self.breaker = breaker
        self.retry_policy = retry or RetryPolicy()
        self.auth = auth
        self._connect_timeout = connect_timeout
        self._http = self._open(
            auth=auth,
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            timeout=self._timeout(timeout),
            event_hooks=dict(event_hooks or {}),
            transport=transport,
            headers={"User-Agent": self.user_agent},
        )

    def _open(self, **options: Any) -> Any:  # pragma: no cover - each flavour opens its own
        raise NotImplementedError

    @property
    def breaker_state(self) -> str:
        """ "closed", "open" or "half-open"."""
        return self.breaker.state

    def _timeout(self, seconds: float) -> httpx.Timeout:
        return httpx.Timeout(seconds, connect=self._connect_timeout)

    # ------------------------------------------------------------------ the wire's part
    def _breaker_of(self, call: C) -> CircuitBreaker:
        return self.breaker

    def _retry_kwargs(self, call: C) -> dict:
        """tenacity arguments for ``call`` (see :func:`.retry.retry_kwargs`)."""
        raise NotImplementedError

    def _interpret(self, call: C, status: int, headers: httpx.Headers,
                   content: bytes | bytearray) -> Any:
        """The answer as the call's result, or raised as the client's error."""
        raise NotImplementedError

    def _send(self, call: C) -> Any:  # pragma: no cover - each flavour sends its own way
        """``call`` through the breaker, retried as the wire allows."""
        raise NotImplementedError

    def _failure_details(self, call: C) -> dict[str, Any]:
        """Extra fields the client's transport errors carry (e.g. a write's request id)."""
        return {}

    def _with_deadline(self, call: C, seconds: float) -> C:
        """``call`` telling its upstream to give up after ``seconds`` (a wire with a deadline
        header overrides this; the core itself caps how long it waits either way)."""
        return call

    # ------------------------------------------------------------------ interactive budget
    def _bounded(self, call: C) -> tuple[C, dict]:
        """``call`` and its tenacity arguments, within the page's interactive budget when one
        is open and ``call`` is a read (see :mod:`.interactive`); unchanged otherwise."""
        kwargs = self._retry_kwargs(call)
        limit = interactive.budget()
        if limit is None or call.write:
            return call, kwargs
        if limit.spent():
            # Raised before the breaker: a page out of time says nothing about the target.
            raise self.failures.nothing_sent(
                message=f"{call.operation} not sent: the page's {limit.seconds:g} s for live "
                        f"reads were spent", operation=call.operation,
                **self._failure_details(call))
        wire_rule = kwargs["retry"]
        # Only a connection that was never made is tried again, and only while time is left:
        # a read that timed out (or whose answer was lost) would just time out again.
        kwargs["retry"] = tenacity.retry_all(
            wire_rule, tenacity.retry_if_exception(
                lambda exc: isinstance(exc, NothingSent) and not limit.spent()))
        return self._with_deadline(call, limit.deadline()), kwargs

    # ------------------------------------------------------------------ failures
    @contextlib.contextmanager
    def _mapped_failures(
        self, host: str, operation: str, *, write: bool = False, **details: Any
    ) -> Iterator[None]:
        """httpx's exceptions as the client's nothing-sent / maybe-sent errors (no secrets)."""
        kinds = self.failures
        try:
            yield
        except _NOT_SENT as exc:
            raise kinds.nothing_sent(
                message=f"could not connect to {host}: {str(exc) or type(exc).__name__}",
                operation=operation, **details,
            ) from None
        except httpx.TransportError as exc:
            cls = kinds.write_maybe_sent if write else kinds.maybe_sent
            detail = f"{type(exc).__name__} {exc}".rstrip() if kinds.quote_detail \
                else type(exc).__name__
            raise cls(
                message=f"connection to {host} failed after sending: {detail}"
                + (kinds.write_note if write else ""),
                operation=operation, **details,
            ) from None

    def _call_failures(self, call: C):
        return self._mapped_failures(call.host, call.operation, write=call.write,
                                     **self._failure_details(call))

    def _request_options(self, call: C) -> dict[str, Any]:
        timeout = self._timeout(call.timeout)
        limit = interactive.budget()
        if limit is not None and not call.write:
            wait = limit.wait()
            timeout = httpx.Timeout(min(call.timeout, wait),
                                    connect=min(self._connect_timeout, wait))
        return {"params": call.params, "headers": call.headers, "content": call.content,
                "extensions": call.extensions, "timeout": timeout}


class SyncTransport(TransportCore[C]):
    """The blocking flavour (``httpx.Client``): Django views, Celery tasks, scripts."""

    _http: httpx.Client

    def _open(self, **options: Any) -> httpx.Client:
        return httpx.Client(**options)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _send_once(self, call: C) -> Any:
        call.attempts += 1
        with (
            self._call_failures(call),
            self._http.stream(call.method, request_url(call.url),
                              **self._request_options(call)) as response,
        ):
            content = self._read_body(response)
        return self._interpret(call, response.status_code, response.headers, content)

    @staticmethod
    def _read_body(response: httpx.Response) -> bytes | bytearray:
        """The body, held once even when it is a 160 MB snapshot (see :class:`BodyBuffer`)."""
        if not BodyBuffer.wanted(response):
            return response.read()
        body = BodyBuffer(response.headers)
        for chunk in response.iter_bytes():
            body.add(chunk)
        return body.body()

    def _attempt(self, call: C) -> Any:
        return self._breaker_of(call).call(lambda: self._send_once(call), call.operation,
                                           refusal=self.failures.circuit_open)

    def _send(self, call: C) -> Any:
        """``call`` through the breaker, retried as the wire allows."""
        call, retry = self._bounded(call)
        return tenacity.Retrying(**retry)(self._attempt, call)


class AsyncTransport(TransportCore[C]):
    """The awaited flavour (``httpx.AsyncClient``): Channels consumers, async views.

    The pooled ``httpx.AsyncClient`` belongs to the event loop that first uses it.
    """

    _http: httpx.AsyncClient

    def _open(self, **options: Any) -> httpx.AsyncClient:
        return httpx.AsyncClient(**options)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def _send_once(self, call: C) -> Any:
        call.attempts += 1
        with self._call_failures(call):
            async with self._http.stream(call.method, request_url(call.url),
                                         **self._request_options(call)) as response:
                content = await self._read_body(response)
        return self._interpret(call, response.status_code, response.headers, content)

    @staticmethod
    async def _read_body(response: httpx.Response) -> bytes | bytearray:
        """The body, held once even when it is a 160 MB snapshot (see :class:`BodyBuffer`)."""
        if not BodyBuffer.wanted(response):
            return await response.aread()
        body = BodyBuffer(response.headers)
        async for chunk in response.aiter_bytes():
            body.add(chunk)
        return body.body()

    async def _attempt(self, call: C) -> Any:
        return await self._breaker_of(call).call_async(
            lambda: self._send_once(call), call.operation, refusal=self.failures.circuit_open
        )

    async def _send(self, call: C) -> Any:
        """``call`` through the breaker, retried as the wire allows."""
        call, retry = self._bounded(call)
        return await tenacity.AsyncRetrying(**retry)(self._attempt, call)
