"""The embedded (filesystem) Celery broker, with a worker that answers within a quarter second."""

from __future__ import annotations

import os
import uuid
from time import monotonic

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

#: Longest a worker's loop waits for a message before it looks at its other work again.
DRAIN_SECONDS = 0.25


class FilesystemChannel(filesystem.Channel):
    """Publishes a message whole or not at all.

    Kombu creates the message file, then writes it: a consumer listing the folder in between
    moved and read an empty file, died on ``JSONDecodeError`` and lost the message (seen in a
    demo under load, and as a trade task that never ran). Written under a name no consumer
    takes (a leading dot, no ``.msg`` suffix), then renamed into place: a rename within one
    folder is atomic, so a consumer sees the whole message or none.
    """

    def _put(self, queue, payload, **kwargs):
        name = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class FilesystemTransport(filesystem.Transport):
    """Kombu's folder transport, drained at most :data:`DRAIN_SECONDS` at a time.

    Without async I/O Celery runs its blocking loop, which drains for 2 s at a time and only
    between drains acknowledges finished thread-pool tasks or notices a stop (then drains once
    more): each stop took 2.5-5.5 s and acknowledgements lagged up to 2 s. The folder is polled
    every ``polling_interval`` (0.2 s) either way, so shorter drains cost nothing measurable.
    """

    Channel = FilesystemChannel

    def drain_events(self, connection, timeout=None):
        if timeout is not None:
            timeout = min(timeout, DRAIN_SECONDS)
        return super().drain_events(connection, timeout=timeout)
