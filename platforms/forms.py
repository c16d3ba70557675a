"""Forms for trade platforms: the client secret is write-only."""

from __future__ import annotations

from django import forms

from platforms.models import ENVIRONMENT_PRESETS, TradePlatform


class TradePlatformForm(forms.ModelForm):
    """Admin form. The secret is never rendered back; leaving it blank keeps the stored one.

    For the vendor's production and sandbox environments the URLs may be left blank and are
    filled from the public presets.
    """

    api_base_url = forms.URLField(label="API base URL", max_length=300, required=False,
                                  assume_scheme="https")
    sidecar_base_url = forms.URLField(
        label="Sidecar base URL", max_length=300, required=False, assume_scheme="https",
        help_text="x86 sidecar for snapshots, messaging and plugins; blank = the API base URL.",
    )
    oauth_authority = forms.URLField(label="OAuth authority", max_length=300, required=False,
                                     assume_scheme="https")
    client_secret = forms.CharField(
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave blank to keep the current secret.",
    )

    class Meta:
        model = TradePlatform
        fields = [
            "name",
            "kind",
            "environment",
            "platform_id",
            "api_base_url",
            "sidecar_base_url",
            "oauth_authority",
            "oauth_scope",
            "client_id",
            "client_secret",
            "enabled",
            "time_zone_override",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.initial.pop("client_secret", None)

    def clean_client_secret(self) -> str:
        secret = self.cleaned_data.get("client_secret", "")
        if secret:
            return secret
        if self.instance.pk:
            return self.instance.client_secret
        raise forms.ValidationError("A client secret is required for a new platform.")

    def clean(self):
        cleaned = super().clean()
        preset = ENVIRONMENT_PRESETS.get(cleaned.get("environment"))
        for field, default in zip(
            ("api_base_url", "oauth_authority"), preset or (None, None), strict=True
        ):
            value = (cleaned.get(field) or "").rstrip("/")
            if not value and default:
                value = default
            if not value:
                self.add_error(field, "Required for a custom environment.")
            cleaned[field] = value
        if cleaned.get("sidecar_base_url"):
            cleaned["sidecar_base_url"] = cleaned["sidecar_base_url"].rstrip("/")
        return cleaned
