"""The reader's own settings, set from the top bar: the zone times are shown in."""

from __future__ import annotations

from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST
from django_htmx.http import HttpResponseClientRefresh

from dashboard.timezones import InvalidZone, set_preference
from platforms.access.actions import action
from platforms.audit import Actor


@require_POST
@action("view_tradeplatform", label="choose one's own time view (top bar)")
def time_zone(request):
    """Keep the chosen time view (server / utc / local + zone); back to the page it came from.
    A value that names no zone is a 400 saying why, never a 500."""
    try:
        set_preference(Actor.of(request), request.POST.get("view", ""),
                       request.POST.get("zone", ""))
    except InvalidZone as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain; charset=utf-8")
    if request.htmx:
        return HttpResponseClientRefresh()
    # the page it came from: set by the picker's script, else the (same-origin) Referer
    back = request.POST.get("next") or request.META.get("HTTP_REFERER", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()},
                                           require_https=request.is_secure()):
        back = reverse("dashboard:overview")
    return HttpResponseRedirect(back)
