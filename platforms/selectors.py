"""Reads that already apply the user's platform scope."""

from __future__ import annotations

from django.db.models import QuerySet
from django.shortcuts import get_object_or_404

from platforms.models import TradePlatform


def visible_platforms(user) -> QuerySet[TradePlatform]:
    """Enabled platforms this staff user may see (per-user scoping narrows this later)."""
    if not (user.is_active and user.is_staff):
        return TradePlatform.objects.none()
    return TradePlatform.objects.filter(enabled=True).order_by("name")


def get_visible_platform(user, pk: int) -> TradePlatform:
    """The platform, or 404 when it does not exist *or* is outside the user's scope."""
    return get_object_or_404(visible_platforms(user), pk=pk)
