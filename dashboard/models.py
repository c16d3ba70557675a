"""Per-user UI preferences (remembered columns of each list, the time zone times are read in)."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class ListPreference(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="list_preferences")
    list_name = models.CharField(max_length=50)
    columns = models.JSONField(default=list)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user", "list_name"], name="one_preference_per_list")
        ]

    def __str__(self) -> str:
        return f"{self.user} {self.list_name}"


class TimeZoneView(models.TextChoices):
    SERVER = "server", "Server time"
    UTC = "utc", "UTC"
    LOCAL = "local", "My time zone"


class TimeZonePreference(models.Model):
    """How one user reads times: the trade server's clock, UTC, or a zone of their own
    (``zone``, an IANA name, only with ``local``). See ``dashboard/timezones.py``."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="time_zone_preference")
    view = models.CharField(max_length=8, choices=TimeZoneView.choices,
                            default=TimeZoneView.SERVER)
    zone = models.CharField(max_length=64, blank=True)

    def __str__(self) -> str:
        return f"{self.user} {self.view} {self.zone}".strip()
