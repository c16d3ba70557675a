"""Writes of the trading desk: submit, approve, execute, reconcile and sweep trade tasks.

The rules that make an operation happen exactly once:

1. **One task per request id.** The form carries a UUID generated when it was rendered; the
   same id with the same parameters returns the existing task, with other parameters it is
   refused (:class:`IdempotencyConflict`). The id is the ``Idempotency-Key`` of every attempt.
2. **Claim before sending.** A worker moves the task ``queued → sent`` with a conditional
   UPDATE (committed) before the call, so two workers never both send it and a worker that
   dies mid-call leaves a ``sent`` task for the sweeper.
3. **Never resend blindly.** After a lost answer (``OutcomeUnknown``, a dropped connection, a
   non-WebAPI answer, a server fault) the task is ``outcome_unknown``. Reconciling *reads the
   platform first* — the balance record or order whose comment carries the task's tag
   ``#<12 hex digits of the request id>``, the order record, the user record — and confirms the
   task from what it finds. Only when the read shows it was not applied is the *identical*
   body resent under the *same* key: the server replays a stored result, answers
   ``in-progress`` while the first attempt still runs, or executes it once.
4. **Nothing sent, nothing lost.** ``Busy``, ``ConnectionNotMade``, an open circuit and
   ``NoConnect`` mean the platform never ran the write: the task goes back to ``queued``
   and Celery retries it with backoff; when retries run out it is ``failed``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import nullcontext, suppress
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from queue import Empty, SimpleQueue
from typing import Any, cast
from uuid import UUID

import psycopg
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction
from django.db.models import F, Model
from django.utils import timezone

from platforms import audit
from platforms.client import (
    Busy,
    CircuitOpen,
    ConnectionNotMade,
    ManagerApiError,
    NoConnect,
    NotFound,
    OutcomeUnknown,
)
from platforms.connections import client_for
from platforms.models import AuditEvent, TradePlatform
from platforms.trading import operations as ops
from platforms.trading.errors import staff_message
from platforms.trading.models import (
    ApprovalDecision,
    OperationPolicy,
    TaskApproval,
    TaskKind,
    TaskState,
    TradeTask,
)

log = logging.getLogger(__name__)

#: errors after which the platform certainly did not run the write
NOT_SENT_ERRORS = (Busy, ConnectionNotMade, CircuitOpen, NoConnect)
#: a ``sent`` task older than this has lost its worker (deadline 5-60 s + HTTP slack 30 s)
STALE_SENT = timedelta(seconds=120)
#: a ``queued`` task older than this has lost its queue message
STALE_QUEUED = timedelta(seconds=300)
#: the server keeps a key's result ~1 minute after an answer that arrived, 1 hour after an
#: OutcomeUnknown: an operation that cannot be found by reading is resent only inside this
KEY_RETENTION = timedelta(minutes=50)
RECONCILE_DELAYS = (0.5, 1, 2, 5, 10, 30, 60, 120, 300)
HISTORY_SLACK = timedelta(minutes=10)
#: kinds whose wire body is decided at submit (no live read) and that a drain sends in batches
BATCHED_KINDS = tuple(ops.MONEY_KINDS)
#: tasks one drain claims at once (one claim UPDATE, one balance read, one commit per batch)
DRAIN_BATCH = 50
#: how long "a drain message is pending" is remembered. Short: while a mark outlives a lost
#: message, new submits of that platform publish nothing (the next submit after it, or the
#: sweeper for ``queued`` tasks, sends them); a mark outliving a slow queue only costs an extra
#: message that finds less to do.
DRAIN_PENDING_SECONDS = 2
#: a platform's drain slot (see :func:`drain_exclusively`) lapses this long after its holder's
#: last batch began, so a killed worker holds nobody up for longer
DRAIN_LOCK_SECONDS = 15
#: how soon a drain message that found the platform's drain busy comes back
DRAIN_BUSY_RETRY_SECONDS = 0.2


class IdempotencyConflict(Exception):
    """The request id was already used for a different operation."""

    def __init__(self, task: TradeTask) -> None:
        self.task = task
        super().__init__(
            f"Request {task.request_id} was already used for another operation "
            f"({task.get_kind_display()} on {task.login or 'several accounts'}); "
            "reload the form to start a new request."
        )


class OperationRefused(Exception):
    """A rule of the desk refuses the action (self-approval, wrong state, not available)."""


@dataclass
class Actor:
    """Who acts, for the audit trail: a request when there is one, else the task's requester.

    ``platforms.audit.record`` reads ``request.user`` and ``request.META['REMOTE_ADDR']``;
    a worker has no request, so it records the attempt under the staff member who asked.
    """

    user: Any
    ip: str | None = None
    META: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.META = {"REMOTE_ADDR": self.ip} if self.ip else {}

    @classmethod
    def of(cls, request) -> Actor:
        return cls(request.user, audit.client_ip(request))


# ------------------------------------------------------------------------------ helpers


def policy_for(platform: TradePlatform) -> OperationPolicy:
    policy = OperationPolicy.objects.filter(platform=platform).first()
    return policy or OperationPolicy(platform=platform)


def fingerprint(platform: TradePlatform, login: int | None, kind: str, payload: dict) -> str:
    canonical = json.dumps(
        {"platform": platform.pk, "login": login, "kind": kind, "payload": payload},
        sort_keys=True,
        separators=(",", ":"),
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def needs_approval(platform: TradePlatform, kind: str, payload: dict) -> bool:
    spec = ops.spec_for(kind)
    policy = policy_for(platform)
    if spec.bulk:
        return policy.bulk_requires_approval
    if spec.category == ops.MONEY:
        return abs(Decimal(payload["amount"])) > policy.approval_threshold
    return False


def ensure_allowed(actor: Actor, platform: TradePlatform, kind: str, *, login=None) -> None:
    """Refuse (and audit the refusal) unless the user holds the operation's permission."""
    spec = ops.spec_for(kind)
    if actor.user.has_perm(f"platforms.{spec.permission}"):
        return
    audit.record(
        request=actor, action=f"trade_task.{kind}", platform=platform,
        target=str(login or ""), outcome="forbidden",
        detail=f"missing permission {spec.permission}",
    )
    raise PermissionDenied(f"You need the '{spec.permission}' permission for this operation.")


def _target(task: TradeTask) -> str:
    if task.login:
        return str(task.login)
    logins = task.payload.get("logins") or []
    return ",".join(str(x) for x in logins[:20]) + ("…" if len(logins) > 20 else "")


