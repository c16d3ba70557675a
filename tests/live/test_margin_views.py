"""The margin monitor page (server-rendered part) and the alert actions."""

from __future__ import annotations

import time

import pytest
from django.core.cache import cache
from django.urls import reverse

from platforms.live import margins, store
from platforms.live.models import MarginAlert
from platforms.models import AuditEvent
from tests.factories import MirrorAccountFactory, StaffUserFactory, TradePlatformFactory, grant


@pytest.fixture
def monitor(db, client):
    mine, other = TradePlatformFactory(name="Mine"), TradePlatformFactory(name="Other")
    user = grant(StaffUserFactory(username="mon-dealer"), mine, role="dealer")
    client.force_login(user)
    store.save(
        mine.pk,
        {
            "rows": [
                [101, 900.0, 1000.0, -100.0, 90.0, 1, "real\\usd-std"],
                [102, 5000.0, 1000.0, 4000.0, 500.0, 0, "real\\usd-std"],
                [103, 40.0, 100.0, -60.0, 40.0, 2, "real\\usd-std"],
                [104, 100.0, 0.0, 100.0, 0.0, 0, "real\\usd-std"],
            ],
            "groups": {"real\\usd-std": [100, 50]},
            "up": True,
            "ts": time.time(),
        },
    )
    yield {"mine": mine, "other": other, "user": user}
    store.forget(mine.pk)


def test_rows_are_ordered_by_band_then_level_with_group_bands(monitor, client):
    response = client.get(reverse("dashboard:platform-margins", args=[monitor["mine"].pk]))
    assert response.status_code == 200
    html = response.content.decode()
    order = [html.index(f':{login}"') for login in (103, 101, 102)]
    assert order == sorted(order)
    assert ':104"' not in html  # no margin in use: not a risk row
    assert "100 / 50" in html and "data-live-status" in html
    assert 'id="margin-call-count" data-live-badge>2<' in html


def test_the_nav_count_counts_only_accounts_inside_the_grant(monitor, client):
    masked = grant(StaffUserFactory(username="mon-masked"), monitor["mine"],
                   group_masks="real\\*,!real\\usd-std")
    client.force_login(masked)
    html = client.get(reverse("dashboard:margins")).content.decode()
    assert 'id="margin-call-count" data-live-badge>0<' in html
    assert ':101"' not in html and ':103"' not in html


def test_another_platforms_monitor_is_404(monitor, client):
    response = client.get(reverse("dashboard:platform-margins", args=[monitor["other"].pk]))
    assert response.status_code == 404


def test_acknowledge_and_assign_are_stored_and_audited(monitor, client):
    url = reverse("dashboard:margin-alert", args=[monitor["mine"].pk, 101])
    assert client.post(url, {"action": "ack"}, HTTP_HX_REQUEST="true").status_code == 200
    response = client.post(url, {"action": "assign"}, HTTP_HX_REQUEST="true")
    assert "Assigned to mon-dealer" in response.content.decode()
    alert = MarginAlert.objects.get(platform=monitor["mine"], login=101)
    assert alert.acknowledged_by == monitor["user"] and alert.assigned_to == monitor["user"]
    assert alert.level_type == "MarginCall" and alert.level == 90.0
    actions = set(AuditEvent.objects.filter(target="101").values_list("action", flat=True))
    assert actions == {"margin_alert.ack", "margin_alert.assign"}
    other = reverse("dashboard:margin-alert", args=[monitor["other"].pk, 101])
    assert client.post(other, {"action": "ack"}).status_code == 404


@pytest.mark.parametrize("role", ["support", "finance", None])
def test_an_alert_needs_the_acknowledge_alerts_permission(monitor, client, role):
    """Support (and any role without ``acknowledge_alerts``) may see the monitor but neither
    acknowledges nor takes on an alert: 403, and nothing is written."""
    user = grant(StaffUserFactory(username=f"mon-{role}"), monitor["mine"], role=role)
    client.force_login(user)
    url = reverse("dashboard:margin-alert", args=[monitor["mine"].pk, 101])
    for verb in ("ack", "assign"):
        response = client.post(url, {"action": verb}, HTTP_HX_REQUEST="true")
        assert response.status_code == 403, response.content[:200]
        assert b"acknowledge_alerts" in response.content
    assert not MarginAlert.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.parametrize("login", [99999999999, 105, 2**63 - 1])
def test_no_alert_for_an_account_that_does_not_exist(monitor, client, login):
    """A login neither the mirror nor the live store knows is not found, even for a dealer
    whose grant has no group masks (every login is "in scope")."""
    url = reverse("dashboard:margin-alert", args=[monitor["mine"].pk, login])
    for verb in ("ack", "assign"):
        assert client.post(url, {"action": verb}).status_code == 404
    assert not MarginAlert.objects.exists() and not AuditEvent.objects.exists()


def test_an_account_only_the_mirror_knows_can_be_acknowledged(monitor, client):
    MirrorAccountFactory(platform=monitor["mine"], login=4242, group="real\\usd-std")
    url = reverse("dashboard:margin-alert", args=[monitor["mine"].pk, 4242])
    assert client.post(url, {"action": "ack"}).status_code == 200
    assert MarginAlert.objects.get(login=4242).acknowledged_by == monitor["user"]


def test_handle_alert_refuses_an_unknown_account_whoever_calls_it(monitor, rf):
    request = rf.post("/")
    request.user = monitor["user"]
    with pytest.raises(margins.UnknownAccount):
        margins.handle_alert(request, monitor["mine"], 99999999999, "ack")
    assert not MarginAlert.objects.exists() and not AuditEvent.objects.exists()


def test_a_stale_bridge_snapshot_is_not_shown_as_current(settings):
    """A snapshot left in the cache by a bridge that stopped must not hydrate a page."""
    import time

    from platforms.live import store

    cache.set(store.snapshot_key(987654), {"rows": [[1, 2, 3, 4, 5, 0, "g"]], "groups": {},
                                           "up": True, "ts": time.time() - 3600})
    assert store.latest(987654) is None
    cache.set(store.snapshot_key(987654), {"rows": [], "groups": {}, "up": True,
                                           "ts": time.time()})
    assert store.latest(987654) is not None
    cache.delete(store.snapshot_key(987654))
