"""Reads that already apply the user's platform scope."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from django.shortcuts import get_object_or_404

from platforms.models import PlatformAccess, TradePlatform
from platforms.scoping import masks_q


def visible_platforms(user) -> QuerySet[TradePlatform]:
    """Enabled platforms this staff user may see: all for superusers, else those granted."""
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return TradePlatform.objects.none()
    platforms = TradePlatform.objects.filter(enabled=True)
    if not user.is_superuser:
        platforms = platforms.filter(access__user=user)
    return platforms.order_by("name")


def get_visible_platform(user, pk: int) -> TradePlatform:
    """The platform, or 404 when it does not exist *or* is outside the user's scope."""
    return get_object_or_404(visible_platforms(user), pk=pk)


def group_masks_for(user, platform: TradePlatform) -> str:
    """The user's group masks on ``platform`` ("" = every group)."""
    if user.is_superuser:
        return ""
    access = PlatformAccess.objects.filter(user=user, platform=platform).first()
    return access.group_masks if access else "!*"


def group_scope_q(user, platform: TradePlatform, field: str = "group") -> Q:
    """Filter for mirror rows (accounts, trades) whose account group the user may see."""
    return masks_q(field, group_masks_for(user, platform))


def can_see_personal_data(user) -> bool:
    return user.has_perm("platforms.view_personal_data")
