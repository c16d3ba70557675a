"""Desk rules without a worker: idempotent submit, conflicts, approvals, permissions, audit."""

from __future__ import annotations

import uuid
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied

from platforms.audit import Actor
from platforms.models import AuditEvent
from platforms.trading.approvals import decide
from platforms.trading.errors import OperationRefused
from platforms.trading.models import OperationPolicy, TaskState, TradeTask
from platforms.trading.submit import IdempotencyConflict, submit

pytestmark = pytest.mark.django_db


def deposit(user, platform, amount="100.00", request_id=None, login=100002, comment="wire"):
    return submit(
        actor=Actor(user, "10.0.0.7"), platform=platform, kind="deposit", login=login,
        payload={"amount": amount, "comment": comment}, request_id=request_id or uuid.uuid4(),
    )


def test_resubmitting_the_same_request_returns_the_same_task_and_queues_it_once(
    mt4, finance_user, django_capture_on_commit_callbacks
):
    request_id = uuid.uuid4()
    with django_capture_on_commit_callbacks() as callbacks:
        first = deposit(finance_user, mt4, request_id=request_id)
        second = deposit(finance_user, mt4, request_id=request_id)
    assert first.created and not second.created
    assert first.task.pk == second.task.pk
    assert TradeTask.objects.count() == 1
    assert len(callbacks) == 1  # one enqueue


def test_replaying_a_request_id_with_other_parameters_is_refused_and_nothing_is_queued(
    mt4, finance_user, django_capture_on_commit_callbacks
):
    request_id = uuid.uuid4()
    deposit(finance_user, mt4, amount="100.00", request_id=request_id)
    with django_capture_on_commit_callbacks() as callbacks, pytest.raises(
        IdempotencyConflict
    ):
        deposit(finance_user, mt4, amount="900.00", request_id=request_id)
    assert callbacks == []
    task = TradeTask.objects.get()
    assert task.payload["amount"] == "100.00"
    assert AuditEvent.objects.filter(outcome="conflict", request_id=request_id).exists()


def test_deposit_above_the_threshold_waits_for_approval(mt4, finance_user):
    OperationPolicy.objects.create(platform=mt4, approval_threshold=Decimal("1000"))
    small = deposit(finance_user, mt4, amount="1000.00").task
    large = deposit(finance_user, mt4, amount="1000.01").task
    assert small.state == TaskState.QUEUED
    assert large.state == TaskState.PENDING_APPROVAL


def test_nobody_approves_their_own_operation(mt4, finance_user):
    OperationPolicy.objects.create(platform=mt4, approval_threshold=Decimal("10"))
    task = deposit(finance_user, mt4, amount="50.00").task
    with pytest.raises(OperationRefused, match="own operation"):
        decide(task.pk, actor=Actor(finance_user), approve=True)
    task.refresh_from_db()
    assert task.state == TaskState.PENDING_APPROVAL
    assert AuditEvent.objects.filter(action="trade_task.approve", outcome="refused").exists()


def test_a_second_approver_queues_it_and_a_user_without_the_permission_cannot(
    mt4, finance_user, second_finance_user, dealer_user, django_capture_on_commit_callbacks
):
    OperationPolicy.objects.create(platform=mt4, approval_threshold=Decimal("10"))
    task = deposit(finance_user, mt4, amount="50.00").task
    with pytest.raises(PermissionDenied):
        decide(task.pk, actor=Actor(dealer_user), approve=True)
    with django_capture_on_commit_callbacks() as callbacks:
        decide(task.pk, actor=Actor(second_finance_user), approve=True)
    task.refresh_from_db()
    assert task.state == TaskState.QUEUED
    assert task.approval.decided_by == second_finance_user
    assert len(callbacks) == 1


def test_bulk_operations_always_wait_for_approval(mt4, support_user):
    task = submit(
        actor=Actor(support_user), platform=mt4, kind="bulk_leverage", login=None,
        payload={"logins": [100001, 100002], "leverage": 200}, request_id=uuid.uuid4(),
    ).task
    assert task.state == TaskState.PENDING_APPROVAL


