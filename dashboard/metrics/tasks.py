"""Celery task outcomes by task name, counted in the workers into one Redis hash.

Workers run on other machines than the web process Prometheus scrapes, so their counts must
live where every process can reach them: the shared cache's Redis (one ``HINCRBY`` per task,
atomic across processes). Without Redis (the demo) the counts go through Django's file cache
by read-modify-write, which may lose a count under concurrency: good enough for a demo.
"""

from __future__ import annotations

import logging

from celery.signals import task_failure, task_retry, task_revoked, task_success
from django.core.cache import cache
from django.core.cache.backends.redis import RedisCache

log = logging.getLogger(__name__)

#: The hash's key (fields ``<task name>|<outcome>``); outside Django's key prefixing so that
#: every process of a deployment names the same one.
HASH_KEY = "dashboard:metrics:celery_tasks"
OUTCOMES = ("success", "failure", "retry", "revoked")


def _redis_client():
    """The cache's own Redis client, or ``None`` when the cache is not Redis."""
    if isinstance(cache, RedisCache):
        return cache._cache.get_client(write=True)
    return None


def count(task_name: str, outcome: str) -> None:
    """Add one to ``task_name``'s ``outcome``; never raises (a metric must not fail a task)."""
    field = f"{task_name}|{outcome}"
    try:
        client = _redis_client()
        if client is not None:
            client.hincrby(HASH_KEY, field, 1)
            return
        counts = cache.get(HASH_KEY) or {}
        counts[field] = counts.get(field, 0) + 1
        cache.set(HASH_KEY, counts, None)
    except Exception:
        log.warning("could not count task outcome %s", field, exc_info=True)


def counts() -> dict[tuple[str, str], int]:
    """Every ``(task name, outcome)`` counted so far, across all workers."""
    client = _redis_client()
    if client is not None:
        raw = {k.decode(): int(v) for k, v in client.hgetall(HASH_KEY).items()}
    else:
        raw = cache.get(HASH_KEY) or {}
    result = {}
    for field, value in raw.items():
        name, _, outcome = field.rpartition("|")
        result[(name, outcome)] = int(value)
    return result


def _name(sender) -> str:
    return getattr(sender, "name", None) or str(sender)


def _on_success(sender=None, **kwargs) -> None:
    count(_name(sender), "success")


def _on_failure(sender=None, **kwargs) -> None:
    count(_name(sender), "failure")


def _on_retry(sender=None, **kwargs) -> None:
    count(_name(sender), "retry")


def _on_revoked(sender=None, request=None, **kwargs) -> None:
    count(_name(sender or getattr(request, "task", None)), "revoked")


def connect() -> None:
    """Hook the receivers to Celery's signals (``dashboard.celery``; idempotent)."""
    task_success.connect(_on_success, weak=False, dispatch_uid="metrics-success")
    task_failure.connect(_on_failure, weak=False, dispatch_uid="metrics-failure")
    task_retry.connect(_on_retry, weak=False, dispatch_uid="metrics-retry")
    task_revoked.connect(_on_revoked, weak=False, dispatch_uid="metrics-revoked")
