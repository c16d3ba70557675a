"""Coverage accounts: the broker's hedge accounts at liquidity providers (MT4 over a bridge)."""

from __future__ import annotations

from django.db import models

from platforms.fields import EncryptedTextField
from platforms.models.platform import TradePlatform


class CoverageAccount(models.Model):
    """An MT4 account at a liquidity provider, reached through its terminal-bridge API.

    ``api_key`` and ``terminal_password`` are encrypted at rest and must never reach a
    template, a log line or an exception message. ``covers`` names the trade platforms whose
    clients' net position this account hedges.
    """

    name = models.CharField(max_length=100, unique=True)
    lp_name = models.CharField("LP name", max_length=100,
                               help_text="The liquidity provider holding the account.")
    bridge_base_url = models.URLField(
        "bridge base URL", max_length=300,
        help_text="Every bridge path is relative to it, e.g. https://host/mt4/client.",
    )
    api_key = EncryptedTextField("API key", blank=True)
    account_id = models.CharField(
        "bridge account id", max_length=64,
        help_text="The bridge workspace's id for this account (accountId of session/open).",
    )
    server = models.CharField("MT4 server", max_length=100)
    login = models.PositiveBigIntegerField("MT4 login")
    terminal_password = EncryptedTextField(blank=True)
    enabled = models.BooleanField(default=True)
    covers = models.ManyToManyField(
        TradePlatform, blank=True, related_name="coverage_accounts",
        help_text="Platforms whose clients' net position this account hedges.",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["bridge_base_url", "server", "login"],
                                    name="unique_coverage_login_per_bridge")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.lp_name} {self.server}/{self.login})"
