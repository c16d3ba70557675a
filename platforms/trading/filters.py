"""Query-string filters of the audit trail (the page and its CSV share them)."""

from __future__ import annotations

from datetime import UTC, tzinfo

import django_filters as filters
from django import forms

from platforms.access.scope import MAX_ID
from platforms.models import AuditEvent
from platforms.timezones import ZonedDateRange


class IdFilter(filters.NumberFilter):
    """A database id: a whole number the database can hold (anything else is a form error)."""

    field_class = forms.IntegerField


class AuditFilter(ZonedDateRange, filters.FilterSet):
    """Every parameter is declared: a value that does not parse is reported on the page and
    ignored, never passed to the database. ``since``/``until`` are days on ``tz``."""

    action = filters.CharFilter(field_name="action", lookup_expr="icontains", max_length=100)
    actor = filters.CharFilter(field_name="actor__username", lookup_expr="iexact",
                               max_length=150)
    platform = IdFilter(field_name="platform_id", label="Platform id", min_value=1,
                        max_value=MAX_ID)
    outcome = filters.CharFilter(field_name="outcome", max_length=50)
    target = filters.CharFilter(field_name="target", lookup_expr="icontains", max_length=200,
                                label="Account")
    request_id = filters.UUIDFilter(field_name="request_id", label="Request id")
    since = filters.DateFilter(field_name="at", method="from_day", label="From")
    until = filters.DateFilter(field_name="at", method="to_day", label="To")

    class Meta:
        model = AuditEvent
        fields: list[str] = []

    def __init__(self, *args, tz: tzinfo = UTC, zone_label: str = "UTC", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz
        self.zoned_labels(("since", "until"), zone_label)

    def problems(self) -> list[str]:
        """One sentence per parameter that was ignored."""
        if not self.is_bound or self.form.is_valid():
            return []
        return [f"{self.form.fields[name].label or name}: {' '.join(errors)} (ignored)"
                for name, errors in self.form.errors.items()]
