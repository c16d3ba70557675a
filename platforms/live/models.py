"""Margin alerts: a staff member acknowledges or takes on an account in margin call."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class MarginAlert(models.Model):
    """One account's stay outside the Ok band, as handled by staff.

    Created when someone acknowledges or assigns it from the margin monitor (the live state
    itself is never stored here); at most one open (unresolved) alert per account.
    """

    platform = models.ForeignKey(
        "platforms.TradePlatform", on_delete=models.CASCADE, related_name="margin_alerts"
    )
    login = models.BigIntegerField()
    level_type = models.CharField(max_length=16)  # MarginCall | StopOut when first handled
    level = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    assigned_to = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    resolved_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "login"],
                condition=models.Q(resolved_at__isnull=True),
                name="one_open_margin_alert_per_account",
            )
        ]
        indexes = [models.Index(fields=["platform", "resolved_at"])]

    def __str__(self) -> str:
        return f"{self.platform_id}:{self.login} {self.level_type}"
