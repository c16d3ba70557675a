"""What an attempt's answer means for a task: confirmed, rejected, or outcome unknown (then
reconciled later), each moved by a conditional UPDATE that only the first writer wins, and
recorded with its audit row in the same commit.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone

from platforms.client import ManagerApiError, OutcomeUnknown
from platforms.trading import dispatch, kinds, wire
from platforms.trading.errors import NOT_SENT_ERRORS, staff_message
from platforms.trading.models import TaskState, TradeTask
from platforms.trading.trail import audit_task

log = logging.getLogger(__name__)

#: a task's open states: sent, and its outcome not yet known
OPEN_STATES = (TaskState.SENT, TaskState.OUTCOME_UNKNOWN)
#: seconds to the next reconcile, by the number of attempts and checks made so far
RECONCILE_DELAYS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300)


def transition(task: TradeTask, state: str, *, from_states, **fields) -> bool:
    """Conditional UPDATE: only the first writer of a final state wins."""
    now = timezone.now()
    values = {"state": state, "updated_at": now, **fields}
    if state in (TaskState.CONFIRMED, TaskState.REJECTED, TaskState.FAILED):
        values.setdefault("finished_at", now)
        values["secret"] = ""
        values["next_check_at"] = None
    done = TradeTask.objects.filter(pk=task.pk, state__in=from_states).update(**values)
    if done:
        for name, value in values.items():
            setattr(task, name, value)
    return bool(done)


@dataclass
class _BalanceBatch:
    logins: set[int] = field(default_factory=set)
    users: dict[int, Any] = field(default_factory=dict)
    done: bool = False


class BalanceReads:
    """The balance read after a confirmed money task, shared by the tasks that confirm together.

    The write's answer does not carry the new balance, so each money task reads the account
    once it is confirmed. In a thread-pool worker many tasks confirm at once: instead of one
    read each, one ``UserRecordsRequest`` per platform is in flight at a time and the tasks
    that confirm meanwhile join the next one (group commit). A lone task reads at once, so
    nothing waits that would not have waited anyway. Every read starts after the answers of
    the tasks it serves, so the balance it reports includes their operations.
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._open: dict[int, _BalanceBatch] = {}  # per platform: the batch taking logins
        self._busy: set[int] = set()  # platforms with a read in flight

    def user(self, platform_pk: int, client, login: int):
        """The account record read after this call began, or None when the read failed."""
        with self._changed:
            batch = self._open.setdefault(platform_pk, _BalanceBatch())
            batch.logins.add(login)
            while not batch.done:
                if platform_pk not in self._busy and self._open.get(platform_pk) is batch:
                    del self._open[platform_pk]
                    self._busy.add(platform_pk)
                    break
                self._changed.wait()
            else:
                return batch.users.get(login)
        users: dict[int, Any] = {}
        try:
            users = {u.login: u for u in client.mt4.user_records_request(sorted(batch.logins))}
        except ManagerApiError as exc:
            log.warning("balance read after confirmation failed: %s", exc.code)
        finally:
            with self._changed:
                batch.users, batch.done = users, True
                self._busy.discard(platform_pk)
                self._changed.notify_all()
        return users.get(login)


balance_reads = BalanceReads()


def _balance_after(task: TradeTask, client) -> Decimal | None:
    if task.kind not in kinds.MONEY_KINDS or task.login is None:
        return None
    return balance_of(task, balance_reads.user(task.platform_id, client, task.login))


def balance_of(task: TradeTask, user) -> Decimal | None:
    """The balance (or credit, for credit kinds) a money task reports, from the account read."""
    if user is None:
        return None
    value = user.credit if kinds.MONEY_KINDS[task.kind][1] == "Credit" else user.balance
    return Decimal(str(value)).quantize(Decimal("0.01"))


