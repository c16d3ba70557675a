"""MT4-style group masks (``real\\*,!real\\vip*``) for narrowing what a staff user sees."""

from __future__ import annotations

import re
from fnmatch import fnmatchcase

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


def group_allowed(group: str, masks: str) -> bool:
    include, exclude = parse_masks(masks)
    name = (group or "").lower()
    return any(fnmatchcase(name, m) for m in include) and not any(
        fnmatchcase(name, m) for m in exclude
    )


def _regex(mask: str) -> str:
    return "^" + ".*".join(re.escape(part) for part in mask.split("*")) + "$"


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
