"""The tests start the sandbox exactly as the demo does (see ``platforms.sandbox_process``)."""

from platforms.sandbox_process import SandboxInfo, start_sandbox

__all__ = ["SandboxInfo", "start_sandbox"]
