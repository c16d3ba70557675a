"""Times on pages, always in the reader's chosen zone and never without its name.

``{% show_time value %}`` writes an instant on the page's clock (``"date"``, ``"minutes"``,
``"time"`` for shorter forms; ``suffix=True`` appends the zone's name, for times outside a
table); ``{% zone_name %}`` is that name for a column header; ``{% tz_choice as tz %}``
feeds the top bar's form (``dashboard/partials/tz_picker.html``). The page's platform
(``platform`` in the context, or ``platform=``) is whose server clock "server time" means;
see ``dashboard/timezones.py``.
"""

from __future__ import annotations

from typing import Any

from django import template

from dashboard.models import TimeZoneView
from dashboard.timezones import DisplayZone, display_zone, preference_of

register = template.Library()


def _zone(context, platform: Any = None) -> DisplayZone:
    if platform is None:
        platform = context.get("platform")
        if not hasattr(platform, "utc_offset_minutes"):
            platform = None
    return display_zone(context.get("request"), platform)


@register.simple_tag(takes_context=True)
def show_time(context, value: Any, fmt: str = "datetime", platform: Any = None,
              suffix: bool = False) -> str:
    zone = _zone(context, platform)
    text = zone.text(value, fmt)
    return f"{text} {zone.label}" if suffix and text != "—" else text


@register.simple_tag(takes_context=True)
def zone_name(context, platform: Any = None) -> str:
    return _zone(context, platform).label


@register.simple_tag(takes_context=True)
def tz_choice(context) -> dict[str, Any]:
    """What the top bar's picker shows: the reader's choice and the page's zone."""
    request = context.get("request")
    view, name = preference_of(getattr(request, "user", None))
    return {"view": view, "zone": name, "views": TimeZoneView.choices,
            "label": _zone(context).label}
