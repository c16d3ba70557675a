"""Which zone a staff member reads times in, and every time written in it with its name.

All stored times are true instants (server times are converted on ingest, see
``platforms/timezones.py``). Each user picks how to read them (the top bar's picker, kept in
:class:`~dashboard.models.TimeZonePreference`): the trade server's own clock ("server time
(UTC+2)", the default: what dealers and clients see in their terminals), UTC, or a zone of
their own (an IANA name). On a page that spans several platforms there is no one server clock,
so "server time" shows UTC there, and says so. Pages, tables, filters and exports all ask this
module, so a time and the zone named beside it never disagree.
"""

from __future__ import annotations

import zoneinfo
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, tzinfo
from typing import Any

from django.core.cache import cache
from django.db import transaction

from dashboard.models import TimeZonePreference, TimeZoneView
from platforms import audit
from platforms.timezones import fixed_zone, offset_label

#: Env-independent default (never ``settings.TIME_ZONE``): the server's clock.
DEFAULT_VIEW = TimeZoneView.SERVER
PREFERENCE_CACHE_SECONDS = 3600
FORMATS = {
    "datetime": "%Y-%m-%d %H:%M:%S",
    "minutes": "%Y-%m-%d %H:%M",
    "date": "%Y-%m-%d",
    "time": "%H:%M:%S",
}


class InvalidZone(ValueError):
    """A preference that names no zone we know (answered 400, never 500)."""


@dataclass(frozen=True)
class DisplayZone:
    """The zone one page shows its times in, and how it names it."""

    view: str
    tz: tzinfo
    label: str  # "server time (UTC+2)", "UTC", "Europe/Athens"

    def local(self, value: datetime) -> datetime:
        """``value`` (an instant; naive = UTC) on this zone's clock."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value.astimezone(self.tz)

    def text(self, value: Any, fmt: str = "datetime") -> str:
        """``value`` written on this zone's clock; "—" when there is none."""
        if value is None or value == "":
            return "—"
        if isinstance(value, datetime):
            return self.local(value).strftime(FORMATS.get(fmt, fmt))
        if isinstance(value, date):
            return value.strftime("%Y-%m-%d")
        return str(value)

    def iso(self, value: datetime) -> str:
        """ISO 8601 with the offset (exports): ``2026-01-31T10:00:00+02:00``."""
        return self.local(value).isoformat()

    def aware(self, value: datetime) -> datetime:
        """A time typed into a filter (naive: read on this zone's clock) as an instant."""
        if value.tzinfo is None:
            value = value.replace(tzinfo=self.tz)
        return value.astimezone(UTC)

    def day_start(self, day: date) -> datetime:
        """Midnight of ``day`` on this zone's clock, as an instant (date filters)."""
        return self.aware(datetime.combine(day, time.min))

    def header(self, label: str) -> str:
        """A column title that names the zone: ``Open time · server time (UTC+2)``."""
        return f"{label} · {self.label}"


UTC_ZONE = DisplayZone(TimeZoneView.UTC, UTC, "UTC")


def valid_zone_name(name: str) -> bool:
    """Whether ``name`` is an IANA zone this system knows."""
    if not name or len(name) > 64 or name.startswith("/") or ".." in name:
        return False
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return False
    return True


def zone_of(view: str, zone_name: str = "", platform: Any = None) -> DisplayZone:
    """The display zone for a preference, on the page of ``platform`` (None: several)."""
    if view == TimeZoneView.LOCAL and valid_zone_name(zone_name):
        return DisplayZone(view, zoneinfo.ZoneInfo(zone_name), zone_name)
    if view == TimeZoneView.SERVER and platform is not None:
        minutes = platform.utc_offset_minutes
        return DisplayZone(view, fixed_zone(minutes), f"server time ({offset_label(minutes)})")
    return UTC_ZONE


def preference_of(user: Any) -> tuple[str, str]:
    """``(view, zone name)`` the user chose; the default for anyone who has not."""
    if user is None or not getattr(user, "is_authenticated", False):
        return DEFAULT_VIEW, ""
    cached = getattr(user, "_time_zone_preference", None)
    if cached is None:
        # in the shared cache, so list pages keep their query count (set_preference refreshes)
        cached = cache.get(_cache_key(user))
        if cached is None:
            saved = TimeZonePreference.objects.filter(user=user).first()
            cached = (saved.view, saved.zone) if saved else (DEFAULT_VIEW, "")
            cache.set(_cache_key(user), cached, PREFERENCE_CACHE_SECONDS)
        user._time_zone_preference = tuple(cached)
    return user._time_zone_preference


def remember_preference_at_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    """``user_logged_in``: read the choice into the shared cache now, so pages never spend a
    query on it (a list page's query budget is fixed)."""
    saved = TimeZonePreference.objects.filter(user=user).first()
    cache.set(_cache_key(user), (saved.view, saved.zone) if saved else (DEFAULT_VIEW, ""),
              PREFERENCE_CACHE_SECONDS)


def _cache_key(user: Any) -> str:
    # the join stamp too: a recreated user that reuses an id never inherits a choice
    joined = getattr(user, "date_joined", None)
    return f"time-zone-preference:{user.pk}:{joined.timestamp() if joined else ''}"


def display_zone(request: Any, platform: Any = None) -> DisplayZone:
    """The zone this request's page shows times in (``platform``: the page's platform)."""
    view, name = preference_of(getattr(request, "user", None))
    return zone_of(view, name, platform)


def set_preference(actor: audit.Actor, view: str, zone_name: str = "") -> TimeZonePreference:
    """Keep how ``actor`` reads times; audited. Raises :class:`InvalidZone` on a bad value."""
    if view not in TimeZoneView.values:
        raise InvalidZone(f"Unknown time view {view[:40]!r}: choose server, utc or local.")
    zone_name = (zone_name or "").strip()
    if view == TimeZoneView.LOCAL:
        if not valid_zone_name(zone_name):
            raise InvalidZone(f"Unknown time zone {zone_name[:64]!r}: use a name such as "
                              "Europe/Athens.")
    else:
        zone_name = ""
    user = actor.user
    with transaction.atomic():
        saved = TimeZonePreference.objects.select_for_update().filter(user=user).first()
        before = {"view": saved.view, "zone": saved.zone} if saved else {}
        preference, _ = TimeZonePreference.objects.update_or_create(
            user=user, defaults={"view": view, "zone": zone_name})
        audit.record(actor=actor, action="preference.time_zone", target=user.get_username(),
                     before=before, after={"view": view, "zone": zone_name})
    cache.set(_cache_key(user), (view, zone_name), PREFERENCE_CACHE_SECONDS)
    user._time_zone_preference = (view, zone_name)
    return preference
