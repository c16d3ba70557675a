"""Trade platforms (MT4 / MT5 servers behind a manager WebAPI) and the audit trail."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from typing import Any

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import IntegrityError, models
from django.db.models.expressions import DatabaseDefault

from platforms.fields import EncryptedTextField
from platforms.timezones import MAX_OFFSET_MINUTES, MIN_OFFSET_MINUTES


class PlatformKind(models.TextChoices):
    MT4 = "MT4", "MetaTrader 4"
    MT5 = "MT5", "MetaTrader 5"


class PlatformEnvironment(models.TextChoices):
    PRODUCTION = "production", "Production"
    SANDBOX = "sandbox", "Sandbox"
    CUSTOM = "custom", "Custom"


# The vendor's public hosts; custom and our embedded sandbox give their own URLs.
ENVIRONMENT_PRESETS = {
    PlatformEnvironment.PRODUCTION: ("https://cloud.mywebapi.com", "https://auth.cplugin.net"),
    PlatformEnvironment.SANDBOX: ("https://pre.mywebapi.com", "https://pre.auth.cplugin.net"),
}


class TradePlatform(models.Model):
    """One MT4 or MT5 trade server reachable through a manager WebAPI.

    ``client_secret`` is encrypted at rest and must never reach a template, a log line or an
    exception message. ``sidecar_base_url`` is where the x86-only operations go; blank means
    the API base URL, which is how the public service routes them.
    """

    name = models.CharField(max_length=100, unique=True)
    kind = models.CharField(max_length=3, choices=PlatformKind.choices)
    environment = models.CharField(
        max_length=20, choices=PlatformEnvironment.choices, default=PlatformEnvironment.CUSTOM
    )
    api_base_url = models.URLField("API base URL", max_length=300)
    sidecar_base_url = models.URLField(
        "sidecar base URL",
        max_length=300,
        blank=True,
        help_text="x86 sidecar for snapshots, messaging and plugins; blank = the API base URL.",
    )
    oauth_authority = models.URLField("OAuth authority", max_length=300)
    client_id = models.CharField(max_length=200)
    client_secret = EncryptedTextField(blank=True)
    oauth_scope = models.CharField(
        "OAuth scope", max_length=200, blank=True, help_text="Space-separated; blank = none sent."
    )
    platform_id = models.UUIDField(
        "trade platform id", help_text="The GUID the WebAPI knows this server by."
    )
    enabled = models.BooleanField(default=True)
    # The server's clock zone, in minutes east of UTC (see platforms/timezones.py): what the
    # server last reported, an admin's override of it, and the offset the mirror's stored
    # server times were converted with (a snapshot run re-bases them when the zone changes).
    time_zone_reported = models.IntegerField(
        "reported time zone (minutes east of UTC)", null=True, blank=True, editable=False,
        help_text="Read from MT4 ManagerCommon.timeZone / MT5 TimeGet by every snapshot run.",
    )
    time_zone_override = models.IntegerField(
        "time zone override (minutes east of UTC)", null=True, blank=True,
        validators=[MinValueValidator(MIN_OFFSET_MINUTES), MaxValueValidator(MAX_OFFSET_MINUTES)],
        help_text="Blank = what the server reports. E.g. 120 for a server on UTC+2. Stored "
                  "trade times are re-based by the next snapshot run.",
    )
    time_zone_applied = models.IntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        # What a role may do; roles are Django groups created by migration (see roles.py).
        permissions = [
            ("view_personal_data", "Can see clients' email, phone, address and IP"),
            ("operate_balance", "Can deposit, withdraw, credit and correct balances"),
            ("operate_trades", "Can open, modify and close trades on a client's behalf"),
            ("edit_accounts", "Can create and edit client accounts"),
            ("approve_operations", "Can approve another staff member's operation"),
            ("acknowledge_alerts", "Can acknowledge and take margin alerts"),
            ("run_snapshots", "Can start a mirror snapshot"),
            ("send_messages", "Can send internal mail and news"),
            ("manage_plugins", "Can change server plugins and send plugin commands"),
            ("view_health", "Can see platform health and queues"),
            ("view_reports", "Can see and download reports"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["api_base_url", "platform_id"], name="unique_platform_per_api"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"

    @property
    def is_production(self) -> bool:
        return self.environment == PlatformEnvironment.PRODUCTION

    @property
    def utc_offset_minutes(self) -> int:
        """The server clock's offset: the admin's override, else what the server reported,
        else 0 (UTC) until a snapshot run has asked."""
        if self.time_zone_override is not None:
            return self.time_zone_override
        return self.time_zone_reported or 0


# True only inside ``platforms.audit.maintenance()``: the retention command's (and the test
# suite's flush's) one way past the append-only guard. On PostgreSQL the trigger reads the
# matching session setting, ``audit.maintenance``, which the same context sets.
audit_maintenance: ContextVar[bool] = ContextVar("audit_maintenance", default=False)


class AppendOnlyError(IntegrityError):
    """An audit event was to be changed or deleted. An IntegrityError, as the PostgreSQL
    trigger's refusal is, so callers meet one kind of error whichever layer refused."""


