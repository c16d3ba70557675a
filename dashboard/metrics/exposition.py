"""The text Prometheus scrapes: the request histogram (this process's, or every web
process's through ``PROMETHEUS_MULTIPROC_DIR``) and the state read at scrape time."""

from __future__ import annotations

import os

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

from dashboard.metrics.collectors import StateCollector
from dashboard.metrics.http import REQUEST_LATENCY

CONTENT_TYPE = CONTENT_TYPE_LATEST


def multiprocess_dir() -> str | None:
    """Where uvicorn's worker processes write their samples, when several share a port."""
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def render() -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess_dir():
        MultiProcessCollector(registry)
    else:
        registry.register(REQUEST_LATENCY)
    registry.register(StateCollector())
    return generate_latest(registry)
