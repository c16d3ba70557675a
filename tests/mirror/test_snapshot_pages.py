"""The snapshot page, "Run now", the live progress row and the CSV exports."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from platforms.mirror.models import SnapshotRun, SnapshotState
from platforms.models import AuditEvent
from platforms.sandbox.process import ROOT
from tests.factories import (
    MirrorAccountFactory,
    MirrorClosedTradeFactory,
    MirrorOpenTradeFactory,
    SnapshotRunFactory,
    TradePlatformFactory,
)
from tests.support.staff import make_staff
from tests.workers import worker_env

pytestmark = pytest.mark.django_db


@pytest.fixture
def platform():
    return TradePlatformFactory(name="Live MT4")


@pytest.fixture
def operator(client, platform):
    client.force_login(make_staff(platform, perms=("run_snapshots", "view_personal_data")))
    return client


def read_csv(response) -> list[dict]:
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    body = b"".join(response.streaming_content).decode("utf-8-sig")  # after the BOM
    return list(csv.DictReader(io.StringIO(body)))


def test_page_shows_runs_and_the_age_of_the_mirror(operator, platform):
    from platforms.mirror.models import MirrorState

    stamp = timezone.now() - timedelta(minutes=3)
    MirrorState.objects.create(platform=platform, accounts_as_of=stamp, trades_as_of=stamp)
    SnapshotRunFactory(platform=platform, state=SnapshotState.FAILED,
                       error="UsersSnapshot: could not connect to 127.0.0.1", activity_id="ab12")
    page = operator.get(reverse("dashboard:snapshots", args=[platform.pk])).content.decode()
    assert "Data as of" in page and "3\xa0minutes ago" in page
    assert "could not connect" in page and "activity ab12" in page
    assert 'id="run-now"' in page


def test_running_row_polls_every_second_and_stops_when_done(operator, platform):
    run = SnapshotRunFactory(platform=platform, state=SnapshotState.RUNNING,
                             progress_done=40, progress_total=100, phase="writing")
    url = reverse("dashboard:snapshot-run-row", args=[platform.pk, run.pk])
    row = operator.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "<html" not in row
    assert 'hx-trigger="every 1s"' in row and 'value="40"' in row and 'max="100"' in row
    run.state = SnapshotState.SUCCEEDED
    run.save()
    row = operator.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "hx-trigger" not in row and 'data-state="succeeded"' in row


def test_run_now_is_audited_and_enqueued_on_commit(operator, platform,
                                                   django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        response = operator.post(reverse("dashboard:snapshot-run", args=[platform.pk]),
                                 {"kind": "full"}, HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    assert response["HX-Redirect"] == reverse("dashboard:snapshots", args=[platform.pk])
    run = SnapshotRun.objects.get(platform=platform)
    assert (run.kind, run.trigger, run.state) == ("full", "staff", SnapshotState.QUEUED)
    assert run.requested_by.username == response.wsgi_request.user.username
    event = AuditEvent.objects.get(action="snapshot.run")
    assert event.platform == platform and event.after == {"run": run.pk, "kind": "full"}
    assert len(callbacks) == 1  # the task is sent only once the run row is committed

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        operator.post(reverse("dashboard:snapshot-run", args=[platform.pk]), {"kind": "full"})
    assert SnapshotRun.objects.filter(platform=platform).count() == 1  # one active run at a time
    assert callbacks == []


@pytest.mark.django_db(transaction=True)
def test_a_process_that_never_loads_the_migrations_keeps_the_schedules_in_step():
    """Web, worker and beat processes never import the migrations: the app itself connects
    the receivers that create a saved platform's schedules and delete a deleted one's."""
    from django_celery_beat.models import PeriodicTask

    script = (
        "import django; django.setup()\n"
        "import sys\n"
        "from django.db.migrations.loader import MIGRATIONS_MODULE_NAME\n"
        "from platforms.models import TradePlatform\n"
        "from tests.factories import TradePlatformFactory\n"
        "kept = TradePlatformFactory(name='Saved elsewhere')\n"
        "gone = TradePlatformFactory(name='Deleted elsewhere')\n"
        "TradePlatform.objects.filter(pk=gone.pk).delete()\n"
        "assert not any(m.startswith('platforms.' + MIGRATIONS_MODULE_NAME) for m in sys.modules)\n"
        "print(kept.pk, gone.pk)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=worker_env({}),
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    kept, gone = map(int, done.stdout.split())
    assert PeriodicTask.objects.filter(name__contains=f"platform #{kept}").count() == 3
    assert not PeriodicTask.objects.filter(name__contains=f"platform #{gone}").exists()


def test_run_now_needs_the_permission_and_a_post(client, platform):
    client.force_login(make_staff(platform))
    url = reverse("dashboard:snapshot-run", args=[platform.pk])
    assert client.post(url, {"kind": "full"}).status_code == 403
    assert client.get(url).status_code == 405
    assert not SnapshotRun.objects.exists()


def test_run_now_rejects_an_unknown_kind(operator, platform):
    url = reverse("dashboard:snapshot-run", args=[platform.pk])
    assert operator.post(url, {"kind": "everything"}).status_code == 400


def test_platforms_outside_the_users_scope_are_404(client, platform):
    other = TradePlatformFactory(name="Other")
    client.force_login(make_staff(platform, perms=("run_snapshots",)))
    run = SnapshotRunFactory(platform=other)
    for url in (
        reverse("dashboard:snapshots", args=[other.pk]),
        reverse("dashboard:snapshot-run-row", args=[other.pk, run.pk]),
        reverse("dashboard:accounts-export", args=[other.pk]),
        reverse("dashboard:snapshot-run-export", args=[other.pk, run.pk, "accounts"]),
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("dashboard:snapshot-run", args=[other.pk]),
                       {"kind": "full"}).status_code == 404
    assert not SnapshotRun.objects.filter(platform=other, trigger="staff").exists()


def test_account_export_streams_the_filtered_rows(operator, platform):
    MirrorAccountFactory(platform=platform, login=1, country="Germany")
    MirrorAccountFactory(platform=platform, login=2, country="France", name="=HYPERLINK()")
    MirrorAccountFactory(platform=platform, login=3, country="France")
    MirrorAccountFactory(login=4, country="France")  # another platform
    response = operator.get(reverse("dashboard:accounts-export", args=[platform.pk]),
                            {"country": "france"})
    rows = read_csv(response)
    assert [r["Login"] for r in rows] == ["2", "3"]
    assert rows[0]["Name"] == "'=HYPERLINK()"  # no formula injection
    assert "Email" in rows[0]


def test_exports_hide_personal_data_without_the_permission(client, platform):
    client.force_login(make_staff(platform))
    MirrorAccountFactory(platform=platform)
    rows = read_csv(client.get(reverse("dashboard:accounts-export", args=[platform.pk])))
    assert rows and "Email" not in rows[0] and "Phone" not in rows[0]


def test_trade_exports_respect_group_scope_and_filters(client, platform):
    client.force_login(make_staff(platform, masks="real\\*"))
    MirrorOpenTradeFactory(platform=platform, ticket=11, symbol="EURUSD")
    MirrorOpenTradeFactory(platform=platform, ticket=12, symbol="XAUUSD")
    MirrorOpenTradeFactory(platform=platform, ticket=13, symbol="EURUSD", group="demo\\usd")
    MirrorClosedTradeFactory(platform=platform, ticket=21, command="Balance")
    MirrorClosedTradeFactory(platform=platform, ticket=22, command="Sell")
    open_rows = read_csv(client.get(
        reverse("dashboard:trades-export", args=[platform.pk]),
        {"symbol": "eurusd"}))
    assert [r["Ticket"] for r in open_rows] == ["11"]
    closed_rows = read_csv(client.get(
        reverse("dashboard:history-export", args=[platform.pk]),
        {"command": "Balance"}))
    assert [r["Ticket"] for r in closed_rows] == ["21"]


def test_run_export_lists_the_rows_that_run_read(operator, platform):
    stamp = timezone.now()
    run = SnapshotRunFactory(platform=platform, state=SnapshotState.SUCCEEDED, stamp=stamp)
    MirrorAccountFactory(platform=platform, login=7, last_seen_at=stamp)
    MirrorAccountFactory(platform=platform, login=8, last_seen_at=stamp - timedelta(hours=1))
    rows = read_csv(operator.get(reverse("dashboard:snapshot-run-export",
                                         args=[platform.pk, run.pk, "accounts"])))
    assert [r["Login"] for r in rows] == ["7"]


def test_admin_lists_runs_with_filters_and_runs_a_platform_now(admin_client, platform,
                                                               django_capture_on_commit_callbacks):
    SnapshotRunFactory(platform=platform, state=SnapshotState.FAILED, error="sidecar down")
    page = admin_client.get(reverse("admin:platforms_snapshotrun_changelist"),
                            {"state__exact": "failed"})
    assert page.status_code == 200 and b"Failed" in page.content
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        admin_client.post(reverse("admin:platforms_tradeplatform_changelist"), {
            "action": "run_full_snapshot", "_selected_action": [platform.pk]})
    run = SnapshotRun.objects.get(platform=platform, trigger="staff")
    assert run.kind == "full" and len(callbacks) == 1
    assert AuditEvent.objects.filter(action="snapshot.run", platform=platform).exists()


def test_saving_a_platform_creates_its_editable_schedules(platform,
                                                          django_capture_on_commit_callbacks):
    from django_celery_beat.models import PeriodicTask

    with django_capture_on_commit_callbacks(execute=True):
        mt4 = TradePlatformFactory(name="Scheduled MT4")
    tasks = {t.name: t for t in PeriodicTask.objects.filter(name__contains=f"#{mt4.pk}")}
    assert len(tasks) == 3
    incremental = next(t for n, t in tasks.items() if "incremental" in n)
    assert incremental.interval.every == 1 and incremental.queue == "reporting"
    assert incremental.task == "platforms.tasks.snapshot_scheduled"
    full = next(t for n, t in tasks.items() if "full" in n)
    assert full.crontab.hour == "2"
    from django_celery_beat.models import IntervalSchedule

    incremental.interval = IntervalSchedule.objects.create(every=3, period="minutes")
    incremental.save()  # an admin's edit survives the next save of the platform
    with django_capture_on_commit_callbacks(execute=True):
        mt4.enabled = False
        mt4.save()
    incremental.refresh_from_db()
    assert incremental.enabled is False and incremental.interval.every == 3
