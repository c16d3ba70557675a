"""Platforms are administered in Django admin; their client secret never leaves the database."""

from __future__ import annotations

import logging

import pytest
from django.db import connection
from django.urls import reverse

from platforms.access.models import PlatformAccess
from platforms.models import AuditEvent, TradePlatform
from tests.factories import StaffUserFactory, TradePlatformFactory

SECRET = "s3cret-value-never-shown"
# The platform-access inline's management form, empty.
NO_INLINES = {"access-TOTAL_FORMS": "0", "access-INITIAL_FORMS": "0"}


@pytest.mark.django_db
def test_client_secret_is_encrypted_at_rest_and_readable_in_python():
    platform = TradePlatformFactory(client_secret=SECRET)
    with connection.cursor() as cursor:
        cursor.execute("SELECT client_secret FROM platforms_tradeplatform WHERE id = %s",
                       [platform.pk])
        stored = cursor.fetchone()[0]
    assert SECRET not in stored
    assert stored.startswith("gAAAA")  # a Fernet token
    assert TradePlatform.objects.get(pk=platform.pk).client_secret == SECRET


@pytest.mark.django_db
def test_change_form_never_renders_the_secret(admin_client):
    platform = TradePlatformFactory(client_secret=SECRET)
    page = admin_client.get(reverse("admin:platforms_tradeplatform_change", args=[platform.pk]))
    assert page.status_code == 200
    assert SECRET not in page.content.decode()
    assert b'name="client_secret"' in page.content


def _form_data(platform: TradePlatform, **overrides) -> dict:
    data = {
        "name": platform.name, "kind": platform.kind, "environment": platform.environment,
        "platform_id": str(platform.platform_id), "api_base_url": platform.api_base_url,
        "sidecar_base_url": "", "oauth_authority": platform.oauth_authority, "oauth_scope": "",
        "client_id": platform.client_id, "client_secret": "", "enabled": "on", **NO_INLINES,
    }
    data.update(overrides)
    return data


@pytest.mark.django_db
def test_blank_secret_keeps_the_stored_one_and_a_new_one_replaces_it(admin_client):
    platform = TradePlatformFactory(client_secret=SECRET)
    url = reverse("admin:platforms_tradeplatform_change", args=[platform.pk])
    assert admin_client.post(url, _form_data(platform, name="Renamed")).status_code == 302
    platform.refresh_from_db()
    assert (platform.name, platform.client_secret) == ("Renamed", SECRET)

    assert admin_client.post(url, _form_data(platform, client_secret="rotated")).status_code == 302
    platform.refresh_from_db()
    assert platform.client_secret == "rotated"

    events = list(AuditEvent.objects.filter(platform=platform).order_by("id"))
    assert [e.action for e in events] == ["platform.change", "platform.change"]
    assert events[0].before["name"] != events[0].after["name"]
    assert events[0].after["client_secret_changed"] is False
    assert events[1].after["client_secret_changed"] is True
    for event in events:
        assert SECRET not in str(event.before) + str(event.after)
        assert "rotated" not in str(event.before) + str(event.after)


@pytest.mark.django_db
def test_grants_added_and_removed_on_the_platform_page_are_audited(admin_client):
    platform = TradePlatformFactory(client_secret=SECRET)
    dealer, leaver = StaffUserFactory(username="dealer9"), StaffUserFactory(username="leaver")
    kept = PlatformAccess.objects.create(user=leaver, platform=platform)
    url = reverse("admin:platforms_tradeplatform_change", args=[platform.pk])
    response = admin_client.post(url, _form_data(platform, **{
        "access-TOTAL_FORMS": "2", "access-INITIAL_FORMS": "1",
        "access-0-id": kept.pk, "access-0-platform": platform.pk, "access-0-user": leaver.pk,
        "access-0-group_masks": "", "access-0-DELETE": "on",
        "access-1-platform": platform.pk, "access-1-user": dealer.pk,
        "access-1-group_masks": "real*",
    }))
    assert response.status_code == 302
    assert list(PlatformAccess.objects.values_list("user__username", flat=True)) == ["dealer9"]
    events = {e.action: e for e in AuditEvent.objects.filter(action__startswith="access.")}
    assert set(events) == {"access.grant", "access.revoke"}
    assert events["access.grant"].target == "dealer9"
    assert events["access.grant"].after["group_masks"] == "real*"
    assert events["access.revoke"].target == "leaver" and events["access.revoke"].after == {}


@pytest.mark.django_db
def test_deleting_a_platform_on_its_page_is_audited_with_its_name(admin_client):
    platform = TradePlatformFactory(name="Old MT4", client_secret=SECRET)
    url = reverse("admin:platforms_tradeplatform_delete", args=[platform.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    event = AuditEvent.objects.get(action="platform.delete")
    assert (event.target, event.platform_id, event.platform_name) == ("Old MT4", None,
                                                                      "Old MT4")
    assert event.before["name"] == "Old MT4" and SECRET not in str(event.before)


@pytest.mark.django_db
def test_vendor_environment_fills_the_public_urls(admin_client):
    response = admin_client.post(reverse("admin:platforms_tradeplatform_add"), {
        "name": "Live MT4", "kind": "MT4", "environment": "production",
        "platform_id": "6f1c1c61-0d6e-4d8e-9d3f-9a1b3c5d7e90", "api_base_url": "",
        "sidecar_base_url": "", "oauth_authority": "", "oauth_scope": "",
        "client_id": "broker", "client_secret": "x", "enabled": "on", **NO_INLINES,
    })
    assert response.status_code == 302
    live = TradePlatform.objects.get(name="Live MT4")
    assert live.api_base_url == "https://cloud.mywebapi.com"
    assert live.oauth_authority == "https://auth.cplugin.net"


@pytest.mark.django_db
def test_custom_environment_without_urls_is_refused_with_a_message(admin_client):
    response = admin_client.post(reverse("admin:platforms_tradeplatform_add"), {
        "name": "Nowhere", "kind": "MT4", "environment": "custom",
        "platform_id": "6f1c1c61-0d6e-4d8e-9d3f-9a1b3c5d7e91", "api_base_url": "",
        "sidecar_base_url": "", "oauth_authority": "", "oauth_scope": "",
        "client_id": "broker", "client_secret": "x", "enabled": "on", **NO_INLINES,
    })
    assert response.status_code == 200
    assert "Required for a custom environment." in response.content.decode()
    assert not TradePlatform.objects.filter(name="Nowhere").exists()


def _run_test_connection(admin_client, platform):
    changelist = reverse("admin:platforms_tradeplatform_changelist")
    return admin_client.post(
        changelist,
        {"action": "test_connection", "_selected_action": [platform.pk]},
        follow=True,
    )


def test_test_connection_reports_server_time_and_round_trip(admin_client, sandbox_platforms):
    for platform in sandbox_platforms:
        page = _run_test_connection(admin_client, platform).content.decode()
        assert f"{platform.name}: OK" in page
        assert "server time" in page and "round trip" in page


def test_test_connection_shows_the_exact_error_and_logs_no_secret(
    admin_client, sandbox_platforms, caplog
):
    mt4, _ = sandbox_platforms
    mt4.client_secret = "wrong-secret-value"
    mt4.save()
    with caplog.at_level(logging.DEBUG):
        page = _run_test_connection(admin_client, mt4).content.decode()
    assert f"{mt4.name}: FAILED" in page
    assert "invalid_client" in page
    assert "wrong-secret-value" not in page
    assert "wrong-secret-value" not in caplog.text
