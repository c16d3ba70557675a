"""Wire helpers: the v2 envelope, API errors, dates, flags, cursors and cursor paging.

Everything here is plain Python (no Starlette) so that handlers stay testable in isolation.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import contextlib
import datetime as dt
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextvars import ContextVar
from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
encode = _encoder.encode
decode = msgspec.json.decode

MAX_LIMIT = 5000
ZERO_TIME = "1970-01-01T00:00:00Z"


class ApiFail(Exception):
    """A handled error: becomes ``{"data": null, "error": {...}}`` with HTTP 200."""

    def __init__(
        self,
        code: str,
        message: str,
        manager_code: str | int | None = None,
        outcome: str | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.manager_code = manager_code
        self.outcome = outcome

    def error_dict(self) -> dict[str, Any]:
        err: dict[str, Any] = {"code": self.code}
        if self.manager_code is not None:
            err["managerCode"] = self.manager_code
        if self.message:
            err["message"] = self.message
        return err


def validation(message: str) -> ApiFail:
    return ApiFail("Validation", message)


def not_found(message: str) -> ApiFail:
    return ApiFail("NotFound", message)


def mt4_error(manager_code: str, message: str) -> ApiFail:
    return ApiFail("MT4Error", message, manager_code)


class Raw:
    """Already-encoded JSON for ``data`` (a list of cached row encodings, or one blob)."""

    __slots__ = ("parts",)

    def __init__(self, parts: bytes | Sequence[bytes]) -> None:
        self.parts = parts


class Result:
    """A successful payload plus optional paging metadata."""

    __slots__ = ("data", "paging")

    def __init__(self, data: Any, paging: dict[str, Any] | None = None) -> None:
        self.data = data
        self.paging = paging


def new_activity_id() -> str:
    return os.urandom(16).hex()


def _data_bytes(data: Any) -> bytes:
    if isinstance(data, Raw):
        if isinstance(data.parts, bytes):
            return data.parts
        return b"[" + b",".join(data.parts) + b"]"
    return encode(data)


def envelope_ok(result: Result, activity_id: str) -> bytes:
    meta: dict[str, Any] = {"activityId": activity_id}
    if result.paging is not None:
        meta["paging"] = result.paging
    if result.data is None:
        return b'{"error":null,"meta":' + encode(meta) + b"}"
    return b'{"data":' + _data_bytes(result.data) + b',"error":null,"meta":' + encode(meta) + b"}"


def envelope_error(fail: ApiFail, activity_id: str) -> bytes:
    return encode({"error": fail.error_dict(), "meta": {"activityId": activity_id}})


# --------------------------------------------------------------------------- dates


#: The answering platform's clock zone, seconds east of UTC. Like a real MT4/MT5 server, the
#: sandbox keeps true instants inside and speaks its own wall clock on the wire, still with a
#: ``Z`` (the WebAPI's way): :func:`iso` adds it, :func:`parse_time` takes it off. Set per
#: request by the pipeline and per event by the hubs (:func:`server_clock`).
SERVER_OFFSET: ContextVar[int] = ContextVar("sandbox_server_offset", default=0)


@contextlib.contextmanager
def server_clock(offset_seconds: int) -> Iterator[None]:
    """Times written and read inside are the wall clock of a server ``offset_seconds`` east."""
    token = SERVER_OFFSET.set(offset_seconds)
    try:
        yield
    finally:
        SERVER_OFFSET.reset(token)


def to_wall(ts: float) -> float:
    """A true instant (unix seconds) as the answering server's wall-clock seconds."""
    return ts + SERVER_OFFSET.get()


def from_wall(ts: float) -> float:
    """The answering server's wall-clock seconds as the true instant."""
    return ts - SERVER_OFFSET.get()


def iso(ts: float | int | None) -> str:
    """Unix seconds → the server's wall clock as ISO-8601 with a ``Z`` (whole seconds unless
    fractional), as the WebAPI sends it."""
    if not ts:
        return ZERO_TIME
    d = dt.datetime.fromtimestamp(to_wall(ts), tz=dt.UTC)
    if d.microsecond:
        return d.strftime("%Y-%m-%dT%H:%M:%S.") + f"{d.microsecond // 1000:03d}Z"
    return d.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None, name: str) -> float | None:
    """ISO-8601 of the server's wall clock (a trailing Z or none; an explicit offset is
    honoured) → unix seconds of the instant; None when absent."""
    if value is None or value == "":
        return None
    text = value.strip().replace(" ", "+") if "T" in value else value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        d = dt.datetime.fromisoformat(text)
    except ValueError:
        raise validation(f"'{name}' is not a valid ISO-8601 date-time: {value!r}") from None
    if d.tzinfo is None or d.utcoffset() == dt.timedelta(0):
        return from_wall(d.replace(tzinfo=dt.UTC).timestamp())
    return d.timestamp()


