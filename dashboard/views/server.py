"""Server pages of a platform: health, journal, messaging, plugins, external command, reports.

Every page that needs the x86 sidecar says so when the sidecar cannot be reached (the client
raises ``ConnectionNotMade`` / ``CircuitOpen``) and never answers 500.
"""

from __future__ import annotations

from django.http import Http404, HttpResponse, JsonResponse, QueryDict
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from dashboard.access import staff_required
from dashboard.exports import stream_csv, xlsx_bytes
from dashboard.rendering import render_page
from platforms.access.actions import action
from platforms.access.scope import can_see_personal_data, get_visible_platform
from platforms.audit import Actor
from platforms.client import CircuitOpen, ConnectionNotMade, ManagerApiError
from platforms.connections import client_for
from platforms.mirror.filters import AccountFilter
from platforms.mirror.selectors import mirror_accounts, mirror_state
from platforms.models import PlatformKind
from platforms.server import health as health_history
from platforms.server.forms import (
    AudienceKind,
    ExternalCommandForm,
    JournalForm,
    MailForm,
    NewsForm,
    ReportForm,
)
from platforms.server.models import MailJob, ReportJob
from platforms.server.placeholders import recipient_values, render_template
from platforms.server.reports import pnl_chart, request_report, table, workbook_sheets
from platforms.server.selectors import (
    journal_in_scope,
    visible_journal,
    visible_mail_jobs,
    visible_recipients,
)
from platforms.server.services import (
    create_mail_job,
    diff_params,
    plugin_values,
    send_external_command,
    send_news,
    update_plugin_params,
)


def api_error_text(exc: ManagerApiError, sidecar: bool = False) -> str:
    """What a page shows when the manager API (or its sidecar) did not do what was asked."""
    if isinstance(exc, ConnectionNotMade | CircuitOpen):
        where = "The x86 sidecar" if sidecar else "The trade server's WebAPI"
        return f"{where} is unreachable right now ({exc}). Nothing was sent; try again later."
    return str(exc)


def _mt4_only(platform) -> str:
    if platform.kind != PlatformKind.MT4:
        return "This page uses MT4 operations; MT5's WebAPI has no equivalent."
    return ""


# --------------------------------------------------------------------------- health


@never_cache
@require_GET
def healthz(request):
    """Monitoring probe, no login: 200 when every enabled platform answers, else 503."""
    healthy, report = health_history.healthz_report()
    return JsonResponse(report, status=200 if healthy else 503)


