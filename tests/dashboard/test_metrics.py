"""``/metrics``: refused without the token or a configured network, and every family present
with sane values after real work against the sandbox (pages served, a snapshot run, a coverage
poll run as a Celery task, a breaker tripped). The whole layout's view of the same families
(two web processes, real workers, the stream) is in tests/deploy/test_production_layout.py."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from django.core.cache import cache
from django.urls import reverse
from prometheus_client.parser import text_string_to_metric_families

from dashboard.metrics import tasks as task_metrics
from platforms.coverage.models import CoverageAccount
from platforms.coverage.selectors import coverage_cache_key
from platforms.coverage.services import register_sandbox_coverage_accounts
from platforms.coverage.tasks import poll_coverage
from platforms.live import store
from platforms.mirror.runs import execute_run, request_run
from platforms.trading.models import TaskState, TradeTask
from platforms.transport import breaker_for

TOKEN = "metrics-token-for-tests"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def metrics_settings(settings):
    settings.METRICS_TOKEN = TOKEN
    settings.METRICS_ALLOWED_NETWORKS = []
    return settings


def _scrape(client) -> dict[str, list]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {family.name: family.samples
            for family in text_string_to_metric_families(response.content.decode())}


@pytest.mark.django_db
def test_metrics_are_refused_without_the_token_or_an_allowed_network(client, metrics_settings):
    assert client.get("/metrics").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 403
    assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    # the test client's REMOTE_ADDR is 127.0.0.1
    metrics_settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "192.168.0.0/16"]
    assert client.get("/metrics").status_code == 403
    metrics_settings.METRICS_ALLOWED_NETWORKS = ["10.0.0.0/8", "127.0.0.0/8"]
    assert client.get("/metrics").status_code == 200
    # neither configured: nobody, not even with an empty bearer
    metrics_settings.METRICS_ALLOWED_NETWORKS = []
    metrics_settings.METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403
    assert client.post("/metrics").status_code in {403, 405}


@pytest.mark.django_db(transaction=True)  # a snapshot run commits (and closes) as a worker does
def test_every_family_has_sane_values_after_real_work(
    dealer_client, sandbox_platforms, clean_sandbox, metrics_settings
):
    mt4, mt5 = sandbox_platforms
    # pages: the histogram is labelled by view name, never by path
    assert dealer_client.get(reverse("dashboard:overview")).status_code == 200
    assert dealer_client.get(reverse("dashboard:accounts", args=[mt4.pk])).status_code == 200
    # the mirror: a real full snapshot of the MT4 platform
    run, _ = request_run(mt4, "full")
    execute_run(run.pk)
    # coverage: a real poll of each sandbox LP account, run as the Celery task it is
    register_sandbox_coverage_accounts(clean_sandbox, sandbox_platforms)
    before = task_metrics.counts().get(("platforms.coverage.tasks.poll_coverage", "success"), 0)
    for account in CoverageAccount.objects.filter(enabled=True):
        breaker_for(f"coverage/{account.pk}").reset()  # shared in Redis: earlier runs' state
        poll_coverage.apply(args=[account.pk]).get()
    # the realtime bridge's record, as `manage.py stream` writes it (two seconds old)
    async_to_sync(store.asave)(mt4.pk, {"rows": [], "groups": {}, "up": True,
                                        "ts": time.time() - 2, "kind": "MT4"})
    # a breaker opened by failures on MT5 (the shared one, as every process sees it)
    breaker_for(str(mt5.platform_id)).trip()

    families = _scrape(dealer_client)
    latency = families["dashboard_http_request_duration_seconds"]
    counts = {s.labels["view"]: s.value for s in latency if s.name.endswith("_count")}
    assert counts["dashboard:overview"] >= 1 and counts["dashboard:accounts"] >= 1, counts
    assert not [view for view in counts if "/" in view], counts
    assert all(s.value >= 0 for s in latency if s.name.endswith("_sum"))

    depth = {s.labels["queue"]: s.value for s in families["dashboard_celery_queue_depth"]}
    assert set(depth) == {"default", "trading", "reporting"}
    assert all(value >= 0 and value == int(value) for value in depth.values()), depth

    outcomes = {(s.labels["task"], s.labels["outcome"]): s.value
                for s in families["dashboard_celery_tasks"] if s.name.endswith("_total")}
    accounts = CoverageAccount.objects.filter(enabled=True).count()
    assert outcomes[("platforms.coverage.tasks.poll_coverage", "success")] >= before + accounts

    states = {s.labels["state"]: s.value for s in families["dashboard_trade_tasks"]}
    assert set(states) == set(TaskState.values)
    for state, value in states.items():
        assert value == TradeTask.objects.filter(state=state).count()

    breakers = {(s.labels["platform"], s.labels["state"]): s.value
                for s in families["dashboard_platform_breaker_state"]}
    assert breakers[(str(mt4.pk), "closed")] == 1 and breakers[(str(mt4.pk), "open")] == 0
    assert breakers[(str(mt5.pk), "open")] == 1 and breakers[(str(mt5.pk), "closed")] == 0

    up = {s.labels["platform"]: s.value for s in families["dashboard_realtime_hub_up"]}
    assert up[str(mt4.pk)] == 1
    ages = {s.labels["platform"]: s.value
            for s in families["dashboard_realtime_last_frame_age_seconds"]}
    assert 1.5 <= ages[str(mt4.pk)] < 30, ages

    mirror = {s.labels["platform"]: s.value for s in families["dashboard_mirror_age_seconds"]}
    assert 0 <= mirror[str(mt4.pk)] < 60, mirror

    coverage = [s.value for s in families["dashboard_coverage_snapshot_age_seconds"]]
    polled = [cache.get(coverage_cache_key(a.pk))
              for a in CoverageAccount.objects.filter(enabled=True)]
    assert len(coverage) == accounts, (coverage, polled)
    assert all(0 <= age < 60 for age in coverage), coverage

    errors = {s.labels["family"]: s.value for s in families["dashboard_metrics_collect_errors"]}
    assert len(errors) == 8 and not any(errors.values()), errors

    # the Grafana dashboard (docs/deploy/) queries only what is served
    served = {sample.name for samples in families.values() for sample in samples}
    dashboard = json.loads((ROOT / "docs" / "deploy" / "grafana-dashboard.json").read_text())
    queried = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"dashboard_[a-z_]+", target["expr"])}
    assert queried and queried <= served, queried - served