def _audit(task: TradeTask, action: str, outcome: str, *, actor: Actor | None = None,
           before=None, after=None, detail: str = "") -> None:
    audit.record(
        request=actor or Actor(task.requested_by, task.requested_ip),
        action=action,
        platform=task.platform,
        target=_target(task),
        before=before or {},
        after=after if after is not None else {"kind": task.kind, **task.payload},
        outcome=outcome,
        detail=detail,
        request_id=task.request_id,
    )


def _enqueue_execute(task: TradeTask) -> None:
    """Queue the task's execution when the transaction commits: a money task through its
    platform's drain (one message for whatever is queued), any other kind one message each."""
    if task.kind in BATCHED_KINDS and task.wire is not None:
        platform_pk = task.platform_id
        transaction.on_commit(lambda: request_drain(platform_pk))
        return
    from platforms.trading.tasks import execute_trade_task

    task_id = task.pk
    transaction.on_commit(lambda: execute_trade_task.delay(task_id))


def _drain_key(platform_pk: int) -> str:
    return f"trading:drain-pending:{platform_pk}"


def request_drain(platform_pk: int) -> None:
    """Publish one ``drain_trade_tasks`` message for the platform unless one is pending.

    Called after the task's row is committed. The drain forgets the mark *before* it claims,
    so a task committed before this call is either seen by the pending drain or finds no mark
    and publishes its own: none waits for a drain that started before it existed. A mark whose
    message was lost expires after :data:`DRAIN_PENDING_SECONDS`.
    """
    from platforms.trading.tasks import drain_trade_tasks

    try:
        fresh = cache.add(_drain_key(platform_pk), 1, timeout=DRAIN_PENDING_SECONDS)
    except Exception:  # the cache is down: one message per task is still correct
        log.warning("drain mark unavailable; publishing a drain anyway", exc_info=True)
        fresh = True
    if fresh:
        drain_trade_tasks.delay(platform_pk)


def _enqueue_reconcile(task_id: int, countdown: float) -> None:
    from platforms.trading.tasks import reconcile_trade_task

    transaction.on_commit(
        lambda: reconcile_trade_task.apply_async((task_id,), countdown=countdown)
    )


# ------------------------------------------------------------------------------ submit


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
    if not ops.available_on(kind, platform.kind):
        raise OperationRefused(f"{TaskKind(kind).label} is not available for {platform.kind}.")
    digest = fingerprint(platform, login, kind, payload)
    submission = _create_or_get(actor, platform, kind, login, payload, request_id, digest,
                                secret, preview)
    if submission.task.fingerprint != digest:
        existing = submission.task
        audit.record(
            request=actor, action=f"trade_task.{kind}", platform=platform,
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
        comment_tag=ops.comment_tag(request_id) if ops.spec_for(kind).tagged else "",
        state=TaskState.PENDING_APPROVAL if approval else TaskState.QUEUED,
        queued_at=None if approval else timezone.now(),
        requested_by=actor.user, requested_ip=actor.ip,
    )
    if kind in BATCHED_KINDS:  # needs no live read: decided once, here, for every attempt
        task.wire = _money_wire(task)
    # The row, its audit event and the enqueue (on commit) are one transaction that starts with
    # the INSERT, so a duplicate key rolls back everything without a savepoint around it. A
    # resubmitted form is that duplicate key: no read first, it is rare.
    try:
        if connection.vendor == "postgresql":
            _insert_with_event(task, audit.AuditEvent(
                actor=actor.user, ip_address=actor.ip or None, action=f"trade_task.{kind}",
                platform=platform, target=_target(task), before=audit.scrub(preview or {}),
                after=audit.scrub({"kind": kind, **payload}), outcome=task.state,
                detail="submitted", request_id=request_id,
            ), approval_above=abs(Decimal(payload["amount"])) if decided_by_insert else None)
            if task.state == TaskState.QUEUED:
                _enqueue_execute(task)
        else:
            with transaction.atomic():
                task.save()
                _audit(task, f"trade_task.{kind}", task.state, actor=actor,
                       before=preview or {}, detail="submitted")
                if task.state == TaskState.QUEUED:
                    _enqueue_execute(task)
    except IntegrityError:
        # a double click racing this one created it first (or, once in 2**48, a tag collision)
        existing = TradeTask.objects.filter(request_id=request_id).first()
        if existing is None:
            raise OperationRefused(
                "This request could not be registered; reload the form and try again."
            ) from None
        return Submission(existing, False)
    return Submission(task, True)


@functools.cache
def _inserted_fields(model: type[Model]) -> tuple:
    meta = model._meta
    return tuple(f for f in meta.local_concrete_fields
                 if f is not meta.auto_field and not f.generated)


def _insert_values(obj: Model) -> dict[str, Any]:
    """Per column, the prepared value Django's ``save()`` would insert for a new ``obj``
    (``auto_now_add`` and the like filled in on ``obj``; secrets encrypted): what its insert
    compiler does per field, without building a query and a compiler for one row."""
    # the thread's own connection object: every attribute read through the ``connection``
    # proxy is a thread-local lookup, and preparing a row reads dozens
    wrapper = connections[DEFAULT_DB_ALIAS]
    return {f.column: f.get_db_prep_save(f.pre_save(obj, True), wrapper)
            for f in _inserted_fields(type(obj))}


