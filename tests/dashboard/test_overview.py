"""The platforms page: staff only, one card per platform, live health per card."""

from __future__ import annotations

import pytest
from django.urls import reverse

from tests.factories import StaffUserFactory


@pytest.mark.django_db
def test_anonymous_users_are_sent_to_the_login_page(client):
    response = client.get(reverse("dashboard:overview"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
def test_non_staff_users_cannot_open_the_dashboard(client):
    user = StaffUserFactory(username="client-user", is_staff=False)
    client.force_login(user)
    assert client.get(reverse("dashboard:overview")).status_code == 302


@pytest.mark.django_db
def test_empty_state_when_no_platform_is_available(staff_client):
    page = staff_client.get(reverse("dashboard:overview")).content.decode()
    assert "No trade platform is available to you" in page


def test_cards_load_health_from_the_platform(dealer_client, sandbox_platforms):
    staff_client = dealer_client
    page = staff_client.get(reverse("dashboard:overview")).content.decode()
    for platform in sandbox_platforms:
        assert platform.name in page
        assert reverse("dashboard:platform-health", args=[platform.pk]) in page
        partial = staff_client.get(
            reverse("dashboard:platform-health", args=[platform.pk]), HTTP_HX_REQUEST="true"
        )
        body = partial.content.decode()
        assert "<html" not in body  # only the partial is sent to htmx
        assert 'data-state="ok"' in body
        assert "Healthy" in body and "closed" in body
        assert partial["Vary"].find("HX-Request") >= 0


def test_unreachable_platform_shows_the_error_and_circuit(dealer_client, sandbox_platforms):
    staff_client = dealer_client
    mt4, _ = sandbox_platforms
    mt4.api_base_url = "http://127.0.0.1:9"  # nothing listens on the discard port
    mt4.oauth_authority = "http://127.0.0.1:9"
    mt4.save()
    body = staff_client.get(
        reverse("dashboard:platform-health", args=[mt4.pk]), HTTP_HX_REQUEST="true"
    ).content.decode()
    assert 'data-state="down"' in body
    assert "Unreachable" in body


@pytest.mark.django_db
def test_health_of_an_unknown_platform_is_404(staff_client):
    assert staff_client.get(reverse("dashboard:platform-health", args=[999])).status_code == 404


@pytest.mark.django_db
def test_cards_sum_the_mirror_and_totals_keep_currencies_apart(client):
    from tests.factories import MirrorAccountFactory, MirrorOpenTradeFactory, TradePlatformFactory

    a, b = TradePlatformFactory(name="A"), TradePlatformFactory(name="B")
    MirrorAccountFactory(platform=a, login=1, currency="USD", balance=100, equity=90,
                         margin_state="MarginCall")
    MirrorAccountFactory(platform=a, login=2, currency="EUR", balance=50, equity=50)
    MirrorAccountFactory(platform=b, login=1, currency="USD", balance=10, equity=10,
                         margin_state="StopOut")
    MirrorOpenTradeFactory(platform=b, profit=-7.5)
    boss = StaffUserFactory(username="boss", is_superuser=True)
    client.force_login(boss)
    context = client.get(reverse("dashboard:overview")).context
    summaries = dict((p.name, s) for p, s in context["cards"])
    assert summaries["A"]["accounts"] == 2 and summaries["A"]["margin_call"] == 1
    total = context["total"]
    assert (total["accounts"], total["stop_out"], total["floating"]) == (3, 1, -7.5)
    assert total["money"] == [{"currency": "EUR", "balance": 50.0, "equity": 50.0},
                              {"currency": "USD", "balance": 110.0, "equity": 100.0}]
