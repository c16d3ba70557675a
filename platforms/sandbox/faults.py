"""Fault injection rules (``POST /_sandbox/faults`` and ``--fault SPEC``)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

ERRORS = (
    "NoConnect",
    "Timeout",
    "Busy",
    "OutcomeUnknown",
    "Internal",
    "MT4Error",
    "MT5Error",
    "Forbidden",
    "NotFound",
    "Validation",
)
PORTS = ("main", "sidecar", "any")


class FaultError(ValueError):
    pass


def check_numbers(data: dict, out: dict, bounds: tuple[tuple[str, float, float], ...]) -> None:
    """Copy the bounded numbers of ``bounds`` and a positive ``times`` from ``data`` to ``out``
    (shared by every port's fault rules), raising :class:`FaultError` on a bad value."""
    for key, lo, hi in bounds:
        if data.get(key) is not None:
            v = data[key]
            if isinstance(v, bool) or not isinstance(v, int | float) or not lo <= v <= hi:
                raise FaultError(f"'{key}' must be a number in [{lo}, {hi}]")
            out[key] = float(v)
    if data.get("times") is not None:
        v = data["times"]
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise FaultError("'times' must be a positive integer")
        out["times"] = v


@dataclass
class Rule:
    id: int
    operation: str
    error: str | None = None
    html502: bool = False
    drop: bool = False
    latency: float = 0.0
    rate: float = 1.0
    times: int | None = None
    port: str = "any"
    hits: int = 0

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "id": self.id,
            "operation": self.operation,
            "rate": self.rate,
            "port": self.port,
            "hits": self.hits,
        }
        if self.error:
            d["error"] = self.error
        if self.html502:
            d["html502"] = True
        if self.drop:
            d["drop"] = True
        if self.latency:
            d["latency"] = self.latency
        if self.times is not None:
            d["times"] = self.times
        return d

    def matches(self, op_name: str, family: str, port: str) -> bool:
        if self.port != "any" and self.port != port:
            return False
        o = self.operation
        return o == "*" or o == op_name or o == f"{family}.{op_name}"


def validate_rule(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise FaultError("the body must be a JSON object")
    unknown = set(data) - {
        "operation", "error", "html502", "drop", "latency", "rate", "times", "port"
    }
    if unknown:
        raise FaultError(f"unknown keys: {', '.join(sorted(unknown))}")
    op = data.get("operation")
    if not isinstance(op, str) or not op:
        raise FaultError("'operation' is required (an operation name or '*')")
    out: dict[str, Any] = {"operation": op}
    err = data.get("error")
    if err is not None:
        if err not in ERRORS:
            raise FaultError(f"'error' must be one of {', '.join(ERRORS)}")
        out["error"] = err
    for flag in ("html502", "drop"):
        if data.get(flag) is not None:
            if not isinstance(data[flag], bool):
                raise FaultError(f"'{flag}' must be a boolean")
            out[flag] = data[flag]
    check_numbers(data, out, (("latency", 0.0, 600.0), ("rate", 0.0, 1.0)))
    if data.get("port") is not None:
        if data["port"] not in PORTS:
            raise FaultError("'port' must be main, sidecar or any")
        out["port"] = data["port"]
    if not (out.get("error") or out.get("html502") or out.get("drop") or out.get("latency")):
        raise FaultError("a rule needs 'error', 'html502', 'drop' or 'latency'")
    return out


def parse_spec(spec: str) -> dict[str, Any]:
    """``OP:error=Busy[:rate=0.5][:times=3][:port=sidecar]``, ``OP:latency=0.3``, ``OP:html502``,
    ``OP:drop`` (a write is applied, then the connection closes without an answer)."""
    parts = spec.split(":")
    if len(parts) < 2 or not parts[0]:
        raise FaultError(f"bad --fault {spec!r}: expected OP:key=value[:key=value...]")
    data: dict[str, Any] = {"operation": parts[0]}
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        key = key.strip()
        if key in ("html502", "drop") and not sep:
            data[key] = True
            continue
        if not sep:
            raise FaultError(f"bad --fault {spec!r}: {part!r} is not key=value")
        if key in ("latency", "rate"):
            try:
                data[key] = float(value)
            except ValueError:
                raise FaultError(f"bad --fault {spec!r}: {key} must be a number") from None
        elif key == "times":
            try:
                data[key] = int(value)
            except ValueError:
                raise FaultError(f"bad --fault {spec!r}: times must be an integer") from None
        elif key in ("html502", "drop"):
            data[key] = value.lower() in ("1", "true", "yes")
        else:
            data[key] = value
    return validate_rule(data)


class Faults:
    def __init__(self, seed: int) -> None:
        self.rules: list[Rule] = []
        self.next_id = 1
        self.rng = random.Random(seed * 977 + 1)

    def add(self, data: dict[str, Any]) -> Rule:
        rule = Rule(id=self.next_id, **data)
        self.next_id += 1
        self.rules.append(rule)
        return rule

    def clear(self) -> None:
        self.rules.clear()

    def remove(self, rule_id: int) -> bool:
        before = len(self.rules)
        self.rules = [r for r in self.rules if r.id != rule_id]
        return len(self.rules) != before

    def pick(self, op_name: str, family: str, port: str) -> list[Rule]:
        """Rules that fire for this request (consumes ``times`` and draws ``rate``)."""
        fired = []
        for rule in list(self.rules):
            if not rule.matches(op_name, family, port):
                continue
            if rule.rate < 1.0 and self.rng.random() >= rule.rate:
                continue
            rule.hits += 1
            fired.append(rule)
            if rule.times is not None and rule.hits >= rule.times:
                self.rules.remove(rule)
        return fired
