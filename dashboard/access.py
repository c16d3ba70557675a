"""Who may open a page: logged-in, active staff users only."""

from __future__ import annotations

from django.contrib.auth.decorators import user_passes_test


def _is_staff(user) -> bool:
    return user.is_authenticated and user.is_active and user.is_staff


staff_required = user_passes_test(_is_staff)
