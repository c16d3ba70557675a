"""Submitting an operation: one task per request id, created with its audit row and queued
when they commit (on PostgreSQL in one statement; see ``platforms.trading.inserts``)."""

from __future__ import annotations

import hashlib
import json
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from platforms import audit
from platforms.audit import Actor
from platforms.models import AuditEvent, TradePlatform
from platforms.trading import dispatch, kinds, wire
from platforms.trading.approvals import ensure_allowed, needs_approval
from platforms.trading.errors import OperationRefused
from platforms.trading.inserts import fetch_one_prepared, insert_select, insert_values
from platforms.trading.kinds import BATCHED_KINDS
from platforms.trading.models import OperationPolicy, TaskKind, TaskState, TradeTask
from platforms.trading.trail import audit_task, target_of


class IdempotencyConflict(Exception):
    """The request id was already used for a different operation."""

    def __init__(self, task: TradeTask) -> None:
        self.task = task
        super().__init__(
            f"Request {task.request_id} was already used for another operation "
            f"({task.get_kind_display()} on {task.login or 'several accounts'}); "
            "reload the form to start a new request."
        )


def fingerprint(platform: TradePlatform, login: int | None, kind: str, payload: dict) -> str:
    canonical = json.dumps(
        {"platform": platform.pk, "login": login, "kind": kind, "payload": payload},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass
class Submission:
    task: TradeTask
    created: bool


def submit(
    *,
    actor: Actor,
    platform: TradePlatform,
    kind: str,
    login: int | None,
    payload: dict,
    request_id,
    secret: str = "",
    preview: dict | None = None,
) -> Submission:
    """Create the task for ``request_id`` (or return the one that exists) and queue it.

    ``payload`` must be validated and JSON-safe (amounts as strings) and never hold a secret;
    ``secret`` (a new password) is stored encrypted and wiped when the task is final.
    Raises :class:`IdempotencyConflict`, :class:`OperationRefused` or ``PermissionDenied``;
    refusals are audited outside the task's transaction so that they are kept.
    """
    ensure_allowed(actor, platform, kind, login=login)
    if not kinds.available_on(kind, platform.kind):
        raise OperationRefused(f"{TaskKind(kind).label} is not available for {platform.kind}.")
    digest = fingerprint(platform, login, kind, payload)
    submission = _create_or_get(actor, platform, kind, login, payload, request_id, digest,
                                secret, preview)
    if submission.task.fingerprint != digest:
        existing = submission.task
        audit.record(
            actor=actor, action=f"trade_task.{kind}", platform=platform,
            target=str(login or ""), outcome="conflict", request_id=request_id,
            after={"kind": kind, **payload},
            detail=f"request id already used by task {existing.pk}",
        )
        raise IdempotencyConflict(existing)
    return submission


def _create_or_get(actor, platform, kind, login, payload, request_id, digest, secret,
                   preview) -> Submission:
    # On PostgreSQL a money task's approval is decided by the INSERT itself (see
    # _insert_with_event): the state below is provisional until the statement returns.
    decided_by_insert = connection.vendor == "postgresql" and kind in BATCHED_KINDS
    approval = not decided_by_insert and needs_approval(platform, kind, payload)
    task = TradeTask(
        request_id=request_id, platform=platform, login=login, kind=kind, payload=payload,
        fingerprint=digest, secret=secret, preview=preview or {},
        comment_tag=kinds.comment_tag(request_id) if kinds.spec_for(kind).tagged else "",
        state=TaskState.PENDING_APPROVAL if approval else TaskState.QUEUED,
        queued_at=None if approval else timezone.now(),
        requested_by=actor.user, requested_ip=actor.ip,
    )
    if kind in BATCHED_KINDS:  # needs no live read: decided once, here, for every attempt
        task.wire = wire.money_wire(task)
    # The row, its audit event and the enqueue (on commit) are one transaction that starts with
    # the INSERT, so a duplicate key rolls back everything without a savepoint around it. A
    # resubmitted form is that duplicate key: no read first, it is rare.
    try:
        if connection.vendor == "postgresql":
            _insert_with_event(task, audit.AuditEvent(
                actor=actor.user, ip_address=actor.ip or None, action=f"trade_task.{kind}",
                platform=platform, target=target_of(task), before=audit.scrub(preview or {}),
                after=audit.scrub({"kind": kind, **payload}), outcome=task.state,
                detail="submitted", request_id=request_id,
            ), approval_above=abs(Decimal(payload["amount"])) if decided_by_insert else None)
            if task.state == TaskState.QUEUED:
                dispatch.execute_after_commit(task)
        else:
            with transaction.atomic():
                task.save()
                audit_task(task, f"trade_task.{kind}", task.state, actor=actor,
                           before=preview or {}, detail="submitted")
                if task.state == TaskState.QUEUED:
                    dispatch.execute_after_commit(task)
    except IntegrityError:
        # a double click racing this one created it first (or, once in 2**48, a tag collision)
        existing = TradeTask.objects.filter(request_id=request_id).first()
        if existing is None:
            raise OperationRefused(
                "This request could not be registered; reload the form and try again."
            ) from None
        return Submission(existing, False)
    return Submission(task, True)


def _insert_with_event(task: TradeTask, event: AuditEvent, *,
                       approval_above: Decimal | None = None) -> None:
    """PostgreSQL: the task's row and its audit row in one statement, which is a transaction on
    its own: one round trip instead of BEGIN, two INSERTs and COMMIT (and, for a money task, the
    policy read before them). A submit is the latency a dealer waits for, and on a busy
    database each round trip costs a scheduling delay.

    With ``approval_above`` (a money task's absolute amount) the statement decides the task's
    state, and the audit row's outcome, by :func:`needs_approval`'s money rule against the
    platform's policy row as it is at that moment; ``task.state`` is updated from the answer.
    """
    task_overrides: dict[str, str] = {}
    event_overrides: dict[str, str] = {}
    policy_cte, policy_params = "", []
    if approval_above is not None:
        threshold = OperationPolicy._meta.get_field("approval_threshold")
        policy_table = connection.ops.quote_name(OperationPolicy._meta.db_table)
        policy_cte = ("policy AS (SELECT COALESCE((SELECT approval_threshold FROM "  # noqa: S608
                      f"{policy_table} WHERE platform_id = %s), %s) < %s AS approval, "
                      "%s::text AS pending), ")
        policy_params = [task.platform_id, threshold.get_default(), approval_above,
                         TaskState.PENDING_APPROVAL.value]
        task_overrides = {
            "state": ("CASE WHEN (SELECT approval FROM policy) THEN (SELECT pending FROM policy) "
                      "ELSE r.state END"),
            "queued_at": "CASE WHEN (SELECT approval FROM policy) THEN NULL ELSE r.queued_at END",
        }
        event_overrides = {"outcome": "(SELECT state FROM new_task)"}
    task_sql, task_row = insert_select(TradeTask, insert_values(task), task_overrides)
    event_sql, event_row = insert_select(AuditEvent, insert_values(event), event_overrides)
    pk = connection.ops.quote_name(str(TradeTask._meta.pk.column))
    # only generated SQL is formatted in; every value is a parameter
    sql = (f"WITH {policy_cte}new_task AS ({task_sql} RETURNING {pk}, state) "  # noqa: S608
           f"{event_sql} RETURNING (SELECT {pk} FROM new_task), (SELECT state FROM new_task)")
    # inside a caller's transaction a savepoint keeps a duplicate key from aborting it
    in_caller_transaction = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with in_caller_transaction:
        task.pk, task.state = fetch_one_prepared(sql, [*policy_params, task_row, event_row])
    if task.state == TaskState.PENDING_APPROVAL:
        task.queued_at = None
    task._state.adding, task._state.db = False, connection.alias
