"""MT4-style group masks (``real\\*,!real\\vip*``) for narrowing what a staff user sees."""

from __future__ import annotations

import re

from django.db.models import Q


def parse_masks(text: str) -> tuple[list[str], list[str]]:
    """Split a mask list into (include, exclude) patterns; an empty list includes everything."""
    include, exclude = [], []
    for raw in text.split(","):
        mask = raw.strip().lower()
        if not mask:
            continue
        (exclude if mask.startswith("!") else include).append(mask.lstrip("!"))
    return include or ["*"], exclude


def _regex(mask: str) -> str:
    """MT4 masks know one wildcard, ``*``; everything else (``?``, ``[``…) is literal."""
    return "^" + ".*".join(re.escape(part) for part in mask.split("*")) + "$"


def group_allowed(group: str, masks: str) -> bool:
    """The Python twin of :func:`masks_q` (the same regular expressions, so they agree)."""
    include, exclude = parse_masks(masks)
    name = group or ""

    def matches(mask: str) -> bool:
        return re.match(_regex(mask), name, re.IGNORECASE | re.DOTALL) is not None

    return any(matches(m) for m in include) and not any(matches(m) for m in exclude)


def masks_q(field: str, masks: str) -> Q:
    """A filter on ``field`` (a group name column) equivalent to :func:`group_allowed`."""
    if not masks.strip():
        return Q()
    include, exclude = parse_masks(masks)
    query = Q()
    if include != ["*"]:
        query = Q(**{f"{field}__iregex": "|".join(_regex(m) for m in include)})
    for mask in exclude:
        query &= ~Q(**{f"{field}__iregex": _regex(mask)})
    return query
