"""Request latency by view: a histogram labelled with the resolved URL name, never the path
(paths hold platform ids and logins: unbounded label values)."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import HttpRequest, HttpResponse
from prometheus_client import Histogram

#: Up to 30 s: a page held by a slow platform must land in a bucket of its own, not in +Inf.
BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

REQUEST_LATENCY = Histogram(
    "dashboard_http_request_duration_seconds",
    "Time to answer an HTTP request, by resolved view, method and status class.",
    ["view", "method", "status"],
    buckets=BUCKETS,
    registry=None,  # collected by ``dashboard.metrics.exposition`` (one or many processes)
)

_METHODS = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"}


def view_label(request: HttpRequest) -> str:
    """``namespace:name`` of the view that answered; ``<static>`` for WhiteNoise's files and
    ``<unresolved>`` for anything no URL pattern matched (404s, refused hosts)."""
    match = getattr(request, "resolver_match", None)
    if match is not None:
        return match.view_name or match._func_path
    if request.path.startswith("/" + settings.STATIC_URL.lstrip("/")):
        return "<static>"
    return "<unresolved>"


def observe(request: HttpRequest, status: int, started: float) -> None:
    method = request.method if request.method in _METHODS else "other"
    REQUEST_LATENCY.labels(view_label(request), method, f"{status // 100}xx").observe(
        time.perf_counter() - started)


class RequestLatencyMiddleware:
    """Outermost middleware, sync and async alike, so that it never forces the other of the
    two onto a thread for every request."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        started = time.perf_counter()
        status = 500
        try:
            response = self.get_response(request)
            status = response.status_code
            return response
        finally:
            observe(request, status, started)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await self.get_response(request)
            status = response.status_code
            return response
        finally:
            observe(request, status, started)
