"""The wire format of a ``platform.batch`` between the bridge and the sockets.

Every socket receives every batch of its platforms but shows a few dozen accounts of thousands.
Decoding whole batches per socket made Python objects by the hundred thousand a second (50
sockets x 5 000 rows/s) and the garbage collector's pauses became the latency tail. So a batch
carries, besides its lines of JSON, flat indexes a socket scans without building anything:

* ``rows``: bytes, one margin row per line (``[login, equity, margin, free, level,
  level_type, group]``), sorted by login; ``logins``: their logins as native signed 64-bit
  integers (``array('q')``, so a socket finds its few accounts by bisection); ``offsets``:
  where each line starts, and the end (``array('q')``); ``levels``: their level types (0 Ok,
  1 MarginCall, 2 StopOut), a byte each (an alert page finds the non-zero ones in C);
* ``events``: bytes, one account event (trade or user update, with the account's ``group``)
  per line; ``event_logins``: their logins, as above.

A socket decodes only the lines it forwards. Bytes are immutable, so the in-memory channel
layer's per-recipient deep copy is free, and Redis carries them as they are.
"""

from __future__ import annotations

import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Sequence, Set
from operator import itemgetter
from typing import Any

import msgspec

MAX_LOGIN = 2**63 - 1
_encode = msgspec.json.Encoder().encode
_decode_row = msgspec.json.Decoder(list).decode
_decode_event = msgspec.json.Decoder(dict[str, Any]).decode


def _indexable(login: Any) -> bool:
    return type(login) is int and 0 <= login <= MAX_LOGIN


def encode(
    rows: Iterable[Sequence[Any]], events: Iterable[tuple[int, dict[str, Any]]] = ()
) -> dict[str, bytes]:
    """The batch fields for margin ``rows`` and ``(login, event)`` pairs; an entry whose
    login is not a 64-bit integer cannot be indexed and is left out."""
    rows = sorted((r for r in rows if _indexable(r[0])), key=itemgetter(0))
    events = [(login, e) for login, e in events if _indexable(login)]
    lines = [_encode(row) for row in rows]
    offsets = array("q", [0])
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    return {
        "rows": b"\n".join(lines),
        "logins": array("q", [row[0] for row in rows]).tobytes(),
        "offsets": offsets.tobytes(),
        "levels": bytes(min(max(int(row[5] or 0), 0), 255) for row in rows),
        "events": b"\n".join(_encode(event) for _, event in events),
        "event_logins": array("q", [login for login, _ in events]).tobytes(),
    }


def _logins(raw: bytes) -> array:
    logins = array("q")
    logins.frombytes(raw)
    return logins


_NOT_OK = re.compile(rb"[^\x00]")


def select_rows(message: dict[str, Any], logins: Set[int], *, not_ok: bool = False) -> list[list]:
    """The margin rows of a batch whose login is in ``logins`` (and, with ``not_ok``, every
    row outside the Ok band), decoded; nothing is built for the other rows."""
    index = _logins(message["logins"])
    count = len(index)
    picked: set[int] = set()
    if logins and count:
        if len(logins) * 8 < count:
            for login in logins:
                i = bisect_left(index, login)
                if i < count and index[i] == login:
                    picked.add(i)
        else:
            picked.update(i for i, login in enumerate(index) if login in logins)
    if not_ok:
        picked.update(m.start() for m in _NOT_OK.finditer(message["levels"]))
    if not picked:
        return []
    offsets = _logins(message["offsets"])
    rows = message["rows"]
    return [_decode_row(rows[offsets[i] : offsets[i + 1] - 1]) for i in sorted(picked)]


def select_events(message: dict[str, Any], logins: Any) -> list[tuple[int, dict[str, Any]]]:
    """The ``(login, event)`` pairs of a batch whose login is in ``logins``, decoded."""
    if not message.get("event_logins") or not logins:
        return []
    index = _logins(message["event_logins"])
    picked = [i for i, login in enumerate(index) if login in logins]
    if not picked:
        return []
    lines = message["events"].split(b"\n")
    return [(index[i], _decode_event(lines[i])) for i in picked]


def decode(message: dict[str, Any]) -> tuple[list[list], list[tuple[int, dict[str, Any]]]]:
    """Every row and every event of a batch (tests, tools)."""
    rows = [_decode_row(line) for line in message["rows"].split(b"\n")] if message["rows"] else []
    events = []
    if message.get("event_logins"):
        lines = message["events"].split(b"\n")
        events = [(login, _decode_event(lines[i])) for i, login in enumerate(
            _logins(message["event_logins"]))]
    return rows, events
