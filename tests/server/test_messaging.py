"""Internal mail (tracked bulk jobs, safe placeholders), news, the mailbox; sidecar down."""

from __future__ import annotations

import pytest
from django.urls import reverse

from platforms.models import AuditEvent
from platforms.server import services as server_ops
from platforms.server.models import MailJob, MailRecipient
from platforms.server.placeholders import TemplateError, check_template, render_template
from platforms.server.services import MAIL_CHUNK
from tests.factories import MirrorAccountFactory, TradePlatformFactory
from tests.server.conftest import received

LOGINS = [100001, 100002, 100003]


@pytest.fixture
def mirrored(sandbox_platforms):
    mt4, _ = sandbox_platforms
    return [MirrorAccountFactory(platform=mt4, login=login, name=f"Client {login}",
                                 balance=1234.5 + i) for i, login in enumerate(LOGINS)]


@pytest.fixture
def run_jobs_inline(run_tasks_inline):
    """A queued mail job runs in this process (the worker's path: the task itself)."""


def _post(client, platform, **data):
    payload = {"audience": "selection", "logins": ",".join(map(str, LOGINS)),
               "sender_name": "Desk", "subject": "Hello", "body": "Plain text", **data}
    return client.post(reverse("dashboard:server-mail", args=[platform.pk]), payload)


@pytest.mark.parametrize("body", [
    "{{ settings.SECRET_KEY }}", "{% load static %}", "Hi {__class__}", "{name.__class__}",
    "{# comment #}", "Hi {unknown}", "stray } brace", "{balance!r}",
])
def test_template_code_is_refused(body):
    with pytest.raises(TemplateError):
        check_template(body)


def test_placeholders_are_plain_substitution():
    text = render_template("Dear {name} ({login}): {balance}", {
        "name": "{{ evil }}", "login": "1", "balance": "2.00 USD"})
    assert text == "Dear {{ evil }} (1): 2.00 USD"  # values are never re-parsed


@pytest.mark.parametrize("body", ["{{ settings.SECRET_KEY }}", "{% load static %}",
                                  "Hi {__class__}", "Hi {nmae}"])
def test_injection_attempts_are_a_form_error_and_nothing_is_sent(
        support_client, sandbox_platforms, mirrored, clean_sandbox, body, run_jobs_inline):
    mt4, _ = sandbox_platforms
    before = received(clean_sandbox, "MailSend")
    for action in ("preview", "send"):
        response = _post(support_client, mt4, body=body, **{action: "1"})
        assert response.status_code == 200
        assert response.context["form"].errors["body"]
        assert "preview" not in response.context
    assert received(clean_sandbox, "MailSend") == before
    assert not MailJob.objects.exists()


def test_oversized_body_is_refused(support_client, sandbox_platforms, mirrored):
    mt4, _ = sandbox_platforms
    response = _post(support_client, mt4, body="x" * (64 * 1024 + 1), send="1")
    assert "the limit is 65,536" in response.content.decode()
    assert not MailJob.objects.exists()


def test_preview_renders_the_first_recipient(support_client, sandbox_platforms, mirrored):
    mt4, _ = sandbox_platforms
    response = _post(support_client, mt4, body="Dear {name}, login {login}, balance {balance}",
                     preview="1")
    preview = response.context["preview"]
    assert preview == {"count": 3, "login": 100001, "subject": "Hello",
                       "body": "Dear Client 100001, login 100001, balance 1,234.50 USD"}
    assert not MailJob.objects.exists()


def test_selection_is_sent_as_a_tracked_job(support_client, sandbox_platforms, mirrored,
                                            clean_sandbox, run_jobs_inline,
                                            django_capture_on_commit_callbacks):
    mt4, _ = sandbox_platforms
    before = received(clean_sandbox, "MailSend")
    with django_capture_on_commit_callbacks(execute=True):
        response = _post(support_client, mt4, body="Dear {name}", send="1")
    job = MailJob.objects.get()
    assert response.status_code == 302
    assert response.url == reverse("dashboard:server-mail-job", args=[mt4.pk, job.pk])
    assert (job.state, job.recipients_total, job.recipients_sent) == ("succeeded", 3, 3)
    sent = MailRecipient.objects.filter(sent=True).values_list("login", flat=True)
    assert set(sent) == set(LOGINS)
    assert received(clean_sandbox, "MailSend") == before + 3  # one per distinct rendering
    assert {"mail.queue", "mail.send"} <= set(AuditEvent.objects.values_list("action", flat=True))
    mailbox = support_client.get(reverse("dashboard:server-mailbox", args=[mt4.pk]))
    assert "Dear Client 100002" in mailbox.content.decode()
    page = support_client.get(response.url)
    assert page.status_code == 200 and 'id="job-sent">3<' in page.content.decode()