def _json_value(value: Any) -> Any:
    """A prepared value as PostgreSQL reads it back from JSON (``jsonb_populate_record``)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    wrapped = getattr(value, "obj", _NOT_WRAPPED)  # psycopg's Json/Jsonb around a JSON value
    if wrapped is not _NOT_WRAPPED:
        return wrapped
    if isinstance(value, IPv4Address | IPv6Address):
        return str(value)
    raise TypeError(f"no JSON form for {type(value).__name__}")


_NOT_WRAPPED = object()


def _insert_select(model: type[Model], values: dict[str, Any],
                   overrides: dict[str, str]) -> tuple[str, str]:
    """``INSERT … SELECT`` of one row that travels as ONE JSON parameter, and that parameter.

    One parameter instead of one per column: psycopg composes client-side statements in
    Python, value by value. ``overrides`` replaces a column's value by an SQL expression
    (generated here, never from input)."""
    sql = _insert_select_sql(model, tuple(values), tuple(sorted(overrides.items())))
    return sql, json.dumps(values, default=_json_value)


@functools.cache
def _insert_select_sql(model: type[Model], columns: tuple[str, ...],
                       overrides: tuple[tuple[str, str], ...]) -> str:
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    expressions = dict(overrides)
    selected = ", ".join(expressions.get(column, f"r.{qn(column)}") for column in columns)
    # names from the models and generated expressions only; the row is the one parameter
    return (f"INSERT INTO {table} ({', '.join(qn(c) for c in columns)}) "  # noqa: S608
            f"SELECT {selected} FROM jsonb_populate_record(NULL::{table}, %s::jsonb) AS r")


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
    task_sql, task_row = _insert_select(TradeTask, _insert_values(task), task_overrides)
    event_sql, event_row = _insert_select(AuditEvent, _insert_values(event), event_overrides)
    pk = connection.ops.quote_name(str(TradeTask._meta.pk.column))
    # only generated SQL is formatted in; every value is a parameter
    sql = (f"WITH {policy_cte}new_task AS ({task_sql} RETURNING {pk}, state) "  # noqa: S608
           f"{event_sql} RETURNING (SELECT {pk} FROM new_task), (SELECT state FROM new_task)")
    # inside a caller's transaction a savepoint keeps a duplicate key from aborting it
    in_caller_transaction = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with in_caller_transaction:
        task.pk, task.state = _fetch_one_prepared(sql, [*policy_params, task_row, event_row])
    if task.state == TaskState.PENDING_APPROVAL:
        task.queued_at = None
    task._state.adding, task._state.db = False, connection.alias


def _fetch_one_prepared(sql: str, params: list) -> tuple:
    """PostgreSQL: the first row of a hot statement, run as a server-side prepared statement
    (``DATABASE_PREPARED_STATEMENTS``).

    Django binds parameters client-side and never prepares, so PostgreSQL parsed and planned
    submit's statement (two inserts and a policy read) on every call: about 40 % of the
    database's CPU per submit. Prepared once per connection, each later call only binds.
    Errors are Django's, as through ``connection.cursor()``. The statement returns a row.
    """
    if not settings.DATABASE_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cast(tuple, cursor.fetchone())
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cast(tuple, cursor.fetchone())


# ------------------------------------------------------------------------------ approvals


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
                _enqueue_execute(task)
            else:
                task.state, task.finished_at, task.secret = (TaskState.CANCELLED, timezone.now(),
                                                             "")
                task.message = f"Rejected by {actor.user.get_username()}" + (
                    f": {note}" if note else "")
                task.save(update_fields=["state", "finished_at", "secret", "message",
                                         "updated_at"])
            _audit(task, action, "approved" if approve else "rejected", actor=actor,
                   detail=note)
            return task
    _audit(task, action, "refused", actor=actor, detail=refusal)
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
            _audit(task, "trade_task.cancel", "cancelled", actor=actor)
            return task
    _audit(task, "trade_task.cancel", "refused", actor=actor)
    raise OperationRefused("Only an operation that has not been sent can be cancelled.")


# ------------------------------------------------------------------------------ wire bodies


def _money_wire(task: TradeTask) -> dict:
    """A balance / credit operation's call: a pure function of the payload and the tag."""
    p = task.payload
    _, command = ops.MONEY_KINDS[task.kind]
    body = {
        "tradeTransactionType": "BrBalance", "tradeCommand": command, "orderBy": task.login,
        "price": float(ops.signed_amount(task.kind, p)),
        "comment": ops.tagged_comment(task.comment_tag, p.get("comment", "")),
    }
    if p.get("expiration"):
        body["expiration"] = f"{p['expiration']}T23:59:59Z"
    return {"op": "trade_transaction", "body": body}


def _prepare_wire(task: TradeTask, client) -> dict:
    """The exact call to make, decided once (some kinds need a live read to build it)."""
    kind, p, login = task.kind, task.payload, task.login
    K = TaskKind
    if kind in ops.MONEY_KINDS:
        return _money_wire(task)
    if kind in (K.OPEN_ORDER, K.PLACE_PENDING):
        body = {
            "tradeTransactionType": "BrOpen" if kind == K.OPEN_ORDER else "PendingOpen",
            "tradeCommand": p["command"], "orderBy": login, "symbol": p["symbol"],
            "volume": ops.lots_to_volume(p["volume"]),
            "sl": float(p.get("sl") or 0), "tp": float(p.get("tp") or 0),
            "comment": ops.tagged_comment(task.comment_tag, p.get("comment", "")),
        }
        if kind == K.OPEN_ORDER:
            tick = client.mt4.tick_info_last(p["symbol"])
            body["price"] = tick.ask if p["command"] == "Buy" else tick.bid
        else:
            body["price"] = float(p["price"])
            if p.get("expiration"):
                body["expiration"] = f"{p['expiration']}T23:59:59Z"
        return {"op": "trade_transaction", "body": body}
    if kind == K.MODIFY_ORDER:
        trade = client.mt4.trade_record_get(int(p["order"]))
        body = {
            "tradeTransactionType": "BrModify", "order": int(p["order"]), "orderBy": login,
            "symbol": trade.symbol,
            "price": float(p["price"]) if p.get("price") else trade.open_price,
            "sl": float(p.get("sl") or 0), "tp": float(p.get("tp") or 0),
        }
        return {"op": "trade_transaction", "body": body}
    if kind in (K.CLOSE_ORDER, K.DELETE_PENDING):
        trade = client.mt4.trade_record_get(int(p["order"]))
        body = {
            "tradeTransactionType": "BrClose" if kind == K.CLOSE_ORDER else "BrDelete",
            "order": int(p["order"]), "orderBy": login, "symbol": trade.symbol,
            "volume": ops.lots_to_volume(p["volume"]) if p.get("volume") else trade.volume,
        }
        if kind == K.CLOSE_ORDER:
            tick = client.mt4.tick_info_last(trade.symbol)
            body["price"] = tick.bid if trade.trade_command == "Buy" else tick.ask
        return {"op": "trade_transaction", "body": body}
    if kind == K.CREATE_ACCOUNT:
        body = {k: v for k, v in p.items() if v not in (None, "")}
        body["leverage"] = int(body.get("leverage") or 0)
        return {"op": "user_record_new", "body": body}
    if kind == K.RESET_PASSWORD:
        return {"op": "user_password_set", "login": login, "investor": bool(p.get("investor"))}
    if kind in ops.BULK_COMMANDS:
        return {"op": "users_group_op", "command": ops.BULK_COMMANDS[kind],
                "logins": [int(x) for x in p["logins"]], "new_group": p.get("group"),
                "leverage": int(p.get("leverage") or 0)}
    changes = _account_changes(task, client)
    op = "mt5_user_record_patch" if task.platform.kind == "MT5" else "user_record_patch"
    return {"op": op, "login": login, "body": changes}


