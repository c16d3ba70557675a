"""Server operations: health samples, breaker transitions, mail jobs and report jobs."""

from __future__ import annotations

from django.conf import settings
from django.db import models

from platforms.models.platform import TradePlatform


class HealthSample(models.Model):
    """One connection check of a platform (``ServerTime`` round trip or the error it gave)."""

    platform = models.ForeignKey(TradePlatform, on_delete=models.CASCADE, related_name="+")
    taken_at = models.DateTimeField(db_index=True)
    ok = models.BooleanField()
    rtt_ms = models.FloatField(null=True, blank=True)
    error = models.CharField(max_length=500, blank=True)
    breaker_state = models.CharField(max_length=16, blank=True)

    class Meta:
        ordering = ["-taken_at"]
        indexes = [models.Index(fields=["platform", "-taken_at"], name="health_sample_recent")]

    def __str__(self) -> str:
        return f"{self.platform_id} {'ok' if self.ok else 'error'} at {self.taken_at}"


class BreakerTransition(models.Model):
    """A circuit-breaker state change of a platform, as seen by one process.

    Keyed by the platform's WebAPI id (the breaker's own key), not a foreign key: the
    listener runs inside the client, which knows nothing of database rows.
    """

    platform_key = models.CharField(max_length=64, db_index=True)
    at = models.DateTimeField()
    old_state = models.CharField(max_length=16)
    new_state = models.CharField(max_length=16)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.platform_key}: {self.old_state} -> {self.new_state}"


class JobState(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    PARTIAL = "partial", "Partly failed"
    FAILED = "failed", "Failed"


class MailJob(models.Model):
    """A bulk internal mail: the rendered template goes out in ``MailSend`` chunks."""

    platform = models.ForeignKey(TradePlatform, on_delete=models.CASCADE, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    subject = models.CharField(max_length=128)
    body_template = models.TextField()
    sender_name = models.CharField(max_length=64, blank=True)
    audience = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    recipients_total = models.IntegerField(default=0)
    recipients_sent = models.IntegerField(default=0)
    recipients_failed = models.IntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    error = models.TextField(blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"mail job #{self.pk}: {self.subject}"


class MailRecipient(models.Model):
    """One recipient of a :class:`MailJob` and what the server said for its chunk."""

    job = models.ForeignKey(MailJob, on_delete=models.CASCADE, related_name="recipients")
    login = models.BigIntegerField()
    chunk = models.IntegerField(default=0)
    sent = models.BooleanField(null=True)
    error = models.CharField(max_length=300, blank=True)

    class Meta:
        ordering = ["job", "login"]
        constraints = [
            models.UniqueConstraint(fields=["job", "login"], name="mail_recipient_once")
        ]

    def __str__(self) -> str:
        return f"{self.login} of mail job #{self.job_id}"


class ReportScope(models.TextChoices):
    ACCOUNT = "account", "Per account"
    GROUP = "group", "Per group"


class ReportJob(models.Model):
    """A daily-report summary over a date range, computed on the ``reporting`` queue.

    ``result`` holds ``{"days": [...], "rows": [...], "top_winners": [...], "top_losers": [...]}``.
    """

    platform = models.ForeignKey(TradePlatform, on_delete=models.CASCADE, related_name="+")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scope = models.CharField(max_length=16, choices=ReportScope.choices)
    date_from = models.DateField()
    date_to = models.DateField()
    group_masks = models.CharField(max_length=500, blank=True)
    state = models.CharField(max_length=16, choices=JobState.choices, default=JobState.QUEUED)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"report #{self.pk} {self.date_from}..{self.date_to}"
