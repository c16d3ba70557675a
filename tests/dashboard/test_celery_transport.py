"""The embedded broker publishes a message whole or not at all."""

from __future__ import annotations

import os
from queue import Empty

import pytest
from kombu import Connection
from kombu.exceptions import ChannelError

TRANSPORT = "dashboard.celery_transport:FilesystemTransport"


def _connection(folder) -> Connection:
    return Connection(transport=TRANSPORT, transport_options={
        "data_folder_in": str(folder), "data_folder_out": str(folder),
        "processed_folder": str(folder / "processed"), "store_processed": False,
    })


def test_a_consumer_never_sees_a_message_before_it_is_written_whole(tmp_path, monkeypatch):
    """Kombu created the file and then wrote it: a consumer in between read an empty file and
    died on JSONDecodeError. The message must appear only once its bytes are all there."""
    seen_while_writing = []
    real_replace = os.replace

    with _connection(tmp_path) as conn:
        channel = conn.default_channel

        def replace(src, dst):
            # the moment before the message becomes visible: the bytes are all in ``src``
            # and a consumer polling now finds nothing to take
            seen_while_writing.append(sorted(os.listdir(tmp_path)))
            with pytest.raises(Empty):
                channel._get("trading")
            return real_replace(src, dst)

        monkeypatch.setattr(os, "replace", replace)
        channel._put("trading", {"body": "deposit 42"})
        assert channel._get("trading") == {"body": "deposit 42"}
    assert seen_while_writing, "published in place: a consumer could take a half-written file"
    [listing] = seen_while_writing
    assert [name for name in listing if name.endswith(".trading.msg")] == []


def test_an_unwritable_folder_is_a_channel_error(tmp_path):
    with _connection(tmp_path / "missing") as conn, pytest.raises(ChannelError):
        conn.default_channel._put("trading", {"body": "x"})