# --------------------------------------------------------------------------- flags


def flags_to_str(value: int, names: Sequence[tuple[str, int]]) -> str:
    """Bitfield → ``"A, B"`` (``"None"`` when empty, unknown bits as ``Bit<n>``)."""
    if not value:
        return "None"
    out = []
    rest = value
    for name, bit in names:
        if value & bit:
            out.append(name)
            rest &= ~bit
    n = 0
    while rest:
        if rest & 1:
            out.append(f"Bit{n}")
        rest >>= 1
        n += 1
    return ", ".join(out)


def enum_lookup(value: Any, names: Sequence[str], field: str) -> int:
    """Case-insensitive enum name (or its number) → index; Validation on anything else."""
    if isinstance(value, bool):
        raise validation(f"'{field}' must be one of: {', '.join(names)}")
    if isinstance(value, int):
        if 0 <= value < len(names):
            return value
    elif isinstance(value, str):
        text = value.strip()
        for i, name in enumerate(names):
            if name.lower() == text.lower():
                return i
        if text.lstrip("-").isdigit() and 0 <= int(text) < len(names):
            return int(text)
    raise validation(f"'{field}' has an unknown value {value!r}; valid values: {', '.join(names)}")


# --------------------------------------------------------------------------- cursors / paging


def encode_cursor(key: Any) -> str:
    raw = encode({"v": 1, "k": key})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        obj = decode(base64.urlsafe_b64decode(padded.encode("ascii")))
        if not isinstance(obj, dict) or obj.get("v") != 1 or "k" not in obj:
            raise ValueError("bad cursor shape")
        return obj["k"]
    except (ValueError, binascii.Error, msgspec.DecodeError, UnicodeEncodeError):
        raise validation("'cursor' is malformed; pass meta.paging.nextCursor unchanged") from None


def parse_limit(raw: str | None, *, maximum: int = MAX_LIMIT, minimum: int = 1) -> int | None:
    if raw is None or raw == "":
        return None
    try:
        value = int(raw)
    except ValueError:
        raise validation(f"'limit' must be an integer, got {raw!r}") from None
    if value < minimum or value > maximum:
        raise validation(f"'limit' must be between {minimum} and {maximum}, got {value}")
    return value


def page(
    keys: Sequence[Any],
    limit: int | None,
    cursor: str | None,
    render: Callable[[Any], bytes | None],
    *,
    key_type: type = int,
) -> Result:
    """Cursor-page over ascending ``keys``: bisect to the cursor, render until ``limit`` rows.

    ``render`` returns the encoded row or None to skip a key (filters); cost is O(page) for
    unfiltered lists.
    """
    start = 0
    if cursor:
        last = decode_cursor(cursor)
        if not isinstance(last, key_type) or isinstance(last, bool):
            raise validation("'cursor' is malformed; pass meta.paging.nextCursor unchanged")
        start = bisect.bisect_right(keys, last)
    rows: list[bytes] = []
    n = len(keys)
    i = start
    last_key = None
    if limit is None:
        while i < n:
            row = render(keys[i])
            if row is not None:
                rows.append(row)
            i += 1
        return Result(Raw(rows), {"hasMore": False})
    while i < n and len(rows) < limit:
        key = keys[i]
        row = render(key)
        if row is not None:
            rows.append(row)
            last_key = key
        i += 1
    # Is there anything left after this page?  (filters may skip the remainder.)
    has_more = False
    if len(rows) >= limit:
        j = i
        probe = 0
        while j < n and probe < 64:
            if render(keys[j]) is not None:
                has_more = True
                break
            j += 1
            probe += 1
        else:
            has_more = j < n
    paging: dict[str, Any] = {"hasMore": has_more}
    if has_more and last_key is not None:
        paging["nextCursor"] = encode_cursor(last_key)
    return Result(Raw(rows), paging)


def multi(values: Iterable[str], name: str) -> list[int]:
    out = []
    for v in values:
        for part in v.split(","):
            part = part.strip()
            if not part:
                continue
            try:
                out.append(int(part))
            except ValueError:
                raise validation(f"'{name}' must be integers, got {part!r}") from None
    return out
