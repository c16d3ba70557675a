"""The one authorization gate: which platforms, account rows and fields a staff user may see.

Every channel asks here (pages, CSV exports, the account card, reports, mail targets, task
lists, the audit page and the live socket); nothing else decides scope. Rows are scoped by
platform grant (``PlatformAccess``) and the grant's MT4 group masks; personal fields need the
``view_personal_data`` permission. The socket applies a :class:`Scope` to every event it
forwards, so one snapshot of a user's grant (re-read every few seconds) serves a whole stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from django.db.models import Q, QuerySet
from django.http import Http404
from django.shortcuts import get_object_or_404

from platforms.access.masks import group_allowed, masks_q
from platforms.access.models import PlatformAccess
from platforms.models.platform import TradePlatform

#: Largest primary key the database can hold (BigAutoField): a larger id is "not found", never
#: an overflow inside the database driver.
MAX_ID = 2**63 - 1

#: Fields of an account that reach or locate a person (email, phone, address, IP — what the
#: ``view_personal_data`` permission names): shown, exported and streamed only with it. Names as
#: the mirror stores them and as the wire spells them.
PERSONAL_FIELDS = frozenset({
    "email", "e_mail", "eMail", "phone", "address", "city", "state", "zip_code", "zipcode",
    "last_ip", "lastIp", "ip", "id_number", "idNumber", "phone_password", "phonePassword",
})


def is_staff(user) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def valid_id(value: Any) -> int | None:
    """``value`` as a database id, or None when it cannot be one (non-numeric, ≤ 0, too big)."""
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return number if 0 < number <= MAX_ID else None


def visible_platforms(user) -> QuerySet[TradePlatform]:
    """Enabled platforms this staff user may see: all for superusers, else those granted."""
    if not is_staff(user):
        return TradePlatform.objects.none()
    platforms = TradePlatform.objects.filter(enabled=True)
    if not user.is_superuser:
        platforms = platforms.filter(access__user=user)
    return platforms.order_by("name")


def get_visible_platform(user, pk: int) -> TradePlatform:
    """The platform, or 404 when it does not exist *or* is outside the user's scope."""
    if valid_id(pk) is None:
        raise Http404("No such platform.")
    return get_object_or_404(visible_platforms(user), pk=pk)


def group_masks_for(user, platform: TradePlatform) -> str:
    """The user's group masks on ``platform`` ("" = every group, "!*" = none)."""
    if user.is_superuser:
        return ""
    access = PlatformAccess.objects.filter(user=user, platform=platform).first()
    return access.group_masks if access else "!*"


def group_scope_q(user, platform: TradePlatform, field: str = "group") -> Q:
    """Filter for mirror rows (accounts, trades) whose account group the user may see."""
    return masks_q(field, group_masks_for(user, platform))


def can_see_personal_data(user) -> bool:
    return bool(is_staff(user) and user.has_perm("platforms.view_personal_data"))


def strip_personal(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` without its personal fields."""
    return {k: v for k, v in record.items() if k not in PERSONAL_FIELDS}


@lru_cache(maxsize=4096)
def _group_allowed(group: str, masks: str) -> bool:
    return group_allowed(group, masks)


@dataclass(frozen=True)
class Scope:
    """A snapshot of one user's grant: platform pk → group masks ("" = every group), and
    whether personal fields may be seen. Cheap to test per event; compare two snapshots to
    learn whether a grant changed."""

    user_id: int | None
    platforms: Mapping[int, str]
    personal: bool

    @classmethod
    def none(cls) -> Scope:
        return cls(None, {}, False)

    def allows_platform(self, pk: int) -> bool:
        return pk in self.platforms

    def allows_group(self, pk: int, group: str | None) -> bool:
        """May the user see an account of ``group`` on platform ``pk``? An account whose group
        is unknown is visible only under a grant without masks."""
        masks = self.platforms.get(pk)
        if masks is None:
            return False
        if not masks.strip():
            return True
        return group is not None and _group_allowed(group, masks)

    def fields(self, record: Mapping[str, Any]) -> dict[str, Any]:
        """``record`` with the fields this user may see."""
        return dict(record) if self.personal else strip_personal(record)

    def platform_ids(self, requested: Iterable[int]) -> tuple[set[int], set[int]]:
        """Split ``requested`` platform pks into (allowed, denied)."""
        wanted = set(requested)
        allowed = {pk for pk in wanted if pk in self.platforms}
        return allowed, wanted - allowed


def scope_for(user) -> Scope:
    """The user's grant as a :class:`Scope` (two small queries; call from sync code)."""
    if not is_staff(user):
        return Scope.none()
    personal = user.has_perm("platforms.view_personal_data")
    platforms = TradePlatform.objects.filter(enabled=True)
    if user.is_superuser:
        grants = dict.fromkeys(platforms.values_list("pk", flat=True), "")
    else:
        grants = dict(
            PlatformAccess.objects.filter(user=user, platform__enabled=True)
            .values_list("platform_id", "group_masks")
        )
    return Scope(user.pk, grants, personal)