@require_GET
@action("view_health", label="the server health page")
def health_page(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    check = health_history.checked(platform)
    past = health_history.history(platform)
    return render_page(request, "dashboard/server/health.html", {
        "platform": platform, "check": check, "history": past,
        "chart": health_history.rtt_chart(past.samples),
        "state": mirror_state(platform),
        "mirror_age": health_history.mirror_age_seconds(platform),
        "realtime": health_history.realtime_status(platform),
        "queues": health_history.queue_depths(),
    })


# --------------------------------------------------------------------------- journal


@require_GET
@staff_required
def journal(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    form = JournalForm(request.GET)
    context = {"platform": platform, "form": form, "personal": can_see_personal_data(request.user)}
    context["error"] = _mt4_only(platform)
    if not context["error"] and form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            lines = client_for(platform).mt4.journal_request(
                data["start"], data["end"], mode=data["mode"] or None,
                filter=data["filter"] or None,
            )
        except ManagerApiError as exc:
            context["error"] = api_error_text(exc)
        else:
            lines = visible_journal(request.user, journal_in_scope(request.user, platform, lines),
                                    text=data["text"], server_filter=data["filter"])
            context["lines"] = lines[:5000]
            context["truncated"] = len(lines) > 5000
    return render_page(request, "dashboard/server/journal.html", context, partial="results")


# --------------------------------------------------------------------------- messaging


def _sidecar_call(context: dict, func, *args, **kwargs):
    """Run a sidecar read; on failure put a clear message in ``context["error"]``."""
    try:
        return func(*args, **kwargs)
    except ManagerApiError as exc:
        context["error"] = api_error_text(exc, sidecar=True)
        return None


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
    context = {"platform": platform, "form": form, "error": _mt4_only(platform),
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
    context = {"platform": platform, "error": _mt4_only(platform)}
    if not context["error"]:
        mails = _sidecar_call(context, client_for(platform).mt4.mails_request)
        context["mails"] = list(reversed(mails or []))[:500]
    return render_page(request, "dashboard/server/mailbox.html", context)


@require_http_methods(["GET", "POST"])
@action("send_messages", label="send news")
def news(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    form = NewsForm(request.POST or None)
    context = {"platform": platform, "form": form, "error": _mt4_only(platform)}
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


# --------------------------------------------------------------------------- plugins


@require_GET
@action("manage_plugins", label="the plugin list")
def plugin_list(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    context = {"platform": platform, "error": _mt4_only(platform)}
    if not context["error"]:
        context["plugins"] = _sidecar_call(context, client_for(platform).mt4.plugins_get)
    return render_page(request, "dashboard/server/plugins.html", context)


@require_http_methods(["GET", "POST"])
@action("manage_plugins", label="review and apply plugin parameters")
def plugin_detail(request, pk: int, pos: int):
    """Parameters of one plugin; POST "review" shows the diff, POST "apply" sends it."""
    platform = get_visible_platform(request.user, pk)
    context = {"platform": platform, "pos": pos, "error": _mt4_only(platform)}
    if context["error"]:
        return render_page(request, "dashboard/server/plugin.html", context)
    param = _sidecar_call(context, client_for(platform).mt4.plugin_param_get, pos)
    if param is None:
        return render_page(request, "dashboard/server/plugin.html", context)
    current = plugin_values(param)
    context.update(plugin=param.plugin, values=current)
    if request.method == "POST":
        proposed = {name: request.POST.get(f"param-{i}", current[name])
                    for i, name in enumerate(current)}
        changes = diff_params(current, proposed)
        context["values"] = proposed
        if not changes:
            context["notice"] = "Nothing changed; nothing was sent."
        elif "apply" in request.POST:
            try:
                applied = update_plugin_params(actor=Actor.of(request), platform=platform,
                                               pos=pos, new_values=proposed)
            except ManagerApiError as exc:
                context["error"] = api_error_text(exc, sidecar=True)
            else:
                context["applied"] = applied
                context["values"] = proposed
        else:
            context["changes"] = changes
    return render_page(request, "dashboard/server/plugin.html", context)


@require_http_methods(["GET", "POST"])
@action("manage_plugins", label="send an external command")
def external_command(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    form = ExternalCommandForm(request.POST or None)
    context = {"platform": platform, "form": form, "error": _mt4_only(platform)}
    if request.method == "POST" and not context["error"] and form.is_valid():
        try:
            context["reply"] = send_external_command(
                actor=Actor.of(request), platform=platform, data=form.cleaned_data["data"])
        except ManagerApiError as exc:
            context["error"] = api_error_text(exc, sidecar=True)
    return render_page(request, "dashboard/server/command.html", context)


# --------------------------------------------------------------------------- reports


@require_http_methods(["GET", "POST"])
@action("view_reports", label="request a report")
def report_page(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    form = ReportForm(request.POST or None)
    context = {"platform": platform, "form": form, "error": _mt4_only(platform),
               "jobs": ReportJob.objects.filter(platform=platform,
                                                requested_by=request.user)[:20]}
    if request.method == "POST" and not context["error"] and form.is_valid():
        data = form.cleaned_data
        job = request_report(actor=Actor.of(request), platform=platform,
                             date_from=data["date_from"], date_to=data["date_to"],
                             scope=data["scope"])
        return redirect("dashboard:server-report", pk=platform.pk, job_id=job.pk)
    return render_page(request, "dashboard/server/reports.html", context)


def _own_report(request, platform, job_id):
    return get_object_or_404(ReportJob, platform=platform, pk=job_id, requested_by=request.user)


@require_GET
@action("view_reports", label="a report")
def report_detail(request, pk: int, job_id: int):
    platform = get_visible_platform(request.user, pk)
    job = _own_report(request, platform, job_id)
    context = {"platform": platform, "job": job, "result": job.result,
               "chart": pnl_chart(job.result) if job.result else None}
    return render_page(request, "dashboard/server/report.html", context, partial="job")


@require_GET
@action("view_reports", label="a report's download")
def report_export(request, pk: int, job_id: int, fmt: str):
    platform = get_visible_platform(request.user, pk)
    job = _own_report(request, platform, job_id)
    if not job.result or fmt not in ("csv", "xlsx"):
        raise Http404("No such download")
    name = f"report-{platform.pk}-{job.date_from}-{job.date_to}-{job.scope}"
    if fmt == "csv":
        header, rows = table(job.result)
        return stream_csv(request, name, header, rows)
    response = HttpResponse(
        xlsx_bytes(workbook_sheets(job.result)),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response
