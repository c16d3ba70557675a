"""Daily reports: requested on the reporting queue, read back by their requester only, exported
as CSV or XLSX."""

from __future__ import annotations

from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.views.decorators.http import require_GET, require_http_methods

from dashboard.exports import stream_csv, wants_raw, xlsx_bytes
from dashboard.rendering import render_page
from dashboard.views.server.common import mt4_only_notice
from platforms.access.actions import action
from platforms.access.scope import get_visible_platform
from platforms.audit import Actor
from platforms.server.forms import (
    ReportForm,
)
from platforms.server.models import ReportJob
from platforms.server.reports import pnl_chart, request_report, table, workbook_sheets


@require_http_methods(["GET", "POST"])
@action("view_reports", label="request a report")
def report_page(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    form = ReportForm(request.POST or None)
    context = {"platform": platform, "form": form, "error": mt4_only_notice(platform),
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
        xlsx_bytes(workbook_sheets(job.result), raw=wants_raw(request)),
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    response["Content-Disposition"] = f'attachment; filename="{name}.{fmt}"'
    return response
