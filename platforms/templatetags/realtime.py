"""``{% margin_call_badge %}``: accounts in margin call across the user's platforms (nav)."""

from __future__ import annotations

from django import template
from django.utils.html import format_html

from platforms.live.margins import margin_call_count

register = template.Library()


@register.simple_tag(takes_context=True)
def margin_call_badge(context) -> str:
    request = context.get("request")
    user = getattr(request, "user", None)
    if user is None or not user.is_authenticated:
        return ""
    count = margin_call_count(user)
    return format_html(
        '<span class="badge count{}" id="margin-call-count" data-live-badge>{}</span>',
        " alert" if count else "",
        count,
    )
