"""A platform larger than one snapshot answer should hold is read in cursor pages: the same
mirror, and memory bounded by the page size, not the platform's size."""

from __future__ import annotations

import pytest

from platforms.connections import client_for
from platforms.mirror import sources
from platforms.mirror.models import MirrorAccount, MirrorOpenTrade, MirrorTradeTotal, SnapshotRun
from platforms.mirror.rows import is_open
from platforms.mirror.runs import execute_run

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


def _received(sandbox, operation: str) -> int:
    stats = sandbox.control("GET", "/stats").json()["operations"]
    return stats.get(operation, {}).get("received", 0)


def test_a_platform_past_the_one_shot_limit_is_mirrored_page_by_page(
        sandbox_platforms, clean_sandbox, settings, monkeypatch):
    mt4, _ = sandbox_platforms
    settings.SNAPSHOT_ONE_SHOT_MAX = 50  # the sandbox has 300 accounts
    monkeypatch.setattr(sources, "PAGE_SIZE", 70)
    client = client_for(mt4)
    logins = {u.login for u in client.mt4.iter_users(page_size=500)}
    tickets = {t.order for t in client.mt4.iter_trades_get(page_size=500) if is_open(t)}

    run = SnapshotRun.objects.create(platform=mt4, kind="full")
    assert execute_run(run.pk).state == "succeeded"
    assert set(MirrorAccount.objects.filter(platform=mt4).values_list("login", flat=True)) \
        == logins
    assert set(MirrorOpenTrade.objects.filter(platform=mt4).values_list("ticket", flat=True)) \
        == tickets
    assert sum(MirrorTradeTotal.objects.filter(platform=mt4).values_list("trades", flat=True)) \
        == len(tickets)  # the run added its totals up

    snapshots = _received(clean_sandbox, "UsersSnapshot")
    pages = _received(clean_sandbox, "UsersRequest")
    again = SnapshotRun.objects.create(platform=mt4, kind="full")
    assert execute_run(again.pk).state == "succeeded"
    # the mirror is known to be large now: no one-shot answer is asked for at all
    assert _received(clean_sandbox, "UsersSnapshot") == snapshots
    assert _received(clean_sandbox, "UsersRequest") - pages >= len(logins) // 70
    assert MirrorAccount.objects.filter(platform=mt4).count() == len(logins)
