"""Per-user UI preferences (remembered columns of each list)."""

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
