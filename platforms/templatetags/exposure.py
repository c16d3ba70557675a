"""``{% may_view_exposure as show_exposure %}``: whether the nav links to the net-exposure page.

The page answers 404 to anyone ``platforms.coverage.selectors.may_view_exposure`` refuses, so
its links are shown exactly to the users it allows (once per request: the top bar and the
platform's sub-navigation ask the same question)."""

from __future__ import annotations

from django import template

from platforms.coverage.selectors import may_view_exposure_cached as _may_view_exposure

register = template.Library()


@register.simple_tag(takes_context=True)
def may_view_exposure(context) -> bool:
    request = context.get("request")
    user = getattr(request, "user", None) or context.get("user")
    if user is None:
        return False
    if request is None:
        return _may_view_exposure(user)
    cached = getattr(request, "_may_view_exposure", None)
    if cached is None:
        cached = request._may_view_exposure = _may_view_exposure(user)
    return cached
