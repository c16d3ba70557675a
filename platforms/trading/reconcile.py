"""Learning the outcome of a ``sent`` / ``outcome_unknown`` task: read the platform first,
and resend the identical body under the same key only when the read shows it was not applied.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import msgspec
from django.db.models import F
from django.utils import timezone

from platforms.audit import Actor
from platforms.client import ManagerApiError, NotFound
from platforms.connections import client_for
from platforms.timezones import utc_to_server
from platforms.trading import dispatch, kinds
from platforms.trading.approvals import ensure_allowed
from platforms.trading.errors import NOT_SENT_ERRORS, OperationRefused, staff_message
from platforms.trading.hedges import execute_hedge
from platforms.trading.models import TaskKind, TaskState, TradeTask
from platforms.trading.outcomes import OPEN_STATES, RECONCILE_DELAYS, confirm, send, transition
from platforms.trading.trail import audit_task

#: the server keeps a key's result ~1 minute after an answer that arrived, 1 hour after an
#: OutcomeUnknown: an operation that cannot be found by reading is resent only inside this
KEY_RETENTION = timedelta(minutes=50)
#: a history read starts this long before the task was sent (or created)
HISTORY_SLACK = timedelta(minutes=10)


def _history_since(task: TradeTask) -> datetime:
    """On the server's clock, as the history read wants it (``utc_offset_minutes``)."""
    return utc_to_server((task.sent_at or task.created_at) - HISTORY_SLACK,
                         task.platform.utc_offset_minutes)


def probe(task: TradeTask, client) -> dict | None:
    """Read the platform: the answer the task would have had if it was applied, else None."""
    wire = task.wire or {}
    body = wire.get("body") or {}
    K = TaskKind
    if task.comment_tag:
        tag = task.comment_tag
        rows = list(client.mt4.trades_user_history(task.login, from_time=_history_since(task)))
        if task.kind in (K.OPEN_ORDER, K.PLACE_PENDING):
            user = client.mt4.user_record_get(task.login)
            rows += client.mt4.trades_get_by_login(task.login, user.group)
        for row in rows:
            if (row.comment or "").split(" ", 1)[0] == tag:
                return {"order": row.order, "price": row.open_price}
        return None
    if task.kind in (K.MODIFY_ORDER, K.CLOSE_ORDER, K.DELETE_PENDING):
        try:
            trade = client.mt4.trade_record_get(int(task.payload["order"]))
        except NotFound:
            return {"order": int(task.payload["order"])} if task.kind != K.MODIFY_ORDER else None
        state = (trade.trade_record_state or "").lower()
        if task.kind == K.MODIFY_ORDER:
            same = (abs(trade.sl - body.get("sl", 0)) < 1e-9
                    and abs(trade.tp - body.get("tp", 0)) < 1e-9)
            return {"order": trade.order} if same else None
        if task.kind == K.DELETE_PENDING:
            return {"order": trade.order} if "deleted" in state else None
        return {"order": trade.order, "price": trade.close_price} if "closed" in state else None
    if wire.get("op") in ("user_record_patch", "mt5_user_record_patch"):
        if wire["op"] == "mt5_user_record_patch":
            record = msgspec_to_wire(client.mt5.user_get(task.login))
        else:
            record = msgspec_to_wire(client.mt4.user_record_request(task.login))
        ok = all(_same(record.get(k), v) for k, v in wire["body"].items())
        return {"login": task.login} if ok else None
    if wire.get("op") == "users_group_op":
        users = client.mt4.user_records_request(wire["logins"])
        command = wire["command"]
        for user in users:
            if ((command == "SetGroup" and user.group != wire["new_group"])
                    or (command == "Leverage" and user.leverage != wire["leverage"])
                    or (command == "Enable" and not user.enable_flags & kinds.ENABLED_BIT)
                    or (command == "Disable" and user.enable_flags & kinds.ENABLED_BIT)):
                return None
        return {}
    return None  # create account, password: not readable; resend under the key decides


def msgspec_to_wire(record) -> dict:
    return msgspec.to_builtins(record)


def _same(actual, wanted) -> bool:
    if isinstance(wanted, str) and isinstance(actual, str) and "," in wanted + actual:
        def split(s):
            return {x.strip().lower() for x in s.split(",") if x.strip()}

        return split(actual) == split(wanted)
    if isinstance(wanted, float | int) and isinstance(actual, float | int):
        return abs(actual - wanted) < 1e-9
    return actual == wanted


def reconcile(task_id: int) -> str:
    """Learn the outcome of a ``sent`` / ``outcome_unknown`` task: read first, then resend the
    identical body under the same key only if the read shows it was not applied."""
    task = TradeTask.objects.select_related("platform", "requested_by").get(pk=task_id)
    if task.state not in OPEN_STATES:
        return task.state
    if task.kind in kinds.COVERAGE_KINDS:
        return execute_hedge(task)
    client = client_for(task.platform)
    try:
        found = probe(task, client)
    except ManagerApiError as exc:
        _reschedule(task, f"could not read the platform: {staff_message(exc)}")
        return task.state
    if found is not None:
        confirm(task, client, found, task.activity_id, "read")
        return task.state
    spec = kinds.spec_for(task.kind)
    unreadable = not spec.tagged and not spec.idempotent
    if unreadable and task.sent_at and timezone.now() - task.sent_at > KEY_RETENTION:
        _reschedule(task, "Cannot be verified by reading and the platform no longer holds the "
                          "answer for its key: check the account before acting.", manual=True)
        return task.state
    TradeTask.objects.filter(pk=task.pk).update(attempts=F("attempts") + 1)
    task.refresh_from_db(fields=["attempts"])
    if task.state == TaskState.SENT:
        transition(task, TaskState.OUTCOME_UNKNOWN, from_states=[TaskState.SENT])
    try:
        return send(task, client)
    except NOT_SENT_ERRORS as exc:
        _reschedule(task, staff_message(exc))
        return task.state


def _reschedule(task: TradeTask, message: str, *, manual: bool = False) -> None:
    checks = int(task.result.get("checks", 0)) + 1
    delay = RECONCILE_DELAYS[min(checks + task.attempts, len(RECONCILE_DELAYS) - 1)]
    result = {**task.result, "checks": checks}
    next_check = None if manual else timezone.now() + timedelta(seconds=delay)
    if transition(task, TaskState.OUTCOME_UNKNOWN, from_states=OPEN_STATES, message=message,
                  result=result, next_check_at=next_check) and not manual:
        dispatch.reconcile_after_commit(task.pk, delay)


def request_reconcile(task_id: int, *, actor: Actor) -> TradeTask:
    """Staff asks to check an ``outcome_unknown`` task now (the UI's reconcile button)."""
    task = TradeTask.objects.select_related("platform").get(pk=task_id)
    ensure_allowed(actor, task.platform, task.kind, login=task.login)
    if task.state not in OPEN_STATES:
        raise OperationRefused("Only a task whose outcome is unknown can be reconciled.")
    audit_task(task, "trade_task.reconcile", "requested", actor=actor)
    dispatch.reconcile_after_commit(task.pk, 0)
    return task
