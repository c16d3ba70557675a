"""What a browser may send on ``/ws/live/``, validated at the edge with msgspec.

One decode turns a socket message into a typed :class:`Watch` or a short, clear error that the
consumer answers as ``{"t": "error", "message": ...}``: non-JSON, oversize, unknown ``type``,
wrong shapes, ids that are not plain ASCII digits (``"²"``, ``"01"``, ``"+1"``) or exceed the
database's ``2**63-1``, non-string symbols. Nothing a client sends can raise inside the
consumer, and the socket stays usable after an error.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

import msgspec

from platforms.access.scope import MAX_ID

MAX_MESSAGE_BYTES = 64 * 1024
MAX_PLATFORMS = 64
MAX_ACCOUNTS_PER_PLATFORM = 500  # the largest list page (dashboard.tables.PAGE_SIZES)
MAX_SYMBOLS_PER_PLATFORM = 100
MAX_ERROR_CHARS = 200

#: A platform pk or an MT4/MT5 login: a JSON integer (or, as an object key, a string of plain
#: ASCII digits, which msgspec parses strictly) within the database's BigInteger range.
Id = Annotated[int, msgspec.Meta(ge=1, le=MAX_ID)]
#: MT4 symbols are short printable ASCII names (``EURUSD``, ``XAUUSD.m``, ``#AAPL``).
Symbol = Annotated[str, msgspec.Meta(min_length=1, max_length=32, pattern=r"^[!-~]+\Z")]
Logins = Annotated[list[Id], msgspec.Meta(max_length=MAX_ACCOUNTS_PER_PLATFORM)]
Symbols = Annotated[list[Symbol], msgspec.Meta(max_length=MAX_SYMBOLS_PER_PLATFORM)]


class Watch(msgspec.Struct, forbid_unknown_fields=True):
    """What one page shows: ``{"type": "watch", "platforms": [pk], "accounts": {"pk":
    [login]}, "symbols": {"pk": ["EURUSD"]}, "alerts": bool, "exposure": [pk]}``; it replaces
    the last one. ``exposure``: platforms whose net exposure the page shows (it is told when
    that changes, and re-reads its figures)."""

    type: Literal["watch"]
    platforms: Annotated[list[Id], msgspec.Meta(max_length=MAX_PLATFORMS)] = []
    accounts: Annotated[dict[Id, Logins], msgspec.Meta(max_length=MAX_PLATFORMS)] = {}
    symbols: Annotated[dict[Id, Symbols], msgspec.Meta(max_length=MAX_PLATFORMS)] = {}
    alerts: bool = False
    exposure: Annotated[list[Id], msgspec.Meta(max_length=MAX_PLATFORMS)] = []

    def asked_platforms(self) -> set[int]:
        """Every platform the message names, as a list entry or as a key."""
        return set(self.platforms) | set(self.accounts) | set(self.symbols) | set(self.exposure)


class ProtocolError(Exception):
    """A message the socket refuses; ``str(exc)`` is what the browser is told."""


_decoder = msgspec.json.Decoder(Watch)


def parse(text: str | None, data: bytes | None = None) -> Watch:
    """The :class:`Watch` in one socket message, or :class:`ProtocolError` saying what is wrong."""
    if text is None:
        raise ProtocolError("send JSON text frames, not binary" if data else "empty message")
    if len(text) > MAX_MESSAGE_BYTES or len(text.encode("utf-8", "replace")) > MAX_MESSAGE_BYTES:
        raise ProtocolError(f"message too large (over {MAX_MESSAGE_BYTES} bytes)")
    try:
        return _decoder.decode(text.encode("utf-8", "replace"))
    except msgspec.ValidationError as exc:
        if str(exc).endswith("at `$.type`"):
            raise ProtocolError('unknown message type (expected "watch")') from None
        raise ProtocolError(_short(f"invalid message: {exc}")) from None
    except msgspec.DecodeError:
        raise ProtocolError("not a JSON message") from None


def _short(message: str) -> str:
    return message if len(message) <= MAX_ERROR_CHARS else message[: MAX_ERROR_CHARS - 1] + "…"


def dumps(value: Any) -> str:
    """A frame as compact JSON."""
    return json.dumps(value, separators=(",", ":"))


def error_frame(message: str) -> str:
    return dumps({"t": "error", "message": message})
