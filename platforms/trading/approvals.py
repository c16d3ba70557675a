"""Who may ask for an operation, which ones wait for a second staff member (maker-checker),
that member's decision, and the requester's cancel.

Every refusal is audited outside the task's transaction, so that it is kept.
"""

from __future__ import annotations

from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.utils import timezone

from platforms import audit
from platforms.audit import Actor
from platforms.models import TradePlatform
from platforms.trading import dispatch, kinds
from platforms.trading.errors import OperationRefused
from platforms.trading.models import (
    ApprovalDecision,
    OperationPolicy,
    TaskApproval,
    TaskState,
    TradeTask,
)
from platforms.trading.trail import audit_task


def policy_for(platform: TradePlatform) -> OperationPolicy:
    policy = OperationPolicy.objects.filter(platform=platform).first()
    return policy or OperationPolicy(platform=platform)


def needs_approval(platform: TradePlatform, kind: str, payload: dict) -> bool:
    spec = kinds.spec_for(kind)
    policy = policy_for(platform)
    if spec.bulk:
        return policy.bulk_requires_approval
    if spec.category == kinds.MONEY:
        return abs(Decimal(payload["amount"])) > policy.approval_threshold
    return False


def ensure_allowed(actor: Actor, platform: TradePlatform, kind: str, *, login=None) -> None:
    """Refuse (and audit the refusal) unless the user holds the operation's permission."""
    spec = kinds.spec_for(kind)
    if actor.user.has_perm(f"platforms.{spec.permission}"):
        return
    audit.record(
        actor=actor, action=f"trade_task.{kind}", platform=platform,
        target=str(login or ""), outcome="forbidden",
        detail=f"missing permission {spec.permission}",
    )
    raise PermissionDenied(f"You need the '{spec.permission}' permission for this operation.")


def decide(task_id: int, *, actor: Actor, approve: bool, note: str = "") -> TradeTask:
    """Maker-checker: a second staff member with ``approve_operations`` approves or rejects."""
    action = "trade_task.approve" if approve else "trade_task.reject"
    with transaction.atomic():
        task = TradeTask.objects.select_for_update().select_related("platform").get(pk=task_id)
        refusal = None
        if not actor.user.has_perm("platforms.approve_operations"):
            refusal = "You need the 'approve_operations' permission to approve operations."
        elif task.requested_by_id == actor.user.pk:
            refusal = "Nobody approves their own operation: another staff member must approve it."
        elif task.state != TaskState.PENDING_APPROVAL:
            refusal = f"This operation is {task.get_state_display().lower()}, not waiting."
        if refusal is None:
            TaskApproval.objects.create(
                task=task, decided_by=actor.user, note=note[:200],
                decision=ApprovalDecision.APPROVED if approve else ApprovalDecision.REJECTED,
            )
            if approve:
                task.state, task.queued_at = TaskState.QUEUED, timezone.now()
                task.save(update_fields=["state", "queued_at", "updated_at"])
                dispatch.execute_after_commit(task)
            else:
                task.state, task.finished_at, task.secret = (TaskState.CANCELLED, timezone.now(),
                                                             "")
                task.message = f"Rejected by {actor.user.get_username()}" + (
                    f": {note}" if note else "")
                task.save(update_fields=["state", "finished_at", "secret", "message",
                                         "updated_at"])
            audit_task(task, action, "approved" if approve else "rejected", actor=actor,
                       detail=note)
            return task
    audit_task(task, action, "refused", actor=actor, detail=refusal)
    if "permission" in refusal:
        raise PermissionDenied(refusal)
    raise OperationRefused(refusal)


def cancel(task_id: int, *, actor: Actor) -> TradeTask:
    """The requester (or an approver) withdraws a task that has not been sent."""
    with transaction.atomic():
        task = TradeTask.objects.select_for_update().select_related("platform").get(pk=task_id)
        allowed = task.requested_by_id == actor.user.pk or actor.user.has_perm(
            "platforms.approve_operations"
        )
        if allowed and task.state in (TaskState.PENDING_APPROVAL, TaskState.QUEUED):
            task.state, task.finished_at, task.secret = TaskState.CANCELLED, timezone.now(), ""
            task.message = f"Cancelled by {actor.user.get_username()}"
            task.save(update_fields=["state", "finished_at", "secret", "message", "updated_at"])
            audit_task(task, "trade_task.cancel", "cancelled", actor=actor)
            return task
    audit_task(task, "trade_task.cancel", "refused", actor=actor)
    raise OperationRefused("Only an operation that has not been sent can be cancelled.")
