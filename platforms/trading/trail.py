"""Who acts on a trade task, and the audit rows its steps leave.

Every step of a task (submitted, approved, confirmed, rejected …) is an ``AuditEvent`` with the
task's request id; a worker has no request, so it records under the staff member who asked.
"""

from __future__ import annotations

from platforms import audit
from platforms.audit import Actor
from platforms.models import AuditEvent
from platforms.trading.models import TradeTask


def target_of(task: TradeTask) -> str:
    """The audit row's target: the account, or the first logins of a bulk operation."""
    if task.login:
        return str(task.login)
    logins = task.payload.get("logins") or []
    return ",".join(str(x) for x in logins[:20]) + ("…" if len(logins) > 20 else "")


def audit_task(task: TradeTask, action: str, outcome: str, *, actor: Actor | None = None,
               before=None, after=None, detail: str = "") -> None:
    """One step of the task in the audit trail, under ``actor`` or else the requester."""
    audit.record(
        actor=actor or Actor(task.requested_by, task.requested_ip),
        action=action,
        platform=task.platform,
        target=target_of(task),
        before=before or {},
        after=after if after is not None else {"kind": task.kind, **task.payload},
        outcome=outcome,
        detail=detail,
        request_id=task.request_id,
    )


def outcome_event(task: TradeTask, outcome: str, *, before: dict, after: dict,
                  detail: str) -> AuditEvent:
    """The audit row ``audit_task`` writes for a worker-side outcome, unsaved (for a bulk
    insert): recorded under the requester and their IP, as every worker-side attempt is."""
    return AuditEvent(
        actor_id=task.requested_by_id, ip_address=task.requested_ip or None,
        action=f"trade_task.{task.kind}", platform_id=task.platform_id, target=target_of(task),
        before=audit.scrub(before or {}), after=audit.scrub(after), outcome=outcome,
        detail=detail, request_id=task.request_id,
    )
