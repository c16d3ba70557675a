"""Operation pages: validation before anything is sent, confirmation, re-auth, 403s, audit."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from platforms.models import AuditEvent
from platforms.trading.models import TaskState, TradeTask

pytestmark = pytest.mark.django_db
LOGIN = 100005


def url(platform, kind, login=LOGIN):
    return reverse("dashboard:operation", args=[platform.pk, login, kind])


def trade_transactions(sandbox) -> int:
    ops = sandbox.control("GET", "/stats").json()["operations"]
    return ops.get("TradeTransaction", {}).get("received", 0)


@pytest.fixture
def finance_client(client, finance_user):
    client.force_login(finance_user)
    return client


@pytest.fixture
def dealer_client_(client, dealer_user):
    client.force_login(dealer_user)
    return client


def post_confirm(client, target, data, password="correct-horse-battery"):  # noqa: S107
    data = {"request_id": str(uuid.uuid4()), **data}
    review = client.post(target, data)
    assert review.status_code == 200, review.content
    assert b'id="confirmation"' in review.content, review.content.decode()[:3000]
    return client.post(target, {**data, "confirm": "1", "password": password})


def test_the_form_carries_a_request_id_generated_when_it_is_rendered(finance_client, mt4):
    page = finance_client.get(url(mt4, "deposit"))
    assert page.status_code == 200
    assert b'name="request_id"' in page.content
    assert page.context["form"].initial["request_id"] != finance_client.get(
        url(mt4, "deposit")).context["form"].initial["request_id"]


def test_a_deposit_is_reviewed_reauthenticated_and_queued_once_even_if_posted_twice(
    finance_client, mt4, clean_sandbox
):
    target = url(mt4, "deposit")
    data = {"request_id": str(uuid.uuid4()), "amount": "250.00", "comment": "wire 42"}
    review = finance_client.post(target, data)
    assert b"250.00" in review.content and b'id="balance-after"' in review.content
    assert b'name="password"' in review.content  # money asks for the password again
    assert not TradeTask.objects.exists()
    wrong = finance_client.post(target, {**data, "confirm": "1", "password": "nope"})
    assert b"password is not correct" in wrong.content
    assert not TradeTask.objects.exists()
    ok = finance_client.post(target, {**data, "confirm": "1", "password": "correct-horse-battery"})
    assert ok.status_code == 302
    again = finance_client.post(target, {**data, "confirm": "1"})  # double click: re-auth fresh
    assert again.status_code == 302 and again["Location"] == ok["Location"]
    task = TradeTask.objects.get()
    assert task.payload == {"amount": "250.00", "comment": "wire 42"}
    assert task.preview["balance_after"]
    assert task.state == TaskState.QUEUED


def test_a_conflicting_replay_of_the_form_is_refused_with_409_and_nothing_applied(
    finance_client, mt4, clean_sandbox
):
    clean_sandbox.control("DELETE", "/stats")
    target = url(mt4, "deposit")
    request_id = str(uuid.uuid4())
    first = post_confirm(finance_client, target, {"request_id": request_id, "amount": "10.00"})
    assert first.status_code == 302
    replay = finance_client.post(target, {"request_id": request_id, "amount": "99.00",
                                          "confirm": "1"})
    assert replay.status_code == 409
    assert b"already used" in replay.content
    assert TradeTask.objects.count() == 1 and TradeTask.objects.get().payload["amount"] == "10.00"
    assert trade_transactions(clean_sandbox) == 0  # no worker here: nothing sent at all


@pytest.mark.parametrize(
    ("kind", "data", "field", "message"),
    [
        ("deposit", {"amount": "-5"}, "amount", "positive"),
        ("deposit", {"amount": "0"}, "amount", "positive"),
        ("deposit", {"amount": "1.001"}, "amount", "decimal places"),
        ("deposit", {"amount": "NaN"}, "amount", "number"),
        ("deposit", {"amount": "ten"}, "amount", "number"),
        ("deposit", {"amount": "1e12"}, "amount", ""),
        ("withdrawal", {"amount": "abc"}, "amount", "number"),
        ("credit_in", {"amount": "10"}, "expiration", "required"),
        ("correction", {"amount": "0"}, "amount", "zero"),
        ("open_order", {"symbol": "EURUSD", "command": "Buy", "volume": "1000000"}, "volume", ""),
        ("open_order", {"symbol": "EURUSD", "command": "Buy", "volume": "lots"}, "volume",
         "number"),
        ("open_order", {"symbol": "NOPE", "command": "Buy", "volume": "0.1"}, "symbol",
         "Unknown symbol"),
        ("open_order", {"symbol": "EURUSD", "command": "Buy", "volume": "0.1", "sl": "99"}, "sl",
         "below"),
        ("open_order", {"symbol": "EURUSD", "command": "Sell", "volume": "0.1", "tp": "99"}, "tp",
         "below"),
        ("place_pending", {"symbol": "EURUSD", "command": "BuyLimit", "volume": "0.1",
                           "price": "99"}, "price", "other side"),
        ("close_order", {"order": "12x"}, "order", "whole number"),
        ("close_order", {"order": "1"}, "order", "not an open order"),
        ("change_leverage", {"leverage": "7"}, "leverage", "valid choice"),
    ],
)
def test_bad_input_is_a_clear_form_error_with_no_task_and_no_platform_write(
    client, admin_role_user, mt4, clean_sandbox, kind, data, field, message
):
    client.force_login(admin_role_user)
    clean_sandbox.control("DELETE", "/stats")
    response = client.post(url(mt4, kind), {"request_id": str(uuid.uuid4()), **data,
                                            "confirm": "1", "password": "correct-horse-battery"})
    assert response.status_code == 200
    form = response.context["form"]
    assert field in form.errors, form.errors
    assert message.lower() in " ".join(form.errors[field]).lower()
    assert b'id="confirmation"' not in response.content
    assert not TradeTask.objects.exists()
    assert trade_transactions(clean_sandbox) == 0


def test_a_login_of_another_platform_is_refused_before_any_form(finance_client, mt4):
    response = finance_client.get(url(mt4, "deposit", login=5000001))  # an MT5 login
    assert response.status_code == 404
    assert b"does not exist on Sandbox MT4" in response.content
    response = finance_client.post(url(mt4, "deposit", login=5000001),
                                   {"request_id": str(uuid.uuid4()), "amount": "5"})
    assert response.status_code == 404 and not TradeTask.objects.exists()


def test_bulk_form_lists_logins_that_are_not_on_the_platform(client, admin_role_user, mt4):
    client.force_login(admin_role_user)
    target = reverse("dashboard:platform-operation", args=[mt4.pk, "bulk_enable"])
    response = client.post(target, {"request_id": str(uuid.uuid4()),
                                    "logins": "100001, 5000001 abc"})
    assert "Not logins: abc" in " ".join(response.context["form"].errors["logins"])
    response = client.post(target, {"request_id": str(uuid.uuid4()), "logins": "100001 5000001"})
    assert "5000001" in " ".join(response.context["form"].errors["logins"])
    assert not TradeTask.objects.exists()


@pytest.mark.parametrize("kind", ["deposit", "withdrawal", "credit_in", "open_order",
                                  "close_order", "edit_profile", "change_leverage",
                                  "reset_password"])
def test_an_operation_page_without_its_permission_is_a_403_that_writes_nothing(
    client, nobody_user, mt4, kind, caplog
):
    """The permission gate refuses before the view runs: no task, no audit row (a refusal is
    logged instead, so probing cannot fill the audit table)."""
    client.force_login(nobody_user)
    events = AuditEvent.objects.count()
    response = client.get(url(mt4, kind))
    assert response.status_code == 403
    assert b"permission" in response.content
    response = client.post(url(mt4, kind), {"request_id": str(uuid.uuid4()), "amount": "1"})
    assert response.status_code == 403 and not TradeTask.objects.exists()
    assert AuditEvent.objects.count() == events
    assert any(r.name == "platforms.access.actions" and nobody_user.username in r.getMessage()
               for r in caplog.records)


def test_a_dealer_cannot_move_money_but_can_open_the_trade_form(dealer_client_, mt4):
    assert dealer_client_.get(url(mt4, "deposit")).status_code == 403
    assert dealer_client_.get(url(mt4, "open_order")).status_code == 200


def test_balance_operations_say_they_are_not_available_on_mt5(finance_client, mt5):
    response = finance_client.get(url(mt5, "deposit", login=5000001))
    assert b"not available for MT5" in response.content


def test_an_account_outside_the_users_group_scope_is_404(client, finance_user, mt4):
    from tests.factories import grant

    grant(finance_user, mt4, group_masks="nothing\\*")
    client.force_login(finance_user)
    assert client.get(url(mt4, "deposit")).status_code == 404


def test_reset_password_never_puts_the_password_in_the_page_the_task_or_the_audit(
    client, admin_role_user, mt4
):
    client.force_login(admin_role_user)
    target = url(mt4, "reset_password")
    data = {"request_id": str(uuid.uuid4()), "new_password": "Secr3tPw"}
    review = client.post(target, data)
    assert b"Secr3tPw" not in review.content
    done = client.post(target, {**data, "confirm": "1"})
    assert done.status_code == 302
    task = TradeTask.objects.get()
    assert "Secr3tPw" not in str(task.payload) and task.secret == "Secr3tPw"
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM platforms_tradetask")
        assert "Secr3tPw" not in cursor.fetchone()[0]  # encrypted at rest
    assert "Secr3tPw" not in str(list(AuditEvent.objects.values()))


def test_approver_sees_and_approves_anothers_large_deposit_but_not_their_own(
    client, finance_user, second_finance_user, mt4
):
    from platforms.trading.models import OperationPolicy

    OperationPolicy.objects.create(platform=mt4, approval_threshold=10)
    client.force_login(finance_user)
    done = post_confirm(client, url(mt4, "deposit"), {"amount": "500.00"})
    task = TradeTask.objects.get()
    assert task.state == TaskState.PENDING_APPROVAL
    own = client.post(reverse("dashboard:operation-task-action", args=[mt4.pk, task.pk,
                                                                       "approve"]))
    assert own.status_code == 409
    client.force_login(second_finance_user)
    listing = client.get(reverse("dashboard:operation-tasks", args=[mt4.pk]))
    assert b"Approve" in listing.content
    approved = client.post(reverse("dashboard:operation-task-action",
                                   args=[mt4.pk, task.pk, "approve"]))
    assert approved.status_code == 302 and done.status_code == 302
    task.refresh_from_db()
    assert task.state == TaskState.QUEUED


def test_audit_page_filters_and_exports_csv(client, admin_role_user, finance_user, mt4):
    from tests.trading.test_rules import deposit

    task = deposit(finance_user, mt4).task
    client.force_login(admin_role_user)
    page = client.get(reverse("dashboard:operation-audit"), {"request_id": str(task.request_id)})
    assert page.status_code == 200
    assert list(page.context["events"]) == list(AuditEvent.objects.filter(
        request_id=task.request_id))
    export = client.get(reverse("dashboard:operation-audit"),
                        {"actor": "finance1", "format": "csv"})
    body = b"".join(export.streaming_content).decode("utf-8-sig")
    assert body.splitlines()[0].startswith("Time,Actor,IP address,Action")
    assert str(task.request_id) in body


def test_the_task_list_polls_its_rows_partial_with_a_fixed_number_of_queries(
    client, finance_user, mt4, django_assert_max_num_queries
):
    from tests.trading.test_rules import deposit

    for _ in range(5):
        deposit(finance_user, mt4)
    client.force_login(finance_user)
    target = reverse("dashboard:operation-tasks", args=[mt4.pk])
    with django_assert_max_num_queries(12):
        rows = client.get(target, headers={"HX-Request": "true"})
    body = rows.content.decode()
    assert body.lstrip().startswith('<tbody id="task-rows"') and "<html" not in body
    assert body.count('class="state-queued"') == 5


def test_the_task_list_polls_only_while_a_task_may_still_change(client, finance_user, mt4):
    from tests.trading.test_rules import deposit

    client.force_login(finance_user)
    target = reverse("dashboard:operation-tasks", args=[mt4.pk])
    idle = client.get(target).content.decode()
    assert '<tbody id="task-rows">' in idle and "every 1s" not in idle  # nothing to wait for

    task = deposit(finance_user, mt4).task
    busy = client.get(target, headers={"HX-Request": "true"}).content.decode()
    assert 'hx-trigger="every 1s"' in busy and 'class="state-queued"' in busy

    TradeTask.objects.filter(pk=task.pk).update(state=TaskState.CONFIRMED)
    settled = client.get(target, headers={"HX-Request": "true"}).content.decode()
    # the last poll's answer carries no trigger: htmx swaps it in and stops polling
    assert settled.lstrip().startswith('<tbody id="task-rows">') and "every 1s" not in settled
