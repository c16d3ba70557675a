"""The ``Idempotency-Key`` store of the v2 writes: a key's request fingerprint and its answer.

A write with a key runs once: a repeat with the same request replays the stored answer, one
with another request is refused, one while the first still runs is told so. Answers are kept
for a minute, or an hour when the outcome was unknown (the caller will retry to find out).
"""

from __future__ import annotations

import hashlib
import time

from starlette.requests import Request

from .wire import encode

IDEM_KEEP_OK = 60.0
IDEM_KEEP_UNKNOWN = 3600.0
#: the idempotency store is scanned for expired keys only past this many (and then its double)
IDEM_PRUNE_AT = 5000
#: query parameters that do not make two requests different (deadlines, cache controls)
FINGERPRINT_SKIPS = frozenset({"requesttimeout", "cacheid", "cachetimeout"})


class IdemEntry:
    """One key: its request's fingerprint and, once answered, the reply to replay."""

    __slots__ = ("body", "expires", "fingerprint", "outcome", "running")

    def __init__(self, fingerprint: str) -> None:
        self.fingerprint = fingerprint
        self.running = True
        self.body = b""
        self.outcome: str | None = None
        self.expires = time.time() + IDEM_KEEP_UNKNOWN

    def answered(self, body: bytes, *, unknown: bool) -> None:
        """Keep the answer; an unknown outcome is kept longer, for the retries it causes."""
        self.running = False
        self.body = body
        self.outcome = None
        self.expires = time.time() + (IDEM_KEEP_UNKNOWN if unknown else IDEM_KEEP_OK)


def valid_key(key: str) -> bool:
    return bool(key) and len(key) <= 255 and all(32 <= ord(c) < 127 for c in key)


def fingerprint(request: Request, body: bytes) -> str:
    """Method, path, query (less :data:`FINGERPRINT_SKIPS`) and body: "the same request"."""
    query = sorted(
        (k, v) for k, v in request.query_params.multi_items() if k.lower() not in FINGERPRINT_SKIPS
    )
    h = hashlib.sha256()
    h.update(request.method.encode())
    h.update(request.url.path.encode())
    h.update(encode(query))
    h.update(body)
    return h.hexdigest()


def pruned(store: dict[str, IdemEntry], mark: int) -> tuple[dict[str, IdemEntry], int]:
    """``store`` without its expired replies once it has grown past ``mark``, and the next mark.

    The mark then doubles with what is still live, so a burst of more than the mark's keys
    inside their lifetime costs one scan per doubling, not one per request (a scan per
    write made every write O(keys): the sandbox slowed from ~800 to ~170 writes/s over
    a 15,000-call run)."""
    if len(store) <= mark:
        return store, mark
    now = time.time()
    live = {k: e for k, e in store.items() if e.running or e.expires > now}
    return live, max(IDEM_PRUNE_AT, 2 * len(live))
