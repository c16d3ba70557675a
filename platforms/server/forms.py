"""Forms of the server pages: journal range, mail and news, plugin parameters, external
command payloads and report ranges. Validation here means nothing invalid reaches the API."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import UTC, datetime, timedelta, tzinfo

from django import forms
from django.utils import timezone

from platforms.access.fields import BoundedDateField, BoundedDateTimeField, IdField, LoginListField
from platforms.server.placeholders import MAX_BODY_BYTES, TemplateError, check_template

JOURNAL_MODES = ["Standard", "Logins", "Trades", "Errors", "Full"]
MAX_JOURNAL_RANGE = timedelta(days=31)


def _aware(value: datetime, tz: tzinfo = UTC) -> datetime:
    return value.replace(tzinfo=tz) if timezone.is_naive(value) else value


class JournalForm(forms.Form):
    """Time range (at most 31 days, start before end), journal mode, server-side filter and
    an extra text search applied to the lines returned. Typed times are read on ``tz`` (the
    reader's zone, which the page names); ``start``/``end`` come out as instants."""

    start = BoundedDateTimeField(required=False)
    end = BoundedDateTimeField(required=False)
    mode = forms.ChoiceField(choices=[("", "Full")] + [(m, m) for m in JOURNAL_MODES],
                             required=False)
    filter = forms.CharField(max_length=64, required=False,
                             help_text="Server-side filter, e.g. a login")
    text = forms.CharField(max_length=100, required=False, label="Text contains")

    def __init__(self, *args, tz: tzinfo = UTC, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.tz = tz

    def full_clean(self) -> None:
        # Django reads a typed time on the "current" zone: make that the reader's zone
        with timezone.override(self.tz):
            super().full_clean()

    def clean(self):
        data = super().clean()
        now = timezone.now()
        end = _aware(data.get("end") or now, self.tz)
        start = _aware(data.get("start") or end - timedelta(days=1), self.tz)
        if start >= end:
            raise forms.ValidationError("The start of the range must be before its end.")
        if end - start > MAX_JOURNAL_RANGE:
            raise forms.ValidationError("The range may span at most 31 days.")
        data["start"], data["end"] = start, end
        return data


class AudienceKind:
    ONE = "one"
    SELECTION = "selection"
    FILTERED = "filtered"
    CHOICES = [(ONE, "One account"), (SELECTION, "Selected logins"),
               (FILTERED, "Filtered set from the accounts list")]


class MailForm(forms.Form):
    audience = forms.ChoiceField(choices=AudienceKind.CHOICES, initial=AudienceKind.ONE)
    login = IdField(required=False)
    logins = LoginListField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                            help_text="Comma- or space-separated logins")
    query = forms.CharField(required=False, max_length=2000,
                            help_text="The accounts list's query string, e.g. group=real*")
    sender_name = forms.CharField(max_length=32, required=False, initial="Back office")
    subject = forms.CharField(max_length=128)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}), strip=False,
                           help_text="Placeholders: {name}, {login}, {balance}")

    def clean_body(self):
        body = self.cleaned_data["body"]
        if len(body.encode()) > MAX_BODY_BYTES:
            raise forms.ValidationError(
                f"The body is {len(body.encode()):,} bytes; the limit is {MAX_BODY_BYTES:,}."
            )
        try:
            check_template(body)
        except TemplateError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return body

    def clean_subject(self):
        subject = self.cleaned_data["subject"]
        try:
            check_template(subject)
        except TemplateError as exc:
            raise forms.ValidationError(str(exc)) from exc
        return subject

    def clean(self):
        data = super().clean()
        audience = data.get("audience")
        if audience == AudienceKind.ONE and not data.get("login"):
            self.add_error("login", "Enter the login of the account.")
        if audience == AudienceKind.SELECTION and not data.get("logins"):
            self.add_error("logins", "Enter at least one login.")
        return data


class NewsForm(forms.Form):
    topic = forms.CharField(max_length=128)
    category = forms.CharField(max_length=64, required=False)
    body = forms.CharField(widget=forms.Textarea(attrs={"rows": 8}), strip=False)
    high_priority = forms.BooleanField(required=False)

    def clean_body(self):
        body = self.cleaned_data["body"]
        if len(body.encode()) > MAX_BODY_BYTES:
            raise forms.ValidationError(
                f"The body is {len(body.encode()):,} bytes; the limit is {MAX_BODY_BYTES:,}."
            )
        return body


class ExternalCommandForm(forms.Form):
    encoding = forms.ChoiceField(choices=[("base64", "Base64"), ("hex", "Hex")])
    payload = forms.CharField(widget=forms.Textarea(attrs={"rows": 4}), max_length=200_000)
    confirm = forms.BooleanField(
        label="I understand this sends raw bytes to the server's plugins", required=True
    )

    def clean(self):
        data = super().clean()
        payload = (data.get("payload") or "").strip()
        if not payload or "encoding" not in data:
            return data
        try:
            if data["encoding"] == "hex":
                data["data"] = bytes.fromhex(re.sub(r"\s+", "", payload))
            else:
                data["data"] = base64.b64decode(re.sub(r"\s+", "", payload), validate=True)
        except (ValueError, binascii.Error):
            raise forms.ValidationError(
                f"The payload is not valid {data['encoding']}; nothing was sent."
            ) from None
        if not data["data"]:
            raise forms.ValidationError("The payload is empty; nothing was sent.")
        return data


class ReportForm(forms.Form):
    date_from = BoundedDateField()
    date_to = BoundedDateField()
    scope = forms.ChoiceField(choices=[("account", "Per account"), ("group", "Per group")])

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end:
            if start > end:
                raise forms.ValidationError("The first day must not be after the last day.")
            if (end - start).days > 366:
                raise forms.ValidationError("A report may span at most 366 days.")
        return data
