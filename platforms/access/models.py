"""Who may see which platform (and, optionally, which of its account groups)."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from platforms.models.platform import TradePlatform


class PlatformAccess(models.Model):
    """Grants one staff user one platform. Without a row, a non-superuser sees nothing of it.

    ``group_masks`` narrows the grant to account groups, in MT4 mask syntax: comma-separated,
    ``*`` wildcards, ``!`` to exclude (``real\\*,!real\\vip*``). Blank means every group.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="platform_access"
    )
    platform = models.ForeignKey(TradePlatform, on_delete=models.CASCADE, related_name="access")
    group_masks = models.CharField(max_length=500, blank=True)

    class Meta:
        verbose_name_plural = "platform access"
        constraints = [
            models.UniqueConstraint(fields=["user", "platform"], name="unique_access_per_user")
        ]

    def __str__(self) -> str:
        return f"{self.user} → {self.platform}" + (f" ({self.group_masks})" if self.group_masks
                                                    else "")