def _account_changes(task: TradeTask, client) -> dict:
    kind, p = task.kind, task.payload
    K = TaskKind
    mt5 = task.platform.kind == "MT5"
    if kind == K.EDIT_PROFILE:
        names = ops.MT5_PROFILE_FIELDS if mt5 else {f: f for f in ops.PROFILE_FIELDS}
        return {names[k]: v for k, v in p.items() if k in names}
    if kind == K.CHANGE_GROUP:
        return {"group": p["group"]}
    if kind == K.CHANGE_LEVERAGE:
        return {"leverage": int(p["leverage"])}
    if mt5:
        user = client.mt5.user_get(task.login)
        rights = {r.strip() for r in (user.rights or "").split(",") if r.strip() and r != "None"}
        flag = "Enabled" if kind in (K.ENABLE, K.DISABLE) else "Readonly"
        (rights.add if kind in (K.ENABLE, K.READONLY_ON) else rights.discard)(flag)
        return {"rights": ", ".join(sorted(rights)) or "None"}
    user = client.mt4.user_record_request(task.login)
    bit = ops.ENABLED_BIT if kind in (K.ENABLE, K.DISABLE) else ops.READONLY_BIT
    on = kind in (K.ENABLE, K.READONLY_ON)
    return {"enableFlags": (user.enable_flags | bit) if on else (user.enable_flags & ~bit)}


def _call(task: TradeTask, client, wire: dict) -> tuple[dict, str | None]:
    """Send ``wire`` under the task's key; the answer as a small dict, and the activity id."""
    key = str(task.request_id)
    op = wire["op"]
    if op == "trade_transaction":
        res = client.mt4.trade_transaction(wire["body"], idempotency_key=key)
        return {"order": res.data.order, "price": res.data.price}, res.activity_id
    if op == "user_record_patch":
        res = client.mt4.user_record_patch(wire["login"], wire["body"], idempotency_key=key)
        return {"login": res.data.login}, res.activity_id
    if op == "mt5_user_record_patch":
        res = client.mt5.user_record_patch(wire["login"], wire["body"], idempotency_key=key)
        return {"login": res.data.login}, res.activity_id
    if op == "user_record_new":
        res = client.mt4.user_record_new(wire["body"], idempotency_key=key)
        return {"login": res.data.login}, res.activity_id
    if op == "user_password_set":
        if not task.secret:
            raise OperationRefused("The new password is no longer held; submit a new reset.")
        res = client.mt4.user_password_set(
            wire["login"], task.secret, change_investor=wire["investor"], idempotency_key=key
        )
        return {}, res.activity_id
    if op == "users_group_op":
        res = client.mt4.users_group_op(
            wire["command"], wire["logins"], new_group=wire["new_group"],
            leverage=wire["leverage"], idempotency_key=key,
        )
        return {}, res.activity_id
    raise OperationRefused(f"unknown wire op {op}")


# ------------------------------------------------------------------------------ outcomes


def _transition(task: TradeTask, state: str, *, from_states, **fields) -> bool:
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


OPEN_STATES = (TaskState.SENT, TaskState.OUTCOME_UNKNOWN)


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
    if task.kind not in ops.MONEY_KINDS or task.login is None:
        return None
    return _balance_of(task, balance_reads.user(task.platform_id, client, task.login))


def _balance_of(task: TradeTask, user) -> Decimal | None:
    """The balance (or credit, for credit kinds) a money task reports, from the account read."""
    if user is None:
        return None
    value = user.credit if ops.MONEY_KINDS[task.kind][1] == "Credit" else user.balance
    return Decimal(str(value)).quantize(Decimal("0.01"))


def _confirm(task: TradeTask, client, answer: dict, activity: str | None, how: str) -> None:
    new_balance = _balance_after(task, client)
    with transaction.atomic():  # one commit for the outcome and its audit row
        if _mark_confirmed(task, answer, activity, how, new_balance):
            _audit(task, f"trade_task.{task.kind}", "confirmed", before=task.preview,
                   after=_confirmed_after(task),
                   detail=f"attempt {task.attempts}, resolved by {how}")


def _mark_confirmed(task: TradeTask, answer: dict, activity: str | None, how: str,
                    new_balance: Decimal | None) -> bool:
    result = {**answer, "resolved_by": how}
    if new_balance is not None:
        result["new_balance"] = str(new_balance)
    return _transition(
        task, TaskState.CONFIRMED, from_states=OPEN_STATES, result=result,
        ticket=answer.get("order") or answer.get("ticket") or None,
        new_balance=new_balance, activity_id=activity or "", resolved_by=how,
        message="", error_code="", manager_code="",
    )


def _confirmed_after(task: TradeTask) -> dict:
    return {"kind": task.kind, **task.payload, **task.result}


def _outcome_event(task: TradeTask, outcome: str, *, before: dict, after: dict,
                   detail: str) -> AuditEvent:
    """The audit row ``_audit`` writes for a worker-side outcome, unsaved (for a bulk insert):
    recorded under the requester and their IP, as every worker-side attempt is."""
    return AuditEvent(
        actor_id=task.requested_by_id, ip_address=task.requested_ip or None,
        action=f"trade_task.{task.kind}", platform_id=task.platform_id, target=_target(task),
        before=audit.scrub(before or {}), after=audit.scrub(after), outcome=outcome,
        detail=detail, request_id=task.request_id,
    )


def _reject(task: TradeTask, exc: ManagerApiError) -> None:
    message = staff_message(exc)
    with transaction.atomic():
        if _transition(
            task, TaskState.REJECTED, from_states=OPEN_STATES, error_code=exc.code,
            manager_code=str(exc.manager_code or ""), activity_id=exc.activity_id or "",
            message=message, result={"error": exc.code, "manager_code": exc.manager_code},
        ):
            _audit(task, f"trade_task.{task.kind}", "rejected", before=task.preview,
                   detail=f"{exc.code} {exc.manager_code or ''}: {message}")


