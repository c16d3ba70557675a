"""Admin form of coverage accounts: the API key and the terminal password are write-only."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, cast

from django import forms

from platforms.coverage.hedging import HedgeInvalid, HedgeRequest
from platforms.coverage.models import CoverageAccount

SECRET_FIELDS = ("api_key", "terminal_password")


def _secret_field(label: str) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave blank to keep the current value.",
    )


class CoverageAccountForm(forms.ModelForm):
    """Secrets are never rendered back; a blank one keeps the stored value, and a new
    account needs both."""

    bridge_base_url = forms.URLField(label="Bridge base URL", max_length=300,
                                     assume_scheme="https")
    api_key = _secret_field("API key")
    terminal_password = _secret_field("Terminal password")

    class Meta:
        model = CoverageAccount
        fields = ["name", "lp_name", "bridge_base_url", "api_key", "account_id", "server",
                  "login", "terminal_password", "enabled", "covers"]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in SECRET_FIELDS:
            self.initial.pop(name, None)

    def _keep_or_require(self, name: str) -> str:
        value = self.cleaned_data.get(name, "")
        if value:
            return value
        if self.instance.pk:
            return getattr(self.instance, name)
        raise forms.ValidationError("Required for a new coverage account.")

    def clean_api_key(self) -> str:
        return self._keep_or_require("api_key")

    def clean_terminal_password(self) -> str:
        return self._keep_or_require("terminal_password")

    def clean_bridge_base_url(self) -> str:
        return self.cleaned_data["bridge_base_url"].rstrip("/")


class HedgeForm(forms.Form):
    """A hedge on a coverage account, as a trade task's payload. ``request_id`` is generated
    when the form is first rendered and travels through the confirmation step unchanged: it
    becomes the task's request id and the bridge's ``x-request-id``."""

    ACTION_FIELDS = {
        "open": ("coverage_account", "symbol", "side", "volume", "price", "sl", "tp"),
        "modify": ("coverage_account", "bridge_task_id", "volume", "price", "sl", "tp"),
        "close": ("coverage_account", "ticket", "volume"),
    }

    request_id = forms.UUIDField(widget=forms.HiddenInput)
    coverage_account = forms.ModelChoiceField(queryset=CoverageAccount.objects.none())
    symbol = forms.RegexField(regex=r"^[A-Za-z0-9._#-]{1,32}$", required=False)
    side = forms.ChoiceField(required=False, choices=[
        (s, s.replace("_", " ")) for s in
        ("buy", "sell", "buy_limit", "sell_limit", "buy_stop", "sell_stop")])
    volume = forms.DecimalField(required=False, min_value=Decimal("0.01"),
                                max_value=Decimal("100"), decimal_places=2,
                                help_text="lots (0.01 steps)")
    price = forms.FloatField(required=False, min_value=0, help_text="pending orders only")
    sl = forms.FloatField(required=False, min_value=0, label="SL")
    tp = forms.FloatField(required=False, min_value=0, label="TP")
    ticket = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    bridge_task_id = forms.RegexField(regex=r"^[!-~]{1,128}$", required=False,
                                      label="Bridge task id")

    def __init__(self, *args, action: str, accounts, **kwargs) -> None:
        kwargs.setdefault("initial", {}).setdefault("request_id", uuid.uuid4())
        super().__init__(*args, **kwargs)
        self.action = action
        cast(forms.ModelChoiceField, self.fields["coverage_account"]).queryset = accounts
        for name in list(self.fields):
            if name != "request_id" and name not in self.ACTION_FIELDS[action]:
                del self.fields[name]

    def clean(self) -> dict:
        cleaned = super().clean() or {}
        if not self.errors:
            try:
                HedgeRequest.from_payload(self.payload())
            except HedgeInvalid as exc:
                raise forms.ValidationError(str(exc)) from exc
        return cleaned

    def secret(self) -> str:
        """A hedge carries no secret (an account's new password is the only one)."""
        return ""

    def payload(self) -> dict:
        """JSON-safe, without the request id (it is the task's own field)."""
        data: dict[str, Any] = {"action": self.action}
        for name, value in self.cleaned_data.items():
            if name == "request_id" or value in (None, ""):
                continue
            if name == "coverage_account":
                data[name] = value.pk
            elif isinstance(value, Decimal):
                data[name] = float(value)
            else:
                data[name] = value
        return data
