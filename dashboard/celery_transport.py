"""The embedded (filesystem) Celery broker, with a worker that answers within a quarter second."""

from __future__ import annotations

from kombu.transport import filesystem

#: Longest a worker's loop waits for a message before it looks at its other work again.
DRAIN_SECONDS = 0.25


class FilesystemTransport(filesystem.Transport):
    """Kombu's folder transport, drained at most :data:`DRAIN_SECONDS` at a time.

    Without async I/O Celery runs its blocking loop, which drains for 2 s at a time and only
    between drains acknowledges finished thread-pool tasks or notices a stop (then drains once
    more): each stop took 2.5-5.5 s and acknowledgements lagged up to 2 s. The folder is polled
    every ``polling_interval`` (0.2 s) either way, so shorter drains cost nothing measurable.
    """

    def drain_events(self, connection, timeout=None):
        if timeout is not None:
            timeout = min(timeout, DRAIN_SECONDS)
        return super().drain_events(connection, timeout=timeout)
