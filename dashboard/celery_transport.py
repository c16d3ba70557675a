"""The embedded (filesystem) Celery broker: whole messages only, a consumer that never dies on
one it cannot read, and a worker that answers within a quarter second."""

from __future__ import annotations

import errno
import logging
import os
import shutil
import uuid
from collections import deque
from contextlib import suppress
from functools import cached_property
from itertools import count
from queue import Empty
from time import time_ns

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

#: this process's publishing order, for messages named within one nanosecond
_SEQUENCE = count()

log = logging.getLogger(__name__)

#: Longest a worker's loop waits for a message before it looks at its other work again.
DRAIN_SECONDS = 0.25
#: Where a message no consumer can read is kept (beside the queue folder), for a person to look at.
QUARANTINE_FOLDER = "failed"


class FilesystemChannel(filesystem.Channel):
    """Publishes a message whole or not at all, and sets aside one it cannot read.

    Kombu creates the message file, then writes it: a consumer listing the folder in between
    moved and read an empty file, died on ``JSONDecodeError`` and lost the message (seen in a
    demo under load, and as a trade task that never ran). Written under a name no consumer
    takes (a leading dot, no ``.msg`` suffix), then renamed into place: a rename within one
    folder is atomic, so a consumer sees the whole message or none. A file that still cannot
    be read (written by another program, a full disk, an older publisher) is moved to
    :data:`QUARANTINE_FOLDER` with one log line, and the consumer goes on to the next.
    """

    def _put(self, queue, payload, **kwargs):
        # Names sort in publishing order (consumers take the smallest first): wall-clock
        # nanoseconds, zero-padded so that they compare as text, then this process's sequence
        # number for messages of the same nanosecond (kombu's unpadded milliseconds with a
        # random suffix took two messages of one millisecond in either order).
        name = f"{time_ns():020d}_{next(_SEQUENCE):09d}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.part")
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        """Take the oldest readable message of ``queue``; set aside any unreadable one first.

        The folder is listed once per batch, not once per message (kombu's): with thousands
        queued, listing and sorting on every take made draining quadratic.
        """
        pending = self._pending.get(queue)
        if pending:  # what is left of the last listing, then a fresh one
            with suppress(Empty):
                return self._take_first(pending)
        pending = self._pending[queue] = deque(sorted(
            name for name in os.listdir(self.data_folder_in)
            if name.partition(".")[2] == f"{queue}.msg"))
        return self._take_first(pending)

    def _take_first(self, pending: deque[str]):
        while pending:
            name = pending.popleft()
            taken = self._take(name)
            if taken is None:  # another consumer was first
                continue
            try:
                with open(taken, "rb") as f:
                    payload = loads(bytes_to_str(f.read()))
            except FileNotFoundError:
                log.warning("broker message %s vanished before it was read; skipped", name)
                continue
            except (OSError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError too
                self._quarantine(taken, name, exc)
                continue
            if not self.store_processed:
                with suppress(FileNotFoundError):
                    os.remove(taken)
            return payload
        raise Empty()

    @cached_property
    def _pending(self) -> dict[str, deque[str]]:
        return {}

    def _take(self, name: str) -> str | None:
        """Move the message out of the queue folder: whoever's rename succeeds owns it."""
        source = os.path.join(self.data_folder_in, name)
        if os.path.isdir(self.processed_folder):
            taken = os.path.join(self.processed_folder, name)
        else:  # a hidden name beside it, which no consumer lists as a message
            taken = os.path.join(self.data_folder_in, f".{name}.taken")
        try:
            os.rename(source, taken)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise ChannelError(f"Cannot take {source!r} from the queue") from exc
            try:  # the processed folder is on another filesystem: copy, then delete
                shutil.move(source, taken)
            except FileNotFoundError:
                return None
        return taken

    def _quarantine(self, taken: str, name: str, exc: Exception) -> None:
        folder = os.path.join(os.path.dirname(os.path.abspath(self.data_folder_in)),
                              QUARANTINE_FOLDER)
        try:
            os.makedirs(folder, exist_ok=True)
            shutil.move(taken, os.path.join(folder, name))
            where = folder
        except OSError:
            where = "nowhere (could not move it)"
        log.error("unreadable broker message %s moved to %s: %s", name, where, exc)


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
