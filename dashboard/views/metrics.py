"""``/metrics``: Prometheus text for the configured networks or the bearer token, no login."""

from __future__ import annotations

from django.http import HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from dashboard.metrics import access, exposition


@never_cache
@require_GET
def metrics(request):
    if not access.may_scrape(request):
        return HttpResponse(
            "Forbidden: /metrics answers METRICS_ALLOWED_NETWORKS or a bearer METRICS_TOKEN.\n",
            status=403, content_type="text/plain; charset=utf-8")
    return HttpResponse(exposition.render(), content_type=exposition.CONTENT_TYPE)
