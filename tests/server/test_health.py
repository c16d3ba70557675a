"""/healthz for monitoring (no login, nothing secret) and the per-platform health page."""

from __future__ import annotations

import json

from django.urls import reverse

from platforms.mirror.models import MirrorState
from platforms.server.health import queue_depths, watch_breaker
from platforms.server.models import BreakerTransition, HealthSample
from platforms.transport import breaker_for


def test_healthz_answers_anonymously_with_nothing_secret(client, sandbox_platforms):
    mt4, mt5 = sandbox_platforms
    MirrorState.objects.update_or_create(platform=mt4,
                                         defaults={"last_full_at": "2026-01-01T00:00Z"})
    response = client.get("/healthz")
    assert response.status_code == 200
    report = response.json()
    assert report["status"] == "ok"
    assert {p["pk"] for p in report["platforms"]} == {mt4.pk, mt5.pk}
    assert all(p["status"] == "ok" and p["breaker"] == "closed" for p in report["platforms"])
    assert set(report["queues"]) == {"trading", "reporting"}
    by_pk = {p["pk"]: p for p in report["platforms"]}
    assert by_pk[mt4.pk]["mirror_age_seconds"] > 0
    assert by_pk[mt5.pk]["mirror_age_seconds"] is None
    body = response.content.decode()
    for platform in (mt4, mt5):
        for secret in (platform.name, str(platform.platform_id), platform.client_id,
                       platform.client_secret, platform.api_base_url):
            assert secret not in body
    assert HealthSample.objects.filter(platform=mt4, ok=True).exists()


def test_healthz_is_503_when_a_platform_is_unreachable(client, sandbox_platforms, clean_sandbox):
    clean_sandbox.control("POST", "/faults", json={"operation": "*", "error": "NoConnect"})
    response = client.get("/healthz")
    assert response.status_code == 503
    report = response.json()
    assert report["status"] == "degraded"
    assert all(p["status"] == "degraded" for p in report["platforms"])
    assert "NoConnect" not in response.content.decode()  # no error text leaks


def test_health_page_needs_view_health(dealer_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    response = dealer_client.get(reverse("dashboard:server-health", args=[mt4.pk]))
    assert response.status_code == 403


def test_health_page_shows_samples_transitions_and_queues(admin_role_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    watch_breaker(mt4)
    breaker = breaker_for(str(mt4.platform_id))
    breaker.trip()
    breaker.reset()
    assert list(BreakerTransition.objects.values_list("old_state", "new_state")) == [
        ("open", "closed"), ("closed", "open")]
    url = reverse("dashboard:server-health", args=[mt4.pk])
    response = admin_role_client.get(url)
    body = response.content.decode()
    assert response.status_code == 200
    assert 'id="breaker-transitions"' in body and "Healthy" in body
    assert 'data-queue="reporting"' in body
    chart = json.loads(response.context["chart"] and json.dumps(response.context["chart"]))
    assert len(chart["data"][0]["x"]) == 1  # the check this view made was recorded
    admin_role_client.get(url)
    assert HealthSample.objects.filter(platform=mt4).count() == 2


def test_health_page_is_404_outside_scope(admin_role_client, sandbox_platforms):
    from tests.factories import TradePlatformFactory

    other = TradePlatformFactory()
    assert admin_role_client.get(
        reverse("dashboard:server-health", args=[other.pk])).status_code == 404


def test_queue_depths_count_filesystem_messages(settings, tmp_path):
    settings.CELERY_BROKER_URL = "filesystem://"
    settings.CELERY_BROKER_TRANSPORT_OPTIONS = {"data_folder_in": str(tmp_path)}
    for name in ("1_a.reporting.msg", "2_b.reporting.msg", "3_c.trading.msg", "4_d.quotes.msg"):
        (tmp_path / name).write_text("{}")
    assert queue_depths() == {"trading": 1, "reporting": 2}
