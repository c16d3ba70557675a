"""``{% load numbers %}``: the page side of ``dashboard.numbers``.

- ``{{ value|money:currency }}``, ``{{ value|lots }}``, ``{{ value|percent }}``,
  ``{{ value|price:digits }}``, ``{{ value|stop:digits }}``: the text alone (totals, lines);
- ``{% number "dd" value "money" currency=… field="equity" %}``: a whole cell with
  ``class="num[ neg]"`` and the ``data-kind`` / ``data-digits`` that ``live.js`` formats the
  next live value of that cell with.
"""

from __future__ import annotations

from django import template
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

from dashboard.numbers import cell_attrs, format_number

register = template.Library()

_CELL_TAGS = frozenset({"td", "dd", "span", "strong"})


def _digits(arg) -> int | None:
    try:
        return int(arg)
    except (TypeError, ValueError):
        return None


@register.filter
def money(value, currency=None) -> str:
    return format_number(value, "money", currency=currency or None)


@register.filter
def lots(value) -> str:
    return format_number(value, "lots")


@register.filter
def percent(value) -> str:
    return format_number(value, "percent")


@register.filter
def price(value, digits=None) -> str:
    return format_number(value, "price", _digits(digits))


@register.filter
def stop(value, digits=None) -> str:
    return format_number(value, "stop", _digits(digits))


@register.simple_tag
def number(tag: str, value, kind: str, digits=None, currency: str = "", field: str = "",
           css: str = "") -> SafeString:
    """``<tag class="num[ neg] css" data-field=… data-kind=… data-digits=…>text</tag>``."""
    if tag not in _CELL_TAGS:
        raise template.TemplateSyntaxError(f"number: cannot render a <{tag}> cell")
    places = _digits(digits)
    attrs = cell_attrs(kind, value, places, currency or None)
    if css:
        attrs = attrs.replace('class="num', f'class="{escape(css)} num', 1)
    if field:
        attrs += f' data-field="{escape(field)}"'
    text = escape(format_number(value, kind, places, currency or None))
    return mark_safe(f"<{tag}{attrs}>{text}</{tag}>")  # noqa: S308 - every value escaped above
