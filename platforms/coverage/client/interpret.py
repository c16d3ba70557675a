"""Answers → typed records or the right exception (sans-IO; shared by sync and async)."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping
from typing import Any

import msgspec

from . import records as r
from .errors import BridgeApiError, InvalidResponse, RateLimited, WriteOutcomeUnknown, error_for

__all__ = ["decode_answer", "error_from_answer", "retry_after_seconds"]


def retry_after_seconds(headers: Mapping[str, str], body_value: float | None) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), else the body's value."""
    raw = headers.get("retry-after")
    if raw:
        raw = raw.strip()
        try:
            return max(0.0, float(raw))
        except ValueError:
            parsed = email.utils.parsedate_to_datetime(raw) if raw else None
            if parsed is not None:
                return max(0.0, parsed.timestamp() - time.time())
    return body_value


def error_from_answer(
    operation: str,
    status: int,
    headers: Mapping[str, str],
    content: bytes | bytearray,
    *,
    request_id: str | None = None,
    write: bool = False,
) -> BridgeApiError:
    """The exception for a non-2xx answer (the bridge's JSON error, or someone else's page)."""
    try:
        body = r.decoder(r.ErrorBody).decode(content) if content else r.ErrorBody()
    except (msgspec.DecodeError, msgspec.ValidationError):
        body = None
    detail = body.error if body is not None else None
    if detail is None:
        kind = "HTML page" if content.lstrip()[:1] == b"<" else "non-bridge answer"
        cls: type[BridgeApiError] = InvalidResponse
        if write and status >= 500:
            cls = WriteOutcomeUnknown
        message = f"HTTP {status}: not a bridge answer ({kind})"
        if write and status >= 500:
            message += "; the write may or may not have created a task"
        if status == 429:  # a proxy's rate limit is still a rate limit
            return RateLimited(message, retry_after=retry_after_seconds(headers, None),
                               operation=operation, http_status=status, request_id=request_id)
        return cls(message, operation=operation, http_status=status, request_id=request_id)
    cls = error_for(detail.code, status)
    kwargs: dict[str, Any] = dict(code=detail.code or None, operation=operation,
                                  http_status=status, request_id=request_id)
    if cls is RateLimited:
        return RateLimited(detail.message, retry_after=retry_after_seconds(
            headers, detail.retry_after), **kwargs)
    return cls(detail.message, **kwargs)


def decode_answer(
    operation: str,
    kind: Any,
    status: int,
    headers: Mapping[str, str],
    content: bytes | bytearray,
    *,
    request_id: str | None = None,
    write: bool = False,
) -> Any:
    """A 2xx answer decoded as ``kind``; anything else raised as its error."""
    if not 200 <= status < 300:
        raise error_from_answer(operation, status, headers, content, request_id=request_id,
                                write=write)
    try:
        return r.decoder(kind).decode(content)
    except (msgspec.DecodeError, msgspec.ValidationError) as exc:
        cls = WriteOutcomeUnknown if write else InvalidResponse
        raise cls(f"HTTP {status}: the answer does not match the bridge's schema ({exc})",
                  operation=operation, http_status=status, request_id=request_id) from None