@pytest.mark.parametrize(
    ("kind", "payload"),
    [
        ("deposit", {"amount": "1.00"}),
        ("withdrawal", {"amount": "1.00"}),
        ("credit_in", {"amount": "1.00", "expiration": "2099-01-01"}),
        ("credit_out", {"amount": "1.00"}),
        ("correction", {"amount": "-1.00"}),
        ("open_order", {"symbol": "EURUSD", "command": "Buy", "volume": "0.1"}),
        ("place_pending", {"symbol": "EURUSD", "command": "BuyLimit", "volume": "0.1",
                           "price": "0.5"}),
        ("modify_order", {"order": 1, "sl": "0"}),
        ("close_order", {"order": 1}),
        ("delete_pending", {"order": 1}),
        ("create_account", {"group": "demo\\usd", "name": "X"}),
        ("edit_profile", {"name": "X"}),
        ("change_group", {"group": "demo\\usd"}),
        ("change_leverage", {"leverage": 100}),
        ("enable", {}),
        ("disable", {}),
        ("readonly_on", {}),
        ("readonly_off", {}),
        ("reset_password", {"investor": False}),
        ("bulk_group", {"logins": [100001], "group": "demo\\usd"}),
        ("bulk_leverage", {"logins": [100001], "leverage": 100}),
        ("bulk_enable", {"logins": [100001]}),
        ("bulk_disable", {"logins": [100001]}),
    ],
)
def test_every_operation_is_refused_without_its_permission_and_the_refusal_is_audited(
    mt4, nobody_user, kind, payload
):
    with pytest.raises(PermissionDenied):
        submit(actor=Actor(nobody_user, "10.1.1.1"), platform=mt4, kind=kind,
               login=100003, payload=payload, request_id=uuid.uuid4())
    assert not TradeTask.objects.exists()
    event = AuditEvent.objects.get(outcome="forbidden")
    assert event.actor == nobody_user and event.ip_address == "10.1.1.1"
    assert event.action == f"trade_task.{kind}"


def test_balance_operations_are_not_available_on_mt5(mt5, finance_user):
    with pytest.raises(OperationRefused, match="not available for MT5"):
        deposit(finance_user, mt5, login=5000001)


def test_the_submission_is_audited_with_who_ip_what_and_request_id(mt4, finance_user):
    task = deposit(finance_user, mt4, amount="12.50").task
    event = AuditEvent.objects.get(request_id=task.request_id)
    assert event.actor == finance_user and event.ip_address == "10.0.0.7"
    assert event.action == "trade_task.deposit" and event.outcome == "queued"
    assert event.after["amount"] == "12.50" and event.target == "100002"


def test_a_submitted_task_and_its_audit_row_read_back_exactly_as_they_were_built(
    mt4, finance_user
):
    # on PostgreSQL both rows travel as JSON documents in one statement: nothing may be lost
    # or reshaped on the way (microseconds, quotes, non-ASCII, JSON values, the decided state)
    OperationPolicy.objects.create(platform=mt4, approval_threshold=Decimal("1000"))
    comment = "wire Ω 'quoted' \"twice\" \\ back"
    for amount in ("12.50", "1000.01"):
        task = deposit(finance_user, mt4, amount=amount, comment=comment).task
        stored = TradeTask.objects.get(pk=task.pk)
        for field in TradeTask._meta.concrete_fields:
            assert getattr(stored, field.attname) == getattr(task, field.attname), field.name
        assert stored.payload == {"amount": amount, "comment": comment}
        event = AuditEvent.objects.get(request_id=task.request_id)
        assert event.outcome == stored.state and event.after["comment"] == comment
        assert event.ip_address == "10.0.0.7" and event.actor_id == finance_user.pk
    assert stored.state == TaskState.PENDING_APPROVAL and stored.queued_at is None


@pytest.mark.parametrize("prepared", [True, False])
@pytest.mark.parametrize("ip", ["10.0.0.7", "2001:db8::1", None])
def test_a_submitted_task_and_its_audit_row_are_stored_exactly_as_built(
    mt4, finance_user, support_user, ip, prepared, settings
):
    """On PostgreSQL a submit writes both rows in one hand-built statement (a server-side
    prepared one unless ``DATABASE_PREPARED_STATEMENTS`` is off): what is stored must be what
    Django's own ``save()`` would store (every column, the encrypted secret, text that JSON
    must escape, both address families)."""
    settings.DATABASE_PREPARED_STATEMENTS = prepared
    text = 'naïve “quotes” \\ back\\slash "json" \u2028 ✓'
    built = [
        submit(actor=Actor(finance_user, ip), platform=mt4, kind="deposit",
               login=100004, payload={"amount": "12.34", "comment": text},
               request_id=uuid.uuid4(), preview={"balance": "1.00", "name": text}).task,
        submit(actor=Actor(support_user, ip), platform=mt4,
               kind="reset_password", login=100004, payload={"investor": False},
               request_id=uuid.uuid4(), secret="N3w-pass!").task,
    ]
    for task in built:
        stored = TradeTask.objects.get(pk=task.pk)
        for f in TradeTask._meta.concrete_fields:
            assert getattr(stored, f.attname) == getattr(task, f.attname), f.name
        event = AuditEvent.objects.get(request_id=task.request_id, detail="submitted")
        assert (event.actor, event.ip_address, event.action, event.platform, event.target,
                event.outcome) == (task.requested_by, ip, f"trade_task.{task.kind}", mt4,
                                   "100004", task.state)
        assert event.after == {"kind": task.kind, **task.payload}
    assert built[1].secret == "N3w-pass!"
