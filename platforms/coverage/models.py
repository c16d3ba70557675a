"""Coverage accounts: the broker's hedge accounts at liquidity providers (MT4 over a bridge)."""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import Group
from django.contrib.auth.signals import user_logged_in
from django.core.cache import cache
from django.db import models
from django.db.models.signals import m2m_changed, post_save, pre_delete
from django.dispatch import receiver

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


def _forget_nav_answers(user_pks) -> None:
    cache.delete_many([f"coverage:may-view-exposure:{int(pk)}" for pk in user_pks])


@receiver(post_save, sender=settings.AUTH_USER_MODEL, dispatch_uid="coverage-nav-user")
def _user_saved(sender, instance, raw: bool = False, update_fields=None, **kwargs) -> None:
    """Staff or superuser status may have changed: the nav's cached answer is stale (not on
    the login's own ``last_login`` save)."""
    if not raw and not (update_fields and set(update_fields) <= {"last_login"}):
        _forget_nav_answers([instance.pk])


@receiver(m2m_changed, dispatch_uid="coverage-nav-groups")
def _roles_changed(sender, instance, action: str, reverse: bool, pk_set, **kwargs) -> None:
    """A user joined or left a role (either side of ``User.groups``)."""
    if sender is not Group.user_set.through or action not in (
            "post_add", "post_remove", "pre_clear", "post_clear"):
        return
    if isinstance(instance, Group):
        pks = pk_set if pk_set is not None else instance.user_set.values_list("pk", flat=True)
    else:
        pks = [instance.pk]
    _forget_nav_answers(list(pks or []))


@receiver(pre_delete, sender=Group, dispatch_uid="coverage-nav-group-deleted")
def _role_deleted(sender, instance: Group, **kwargs) -> None:
    _forget_nav_answers(list(instance.user_set.values_list("pk", flat=True)))


@receiver(user_logged_in, dispatch_uid="coverage-nav-login")
def _logged_in(sender, request, user, **kwargs) -> None:
    """Answer at login (one query then) rather than on a page's first render."""
    from platforms.coverage.selectors import may_view_exposure_cached

    _forget_nav_answers([user.pk])
    may_view_exposure_cached(user)
