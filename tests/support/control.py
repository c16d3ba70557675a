"""The sandbox's control API as the client tests use it, on either upstream: the manager API's
(``/_sandbox``) or the LP bridge's (``/_sandbox/bridge``) faults and per-operation counters."""

from __future__ import annotations

from typing import Any

import httpx

from tests.sandbox_process import SandboxInfo


class SandboxControl:
    """Faults and counters; a subclass says which control API :meth:`control` speaks to."""

    def __init__(self, info: SandboxInfo) -> None:
        self.info = info

    def control(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        raise NotImplementedError

    def fault(self, **rule: Any) -> int:
        """Inject a fault rule; its id (for ``DELETE /faults/<id>``)."""
        return self.control("POST", "/faults", json=rule).json()["id"]

    def op_stats(self, operation: str) -> dict[str, int]:
        """How many ``operation`` requests arrived, and how many were carried out."""
        operations = self.control("GET", "/stats").json()["operations"]
        return operations.get(operation, {"received": 0, "executed": 0})
