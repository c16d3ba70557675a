"""Mail to accounts (compose, job progress), the server mailbox and news: the sidecar's
messaging."""

from __future__ import annotations

from django.http import QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_GET, require_http_methods

from dashboard.rendering import render_page
from dashboard.views.server.common import api_error_text, mt4_only_notice, sidecar_read
from platforms.access.actions import action
from platforms.access.scope import can_see_personal_data, get_visible_platform
from platforms.audit import Actor
from platforms.client import ManagerApiError
from platforms.connections import client_for
from platforms.mirror.filters import AccountFilter
from platforms.mirror.selectors import mirror_accounts
from platforms.server.forms import (
    AudienceKind,
    MailForm,
    NewsForm,
)
from platforms.server.models import MailJob
from platforms.server.placeholders import recipient_values, render_template
from platforms.server.selectors import (
    visible_mail_jobs,
    visible_recipients,
)
from platforms.server.services import (
    create_mail_job,
    send_news,
)
from platforms.timezones import server_to_utc


def _mail_accounts(request, platform, data) -> tuple[list, str]:
    """The mirrored accounts a mail goes to (always inside the user's scope) and a label."""
    accounts = mirror_accounts(request.user, platform)
    if data["audience"] == AudienceKind.FILTERED:
        query = data["query"].lstrip("?")
        qs = AccountFilter(QueryDict(query), queryset=accounts,
                           personal=can_see_personal_data(request.user)).qs
        return list(qs.only("login", "name", "balance", "currency")), f"accounts list ?{query}"
    wanted = [data["login"]] if data["audience"] == AudienceKind.ONE else data["logins"]
    found = list(accounts.filter(login__in=wanted).only("login", "name", "balance", "currency"))
    missing = sorted(set(wanted) - {a.login for a in found})
    if missing:
        shown = ", ".join(map(str, missing[:10])) + (" …" if len(missing) > 10 else "")
        raise ValueError(f"Unknown logins, or outside your scope: {shown}.")
    return found, "logins " + ",".join(map(str, wanted[:50]))


@require_http_methods(["GET", "POST"])
@action("send_messages", label="compose and send mail to accounts")
def mail_compose(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    initial = {}
    if request.GET.get("query") is not None:
        initial = {"audience": "filtered", "query": request.GET["query"]}
    elif request.GET.get("login"):
        initial = {"audience": "one", "login": request.GET["login"]}
    form = MailForm(request.POST or None, initial=initial)
    context = {"platform": platform, "form": form, "error": mt4_only_notice(platform),
               "jobs": visible_mail_jobs(request.user,
                                         MailJob.objects.filter(platform=platform)[:20])}
    if request.method == "POST" and not context["error"] and form.is_valid():
        data = form.cleaned_data
        try:
            accounts, audience = _mail_accounts(request, platform, data)
        except ValueError as exc:
            form.add_error(None, str(exc))
        else:
            if not accounts:
                form.add_error(None, "No account matches; nothing to send.")
            elif "preview" in request.POST:
                sample = accounts[0]
                values = recipient_values(sample)
                context["preview"] = {
                    "count": len(accounts), "login": sample.login,
                    "subject": render_template(data["subject"], values),
                    "body": render_template(data["body"], values),
                }
            else:
                job = create_mail_job(
                    actor=Actor.of(request), platform=platform, accounts=accounts,
                    subject=data["subject"], body=data["body"],
                    sender_name=data["sender_name"], audience=audience)
                return redirect("dashboard:server-mail-job", pk=platform.pk, job_id=job.pk)
    return render_page(request, "dashboard/server/mail.html", context)


@require_GET
@action("send_messages", label="a mail job's progress")
def mail_job(request, pk: int, job_id: int):
    platform = get_visible_platform(request.user, pk)
    job = get_object_or_404(MailJob, platform=platform, pk=job_id)
    failed = visible_recipients(request.user, job.recipients.filter(sent=False)[:200])
    return render_page(request, "dashboard/server/mail_job.html",
                       {"platform": platform, "job": visible_mail_jobs(request.user, [job])[0],
                        "failed": failed}, partial="job")


@require_GET
@action("send_messages", label="the server mailbox")
def mailbox(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    context = {"platform": platform, "error": mt4_only_notice(platform)}
    if not context["error"]:
        mails = sidecar_read(context, client_for(platform).mt4.mails_request)
        minutes = platform.utc_offset_minutes  # mail times are the server's clock
        context["mails"] = [(server_to_utc(m.time, minutes), m)
                            for m in list(reversed(mails or []))[:500]]
    return render_page(request, "dashboard/server/mailbox.html", context)


@require_http_methods(["GET", "POST"])
@action("send_messages", label="send news")
def news(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    form = NewsForm(request.POST or None)
    context = {"platform": platform, "form": form, "error": mt4_only_notice(platform)}
    if request.method == "POST" and not context["error"] and form.is_valid():
        data = form.cleaned_data
        try:
            send_news(actor=Actor.of(request), platform=platform, topic=data["topic"],
                      body=data["body"], category=data["category"],
                      high_priority=data["high_priority"])
        except ManagerApiError as exc:
            context["error"] = api_error_text(exc, sidecar=True)
        else:
            context["sent"] = data["topic"]
            context["form"] = NewsForm()
    return render_page(request, "dashboard/server/news.html", context)
