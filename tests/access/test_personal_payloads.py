"""Personal data inside payloads: task pages, the audit trail and its CSV, approvals, mail jobs
and the server journal show it only to staff with ``view_personal_data``.

A support user (who may see and edit contact details) changes a client's email and phone; the
task runs against the sandbox. A dealer, a risk approver and a messaging clerk, none holding
``view_personal_data``, then open every page that shows that task, its audit rows or the mail
job: the new values never appear, and a reader sees that something is hidden. An admin (who
holds the permission) sees them on the same pages.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.contrib.auth.models import Permission
from django.urls import reverse

from platforms.access.personal import HIDDEN, visible_fields, visible_text, visible_value
from platforms.audit import Actor
from platforms.models import AuditEvent
from platforms.server.models import MailJob
from platforms.trading.execute import execute
from platforms.trading.models import TaskState, TradeTask
from platforms.trading.submit import submit
from tests.factories import MirrorAccountFactory, StaffUserFactory, grant

pytestmark = pytest.mark.django_db

LOGIN = 100150
NEW_EMAIL = "moved.client@newmail.example"
NEW_PHONE = "+44 7700 900123"
STAFF_IP = "203.0.113.77"  # the support user's address, kept by the audit trail
SEARCHED_EMAIL = "searched.client@example.net"
JOURNAL_IP = re.compile(r"\b10\.0\.\d{1,3}\.\d{1,3}\b")  # the sandbox's client addresses


def _user(username: str, platform, role: str, *extra_permissions: str):
    user = grant(StaffUserFactory(username=username), platform, role=role)
    for codename in extra_permissions:
        user.user_permissions.add(Permission.objects.get(content_type__app_label="platforms",
                                                         codename=codename))
    return user


@pytest.fixture
def mt4(sandbox_platforms):
    return sandbox_platforms[0]


@pytest.fixture
def profile_task(mt4) -> TradeTask:
    """An edit_profile task requested by a support user and confirmed by the sandbox."""
    support = _user("pii-support", mt4, "support")
    MirrorAccountFactory(platform=mt4, login=LOGIN)
    submission = submit(
        actor=Actor(support, STAFF_IP), platform=mt4, kind="edit_profile",
        login=LOGIN, payload={"email": NEW_EMAIL, "phone": NEW_PHONE, "comment": "moved"},
        request_id=uuid.uuid4(),
    )
    assert execute(submission.task.pk) == TaskState.CONFIRMED
    return TradeTask.objects.get(pk=submission.task.pk)


def _body(response) -> str:
    assert response.status_code == 200, response.status_code
    if getattr(response, "streaming", False):
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def _assert_hidden(body: str, *values: str) -> None:
    for value in values:
        assert value not in body
    assert HIDDEN in body  # the reader sees that something is withheld, not a silent gap


def test_a_dealer_reads_neither_email_nor_phone_on_the_task_pages(client, mt4, profile_task):
    client.force_login(_user("pii-dealer", mt4, "dealer"))
    detail = client.get(reverse("dashboard:operation-task", args=[mt4.pk, profile_task.pk]))
    _assert_hidden(_body(detail), NEW_EMAIL, NEW_PHONE)
    polled = client.get(reverse("dashboard:operation-task", args=[mt4.pk, profile_task.pk]),
                        HTTP_HX_REQUEST="true")  # the htmx partial the page polls
    _assert_hidden(_body(polled), NEW_EMAIL, NEW_PHONE)
    listing = _body(client.get(reverse("dashboard:operation-tasks", args=[mt4.pk])))
    assert NEW_EMAIL not in listing and NEW_PHONE not in listing
    assert "moved" in _body(detail)  # what is not personal is still shown


def test_staff_allowed_personal_data_read_the_task_payload(client, mt4, profile_task):
    client.force_login(_user("pii-admin", mt4, "admin"))
    body = _body(client.get(reverse("dashboard:operation-task", args=[mt4.pk, profile_task.pk])))
    assert NEW_EMAIL in body and NEW_PHONE in body


def test_an_approver_without_personal_data_decides_without_reading_it(client, mt4,
                                                                     profile_task):
    pending = TradeTask.objects.create(
        platform=mt4, login=LOGIN, kind="edit_profile", fingerprint="pending",
        payload={"email": NEW_EMAIL, "phone": NEW_PHONE}, state=TaskState.PENDING_APPROVAL,
        requested_by=profile_task.requested_by)
    client.force_login(_user("pii-risk", mt4, "risk"))
    queue = _body(client.get(reverse("dashboard:operation-tasks", args=[mt4.pk]),
                             {"state": "pending_approval"}))
    assert f'id="task-{pending.pk}"' in queue and "Approve" in queue
    assert NEW_EMAIL not in queue and NEW_PHONE not in queue
    detail = _body(client.get(reverse("dashboard:operation-task", args=[mt4.pk, pending.pk])))
    assert "Approve" in detail
    _assert_hidden(detail, NEW_EMAIL, NEW_PHONE)


def test_the_audit_trail_and_its_csv_hide_personal_values_and_addresses(client, mt4,
                                                                       profile_task):
    events = AuditEvent.objects.filter(request_id=profile_task.request_id)
    assert any(e.after.get("email") == NEW_EMAIL for e in events)  # the trail keeps them
    url = reverse("dashboard:operation-audit")
    client.force_login(_user("pii-risk", mt4, "risk"))
    page = _body(client.get(url, {"platform": mt4.pk}))
    assert "trade_task.edit_profile" in page
    _assert_hidden(page, NEW_EMAIL, NEW_PHONE, STAFF_IP)
    rows = _body(client.get(url, {"platform": mt4.pk}, HTTP_HX_REQUEST="true"))
    _assert_hidden(rows, NEW_EMAIL, NEW_PHONE, STAFF_IP)
    csv = _body(client.get(url, {"platform": mt4.pk, "format": "csv"}))
    assert "trade_task.edit_profile" in csv
    _assert_hidden(csv, NEW_EMAIL, NEW_PHONE, STAFF_IP)
    # the same events on the account card's audit tab
    tab = _body(client.get(reverse("dashboard:account-tab", args=[mt4.pk, LOGIN, "audit"]),
                           HTTP_HX_REQUEST="true"))
    assert "trade_task.edit_profile" in tab and NEW_EMAIL not in tab

    client.force_login(_user("pii-admin", mt4, "admin"))
    for body in (_body(client.get(url, {"platform": mt4.pk})),
                 _body(client.get(url, {"platform": mt4.pk, "format": "csv"}))):
        assert NEW_EMAIL in body and NEW_PHONE in body and STAFF_IP in body


def _mail_by_search(client, platform, search: str, action: str = "send"):
    return client.post(reverse("dashboard:server-mail", args=[platform.pk]), {
        "audience": "filtered", "query": f"?q={search}", "sender_name": "Desk",
        "subject": "Your new contact details", "body": "Dear {name}", action: "1"})


def test_a_mail_job_addressed_by_email_search_does_not_show_the_address(client, mt4):
    MirrorAccountFactory(platform=mt4, login=LOGIN, email=SEARCHED_EMAIL)
    client.force_login(_user("pii-support", mt4, "support"))
    sent = _mail_by_search(client, mt4, SEARCHED_EMAIL)
    job = MailJob.objects.get()
    assert sent.status_code == 302 and SEARCHED_EMAIL in job.audience
    job_url = reverse("dashboard:server-mail-job", args=[mt4.pk, job.pk])
    assert SEARCHED_EMAIL in _body(client.get(job_url))  # its author may read it

    client.force_login(_user("pii-clerk", mt4, "dealer", "send_messages"))
    _assert_hidden(_body(client.get(job_url)), SEARCHED_EMAIL)
    _assert_hidden(_body(client.get(job_url, HTTP_HX_REQUEST="true")), SEARCHED_EMAIL)
    assert SEARCHED_EMAIL not in _body(client.get(reverse("dashboard:server-mail",
                                                          args=[mt4.pk])))
    client.force_login(_user("pii-risk", mt4, "risk"))  # the audit row of the queued job
    audit = _body(client.get(reverse("dashboard:operation-audit"), {"action": "mail.queue"}))
    assert "mail.queue" in audit and SEARCHED_EMAIL not in audit


def test_staff_without_personal_data_cannot_find_an_account_by_its_email(client, mt4):
    """The mail audience's search would otherwise tell them which account has an address."""
    MirrorAccountFactory(platform=mt4, login=LOGIN, email=SEARCHED_EMAIL)
    client.force_login(_user("pii-clerk", mt4, "dealer", "send_messages"))
    response = _mail_by_search(client, mt4, SEARCHED_EMAIL, action="preview")
    assert "preview" not in response.context
    assert "No account matches" in _body(response)
    client.force_login(_user("pii-support", mt4, "support"))
    assert _mail_by_search(client, mt4, SEARCHED_EMAIL, action="preview").context["preview"]