def _unknown(task: TradeTask, exc: Exception) -> None:
    checks = task.attempts + int(task.result.get("checks", 0))
    delay = RECONCILE_DELAYS[min(checks, len(RECONCILE_DELAYS) - 1)]
    code = getattr(exc, "code", type(exc).__name__)
    message = staff_message(exc) if isinstance(exc, ManagerApiError) else str(exc)[:500]
    with transaction.atomic():  # the reconcile is queued when the state is committed
        if _transition(
            task, TaskState.OUTCOME_UNKNOWN, from_states=OPEN_STATES, error_code=code,
            activity_id=getattr(exc, "activity_id", None) or "", message=message,
            next_check_at=timezone.now() + timedelta(seconds=delay),
        ):
            _audit(task, f"trade_task.{task.kind}", "outcome_unknown", before=task.preview,
                   detail=f"attempt {task.attempts}: {code}")
            _enqueue_reconcile(task.pk, delay)


def _send(task: TradeTask, client) -> str:
    """One attempt under the task's key; records the outcome. Re-raises 'nothing sent'."""
    try:
        answer, activity = _call(task, client, task.wire)
    except Exception as exc:
        if not _record_failure(task, exc):
            raise
    else:
        _confirm(task, client, answer, activity, "answer" if task.attempts <= 1 else "resend")
    return task.state


def _record_failure(task: TradeTask, exc: Exception) -> bool:
    """Record what a failed attempt means. False for 'nothing sent' (the caller puts the task
    back) and for errors that are not the platform's answer (the task stays ``sent`` for the
    sweeper's read-first reconcile)."""
    if isinstance(exc, OutcomeUnknown):  # incl. dropped connections and non-WebAPI answers
        _unknown(task, exc)
    elif isinstance(exc, NOT_SENT_ERRORS) or not isinstance(exc, ManagerApiError):
        return False
    elif exc.code in ("Internal", "InvalidResponse", "TransportError"):
        _unknown(task, exc)
    else:
        _reject(task, exc)
    return True


def execute(task_id: int) -> str:
    """Send a queued task once (the Celery task's body). Returns the state it reached.

    Raises one of :data:`NOT_SENT_ERRORS` after putting the task back to ``queued`` so that
    Celery retries it; a task that is already ``sent`` is reconciled instead of resent.
    """
    task = TradeTask.objects.select_related("platform", "requested_by").get(pk=task_id)
    if task.kind in ops.COVERAGE_KINDS:
        return _execute_hedge(task)
    if task.state in OPEN_STATES:
        return reconcile(task_id)
    if task.state != TaskState.QUEUED:
        return task.state
    client = client_for(task.platform)
    claim: dict[str, Any] = {}
    if task.wire is None:
        try:
            claim["wire"] = _prepare_wire(task, client)
        except NOT_SENT_ERRORS:
            raise
        except ManagerApiError as exc:  # e.g. the order no longer exists
            _transition(task, TaskState.SENT, from_states=[TaskState.QUEUED])
            _reject(task, exc)
            return task.state
    # The state guard makes the claim exclusive, so attempts can be counted here, and the wire
    # body is stored by the same UPDATE: only the worker that sends decides it, and every later
    # attempt (a retry after "nothing sent", a reconcile) reuses the stored body.
    if not _transition(task, TaskState.SENT, from_states=[TaskState.QUEUED],
                       sent_at=timezone.now(), attempts=task.attempts + 1, **claim):
        return TradeTask.objects.get(pk=task_id).state  # another worker claimed it
    try:
        return _send(task, client)
    except NOT_SENT_ERRORS as exc:
        _transition(task, TaskState.QUEUED, from_states=[TaskState.SENT],
                    error_code=exc.code, message=staff_message(exc))
        raise


# ------------------------------------------------------------------------------ drain


_send_pool: ThreadPoolExecutor | None = None
_send_pool_lock = threading.Lock()


def _sender() -> ThreadPoolExecutor:
    """The process's threads for a drain's calls (``TRADING_DRAIN_SENDERS``)."""
    global _send_pool
    with _send_pool_lock:
        if _send_pool is None:
            _send_pool = ThreadPoolExecutor(settings.TRADING_DRAIN_SENDERS,
                                            thread_name_prefix="trade-send")
        return _send_pool


def _claim_batch(platform_pk: int, limit: int) -> list[TradeTask]:
    """Claim up to ``limit`` queued, never-attempted money tasks of the platform: ``queued →
    sent`` (attempt 1) in one conditional UPDATE, committed before anything is sent; returns
    the claimed tasks as they now are, in id order.

    Exactly the guard of the single claim, for many rows: the state condition is re-checked
    per row by the UPDATE itself, so two drains (or a drain and ``execute``) never both claim
    a task; on PostgreSQL ``SKIP LOCKED`` lets concurrent drains take different rows instead
    of waiting on each other. Tasks that were put back after "nothing sent" (attempts > 0)
    are left to their own retrying message.
    """
    table = connection.ops.quote_name(TradeTask._meta.db_table)
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    skip_locked = (" FOR UPDATE SKIP LOCKED"
                   if connection.features.has_select_for_update_skip_locked else "")
    kinds = ", ".join(["%s"] * len(BATCHED_KINDS))
    # the model's own table name is the only thing formatted in; every value is a parameter
    # the chosen ids are materialized first: as ``WHERE id IN (subquery)`` the planner may
    # re-run a LIMIT … SKIP LOCKED subquery per row and claim several batches at once
    materialized = " MATERIALIZED" if connection.vendor == "postgresql" else ""
    sql = (
        f"WITH chosen AS{materialized} (SELECT id FROM {table} WHERE platform_id = %s"  # noqa: S608
        f" AND state = %s AND attempts = 0 AND wire IS NOT NULL AND kind IN ({kinds})"
        f" ORDER BY id LIMIT %s{skip_locked})"
        f" UPDATE {table} SET state = %s, sent_at = %s, updated_at = %s, attempts = attempts + 1"
        f" WHERE id IN (SELECT id FROM chosen) AND state = %s RETURNING *"
    )
    params = [platform_pk, TaskState.QUEUED, *BATCHED_KINDS, limit, TaskState.SENT, now, now,
              TaskState.QUEUED]
    # the claimed rows come back whole (no second query); autocommit: committed on return
    return sorted(TradeTask.objects.raw(sql, params), key=lambda task: task.pk)


def _drain_lock_key(platform_pk: int, slot: int) -> str:
    return f"trading:drain-lock:{platform_pk}:{slot}"


#: platforms this process is draining now (its drains run on the worker pool's threads)
_draining_here: set[int] = set()
_draining_here_lock = threading.Lock()


