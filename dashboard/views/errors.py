"""The error pages' views: Django's own 403 and 404 handlers already render ``403.html`` and
``404.html`` inside the normal frame (with the request, so the navigation is there); these two
are the cases Django's defaults cannot serve that way."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseForbidden, HttpResponseServerError
from django.shortcuts import render
from django.template import loader

from dashboard.context_processors import environment


def server_error(request: HttpRequest) -> HttpResponse:
    """The 500 page, rendered without the request's context processors: after a failure the
    database may be what failed, and the user, session and badges all read it. Only the
    deployment banner is added (it comes from settings)."""
    return HttpResponseServerError(loader.get_template("500.html").render(environment(request)))


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """An expired or foreign form (``CSRF_FAILURE_VIEW``): the normal frame and what to do,
    instead of Django's bare page. The technical reason stays in Django's security log."""
    return render(request, "403_csrf.html", status=HttpResponseForbidden.status_code)
