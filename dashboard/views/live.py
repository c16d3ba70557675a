"""The margin monitor: accounts by margin level, kept live by ``static/dashboard/live.js``."""

from __future__ import annotations

from django.http import Http404, HttpResponseBadRequest
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_POST

from dashboard.access import staff_required
from dashboard.rendering import render_page
from platforms.access.actions import action
from platforms.access.scope import get_visible_platform, visible_platforms
from platforms.audit import Actor
from platforms.live.margins import (
    UnknownAccount,
    alert_account_known,
    handle_alert,
    platform_margins,
)
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


def alert_target(user, platform, *, login: int, **_) -> bool:
    """An account the mirror or the live store knows (asked first: no upstream read for a
    login that exists nowhere), inside the user's group masks."""
    return alert_account_known(platform, login) and login_in_scope(user, platform, login)


@require_POST
@action("acknowledge_alerts", target=alert_target,
        label="acknowledge or take on a margin alert (margin monitor)")
def margin_alert(request, pk: int, login: int):
    """Acknowledge (``action=ack``) or take on (``action=assign``) an account's alert."""
    platform = get_visible_platform(request.user, pk)
    verb = request.POST.get("action")
    if verb not in ("ack", "assign"):
        return HttpResponseBadRequest("action must be ack or assign")
    try:
        alert = handle_alert(Actor.of(request), platform, login, verb)
    except UnknownAccount:  # gone between the gate and the write
        raise Http404("No such account") from None
    return render(
        request,
        "dashboard/live/_margin_alert.html",
        {"alert": alert, "platform": platform, "login": login},
    )