def test_journal_lines_hide_client_addresses_without_personal_data(client, mt4):
    url = reverse("dashboard:server-journal", args=[mt4.pk])
    client.force_login(_user("pii-support", mt4, "support"))
    full = client.get(url, {"mode": "Logins"})
    address = JOURNAL_IP.search(_body(full))
    assert address, "the sandbox journal has client logins with their addresses"
    login = next(re.match(r"'(\d+)': login", line.message).group(1)
                 for line in full.context["lines"] if address.group() in line.message)

    client.force_login(_user("pii-dealer", mt4, "dealer"))
    masked = client.get(url, {"mode": "Logins"})
    assert masked.context["lines"], "the lines are still listed"
    _assert_hidden(_body(masked), address.group())
    assert not JOURNAL_IP.search(_body(masked))
    # neither the server-side filter nor the text search can find who used an address
    for key in ("filter", "text"):
        probe = client.get(url, {"mode": "Logins", key: address.group()})
        assert not probe.context.get("lines")
    MirrorAccountFactory(platform=mt4, login=int(login))
    tab = client.get(reverse("dashboard:account-tab", args=[mt4.pk, login, "journal"]),
                     HTTP_HX_REQUEST="true")
    body = _body(tab)
    assert f"{login}&#x27;: login (build" in body  # the account's login line, shown
    _assert_hidden(body, address.group())
    assert not JOURNAL_IP.search(body)


