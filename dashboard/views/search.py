"""Find a client anywhere: the top bar's search across every platform the user may see."""

from __future__ import annotations

from django.views.decorators.http import require_GET

from dashboard.access import staff_required
from dashboard.rendering import render_page
from platforms.mirror.search import MAX_TERM, SearchTermError, clean_term, find_clients

TEMPLATE = "dashboard/search/search.html"


@require_GET
@staff_required
def client_search(request):
    """The results page, or (htmx) the top bar's dropdown. A refused term is a message: on the
    page with status 400; in the dropdown with 200, since htmx swaps in only 2xx answers."""
    raw = request.GET.get("q", "")
    context = {"term": raw[:MAX_TERM], "max_term": MAX_TERM}
    status = 200
    try:
        term = clean_term(raw)
    except SearchTermError as exc:
        context["error"] = str(exc)
        htmx = getattr(request, "htmx", None)
        status = 200 if htmx and not htmx.boosted else 400
    else:
        context["result"] = find_clients(request.user, term)
    return render_page(request, TEMPLATE, context, partial="results", status=status)
