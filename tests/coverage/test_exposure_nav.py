"""The "Exposure" links are shown exactly to users the page lets in, and coverage accounts are
polled by beat without any page open."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse

from tests.factories import StaffUserFactory, TradePlatformFactory, grant

pytestmark = pytest.mark.django_db


def _links(client, platform) -> dict[str, bool]:
    """Which exposure links the overview's top bar and the platform's sub-navigation show,
    and whether the page they point to answers."""
    top = client.get(reverse("dashboard:overview")).content.decode()
    sub = client.get(reverse("dashboard:accounts", args=[platform.pk])).content.decode()
    page = client.get(reverse("dashboard:platform-exposure", args=[platform.pk]))
    return {
        "top": 'id="nav-exposure"' in top,
        "sub": reverse("dashboard:platform-exposure", args=[platform.pk]) in sub,
        "page": page.status_code == 200,
    }


@pytest.mark.parametrize("role,shown", [("risk", True), ("dealer", True), ("admin", True),
                                        ("finance", False), ("support", False), (None, False)])
def test_the_exposure_links_follow_who_may_view_the_page(client, role, shown):
    platform = TradePlatformFactory()
    user = grant(StaffUserFactory(username=f"nav-{role}"), platform, role=role)
    client.force_login(user)
    assert _links(client, platform) == {"top": shown, "sub": shown, "page": shown}


def test_a_role_taken_away_or_given_changes_the_links_at_once(client):
    platform = TradePlatformFactory()
    user = grant(StaffUserFactory(username="nav-change"), platform, role="risk")
    client.force_login(user)
    assert _links(client, platform) == {"top": True, "sub": True, "page": True}
    user.groups.clear()
    assert _links(client, platform) == {"top": False, "sub": False, "page": False}
    Group.objects.get(name="dealer").user_set.add(user)  # from the role's side this time
    assert _links(client, platform) == {"top": True, "sub": True, "page": True}
    Group.objects.get(name="dealer").delete()
    assert _links(client, platform) == {"top": False, "sub": False, "page": False}


def test_beat_polls_every_coverage_account_on_the_reporting_queue():
    from django_celery_beat.models import PeriodicTask

    row = PeriodicTask.objects.get(task="platforms.coverage.tasks.poll_all_coverage")
    assert row.enabled and row.queue == "reporting"
    assert row.interval is not None and row.interval.period == "seconds"
    assert 0 < row.interval.every <= 60
