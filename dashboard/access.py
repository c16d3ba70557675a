"""Who may open a page: logged-in, active staff users only. A view that writes (or a page a
permission opens) declares ``platforms.access.actions.action`` instead, which asks this first."""

from __future__ import annotations

from django.contrib.auth.decorators import user_passes_test

from platforms.access.scope import is_staff

staff_required = user_passes_test(is_staff)
