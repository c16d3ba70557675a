"""The margin monitor: accounts by margin level, kept live by ``static/dashboard/live.js``."""

from __future__ import annotations

from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from dashboard.access import staff_required
from dashboard.rendering import render_page
from platforms.access.scope import get_visible_platform, visible_platforms
from platforms.audit import Actor
from platforms.live.margins import handle_alert, platform_margins
from platforms.trading.selectors import login_in_scope


def _limit(request) -> int:
    try:
        return max(10, min(500, int(request.GET.get("limit", 50))))
    except ValueError:
        return 50


@require_GET
@staff_required
def margins(request, pk: int | None = None):
    """One platform (``pk``) or every platform the user may see."""
    platforms = (
        [get_visible_platform(request.user, pk)] if pk else list(visible_platforms(request.user))
    )
    limit = _limit(request)
    sections = [platform_margins(request.user, p, limit) for p in platforms]
    return render_page(
        request,
        "dashboard/live/margins.html",
        {
            "sections": sections,
            "single": pk is not None,
            "limit": limit,
            "platform_pks": ",".join(str(p.pk) for p in platforms),
        },
    )


@require_POST
@staff_required
def margin_alert(request, pk: int, login: int):
    """Acknowledge (``action=ack``) or take on (``action=assign``) an account's alert."""
    platform = get_visible_platform(request.user, pk)
    if not login_in_scope(request.user, platform, login):
        raise Http404("No such account")
    action = request.POST.get("action")
    if action not in ("ack", "assign"):
        return HttpResponseBadRequest("action must be ack or assign")
    alert = handle_alert(Actor.of(request), platform, login, action)
    return render(
        request,
        "dashboard/live/_margin_alert.html",
        {"alert": alert, "platform": platform, "login": login},
    )