def drain_exclusively(platform_pk: int) -> dict[str, int]:
    """``drain_trade_tasks``' body: :func:`drain`, in one of the platform's drain slots.

    Concurrent drains are safe (each task is claimed by a conditional UPDATE) but wasteful
    beyond one per worker process: every commit during a drain publishes a message, and each
    of those would drain a batch of one or two with its own balance read and commit, its
    threads contending for the GIL with the running drain's. So a platform is drained by at
    most ``TRADING_DRAINS_PER_PLATFORM`` drains at once (slots: locks in the shared cache), and
    by at most one per process: a second drain in the same process only shares its core, while
    one in another worker process doubles what the platform's money flow can use. A message
    that finds no slot, or this process already draining the platform, leaves the pending mark
    alone (so submits do not publish more) and comes back after
    :data:`DRAIN_BUSY_RETRY_SECONDS`, when any worker may take it: a task committed as the
    running drains finish is drained then, never left behind. The slots only save work: when
    the cache is down the drain runs anyway.
    """
    with _draining_here_lock:
        if platform_pk in _draining_here:
            return _come_back_later(platform_pk)
        _draining_here.add(platform_pk)
    try:
        return _drain_in_a_slot(platform_pk)
    finally:
        with _draining_here_lock:
            _draining_here.discard(platform_pk)


def _drain_in_a_slot(platform_pk: int) -> dict[str, int]:
    try:
        key = _take_drain_slot(platform_pk)
    except Exception:
        log.warning("drain lock unavailable; draining without it", exc_info=True)
        return drain(platform_pk)
    if key is None:
        return _come_back_later(platform_pk)
    try:
        return drain(platform_pk, lock_key=key)
    finally:
        try:
            cache.delete(key)
        except Exception:  # it lapses on its own
            log.warning("could not release the drain lock", exc_info=True)


def _take_drain_slot(platform_pk: int) -> str | None:
    """The lock key of a free drain slot of the platform, now taken; None when all are busy."""
    for slot in range(settings.TRADING_DRAINS_PER_PLATFORM):
        key = _drain_lock_key(platform_pk, slot)
        if cache.add(key, 1, timeout=DRAIN_LOCK_SECONDS):
            return key
    return None


def _come_back_later(platform_pk: int) -> dict[str, int]:
    from platforms.trading.tasks import drain_trade_tasks

    # this message stays the pending one: its mark must not lapse while it waits, or each
    # submit after that publishes another message that waits alongside it
    with suppress(Exception):
        cache.touch(_drain_key(platform_pk), DRAIN_PENDING_SECONDS)
    drain_trade_tasks.apply_async((platform_pk,), countdown=DRAIN_BUSY_RETRY_SECONDS)
    return {"deferred": 1}


def drain(platform_pk: int, lock_key: str | None = None) -> dict[str, int]:
    """Send every queued money task of a platform, in batches (``drain_trade_tasks``' body).

    One Celery message moves many tasks: per batch one claim UPDATE, the calls in parallel
    (each under its own request id as the ``Idempotency-Key``, exactly as ``execute``), one
    balance read for the confirmed accounts, and one transaction recording the confirmations
    with their audit rows. A batch is confirmed while the next one's calls are in flight, so
    the platform is not left idle while the database records. Lost answers and refusals take
    the single-task path; a task the platform never received goes back to ``queued`` with its
    own retrying message. ``lock_key`` is the drain slot held, kept alive batch by batch.
    """
    try:
        cache.delete(_drain_key(platform_pk))  # before claiming: see request_drain
    except Exception:
        log.warning("could not clear the drain mark", exc_info=True)
    platform = TradePlatform.objects.get(pk=platform_pk)
    client = client_for(platform)
    counts: dict[str, int] = {}
    answered: list[tuple[TradeTask, tuple[dict, str | None]]] = []
    while tasks := _claim_batch(platform_pk, DRAIN_BATCH):
        if lock_key is not None:
            with suppress(Exception):  # still draining: keep the slot from lapsing under us
                cache.touch(lock_key, DRAIN_LOCK_SECONDS)
        for task in tasks:
            task.platform = platform
        calls, outcomes = _send_batch(tasks, client)
        _confirm_batch(answered, client)
        _count(counts, [task for task, _ in answered])
        answered = _settle(tasks, calls, outcomes)
        _count(counts, [task for task in tasks if task.state != TaskState.SENT])
    _confirm_batch(answered, client)
    _count(counts, [task for task, _ in answered])
    return counts


def _count(counts: dict[str, int], tasks: list[TradeTask]) -> None:
    for task in tasks:
        counts[task.state] = counts.get(task.state, 0) + 1


#: a call's answer (the client's ``(data, activity)``), or what it raised instead
_Outcome = tuple[Any, Exception | None]


def _send_batch(tasks: list[TradeTask], client) -> tuple[list[Future], list[_Outcome]]:
    """Start a batch's calls on the sender threads; each outcome lands at its task's index.

    One future per sender thread, each taking the batch's next unsent task until none is left
    (a slow call holds up one thread, not a share of the batch): a future per call cost the
    drain a lock, a condition and a GIL handoff each.
    """
    unsent: SimpleQueue[int] = SimpleQueue()
    for index in range(len(tasks)):
        unsent.put(index)
    outcomes: list[_Outcome] = [(None, None)] * len(tasks)
    pool, threads = _sender(), min(settings.TRADING_DRAIN_SENDERS, len(tasks))
    calls = [pool.submit(_attempt_each, tasks, unsent, outcomes, client) for _ in range(threads)]
    return calls, outcomes


def _attempt_each(tasks: list[TradeTask], unsent: SimpleQueue[int], outcomes: list[_Outcome],
                  client) -> None:
    """Send the batch's unsent tasks one after another, until none is left: each task's answer,
    or what was raised instead, goes to its place in ``outcomes``."""
    while True:
        try:
            index = unsent.get_nowait()
        except Empty:
            return
        task = tasks[index]
        try:  # a drain claims only tasks with a stored wire body
            outcomes[index] = (_call(task, client, cast(dict, task.wire)), None)
        except Exception as exc:
            outcomes[index] = (None, exc)


