"""When the bridge's queued tasks run: a moment after submission, as a terminal would fill
them, or held while the control API pauses execution."""

from __future__ import annotations

import asyncio

from .state import Bridge


class Execution:
    """Schedules :meth:`Bridge.execute` for each submitted task (one per bridge port)."""

    def __init__(self, bridge: Bridge) -> None:
        self.bridge = bridge
        self.paused = False  # control API: queued tasks wait until execution resumes
        self.held: list[str] = []

    def schedule(self, task_id: str) -> None:
        """A queued task runs a moment later, as a terminal would fill it (the loop keeps the
        timer; nothing else needs it)."""
        if self.paused:
            self.held.append(task_id)
            return
        asyncio.get_running_loop().call_later(self.bridge.exec_delay, self.bridge.execute,
                                              task_id)

    def set_paused(self, paused: bool) -> int:
        """Pause task execution (tasks stay queued) or resume it; returns tasks released."""
        self.paused = paused
        if paused:
            return 0
        held, self.held = self.held, []
        for task_id in held:
            self.schedule(task_id)
        return len(held)