def confirm(task: TradeTask, client, answer: dict, activity: str | None, how: str) -> None:
    """``confirmed`` from an open state, with the balance read after it (money kinds) and its
    audit row; ``how`` says what settled it (answer, resend, read, replay, event)."""
    new_balance = _balance_after(task, client)
    with transaction.atomic():  # one commit for the outcome and its audit row
        if _mark_confirmed(task, answer, activity, how, new_balance):
            audit_task(task, f"trade_task.{task.kind}", "confirmed", before=task.preview,
                       after=confirmed_after(task),
                       detail=f"attempt {task.attempts}, resolved by {how}")


def _mark_confirmed(task: TradeTask, answer: dict, activity: str | None, how: str,
                    new_balance: Decimal | None) -> bool:
    result = {**answer, "resolved_by": how}
    if new_balance is not None:
        result["new_balance"] = str(new_balance)
    return transition(
        task, TaskState.CONFIRMED, from_states=OPEN_STATES, result=result,
        ticket=answer.get("order") or answer.get("ticket") or None,
        new_balance=new_balance, activity_id=activity or "", resolved_by=how,
        message="", error_code="", manager_code="",
    )


def confirmed_after(task: TradeTask) -> dict:
    """The audit row's ``after`` for a confirmed task: what was asked and what was answered."""
    return {"kind": task.kind, **task.payload, **task.result}


def reject(task: TradeTask, exc: ManagerApiError) -> None:
    """The platform refused: ``rejected`` from an open state, with its audit row."""
    message = staff_message(exc)
    with transaction.atomic():
        if transition(
            task, TaskState.REJECTED, from_states=OPEN_STATES, error_code=exc.code,
            manager_code=str(exc.manager_code or ""), activity_id=exc.activity_id or "",
            message=message, result={"error": exc.code, "manager_code": exc.manager_code},
        ):
            audit_task(task, f"trade_task.{task.kind}", "rejected", before=task.preview,
                       detail=f"{exc.code} {exc.manager_code or ''}: {message}")


def outcome_unknown(task: TradeTask, exc: Exception) -> None:
    """The answer was lost: ``outcome_unknown``, and a reconcile queued when that commits."""
    checks = task.attempts + int(task.result.get("checks", 0))
    delay = RECONCILE_DELAYS[min(checks, len(RECONCILE_DELAYS) - 1)]
    code = getattr(exc, "code", type(exc).__name__)
    message = staff_message(exc) if isinstance(exc, ManagerApiError) else str(exc)[:500]
    with transaction.atomic():  # the reconcile is queued when the state is committed
        if transition(
            task, TaskState.OUTCOME_UNKNOWN, from_states=OPEN_STATES, error_code=code,
            activity_id=getattr(exc, "activity_id", None) or "", message=message,
            next_check_at=timezone.now() + timedelta(seconds=delay),
        ):
            audit_task(task, f"trade_task.{task.kind}", "outcome_unknown", before=task.preview,
                       detail=f"attempt {task.attempts}: {code}")
            dispatch.reconcile_after_commit(task.pk, delay)


def send(task: TradeTask, client) -> str:
    """One attempt under the task's key; records the outcome. Re-raises 'nothing sent'."""
    try:
        answer, activity = wire.call(task, client, task.wire)
    except Exception as exc:
        if not record_failure(task, exc):
            raise
    else:
        confirm(task, client, answer, activity, "answer" if task.attempts <= 1 else "resend")
    return task.state


def record_failure(task: TradeTask, exc: Exception) -> bool:
    """Record what a failed attempt means. False for 'nothing sent' (the caller puts the task
    back) and for errors that are not the platform's answer (the task stays ``sent`` for the
    sweeper's read-first reconcile)."""
    if isinstance(exc, OutcomeUnknown):  # incl. dropped connections and non-WebAPI answers
        outcome_unknown(task, exc)
    elif isinstance(exc, NOT_SENT_ERRORS) or not isinstance(exc, ManagerApiError):
        return False
    elif exc.code in ("Internal", "InvalidResponse", "TransportError"):
        outcome_unknown(task, exc)
    else:
        reject(task, exc)
    return True
