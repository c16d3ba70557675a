"""Form fields for what a user types that names or bounds database rows: ids, logins, login
lists and dates.

The query string is parsed with the same bounds (:data:`platforms.access.scope.MAX_ID`); these
fields give every form the same rules, so a value the database cannot hold (a login beyond
2^63-1, a date whose day after does not exist) is a clear form error, never an overflow inside
the database driver or in date arithmetic.
"""

from __future__ import annotations

import datetime as dt
import re

from django import forms

from platforms.access.scope import MAX_ID

#: dates outside these years are typos; the bounds keep ``± timedelta`` arithmetic valid
FIRST_YEAR, LAST_YEAR = 1970, 2200
_SEPARATORS = re.compile(r"[\s,;]+")
_DIGITS = re.compile(r"[0-9]{1,19}")


class IdField(forms.IntegerField):
    """A positive id or login the database can hold (1 … 2^63-1, or a smaller ``max_value``)."""

    def __init__(self, *, max_value: int = MAX_ID, **kwargs) -> None:
        kwargs.setdefault("min_value", 1)
        super().__init__(max_value=max_value, **kwargs)
        self.error_messages["max_value"] = f"No login or id is larger than {max_value}."


class LoginListField(forms.CharField):
    """Logins separated by spaces, commas, semicolons or new lines → a sorted list of distinct
    ints, each 1 … ``max_login``, at most ``max_count`` of them."""

    def __init__(self, *, max_login: int = MAX_ID, max_count: int = 1000, **kwargs) -> None:
        kwargs.setdefault("max_length", 100_000)
        super().__init__(**kwargs)
        self.max_login, self.max_count = max_login, max_count

    def to_python(self, value) -> list[int]:  # type: ignore[override]
        text = super().to_python(value) or ""
        parts = [p for p in _SEPARATORS.split(text.strip()) if p]
        bad = [p for p in parts
               if not _DIGITS.fullmatch(p) or not 0 < int(p) <= self.max_login]
        if bad:
            shown = ", ".join(p[:20] for p in bad[:10])
            raise forms.ValidationError(f"Not logins: {shown}.", code="invalid")
        logins = sorted({int(p) for p in parts})
        if len(logins) > self.max_count:
            raise forms.ValidationError(f"At most {self.max_count:,} logins.", code="max_count")
        return logins


def _check_year(value: dt.date | None) -> None:
    if value is not None and not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise forms.ValidationError(
            f"Choose a date between {FIRST_YEAR} and {LAST_YEAR}.", code="out_of_range")


class BoundedDateField(forms.DateField):
    """A date in the years :data:`FIRST_YEAR` … :data:`LAST_YEAR`."""

    def validate(self, value) -> None:
        super().validate(value)
        _check_year(value)


class BoundedDateTimeField(forms.DateTimeField):
    """A date and time in the years :data:`FIRST_YEAR` … :data:`LAST_YEAR`."""

    def validate(self, value) -> None:
        super().validate(value)
        _check_year(value)
