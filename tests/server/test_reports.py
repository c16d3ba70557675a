"""Daily-report jobs: figures reconcile with the mirrored closed trades; CSV and XLSX."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from platforms.connections import client_for
from platforms.server import reports
from platforms.server.models import ReportJob
from platforms.server.reports import day_bounds
from tests.factories import MirrorAccountFactory, MirrorClosedTradeFactory

LOGINS = [100001, 100002, 100003, 100004, 100005]


@pytest.fixture
def run_reports_inline(run_tasks_inline):
    """A queued report job runs in this process (the worker's path: the task itself)."""


@pytest.fixture
def mirrored_history(sandbox_platforms):
    """The sandbox's closed history of a few accounts, copied into the mirror (factories)."""
    mt4, _ = sandbox_platforms
    client = client_for(mt4)
    for login in LOGINS:
        user = client.mt4.user_record_get(login)
        MirrorAccountFactory(platform=mt4, login=login, group=user.group)
        for t in client.mt4.trades_user_history(login):
            MirrorClosedTradeFactory(platform=mt4, login=login, group=user.group,
                                     ticket=t.order, command=t.trade_command or "",
                                     profit=t.profit, close_time=t.close_time)
    return mt4


def _generate(client, platform, start, end, scope="account"):
    return client.post(reverse("dashboard:server-reports", args=[platform.pk]),
                       {"date_from": start.isoformat(), "date_to": end.isoformat(),
                        "scope": scope})


def test_report_figures_equal_the_mirrored_closed_trades(
        admin_role_client, mirrored_history, run_reports_inline,
        django_capture_on_commit_callbacks):
    mt4 = mirrored_history
    end = timezone.now().date()
    start = end - timedelta(days=60)
    with django_capture_on_commit_callbacks(execute=True):
        response = _generate(admin_role_client, mt4, start, end)
    job = ReportJob.objects.get()
    assert response.status_code == 302 and job.state == "succeeded", job.error
    totals = job.result["totals"]
    expected = reports.mirror_summary(mt4, *day_bounds(start, end), LOGINS)
    assert expected["deposit"] or expected["client_pnl"], "the range holds some history"
    assert totals["deposit"] == pytest.approx(expected["deposit"], abs=0.05)
    assert totals["client_pnl"] == pytest.approx(expected["client_pnl"], abs=0.05)
    assert totals["broker_pnl"] == pytest.approx(-expected["client_pnl"], abs=0.05)
    for row in job.result["rows"]:  # and per account
        mine = reports.mirror_summary(mt4, *day_bounds(start, end), [row["login"]])
        assert row["client_pnl"] == pytest.approx(mine["client_pnl"], abs=0.05)
    winners = job.result["top_winners"]
    assert winners == sorted(winners, key=lambda a: -a["client_pnl"]) and len(winners) <= 10
    page = admin_role_client.get(response.url)
    assert page.status_code == 200 and 'data-chart="report-chart-data"' in page.content.decode()


def test_group_report_and_downloads(admin_role_client, mirrored_history, run_reports_inline,
                                    django_capture_on_commit_callbacks):
    from openpyxl import load_workbook

    mt4 = mirrored_history
    end = timezone.now().date()
    with django_capture_on_commit_callbacks(execute=True):
        _generate(admin_role_client, mt4, end - timedelta(days=30), end, scope="group")
    job = ReportJob.objects.get()
    assert sum(r["accounts"] for r in job.result["rows"]) == len(LOGINS)
    csv = admin_role_client.get(
        reverse("dashboard:server-report-export", args=[mt4.pk, job.pk, "csv"]))
    body = b"".join(csv.streaming_content)
    assert body.startswith(b"\xef\xbb\xbf")  # the BOM: Excel then reads UTF-8
    lines = body.decode("utf-8-sig").splitlines()
    assert lines[0] == "Group,Accounts,Net deposits,Clients' closed P&L,Broker P&L"
    assert len(lines) == 1 + len(job.result["rows"])
    raw = admin_role_client.get(
        reverse("dashboard:server-report-export", args=[mt4.pk, job.pk, "csv"]), {"raw": "1"})
    raw_lines = b"".join(raw.streaming_content).decode("utf-8-sig").splitlines()
    assert raw_lines[0] == "group,accounts,deposit,client_pnl,broker_pnl"
    xlsx = admin_role_client.get(reverse("dashboard:server-report-export",
                                    args=[mt4.pk, job.pk, "xlsx"]))
    book = load_workbook(io.BytesIO(xlsx.content))
    assert book.sheetnames == ["Report", "By day", "Top winners", "Top losers"]
    assert book["Report"].max_row == 1 + len(job.result["rows"])
    assert [c.value for c in book["Report"][1]] == lines[0].split(",")
    assert book["By day"]["A1"].value == "Day"


def test_bad_range_is_a_clear_error(admin_role_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    end = timezone.now().date()
    response = _generate(admin_role_client, mt4, end, end - timedelta(days=1))
    assert "must not be after the last day" in response.content.decode()
    assert not ReportJob.objects.exists()


def test_reports_need_view_reports(support_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    url = reverse("dashboard:server-reports", args=[mt4.pk])
    assert support_client.get(url).status_code == 403


def test_a_failing_server_marks_the_job_failed(admin_role_client, mirrored_history, clean_sandbox,
                                               run_reports_inline,
                                               django_capture_on_commit_callbacks):
    mt4 = mirrored_history
    clean_sandbox.control("POST", "/faults", json={"operation": "DailyReportsRequest",
                                                   "error": "MT4Error"})
    end = timezone.now().date()
    with django_capture_on_commit_callbacks(execute=True):
        response = _generate(admin_role_client, mt4, end - timedelta(days=3), end)
    job = ReportJob.objects.get()
    assert job.state == "failed" and job.error
    assert admin_role_client.get(response.url).status_code == 200


@pytest.mark.parametrize("task", ["send_mail_job", "build_report", "sample_health"])
def test_server_tasks_run_on_the_reporting_queue(task):
    from dashboard.celery import app

    route = app.amqp.router.route({}, f"platforms.server_tasks.{task}")
    assert route["queue"].name == "reporting"
    app.loader.import_default_modules()  # what a worker does at start: autodiscovery
    assert f"platforms.server_tasks.{task}" in app.tasks
