"""Dealer and finance operations as reconciled, exactly-once tasks.

A :class:`TradeTask` is one staff request to change a client's money, positions or account
on a trade platform. Its ``request_id`` is generated when the form is rendered, is sent as the
``Idempotency-Key`` of every attempt and, shortened to :attr:`TradeTask.comment_tag`, is
written into the MT4 comment of balance operations and orders so that the platform's own
records can be matched to the task exactly when an answer is lost.

State machine (the topic modules of ``platforms.trading`` are its only writers)::

    pending_approval ──approve──▶ queued ──claim──▶ sent ──answer──▶ confirmed | rejected
          │ reject/cancel           │ cancel          │ lost answer / transport error
          ▼                         ▼                 ▼
      cancelled                 cancelled        outcome_unknown ──reconcile──▶ confirmed |
                                                                                rejected
    queued ──platform unreachable, retries exhausted──▶ failed   (nothing was sent)
"""

from __future__ import annotations

import uuid
from decimal import Decimal

from django.conf import settings
from django.db import models

from platforms.fields import EncryptedTextField
from platforms.models.platform import TradePlatform


class TaskState(models.TextChoices):
    PENDING_APPROVAL = "pending_approval", "Waiting for approval"
    QUEUED = "queued", "Queued"
    SENT = "sent", "Sent"
    CONFIRMED = "confirmed", "Confirmed"
    REJECTED = "rejected", "Rejected by the platform"
    FAILED = "failed", "Failed (not applied)"
    OUTCOME_UNKNOWN = "outcome_unknown", "Outcome unknown"
    CANCELLED = "cancelled", "Cancelled"


#: States a task never leaves.
FINAL_STATES = frozenset(
    {TaskState.CONFIRMED, TaskState.REJECTED, TaskState.FAILED, TaskState.CANCELLED}
)


class TaskKind(models.TextChoices):
    # money (operate_balance)
    DEPOSIT = "deposit", "Deposit"
    WITHDRAWAL = "withdrawal", "Withdrawal"
    CREDIT_IN = "credit_in", "Credit in"
    CREDIT_OUT = "credit_out", "Credit out"
    CORRECTION = "correction", "Balance correction"
    # trades (operate_trades)
    OPEN_ORDER = "open_order", "Open market order"
    PLACE_PENDING = "place_pending", "Place pending order"
    MODIFY_ORDER = "modify_order", "Modify SL / TP / price"
    CLOSE_ORDER = "close_order", "Close order"
    DELETE_PENDING = "delete_pending", "Delete pending order"
    # coverage hedges at an LP (operate_trades; platforms.coverage.hedging)
    COVERAGE_OPEN = "coverage_open", "Coverage: open hedge"
    COVERAGE_MODIFY = "coverage_modify", "Coverage: modify queued hedge"
    COVERAGE_CLOSE = "coverage_close", "Coverage: close hedge"
    # accounts (edit_accounts)
    CREATE_ACCOUNT = "create_account", "Create account"
    EDIT_PROFILE = "edit_profile", "Edit profile"
    CHANGE_GROUP = "change_group", "Change group"
    CHANGE_LEVERAGE = "change_leverage", "Change leverage"
    ENABLE = "enable", "Enable account"
    DISABLE = "disable", "Disable account"
    READONLY_ON = "readonly_on", "Read-only on"
    READONLY_OFF = "readonly_off", "Read-only off"
    RESET_PASSWORD = "reset_password", "Reset password"
    BULK_GROUP = "bulk_group", "Bulk: change group"
    BULK_LEVERAGE = "bulk_leverage", "Bulk: change leverage"
    BULK_ENABLE = "bulk_enable", "Bulk: enable"
    BULK_DISABLE = "bulk_disable", "Bulk: disable"


class OperationPolicy(models.Model):
    """Per-platform rules for operations: when a second staff member must approve.

    A platform without a row uses the defaults below (see ``policy_for``).
    """

    platform = models.OneToOneField(
        TradePlatform, on_delete=models.CASCADE, related_name="operation_policy"
    )
    approval_threshold = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        default=Decimal("10000.00"),
        help_text="Balance and credit operations above this amount wait for a second approver.",
    )
    bulk_requires_approval = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "operation policies"

    def __str__(self) -> str:
        return f"{self.platform}: approval above {self.approval_threshold}"


class TradeTask(models.Model):
    """One requested write to a trade platform, from request to reconciled outcome.

    ``payload`` holds the validated operation parameters (never a password: a reset password
    lives only in ``secret``, encrypted, and is wiped as soon as the task is final).
    ``fingerprint`` is a hash of (platform, login, kind, payload): the same ``request_id``
    with another fingerprint is an idempotency conflict. ``wire`` is the exact body sent the
    first time, so that every resend under the same key is byte-identical.
    """

    request_id = models.UUIDField(unique=True, default=uuid.uuid4, editable=False)
    # no index of its own: the (platform, state, -created_at) index below serves it, and every
    # index is written again on each of a task's state changes
    platform = models.ForeignKey(TradePlatform, on_delete=models.PROTECT, related_name="tasks",
                                 db_index=False)
    login = models.BigIntegerField(null=True, blank=True, db_index=True)
    kind = models.CharField(max_length=30, choices=TaskKind.choices)
    payload = models.JSONField(default=dict)
    fingerprint = models.CharField(max_length=64)
    comment_tag = models.CharField(max_length=16, blank=True)
    secret = EncryptedTextField(blank=True)
    preview = models.JSONField(default=dict, blank=True)
    wire = models.JSONField(null=True, blank=True)

    state = models.CharField(max_length=20, choices=TaskState.choices)  # indexed in Meta
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="trade_tasks"
    )
    requested_ip = models.GenericIPAddressField(null=True, blank=True)

    result = models.JSONField(default=dict, blank=True)
    ticket = models.BigIntegerField(null=True, blank=True)
    new_balance = models.DecimalField(max_digits=16, decimal_places=2, null=True, blank=True)
    error_code = models.CharField(max_length=50, blank=True)
    manager_code = models.CharField(max_length=50, blank=True)
    activity_id = models.CharField(max_length=64, blank=True)
    message = models.CharField(max_length=500, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    resolved_by = models.CharField(
        max_length=20, blank=True,
        help_text="answer, replay, read or event: how the outcome was learnt",
    )

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_check_at = models.DateTimeField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["platform", "state", "-created_at"]),
            # the sweeper's state-only lookups; a plain index (``db_index`` would add a second,
            # pattern-matching one that no query uses)
            models.Index(fields=["state"], name="tradetask_state_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["platform", "login", "comment_tag"],
                condition=~models.Q(comment_tag=""),
                name="unique_comment_tag_per_account",
            )
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.login or ''} [{self.state}] {self.request_id}"

    @property
    def is_final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def amount(self) -> Decimal | None:
        raw = self.payload.get("amount")
        return Decimal(raw) if raw is not None else None


class ApprovalDecision(models.TextChoices):
    APPROVED = "approved", "Approved"
    REJECTED = "rejected", "Rejected"


class TaskApproval(models.Model):
    """The second pair of eyes on a task (maker-checker): one decision per task."""

    task = models.OneToOneField(TradeTask, on_delete=models.CASCADE, related_name="approval")
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    decision = models.CharField(max_length=10, choices=ApprovalDecision.choices)
    note = models.CharField(max_length=200, blank=True)
    decided_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.task_id} {self.decision} by {self.decided_by}"
