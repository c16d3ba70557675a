"""Scoped reads of the server pages: what of a platform-wide answer a user may see."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from platforms.access.masks import masks_q
from platforms.access.personal import visible_fields
from platforms.access.scope import can_see_personal_data, group_masks_for
from platforms.mirror.models import MirrorAccount
from platforms.models import TradePlatform
from platforms.timezones import journal_instant

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


def visible_journal(user, lines: Iterable[Any], *, text: str = "",
                    server_filter: str = "") -> list[Any]:
    """Journal lines as ``user`` may read them, keeping those whose shown message contains
    ``text``. Without ``view_personal_data`` a line's IP, and any e-mail or IP address in its
    message (a login line names the client's IP), read "hidden"; and the server-side filter is
    checked again against what is shown, so a filter cannot find which account used an IP."""
    personal = can_see_personal_data(user)
    needles = [text] if personal else [text, server_filter]
    needles = [needle.lower() for needle in needles if needle]
    shown = (visible_fields(personal, line, ("ip", "message")) for line in lines)
    return [line for line in shown
            if all(needle in (line.message or "").lower() for needle in needles)]


@dataclass(frozen=True)
class TimedLine:
    """A journal line with ``at``, its time as an instant; its other fields read through."""

    at: datetime | None
    line: Any

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name == "line":  # copy/pickle probes, or not yet set
            raise AttributeError(name)
        return getattr(self.line, name)


def timed_journal(lines: Iterable[Any], minutes: int) -> list[TimedLine]:
    """Journal lines with their time read on the server's clock (``minutes`` east of UTC),
    so pages show it in the reader's zone (``at`` is None if the text is unreadable)."""
    return [TimedLine(journal_instant(line.time, minutes), line) for line in lines]


#: what a mail job's page shows as typed or as the server answered
MAIL_JOB_TEXT_FIELDS = ("subject", "audience", "error")


def visible_mail_jobs(user, jobs: Iterable[Any]) -> list[Any]:
    """Mail jobs as ``user`` may read them: the audience may quote the accounts list's search
    (which matches e-mail and IP for those allowed), and subjects are typed by staff."""
    personal = can_see_personal_data(user)
    return [visible_fields(personal, job, MAIL_JOB_TEXT_FIELDS) for job in jobs]


def visible_recipients(user, recipients: Iterable[Any]) -> list[Any]:
    """Failed recipients with the server's error text as ``user`` may read it."""
    personal = can_see_personal_data(user)
    return [visible_fields(personal, recipient, ("error",)) for recipient in recipients]
