"""Small forms for page parameters (date ranges, chart periods)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, tzinfo

from django import forms

from platforms.access.fields import BoundedDateField
from platforms.timezones import day_start


class DateRangeForm(forms.Form):
    """``?from=YYYY-MM-DD&to=YYYY-MM-DD``; both optional, at most ten years apart."""

    start = BoundedDateField(required=False, label="From")
    end = BoundedDateField(required=False, label="To")

    def __init__(self, data=None, default_days: int = 30):
        data = data or {}
        super().__init__({"start": data.get("from"), "end": data.get("to")})
        self.default_days = default_days

    def clean(self):
        cleaned = super().clean()
        today = datetime.now(UTC).date()
        end = cleaned.get("end") or today
        start = cleaned.get("start") or end - timedelta(days=self.default_days)
        if start > end:
            raise forms.ValidationError("The start date is after the end date.")
        if (end - start).days > 3660:
            raise forms.ValidationError("Choose a range of at most ten years.")
        cleaned["start"], cleaned["end"] = start, end
        return cleaned

    def bounds(self, tz: tzinfo = UTC) -> tuple[datetime, datetime]:
        """[start 00:00, end+1 00:00) on the clock of ``tz`` (the reader's), as instants."""
        start = day_start(self.cleaned_data["start"], tz)
        end = day_start(self.cleaned_data["end"] + timedelta(days=1), tz)
        return start, end
