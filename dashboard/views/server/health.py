"""The server health page and the monitoring probe."""

from __future__ import annotations

from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from dashboard.rendering import render_page
from platforms.access.actions import action
from platforms.access.scope import get_visible_platform
from platforms.mirror.selectors import mirror_state
from platforms.server import health as health_history


@never_cache
@require_GET
def healthz(request):
    """Monitoring probe, no login: 200 when every enabled platform answers, else 503."""
    healthy, report = health_history.healthz_report()
    return JsonResponse(report, status=200 if healthy else 503)


@require_GET
@action("view_health", label="the server health page")
def health_page(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    check = health_history.checked(platform)
    past = health_history.history(platform)
    return render_page(request, "dashboard/server/health.html", {
        "platform": platform, "check": check, "history": past,
        "chart": health_history.rtt_chart(past.samples),
        "state": mirror_state(platform),
        "mirror_age": health_history.mirror_age_seconds(platform),
        "realtime": health_history.realtime_status(platform),
        "queues": health_history.queue_depths(),
    })