def _refuse(what: str) -> None:
    if not audit_maintenance.get():
        raise AppendOnlyError(f"audit events are append-only: {what} refused")


class AuditEventQuerySet(models.QuerySet):
    """Bulk writes of history are refused; reads are what this queryset is for.

    Django's own ``on_delete=SET_NULL`` of a deleted user or platform goes through the plain
    base manager, not this one, and the PostgreSQL trigger allows exactly that change.
    """

    def update(self, **kwargs: Any) -> int:
        _refuse("update")
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        _refuse("delete")
        return super().delete()


class CopiedNameField(models.CharField):
    """The name of what ``source`` (a foreign key) points at, copied when the row is inserted:
    the link is set to NULL when a user or platform is deleted, the name stays in the trail."""

    def __init__(self, *args: Any, source: str = "", **kwargs: Any) -> None:
        self.source = source
        super().__init__(*args, **kwargs)

    def deconstruct(self):
        name, path, args, kwargs = super().deconstruct()
        kwargs["source"] = self.source
        return name, path, args, kwargs

    def pre_save(self, model_instance: models.Model, add: bool) -> str:
        value = getattr(model_instance, self.attname)
        if isinstance(value, DatabaseDefault):  # not given: ``db_default`` stands in for it
            value = ""
        if add and not value:
            related = getattr(model_instance, self.source, None)
            if related is not None:
                label = getattr(related, "get_username", None)
                value = (label() if label else getattr(related, "name", str(related)))
                value = value[: self.max_length]
                setattr(model_instance, self.attname, value)
        return value


class AuditEvent(models.Model):
    """Append-only record of every write made through the dashboard (who, what, before/after).

    Values that are secrets are stored as ``"***"`` by the service that records them. Rows are
    inserted, never changed or deleted: ``save()`` of a stored row, ``delete()`` and the
    queryset's ``update()``/``delete()`` raise :class:`AppendOnlyError`, and on PostgreSQL a
    trigger refuses ``UPDATE``, ``DELETE`` and ``TRUNCATE`` whatever the client (migration
    0015). Only ``manage.py archive_audit`` removes rows, after writing them to a file.
    """

    at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    actor_name = CopiedNameField(max_length=150, blank=True, db_default="", source="actor")
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    action = models.CharField(max_length=100)  # indexed in Meta
    platform = models.ForeignKey(
        TradePlatform, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    platform_name = CopiedNameField(max_length=100, blank=True, db_default="",
                                    source="platform")
    target = models.CharField(max_length=200, blank=True)
    before = models.JSONField(default=dict, blank=True)
    after = models.JSONField(default=dict, blank=True)
    request_id = models.UUIDField(default=uuid.uuid4, db_index=True)
    outcome = models.CharField(max_length=50, default="ok")
    detail = models.TextField(blank=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-at", "-id"]
        # a plain index: ``db_index`` would add a pattern-matching one too, which the audit
        # filter (``icontains``) cannot use and every audited write would maintain
        indexes = [models.Index(fields=["action"], name="auditevent_action_idx")]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M:%S} {self.who} {self.action} {self.target}"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            _refuse("changing a stored event")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        _refuse("delete")
        return super().delete(*args, **kwargs)

    @property
    def who(self) -> str:
        """The actor's name, also once the user has been deleted."""
        return self.actor.get_username() if self.actor_id and self.actor else self.actor_name
