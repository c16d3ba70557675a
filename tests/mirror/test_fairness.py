"""Snapshots of many platforms on one reporting queue: a long run past
``SNAPSHOT_MAX_LONG_RUNS`` waits, an incremental never does."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from platforms.mirror.models import SnapshotRun
from platforms.mirror.runs import LEASE, RunDeferred, execute_run
from tests.factories import TradePlatformFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.timeout(120)]


@pytest.fixture
def busy(db):
    """Another platform's full load, running on another worker (fresh heartbeat)."""
    return SnapshotRun.objects.create(platform=TradePlatformFactory(name="Big"), kind="full",
                                      state="running", heartbeat_at=timezone.now())


def test_a_long_run_past_the_limit_waits_and_an_incremental_goes_ahead(
        busy, sandbox_platforms, settings):
    settings.SNAPSHOT_MAX_LONG_RUNS = 1
    mt4, _ = sandbox_platforms
    full = SnapshotRun.objects.create(platform=mt4, kind="full")
    with pytest.raises(RunDeferred):
        execute_run(full.pk)
    full.refresh_from_db()
    assert full.state == "queued" and full.attempts == 0  # untouched: sent again later

    incremental = SnapshotRun.objects.create(platform=mt4, kind="incremental")
    assert execute_run(incremental.pk).state == "succeeded"

    # the other worker died (heartbeat past the lease): its slot is free again
    SnapshotRun.objects.filter(pk=busy.pk).update(
        heartbeat_at=timezone.now() - LEASE - timedelta(seconds=1))
    assert execute_run(full.pk).state == "succeeded"


def test_no_limit_by_default_and_never_for_the_same_platform(busy, settings):
    from platforms.mirror.runs import long_run_slot_free

    assert long_run_slot_free(SnapshotRun(platform=busy.platform, kind="full"))  # limit 0
    settings.SNAPSHOT_MAX_LONG_RUNS = 1
    other = TradePlatformFactory(name="Other")
    assert not long_run_slot_free(SnapshotRun(platform=other, kind="history"))
    # the platform's own run is its claim's business, not the slot's
    assert long_run_slot_free(SnapshotRun(platform=busy.platform, kind="full"))
    assert long_run_slot_free(SnapshotRun(platform=other, kind="incremental"))