def _settle(tasks: list[TradeTask], calls: list[Future], outcomes: list[_Outcome]
            ) -> list[tuple[TradeTask, tuple[dict, str | None]]]:
    """Wait for a batch's calls; record what was not answered, return what was (to confirm)."""
    for call in calls:
        call.result()
    answered = []
    for task, (answer, exc) in zip(tasks, outcomes, strict=True):
        if exc is None:
            answered.append((task, answer))
        elif isinstance(exc, NOT_SENT_ERRORS):
            _put_back(task, exc)
        elif not _record_failure(task, exc):
            log.error("trade task %s: unexpected error, left for the sweeper", task.pk,
                      exc_info=exc)
    return answered


def _put_back(task: TradeTask, exc: ManagerApiError) -> None:
    """Nothing was sent: ``queued`` again, retried by its own message (counted as the first
    retry, so the task still fails after the same number of tries as ``execute``'s)."""
    from platforms.trading.tasks import execute_trade_task

    if _transition(task, TaskState.QUEUED, from_states=[TaskState.SENT],
                   error_code=exc.code, message=staff_message(exc)):
        execute_trade_task.apply_async((task.pk,), countdown=1, retries=1)


def _confirm_batch(confirmed: list[tuple[TradeTask, tuple[dict, str | None]]], client) -> None:
    """Confirm the answered tasks of a batch: one balance read, read after every answer, for
    all their accounts, then the outcomes and their audit rows in one transaction."""
    if not confirmed:
        return
    logins = sorted({task.login for task, _ in confirmed
                     if task.kind in ops.MONEY_KINDS and task.login is not None})
    users: dict[int, Any] = {}
    if logins:
        try:
            users = {u.login: u for u in client.mt4.user_records_request(logins)}
        except ManagerApiError as exc:
            log.warning("balance read after confirmation failed: %s", exc.code)
    rows = []
    for task, (answer, activity) in confirmed:
        how = "answer" if task.attempts <= 1 else "resend"
        balance = (_balance_of(task, users.get(task.login))
                   if task.kind in ops.MONEY_KINDS and task.login is not None else None)
        result = {**answer, "resolved_by": how}
        if balance is not None:
            result["new_balance"] = str(balance)
        rows.append((task, {
            "result": result, "ticket": answer.get("order") or answer.get("ticket") or None,
            "new_balance": balance, "activity_id": activity or "", "resolved_by": how,
        }))
    if connection.vendor == "postgresql":
        _confirm_rows(rows)
        return
    with transaction.atomic():  # the outcomes and their audit rows commit together
        done = [task for task, values in rows if _transition(
            task, TaskState.CONFIRMED, from_states=OPEN_STATES, message="",
            error_code="", manager_code="", **values)]
        AuditEvent.objects.bulk_create([
            _outcome_event(task, "confirmed", before=task.preview, after=_confirmed_after(task),
                           detail=f"attempt {task.attempts}, resolved by {task.resolved_by}")
            for task in done
        ])


def _confirm_rows(rows: list[tuple[TradeTask, dict]]) -> None:
    """PostgreSQL: ``_transition(..., CONFIRMED, from_states=OPEN_STATES)`` and the audit row
    of each task it moved, for many tasks in ONE statement (the same per-row state guard; one
    statement is one transaction, so outcomes and audit rows commit together).

    The rows travel as one JSON document rather than a parameter per value: psycopg quotes
    every value of a multi-row statement in Python, which cost a drain more CPU than the
    platform calls themselves. The tasks it moved are updated in place.
    """
    now = timezone.now()
    done_fields = {"state": TaskState.CONFIRMED, "updated_at": now, "finished_at": now,
                   "secret": "", "next_check_at": None, "message": "", "error_code": "",
                   "manager_code": ""}
    documents, outcomes = [], []
    for task, row in rows:
        outcomes.append((task, {**row, **done_fields}))
        event = _outcome_event(
            task, "confirmed", before=task.preview,
            after={"kind": task.kind, **task.payload, **row["result"]},
            detail=f"attempt {task.attempts}, resolved by {row['resolved_by']}")
        documents.append({
            "id": task.pk, "result": row["result"], "ticket": row["ticket"],
            "new_balance": None if row["new_balance"] is None else str(row["new_balance"]),
            "activity_id": row["activity_id"], "resolved_by": row["resolved_by"],
            "actor_id": event.actor_id, "ip_address": event.ip_address, "action": event.action,
            "platform_id": event.platform_id, "target": event.target, "before": event.before,
            "after": event.after, "request_id": str(event.request_id), "detail": event.detail,
        })
    qn = connection.ops.quote_name
    table, events = qn(TradeTask._meta.db_table), qn(AuditEvent._meta.db_table)
    # only the models' table names are formatted in; every value is a parameter
    sql = (
        "WITH v AS (SELECT * FROM jsonb_to_recordset(%s::jsonb) AS v(id bigint, result jsonb, "  # noqa: S608
        "ticket bigint, new_balance numeric, activity_id text, resolved_by text, "
        "actor_id integer, ip_address inet, action text, platform_id bigint, target text, "
        "before jsonb, after jsonb, request_id uuid, detail text)), "
        f"moved AS (UPDATE {table} AS t SET state = %s, updated_at = %s, finished_at = %s, "
        "result = v.result, ticket = v.ticket, new_balance = v.new_balance, "
        "activity_id = v.activity_id, resolved_by = v.resolved_by, secret = '', "
        "next_check_at = NULL, message = '', error_code = '', manager_code = '' "
        "FROM v WHERE t.id = v.id AND t.state IN (%s, %s) RETURNING t.id) "
        f"INSERT INTO {events} (at, actor_id, ip_address, action, platform_id, target, before, "
        "after, request_id, outcome, detail) SELECT %s, v.actor_id, v.ip_address, v.action, "
        "v.platform_id, v.target, v.before, v.after, v.request_id, %s, v.detail "
        "FROM moved JOIN v ON v.id = moved.id RETURNING request_id"
    )
    params: list[Any] = [json.dumps(documents), TaskState.CONFIRMED, now, now, *OPEN_STATES,
                         now, "confirmed"]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        moved = {row[0] for row in cursor.fetchall()}
    for task, confirmed in outcomes:
        if task.request_id in moved:
            for name, value in confirmed.items():
                setattr(task, name, value)


class HedgePending(Exception):
    """The LP has not named the hedge's outcome yet (still queued, or no answer)."""


