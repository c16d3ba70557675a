"""The sandbox's idempotency store: replies kept for their lifetime, expired ones forgotten.

In-process (no listener): what is asserted is which keys the store still holds after many
writes, which a run over HTTP could only observe one key at a time.
"""

from __future__ import annotations

import time

from platforms.sandbox.idempotency import IDEM_PRUNE_AT, IdemEntry
from platforms.sandbox.simulator import Config, Sandbox


def _answered(fingerprint: str, expires: float) -> IdemEntry:
    entry = IdemEntry(fingerprint)
    entry.running, entry.body, entry.expires = False, b"{}", expires
    return entry


def test_live_keys_outlast_any_number_of_writes_and_expired_ones_go() -> None:
    sandbox = Sandbox(Config(users=10, mt5_users=10, tick_rate=0))
    now = time.time()
    sandbox.idem = {f"old-{i}": _answered("o", now - 1) for i in range(IDEM_PRUNE_AT // 2)}
    running = IdemEntry("r")  # a call still in progress is never forgotten, expired or not
    running.expires = now - 1
    sandbox.idem["in-flight"] = running
    for i in range(3 * IDEM_PRUNE_AT):  # a burst of writes, all inside their lifetime
        sandbox.prune_idem()
        sandbox.idem[f"live-{i}"] = _answered("l", now + 60)
    sandbox.prune_idem()
    assert not any(key.startswith("old-") for key in sandbox.idem)
    assert sum(key.startswith("live-") for key in sandbox.idem) == 3 * IDEM_PRUNE_AT
    assert sandbox.idem["in-flight"] is running
    # the store is scanned again only once it has doubled: the burst cost a few scans
    assert sandbox.idem_prune_at >= 2 * IDEM_PRUNE_AT


def test_the_mark_falls_back_once_keys_expire() -> None:
    sandbox = Sandbox(Config(users=10, mt5_users=10, tick_rate=0))
    now = time.time()
    sandbox.idem = {f"k-{i}": _answered("x", now - 1) for i in range(IDEM_PRUNE_AT + 1)}
    sandbox.idem_prune_at = 4 * IDEM_PRUNE_AT
    sandbox.prune_idem()  # under the raised mark: nothing scanned yet
    assert len(sandbox.idem) == IDEM_PRUNE_AT + 1
    sandbox.idem.update({f"m-{i}": _answered("x", now - 1) for i in range(3 * IDEM_PRUNE_AT)})
    sandbox.prune_idem()
    assert sandbox.idem == {}
    assert sandbox.idem_prune_at == IDEM_PRUNE_AT
