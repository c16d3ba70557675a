"""Trade-server time zones: what the wire's times mean, and how they become real instants.

MT4 and MT5 servers keep their clock on a zone of the broker's choosing (often EET, UTC+2 /
UTC+3 in summer) and the manager WebAPI sends that wall clock with a ``Z`` as if it were UTC.
Everything that reads server times (mirror rows, live reads, the journal) converts them here
with the platform's offset, so the database and the pages hold true instants; everything that
sends a time to the server (journal and history ranges) converts back.

Pure functions, no Django: the client's records and plain minutes go in, datetimes come out.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from typing import Any

#: Offsets the world uses lie within these bounds (UTC-12 … UTC+14), in minutes.
MIN_OFFSET_MINUTES = -12 * 60
MAX_OFFSET_MINUTES = 14 * 60


def valid_offset(minutes: int) -> bool:
    """Whether ``minutes`` east of UTC is an offset a server can have."""
    return MIN_OFFSET_MINUTES <= minutes <= MAX_OFFSET_MINUTES


def fixed_zone(minutes: int) -> timezone:
    """The fixed-offset zone ``minutes`` east of UTC (``timezone.utc`` for 0)."""
    return UTC if not minutes else timezone(timedelta(minutes=minutes))


def offset_label(minutes: int) -> str:
    """``UTC``, ``UTC+2``, ``UTC-3:30``: how pages name a fixed offset."""
    if not minutes:
        return "UTC"
    sign = "+" if minutes > 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def server_to_utc(value: datetime | None, minutes: int) -> datetime | None:
    """A wire time (the server's wall clock, tagged UTC or naive) as the true UTC instant."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return (value - timedelta(minutes=minutes)).replace(tzinfo=UTC)


def utc_to_server(value: datetime, minutes: int) -> datetime:
    """A true instant as the server's wall clock, tagged UTC the way the wire wants it."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return (value.astimezone(UTC) + timedelta(minutes=minutes)).replace(tzinfo=UTC)


def mt4_offset_minutes(common: Any) -> int:
    """``MT4Common.timeZone`` is whole hours from UTC, already DST-adjusted."""
    return int(common.time_zone or 0) * 60


def mt5_offset_minutes(time_config: Any) -> int:
    """``MT5Time.timeZone`` is minutes from UTC; an hour more while daylight saving is on."""
    minutes = int(time_config.time_zone or 0)
    if getattr(time_config, "daylight", False) and getattr(time_config, "daylight_state", 0):
        minutes += 60
    return minutes


def journal_instant(text: str | None, minutes: int) -> datetime | None:
    """A journal line's time (``2026.01.31 10:00:00``, the server's clock, no zone) as the
    instant; None if it is not in that form."""
    if not text:
        return None
    for fmt in ("%Y.%m.%d %H:%M:%S", "%Y.%m.%d %H:%M:%S.%f", "%Y-%m-%dT%H:%M:%S"):
        try:
            return server_to_utc(datetime.strptime(text.strip().rstrip("Z"), fmt), minutes)
        except ValueError:
            continue
    return None


def day_start(day: date, tz: tzinfo) -> datetime:
    """Midnight starting ``day`` on the clock of ``tz``, as the UTC instant (date filters)."""
    return datetime.combine(day, time.min, tzinfo=tz).astimezone(UTC)


class ZonedDateRange:
    """Date filters (django-filter ``method``) that read a day on the reader's clock: the
    filterset sets ``tz`` and ``zone_label`` (and the labels say the zone)."""

    tz: tzinfo = UTC

    def zoned_labels(self, names: tuple[str, ...], zone_label: str) -> None:
        for name in names:
            field = self.filters[name]  # type: ignore[attr-defined]
            field.label = f"{field.label} · {zone_label}"

    def from_day(self, queryset: Any, name: str, value: date) -> Any:
        return queryset.filter(**{f"{name}__gte": day_start(value, self.tz)})

    def to_day(self, queryset: Any, name: str, value: date) -> Any:
        return queryset.filter(**{f"{name}__lt": day_start(value + timedelta(days=1), self.tz)})