def _execute_hedge(task: TradeTask) -> str:
    """A coverage hedge: sent to the LP's bridge by ``platforms.coverage.hedging`` under the
    task's request id as ``x-request-id``. Every resend is a replay by the wire's contract
    (same id, same body: the same bridge task, its current state), so executing and
    reconciling are the same move; an outcome still open is reconciled later, never resent
    under a new id."""
    from platforms.coverage.hedging import run_hedge

    if task.state == TaskState.QUEUED:
        if not _transition(task, TaskState.SENT, from_states=[TaskState.QUEUED],
                           sent_at=timezone.now(), attempts=task.attempts + 1,
                           wire={"op": "bridge", "payload": task.payload}):
            return TradeTask.objects.get(pk=task.pk).state  # another worker claimed it
    elif task.state in OPEN_STATES:
        TradeTask.objects.filter(pk=task.pk).update(attempts=F("attempts") + 1)
        task.refresh_from_db(fields=["attempts"])
    else:
        return task.state
    outcome = run_hedge(task.payload, str(task.request_id))
    bridge = outcome.task
    if outcome.status == "executed" and bridge is not None:
        answer = {"bridge_task_id": bridge.task_id, "ticket": bridge.ticket,
                  "fill_price": bridge.fill_price, "profit": bridge.profit,
                  "sends": outcome.sends}
        how = ("event" if outcome.via == "events" else
               "answer" if task.attempts <= 1 else "replay")
        _confirm(task, None, answer, bridge.task_id, how)
    elif outcome.status == "rejected" or (bridge is None and outcome.refused):
        code = (bridge.error.code if bridge is not None and bridge.error else
                (outcome.errors[-1] if outcome.errors else "Rejected"))
        message = (bridge.error.message if bridge is not None and bridge.error else
                   outcome.error)[:500]
        with transaction.atomic():
            if _transition(task, TaskState.REJECTED, from_states=OPEN_STATES, error_code=code,
                           message=message, result={"error": code, "sends": outcome.sends,
                                                    "bridge_task_id": getattr(bridge, "task_id",
                                                                              "")}):
                _audit(task, f"trade_task.{task.kind}", "rejected", before=task.preview,
                       detail=f"{code}: {message}")
    else:
        _unknown(task, HedgePending(outcome.error or f"the LP holds the hedge as {outcome.status}"))
    return task.state


def give_up(task_id: int, exc: BaseException) -> None:
    """Retries ran out while the platform was unreachable: nothing was applied."""
    task = TradeTask.objects.select_related("platform", "requested_by").get(pk=task_id)
    message = staff_message(exc) if isinstance(exc, ManagerApiError) else str(exc)[:500]
    if _transition(task, TaskState.FAILED, from_states=[TaskState.QUEUED],
                   error_code=getattr(exc, "code", type(exc).__name__), message=message):
        _audit(task, f"trade_task.{task.kind}", "failed", detail=message)


# ------------------------------------------------------------------------------ reconcile


def _history_since(task: TradeTask) -> datetime:
    return (task.sent_at or task.created_at) - HISTORY_SLACK


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
                    or (command == "Enable" and not user.enable_flags & ops.ENABLED_BIT)
                    or (command == "Disable" and user.enable_flags & ops.ENABLED_BIT)):
                return None
        return {}
    return None  # create account, password: not readable; resend under the key decides


def msgspec_to_wire(record) -> dict:
    import msgspec

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
    if task.kind in ops.COVERAGE_KINDS:
        return _execute_hedge(task)
    client = client_for(task.platform)
    try:
        found = probe(task, client)
    except ManagerApiError as exc:
        _reschedule(task, f"could not read the platform: {staff_message(exc)}")
        return task.state
    if found is not None:
        _confirm(task, client, found, task.activity_id, "read")
        return task.state
    spec = ops.spec_for(task.kind)
    unreadable = not spec.tagged and not spec.idempotent
    if unreadable and task.sent_at and timezone.now() - task.sent_at > KEY_RETENTION:
        _reschedule(task, "Cannot be verified by reading and the platform no longer holds the "
                          "answer for its key: check the account before acting.", manual=True)
        return task.state
    TradeTask.objects.filter(pk=task.pk).update(attempts=F("attempts") + 1)
    task.refresh_from_db(fields=["attempts"])
    if task.state == TaskState.SENT:
        _transition(task, TaskState.OUTCOME_UNKNOWN, from_states=[TaskState.SENT])
    try:
        return _send(task, client)
    except NOT_SENT_ERRORS as exc:
        _reschedule(task, staff_message(exc))
        return task.state


def _reschedule(task: TradeTask, message: str, *, manual: bool = False) -> None:
    checks = int(task.result.get("checks", 0)) + 1
    delay = RECONCILE_DELAYS[min(checks + task.attempts, len(RECONCILE_DELAYS) - 1)]
    result = {**task.result, "checks": checks}
    next_check = None if manual else timezone.now() + timedelta(seconds=delay)
    if _transition(task, TaskState.OUTCOME_UNKNOWN, from_states=OPEN_STATES, message=message,
                   result=result, next_check_at=next_check) and not manual:
        _enqueue_reconcile(task.pk, delay)


def request_reconcile(task_id: int, *, actor: Actor) -> TradeTask:
    """Staff asks to check an ``outcome_unknown`` task now (the UI's reconcile button)."""
    task = TradeTask.objects.select_related("platform").get(pk=task_id)
    ensure_allowed(actor, task.platform, task.kind, login=task.login)
    if task.state not in OPEN_STATES:
        raise OperationRefused("Only a task whose outcome is unknown can be reconciled.")
    _audit(task, "trade_task.reconcile", "requested", actor=actor)
    _enqueue_reconcile(task.pk, 0)
    return task


# ------------------------------------------------------------------------------ sweep


def sweep(now: datetime | None = None) -> dict[str, int]:
    """Resolve what a lost worker or a lost queue message left behind (periodic task)."""
    now = now or timezone.now()
    stale_sent = list(TradeTask.objects.filter(
        state=TaskState.SENT, sent_at__lt=now - STALE_SENT).values_list("pk", flat=True)[:500])
    due = list(TradeTask.objects.filter(
        state=TaskState.OUTCOME_UNKNOWN, next_check_at__lte=now
    ).values_list("pk", flat=True)[:500])
    lost = list(TradeTask.objects.filter(
        state=TaskState.QUEUED, queued_at__lt=now - STALE_QUEUED
    ).values_list("pk", flat=True)[:500])
    from platforms.trading.tasks import execute_trade_task, reconcile_trade_task

    for pk in stale_sent + due:
        reconcile_trade_task.delay(pk)
    for pk in lost:
        execute_trade_task.delay(pk)
    return {"sent": len(stale_sent), "unknown": len(due), "queued": len(lost)}