def test_the_rule_reaches_nested_values_and_every_spelling_of_a_personal_key():
    payload = {"kind": "edit_profile", "eMail": "a@b.example", "Phone": "", "amount": "10.00",
               "rows": [{"last_ip": "10.1.2.3", "comment": "write to a@b.example"}], "n": 5}
    assert visible_value(False, payload) == {
        "kind": "edit_profile", "eMail": HIDDEN, "Phone": "", "amount": "10.00",
        "rows": [{"last_ip": HIDDEN, "comment": f"write to {HIDDEN}"}], "n": 5}
    assert visible_value(True, payload) is payload
    assert payload["eMail"] == "a@b.example"  # the stored value is never changed


def test_free_text_loses_addresses_but_keeps_times_prices_and_logins():
    line = "'100009': login (build 1420, 10.0.9.9) at 12:30:45, fe80::1, price 1.10234"
    assert visible_text(False, line) == (
        f"'100009': login (build 1420, {HIDDEN}) at 12:30:45, {HIDDEN}, price 1.10234")
    assert visible_text(False, "accounts list ?q=bob&group=real*") == (
        f"accounts list ?q={HIDDEN}&group=real*")
    assert visible_text(True, line) == line
    assert visible_text(False, "from 10.0.0.1:443, then 10.0.0.2.") == (
        f"from {HIDDEN}:443, then {HIDDEN}.")
    assert visible_text(False, "999.1.2.3 and cafe") == "999.1.2.3 and cafe"
    for long_text in ("a:" * 5000 + "g", "x" * 10240 + "@", "-" * 10240 + "@x"):  # quickly
        assert visible_text(False, long_text) == long_text


def test_a_shown_object_masks_only_its_named_fields_and_leaves_the_original_alone():
    task = TradeTask(pk=7, kind="edit_profile", payload={"email": NEW_EMAIL}, message="ok")
    shown = visible_fields(False, task, ("payload",))
    assert shown.payload == {"email": HIDDEN} and shown.message == "ok" and shown.pk == 7
    assert shown.get_kind_display() == "Edit profile" and str(shown) == str(task)
    assert task.payload == {"email": NEW_EMAIL}
    assert visible_fields(True, task, ("payload",)) is task
