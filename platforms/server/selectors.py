"""Scoped reads of the server pages: what of a platform-wide answer a user may see."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from platforms.access.masks import masks_q
from platforms.access.scope import group_masks_for
from platforms.mirror.models import MirrorAccount
from platforms.models import TradePlatform

_NUMBER = re.compile(r"\d{3,}")


def journal_in_scope(user, platform: TradePlatform, lines: Iterable[Any]) -> list[Any]:
    """The server journal is platform-wide: under a grant narrowed by group masks, a line that
    names an account outside the masks is left out (accounts are known from the mirror)."""
    masks = group_masks_for(user, platform)
    if not masks.strip():
        return list(lines)
    if masks.strip() == "!*":
        return []
    hidden = {
        str(login) for login in MirrorAccount.objects.filter(platform=platform)
        .exclude(masks_q("group", masks)).values_list("login", flat=True)
    }
    return [line for line in lines
            if not any(n in hidden for n in _NUMBER.findall(line.message or ""))]
