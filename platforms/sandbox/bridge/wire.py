"""The bridge's wire: its error answers, the JSON it answers with, and the checks of what a
caller sends (order fields, request ids, times)."""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response

from ..market import BUY, BUY_LIMIT, BUY_STOP, PERIODS, SELL, SELL_LIMIT, SELL_STOP
from ..wire import ApiFail, decode, encode, parse_time

JSON = "application/json"
MAX_BODY = 64 * 1024
#: The bridge's own spelling of order types (as the broker's order engine writes them); any
#: other spelling ("buy", "Buy") is a ``400 ValidationError``, as on the real bridge.
ORDER_TYPES = {
    "BUY": BUY,
    "SELL": SELL,
    "BUY_LIMIT": BUY_LIMIT,
    "SELL_LIMIT": SELL_LIMIT,
    "BUY_STOP": BUY_STOP,
    "SELL_STOP": SELL_STOP,
}
TYPE_NAMES = {cmd: name for name, cmd in ORDER_TYPES.items()}
ORDER_FIELDS = {"symbol", "type", "volume", "sl", "tp", "comment", "price"}
MODIFY_FIELDS = {"volume", "sl", "tp", "comment", "price"}
MAX_COMMENT = 31  # MT4 keeps 31 characters of a comment
MAX_REQUEST_ID = 128
TIMEFRAMES = {name.upper(): seconds for name, seconds in PERIODS.items()}

STATUS = {
    "ValidationError": 400,
    "Unauthorized": 401,
    "NotFound": 404,
    "TaskConflict": 409,
    "RateLimited": 429,
    "BridgeUnavailable": 502,
}


class BridgeError(Exception):
    """An answered error: ``{"error": {"code", "message"[, "retryAfter"]}}`` with its status."""

    def __init__(self, code: str, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retry_after = retry_after

    @property
    def status(self) -> int:
        return STATUS[self.code]

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.retry_after is not None:
            error["retryAfter"] = self.retry_after
        return {"error": error}


def invalid(message: str) -> BridgeError:
    return BridgeError("ValidationError", message)


def number_field(body: dict[str, Any], name: str, *, default: float | None = None,
            lo: float = 0.0, hi: float = math.inf) -> float:
    value = body.get(name, default)
    if value is None:
        raise invalid(f"'{name}' is required")
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise invalid(f"'{name}' must be a number")
    if not lo <= value <= hi:
        raise invalid(f"'{name}' must be between {lo:g} and {hi:g}, got {value}")
    return float(value)


def volume_field(body: dict[str, Any], *, required: bool) -> float:
    if not required and body.get("volume") is None:
        return 0.0
    lots = number_field(body, "volume", lo=0.01, hi=100.0)
    if abs(lots * 100 - round(lots * 100)) > 1e-6:
        raise invalid(f"'volume' must be a multiple of 0.01 lots, got {lots}")
    return round(lots, 2)


def comment_field(body: dict[str, Any]) -> str:
    comment = body.get("comment", "")
    if comment is None:
        return ""
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT:
        raise invalid(f"'comment' must be a string of at most {MAX_COMMENT} characters")
    return comment


def fingerprint(method: str, path: str, body: Any) -> str:
    """Method, path and the canonical JSON of the body: "the same payload" for request ids."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{method} {path} {canonical}".encode()).hexdigest()


def check_request_id(value: str | None) -> str | None:
    if value is None:
        return None
    if not 1 <= len(value) <= MAX_REQUEST_ID or not all(32 < ord(c) < 127 for c in value):
        raise invalid(f"x-request-id must be 1-{MAX_REQUEST_ID} printable ASCII characters")
    return value


LATEST = 4_102_444_800.0  # 2100-01-01: beyond it a date is a typo, not a question


def epoch_param(value: str | None, name: str, default: float) -> float:
    """``from``/``to``: unix seconds or ISO-8601; absent → ``default``."""
    if value is None or value == "":
        return default
    try:
        parsed: float | None = float(value)
    except ValueError:
        try:
            parsed = parse_time(value, name)
        except ApiFail as exc:
            raise invalid(exc.message) from None
    if parsed is None:
        return default
    if not math.isfinite(parsed) or not 0 <= parsed <= LATEST:
        raise invalid(f"'{name}' must be a time between 1970 and 2100, got {value!r}")
    return parsed


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(encode(data), status_code=status, media_type=JSON, headers=headers)


def error_response(exc: BridgeError) -> Response:
    headers = None
    if exc.retry_after is not None:
        headers = {"Retry-After": str(max(0, math.ceil(exc.retry_after)))}
    return json_response(exc.body(), exc.status, headers)


def fault_error(code: str, retry_after: float) -> BridgeError:
    messages = {
        "RateLimited": "too many requests for this workspace; retry after the indicated delay",
        "BridgeUnavailable": "the bridge cannot reach the MT4 terminal of this account",
        "Unauthorized": "the session was revoked",
        "ValidationError": "the request was rejected by the bridge (injected fault)",
    }
    return BridgeError(code, messages[code],
                       retry_after=retry_after if code == "RateLimited" else None)


async def read_body(request: Request) -> Any:
    raw = await request.body()
    if len(raw) > MAX_BODY:
        raise invalid(f"the body is larger than {MAX_BODY} bytes")
    if not raw.strip():
        return None
    try:
        return decode(raw)
    except msgspec.DecodeError:
        raise invalid("the body is not valid JSON") from None
