"""Staff pages. Views parse input, check scope, call one selector or service, and render."""

from __future__ import annotations

from django.views.decorators.http import require_GET

from dashboard.access import staff_required
from dashboard.rendering import render_page
from platforms.access.scope import get_visible_platform, visible_platforms
from platforms.connections import check_connection
from platforms.mirror.selectors import platform_summaries, summaries_total


@require_GET
@staff_required
def overview(request):
    """One card per platform; each card fetches its own live health so the page never waits."""
    platforms = list(visible_platforms(request.user))
    summaries = platform_summaries(request.user, platforms)
    cards = [(p, summaries[p.pk]) for p in platforms]
    total = summaries_total([summary for _, summary in cards]) if len(cards) > 1 else None
    return render_page(request, "dashboard/overview/overview.html",
                       {"cards": cards, "total": total})


@require_GET
@staff_required
def platform_health(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    return render_page(request, "dashboard/overview/overview.html",
                       {"check": check_connection(platform), "platform": platform},
                       partial="platform-health")
