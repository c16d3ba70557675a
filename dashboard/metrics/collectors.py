"""State read at scrape time: queues, trade tasks, breakers, realtime bridges, mirror and
coverage ages. One family failing to read (a broker down, say) leaves the others answering
and shows as 1 in ``dashboard_metrics_collect_errors`` (0 for the families read)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from datetime import datetime

from django.conf import settings
from django.core.cache import cache
from django.db.models import Count
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from dashboard.metrics import tasks as task_metrics
from platforms.coverage.models import CoverageAccount
from platforms.coverage.selectors import coverage_cache_key
from platforms.live import store
from platforms.models import TradePlatform
from platforms.server import health
from platforms.trading.models import TaskState, TradeTask
from platforms.transport import breaker_for

log = logging.getLogger(__name__)

BREAKER_STATES = ("closed", "open", "half-open")


def _platforms() -> list[TradePlatform]:
    return list(TradePlatform.objects.filter(enabled=True).order_by("pk"))


def _labels(platform: TradePlatform) -> list[str]:
    return [str(platform.pk), platform.name]


def queue_depth() -> Iterator[Metric]:
    family = GaugeMetricFamily("dashboard_celery_queue_depth",
                               "Messages waiting in a Celery queue (from the broker).",
                               labels=["queue"])
    for queue, depth in health.queue_depths(settings.CELERY_WORKER_QUEUES).items():
        if depth is not None:
            family.add_metric([queue], depth)
    yield family


def task_outcomes() -> Iterator[Metric]:
    family = CounterMetricFamily("dashboard_celery_tasks",
                                 "Celery tasks finished, by task name and outcome "
                                 "(success, failure, retry, revoked), across all workers.",
                                 labels=["task", "outcome"])
    for (name, outcome), value in sorted(task_metrics.counts().items()):
        family.add_metric([name, outcome], value)
    yield family


def trade_tasks() -> Iterator[Metric]:
    family = GaugeMetricFamily("dashboard_trade_tasks",
                               "Trade tasks (deposits, orders, account changes) by state.",
                               labels=["state"])
    found = dict(TradeTask.objects.order_by().values_list("state").annotate(n=Count("pk")))
    for state in TaskState.values:
        family.add_metric([state], found.get(state, 0))
    yield family


def breakers(platforms: list[TradePlatform]) -> Iterator[Metric]:
    family = GaugeMetricFamily("dashboard_platform_breaker_state",
                               "The platform's circuit breaker: 1 for its current state.",
                               labels=["platform", "name", "state"])
    for platform in platforms:
        current = breaker_for(str(platform.platform_id)).state
        for state in BREAKER_STATES:
            family.add_metric([*_labels(platform), state], 1.0 if current == state else 0.0)
    yield family


def realtime(platforms: list[TradePlatform]) -> Iterator[Metric]:
    """From the margin snapshot the bridge (``manage.py stream``) writes to the shared cache
    after a frame changed something: whether its hub was connected, and how old it is."""
    up = GaugeMetricFamily("dashboard_realtime_hub_up",
                           "1 when the platform's SignalR hub is connected (0 also when no "
                           "bridge published anything).", labels=["platform", "name"])
    age = GaugeMetricFamily("dashboard_realtime_last_frame_age_seconds",
                            "Seconds since the platform's bridge last published a frame.",
                            labels=["platform", "name"])
    now = time.time()
    for platform in platforms:
        snapshot = cache.get(store.snapshot_key(platform.pk)) or {}
        fresh = now - snapshot.get("ts", 0) <= store.STALE_AFTER_SECONDS
        up.add_metric(_labels(platform), 1.0 if snapshot.get("up") and fresh else 0.0)
        if snapshot.get("ts"):
            age.add_metric(_labels(platform), round(now - snapshot["ts"], 3))
    yield up
    yield age


def mirror_age(platforms: list[TradePlatform]) -> Iterator[Metric]:
    family = GaugeMetricFamily("dashboard_mirror_age_seconds",
                               "Seconds since the platform's local mirror was last refreshed.",
                               labels=["platform", "name"])
    for platform in platforms:
        age = health.mirror_age_seconds(platform)
        if age is not None:
            family.add_metric(_labels(platform), age)
    yield family


def coverage_age() -> Iterator[Metric]:
    family = GaugeMetricFamily("dashboard_coverage_snapshot_age_seconds",
                               "Seconds since a coverage account's LP snapshot was read.",
                               labels=["account", "name"])
    now = time.time()
    for account in CoverageAccount.objects.filter(enabled=True).order_by("pk"):
        fetched = (cache.get(coverage_cache_key(account.pk)) or {}).get("fetched_at")
        if fetched:
            age = now - datetime.fromisoformat(fetched).timestamp()
            family.add_metric([str(account.pk), account.name], round(age, 3))
    yield family


class StateCollector(Collector):
    """Every state family above, read when Prometheus scrapes."""

    def collect(self) -> Iterator[Metric]:
        errors = GaugeMetricFamily("dashboard_metrics_collect_errors",
                                   "1 when a family could not be read at this scrape.",
                                   labels=["family"])
        platforms: list[TradePlatform] = []
        readers: list[tuple[str, Callable[[], Iterator[Metric]]]] = [
            ("queue_depth", queue_depth),
            ("task_outcomes", task_outcomes),
            ("trade_tasks", trade_tasks),
            ("breakers", lambda: breakers(platforms)),
            ("realtime", lambda: realtime(platforms)),
            ("mirror_age", lambda: mirror_age(platforms)),
            ("coverage_age", coverage_age),
        ]
        try:
            platforms = _platforms()
            errors.add_metric(["platforms"], 0)
        except Exception:
            log.warning("metrics: could not list platforms", exc_info=True)
            errors.add_metric(["platforms"], 1)
        for name, read in readers:
            try:
                families = list(read())
            except Exception:
                log.warning("metrics: could not read %s", name, exc_info=True)
                errors.add_metric([name], 1)
                continue
            errors.add_metric([name], 0)
            yield from families
        yield errors
