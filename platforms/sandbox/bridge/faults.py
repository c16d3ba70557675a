"""Fault rules of the bridge port (``--bridge-fault SPEC`` and ``/_sandbox/bridge/faults``).

The same rule machinery as the manager API's faults (:class:`~platforms.sandbox.faults.Faults`:
seeded ``rate`` draws, ``times`` expiry, hit counts), with the bridge's own kinds: an HTTP
error (``RateLimited`` → 429 with ``Retry-After``, ``BridgeUnavailable`` → 502,
``Unauthorized`` → 401, ``ValidationError`` → 400), ``latency`` and, for ``events``, ``drop``
(the socket is accepted, then closed at once).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..faults import FaultError, Faults, check_numbers

ERRORS = ("RateLimited", "BridgeUnavailable", "Unauthorized", "ValidationError")
OPERATIONS = (
    "session.open",
    "session.get",
    "session.heartbeat",
    "session.close",
    "account",
    "positions",
    "symbols",
    "quotes.history",
    "orders.submit",
    "orders.modify",
    "positions.close",
    "events",
)
_KEYS = {"operation", "error", "retryAfter", "latency", "drop", "rate", "times"}


@dataclass
class BridgeRule:
    id: int
    operation: str
    error: str | None = None
    retryAfter: float = 1.0
    latency: float = 0.0
    drop: bool = False
    rate: float = 1.0
    times: int | None = None
    hits: int = 0

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"id": self.id, "operation": self.operation, "rate": self.rate,
                             "hits": self.hits}
        if self.error:
            d["error"] = self.error
            if self.error == "RateLimited":
                d["retryAfter"] = self.retryAfter
        if self.latency:
            d["latency"] = self.latency
        if self.drop:
            d["drop"] = True
        if self.times is not None:
            d["times"] = self.times
        return d

    def matches(self, op_name: str, family: str = "", port: str = "") -> bool:
        return self.operation in ("*", op_name)


def validate_rule(data: Any) -> dict[str, Any]:
    """Check a rule given as JSON; raises FaultError with a message for the caller."""
    if not isinstance(data, dict):
        raise FaultError("the body must be a JSON object")
    unknown = set(data) - _KEYS
    if unknown:
        raise FaultError(f"unknown keys: {', '.join(sorted(unknown))}")
    op = data.get("operation")
    if op != "*" and op not in OPERATIONS:
        raise FaultError(f"'operation' must be '*' or one of {', '.join(OPERATIONS)}")
    out: dict[str, Any] = {"operation": op}
    if data.get("error") is not None:
        if data["error"] not in ERRORS:
            raise FaultError(f"'error' must be one of {', '.join(ERRORS)}")
        out["error"] = data["error"]
    check_numbers(data, out, (("retryAfter", 0.0, 3600.0), ("latency", 0.0, 600.0),
                              ("rate", 0.0, 1.0)))
    if data.get("drop") is not None:
        if not isinstance(data["drop"], bool):
            raise FaultError("'drop' must be a boolean")
        if data["drop"] and op not in ("events", "*"):
            raise FaultError("'drop' applies to the 'events' socket only")
        out["drop"] = data["drop"]
    if not (out.get("error") or out.get("latency") or out.get("drop")):
        raise FaultError("a rule needs 'error', 'latency' or 'drop'")
    return out


def parse_spec(spec: str) -> dict[str, Any]:
    """``OP:error=RateLimited[:retryAfter=2][:times=3][:rate=0.5]``, ``OP:latency=0.3``,
    ``events:drop``."""
    parts = spec.split(":")
    if len(parts) < 2 or not parts[0]:
        raise FaultError(f"bad --bridge-fault {spec!r}: expected OP:key=value[:key=value...]")
    data: dict[str, Any] = {"operation": parts[0]}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if key == "drop" and not sep:
            data["drop"] = True
            continue
        if not sep:
            raise FaultError(f"bad --bridge-fault {spec!r}: {part!r} is not key=value")
        if key in ("retryAfter", "latency", "rate"):
            try:
                data[key] = float(value)
            except ValueError:
                raise FaultError(f"bad --bridge-fault {spec!r}: {key} must be a number") from None
        elif key == "times":
            try:
                data[key] = int(value)
            except ValueError:
                raise FaultError(f"bad --bridge-fault {spec!r}: times must be an integer") from None
        else:
            data[key] = value
    return validate_rule(data)


class BridgeFaults(Faults):
    """:class:`Faults` holding :class:`BridgeRule` objects (same picking and expiry)."""

    def add(self, data: dict[str, Any]) -> BridgeRule:  # type: ignore[override]
        rule = BridgeRule(id=self.next_id, **data)
        self.next_id += 1
        self.rules.append(rule)  # type: ignore[arg-type]
        return rule

    def fire(self, op_name: str) -> list[BridgeRule]:
        return self.pick(op_name, "bridge", "bridge")  # type: ignore[return-value]