def test_filtered_set_from_the_accounts_list(support_client, sandbox_platforms, mirrored,
                                             clean_sandbox, run_jobs_inline,
                                             django_capture_on_commit_callbacks):
    mt4, _ = sandbox_platforms
    MirrorAccountFactory(platform=mt4, login=100004, group="demo\\usd")
    before = received(clean_sandbox, "MailSend")
    with django_capture_on_commit_callbacks(execute=True):
        _post(support_client, mt4, audience="filtered", query="group=real*", logins="",
              send="1")
    job = MailJob.objects.get()
    assert job.recipients_total == 3 and job.state == "succeeded"
    assert received(clean_sandbox, "MailSend") == before + 1  # same text: one call


def test_logins_outside_scope_are_refused(support_client, sandbox_platforms, mirrored):
    mt4, _ = sandbox_platforms
    response = _post(support_client, mt4, logins="100001,999999", send="1")
    assert "Unknown logins, or outside your scope: 999999" in response.content.decode()
    assert not MailJob.objects.exists()


def test_recipients_go_out_in_chunks_of_ten_thousand(db):
    platform = TradePlatformFactory()
    job = MailJob.objects.create(platform=platform, subject="s", body_template="b")
    MailRecipient.objects.bulk_create(
        [MailRecipient(job=job, login=n) for n in range(1, MAIL_CHUNK + 2)])
    batches = server_ops._batches(job, list(job.recipients.all()))
    assert [len(logins) for _, _, logins in batches] == [MAIL_CHUNK, 1]


def test_news_goes_to_all_terminals_and_is_audited(support_client, sandbox_platforms,
                                                   clean_sandbox):
    mt4, _ = sandbox_platforms
    before = received(clean_sandbox, "NewsSend")
    response = support_client.post(reverse("dashboard:server-news", args=[mt4.pk]),
                                   {"topic": "Holiday hours", "body": "Closed Monday"})
    assert 'id="news-sent"' in response.content.decode()
    assert received(clean_sandbox, "NewsSend") == before + 1
    assert AuditEvent.objects.filter(action="news.send", outcome="ok").exists()


def test_dealer_may_not_send_messages(dealer_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    assert dealer_client.get(reverse("dashboard:server-mail", args=[mt4.pk])).status_code == 403


def test_sidecar_down_is_said_clearly_and_the_card_still_works(
        support_client, sandbox_platforms, mirrored, sidecar_down, run_jobs_inline,
        django_capture_on_commit_callbacks):
    mt4, _ = sandbox_platforms
    mailbox = support_client.get(reverse("dashboard:server-mailbox", args=[mt4.pk]))
    assert mailbox.status_code == 200
    assert "x86 sidecar is unreachable" in mailbox.content.decode()
    news = support_client.post(reverse("dashboard:server-news", args=[mt4.pk]),
                               {"topic": "T", "body": "B"})
    assert news.status_code == 200 and "x86 sidecar is unreachable" in news.content.decode()
    with django_capture_on_commit_callbacks(execute=True):
        _post(support_client, mt4, send="1")
    job = MailJob.objects.get()
    assert job.state == "failed" and job.recipients_failed == 3 and job.error
    card = support_client.get(reverse("dashboard:account", args=[mt4.pk, 100001]))
    assert card.status_code == 200


@pytest.mark.parametrize("data", [
    {"audience": "one", "login": str(2**63)},
    {"audience": "one", "login": "9" * 31},
    {"audience": "selection", "logins": f"100001, {2**63}"},
    {"audience": "selection", "logins": "100001 ²"},  # a digit to str.isdigit, not to int()
])
def test_a_login_beyond_the_database_range_is_a_form_error(support_client, sandbox_platforms,
                                                           mirrored, data):
    mt4, _ = sandbox_platforms
    events = AuditEvent.objects.count()
    response = _post(support_client, mt4, **data)
    assert response.status_code == 200
    field = "login" if data["audience"] == "one" else "logins"
    assert response.context["form"].errors[field]
    assert not MailJob.objects.exists() and AuditEvent.objects.count() == events
