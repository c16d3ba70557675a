"""Template context every page shares."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest

ENVIRONMENT_LABELS = {"production": "Production", "demo": "Demo"}


def environment(request: HttpRequest) -> dict[str, str]:
    """Which deployment a page belongs to (``DJANGO_ENV``), for the banner on every page; a
    platform's own page adds that platform's environment beside it (``base.html``)."""
    return {
        "site_environment": settings.DJANGO_ENV,
        "site_environment_label": ENVIRONMENT_LABELS.get(settings.DJANGO_ENV,
                                                         settings.DJANGO_ENV.title()),
    }
