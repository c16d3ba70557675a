"""Error pages inside the normal frame: out-of-grant pages are 404s that staff meet, so the 404
keeps the navigation; the gate's refusal and Django's 403 look alike; an expired form says what
to do; the 500 page renders with the database gone."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied
from django.test import Client, RequestFactory
from django.urls import reverse

from tests.factories import StaffUserFactory, TradePlatformFactory, grant

FRAME = ('<nav class="nav">', 'href="/margins/"', 'id="display-prefs"', 'id="env-banner"',
         'id="error-page"', "/static/dashboard/dashboard.css")


def _framed(body: str) -> None:
    for part in FRAME:
        assert part in body, part


@pytest.mark.django_db
def test_an_out_of_grant_page_is_a_404_with_the_navigation(client):
    mine, theirs = TradePlatformFactory(), TradePlatformFactory()
    client.force_login(grant(StaffUserFactory(), mine, role="dealer"))
    for url in (f"/platforms/{theirs.pk}/accounts/", "/no/such/page/"):
        response = client.get(url)
        assert response.status_code == 404, url
        body = response.content.decode()
        _framed(body)
        assert "404 · Not found" in body and url not in body  # the path may name an account


@pytest.mark.django_db
def test_the_gates_refusal_and_djangos_403_are_the_same_page(client, rf):
    from django.views.defaults import permission_denied

    platform = TradePlatformFactory()
    dealer = grant(StaffUserFactory(), platform, role="dealer")
    client.force_login(dealer)
    gate = client.get(reverse("dashboard:operation", args=[platform.pk, 100002, "deposit"]))
    assert gate.status_code == 403
    request = rf.get("/")
    request.user = dealer
    plain = permission_denied(request, PermissionDenied("Finance approves this, not dealers."))
    assert plain.status_code == 403
    for body in (gate.content.decode(), plain.content.decode()):
        _framed(body)
        assert "403 · Not allowed" in body and 'id="forbidden-reason"' in body
    assert "Finance approves this, not dealers." in plain.content.decode()


@pytest.mark.django_db
def test_an_expired_form_is_a_framed_403_that_says_what_to_do():
    client = Client(enforce_csrf_checks=True)
    client.force_login(StaffUserFactory())
    response = client.post(reverse("logout"))  # no token: as a form from before a new sign-in
    assert response.status_code == 403
    body = response.content.decode()
    _framed(body)
    assert "The form had expired" in body and "Nothing was sent" in body


@pytest.mark.django_db
def test_a_server_error_is_a_framed_500(monkeypatch, settings):
    from dashboard.views import overview

    def broken(user):
        raise RuntimeError("the mirror's database is gone")

    monkeypatch.setattr(overview, "visible_platforms", broken)
    client = Client(raise_request_exception=False)
    client.force_login(StaffUserFactory())
    response = client.get("/")
    assert response.status_code == 500
    body = response.content.decode()
    _framed(body)
    assert "Something went wrong on our side" in body and "database is gone" not in body
    assert f'class="env-banner env-site-{settings.DJANGO_ENV}"' in body  # the deployment banner


def test_the_500_page_renders_without_any_database_access(django_db_blocker):
    """Any query while it renders raises here (the database is blocked, not merely unused)."""
    from dashboard.views.errors import server_error

    with django_db_blocker.block():
        response = server_error(RequestFactory().get("/accounts/"))
    assert response.status_code == 500
    _framed(response.content.decode())
