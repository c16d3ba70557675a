"""The badge and the margin monitor read the bridge's per-group risk summary, not every row."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache

from platforms.live import margins, store
from tests.factories import StaffUserFactory, TradePlatformFactory, grant

pytestmark = pytest.mark.django_db


def _row(login, level, band, group):
    return (login, 100.0, 50.0, 50.0, level, band, group)


@pytest.fixture
def platform():
    platform = TradePlatformFactory(name="Risky")
    rows = [_row(1, 40.0, 2, "real\\a"), _row(2, 90.0, 1, "real\\a"), _row(3, 95.0, 1, "real\\b"),
            _row(4, 300.0, 0, "real\\b"), (5, 10.0, 0.0, 10.0, None, 0, "real\\b")]
    rows += [_row(100 + n, 1000.0 + n, 0, "demo\\x") for n in range(store.RISK_ROWS_PER_GROUP + 5)]
    summary = store.risk_summary({"rows": rows, "groups": {"real\\a": [100, 50]}, "up": True,
                                  "ts": time.time()})
    cache.set(store.risk_key(platform.pk), summary)  # the summary only: no full state cached
    yield platform
    store.forget(platform.pk)


def test_the_summary_keeps_counts_and_the_riskiest_rows_per_group(platform):
    summary = store.latest_risk(platform.pk)
    assert summary["at_risk"] == {"real\\a": 2, "real\\b": 1}
    assert len(summary["top"]["demo\\x"]) == store.RISK_ROWS_PER_GROUP  # bounded per group
    assert [r[0] for r in summary["top"]["real\\b"]] == [3, 4]  # no margin in use: left out


def test_badge_and_monitor_answer_within_the_masks_from_the_summary(platform):
    everyone = grant(StaffUserFactory(), platform, role="dealer")
    masked = grant(StaffUserFactory(), platform, group_masks="real\\*,!real\\a", role="dealer")
    assert margins.margin_call_count(everyone) == 3
    assert margins.margin_call_count(masked) == 1
    rows = margins.platform_margins(everyone, platform, limit=4).rows
    assert [r.login for r in rows] == [1, 2, 3, 4]  # stop-out, then margin calls by level
    assert rows[0].margin_call == 100
    assert [r.login for r in margins.platform_margins(masked, platform, limit=10).rows] == [3, 4]
