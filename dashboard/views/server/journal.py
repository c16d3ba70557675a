"""The platform's server journal: scoped to the grant's masks, personal data hidden without the
permission."""

from __future__ import annotations

from django.views.decorators.http import require_GET

from dashboard.access import staff_required
from dashboard.rendering import render_page
from dashboard.timezones import display_zone
from dashboard.views.server.common import api_error_text, mt4_only_notice
from platforms.access.scope import can_see_personal_data, get_visible_platform
from platforms.client import ManagerApiError
from platforms.connections import client_for
from platforms.server.forms import (
    JournalForm,
)
from platforms.server.selectors import (
    journal_in_scope,
    timed_journal,
    visible_journal,
)
from platforms.timezones import utc_to_server


@require_GET
@staff_required
def journal(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    minutes = platform.utc_offset_minutes  # the server reads the range on its own clock
    zone = display_zone(request, platform)
    form = JournalForm(request.GET, tz=zone.tz)
    context = {"platform": platform, "form": form, "personal": can_see_personal_data(request.user),
               "zone": zone}
    context["error"] = mt4_only_notice(platform)
    if not context["error"] and form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            lines = client_for(platform).mt4.journal_request(
                utc_to_server(data["start"], minutes), utc_to_server(data["end"], minutes),
                mode=data["mode"] or None,
                filter=data["filter"] or None,
            )
        except ManagerApiError as exc:
            context["error"] = api_error_text(exc)
        else:
            lines = visible_journal(request.user, journal_in_scope(request.user, platform, lines),
                                    text=data["text"], server_filter=data["filter"])
            context["lines"] = timed_journal(lines[:5000], minutes)
            context["truncated"] = len(lines) > 5000
    return render_page(request, "dashboard/server/journal.html", context, partial="results")
