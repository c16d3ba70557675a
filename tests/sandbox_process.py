"""The tests start the sandbox exactly as the demo does (``platforms.sandbox.process``), plus
one thing: every sandbox a test starts records its exchanges, and before it stops, every answer
it gave is judged against the vendor's OpenAPI document. Violations fail the session."""

from __future__ import annotations

from dataclasses import fields

from platforms.sandbox.process import SandboxInfo
from platforms.sandbox.process import start_sandbox as _start_sandbox

__all__ = ["SandboxInfo", "forget_connections", "start_sandbox", "violations"]

#: Violations found so far (``"<base_url>: <message>"``); ``conftest`` fails the session on any.
violations: list[str] = []


class JudgedSandbox(SandboxInfo):
    def stop(self) -> None:
        if self.process.poll() is None:
            from tests.conformance.openapi_judge import validate_recorded

            found, _ = validate_recorded(self.control_url)
            violations.extend(f"{self.base_url}: {message}" for message in found)
        super().stop()


def start_sandbox(*args: str, **kwargs) -> JudgedSandbox:
    if "--record-exchanges" not in args:
        args = (*args, "--record-exchanges")
    info = _start_sandbox(*args, **kwargs)
    return JudgedSandbox(**{f.name: getattr(info, f.name) for f in fields(info)})


def forget_connections(info: SandboxInfo) -> None:
    """Drop cached clients and close the sandbox platforms' circuits, main and sidecar.

    Every sandbox serves the same platform ids, and with Redis the circuit state outlives a
    test (and a run), so one test's outage must not leak into the next.
    """
    from platforms.connections import forget_clients
    from platforms.transport import breaker_for, reset_breakers

    forget_clients()
    for platform_id in (info.mt4_id, info.mt5_id):
        for key in (platform_id, f"{platform_id}/sidecar"):
            breaker_for(key).reset()
    reset_breakers()
