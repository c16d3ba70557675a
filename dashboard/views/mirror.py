"""The snapshot page of a platform: the mirror's age, the last runs with a live progress bar,
"Run now", and CSV exports of the rows a run read (the lists export from their own pages)."""

from __future__ import annotations

from django.http import Http404, HttpResponseBadRequest, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST
from django_htmx.http import HttpResponseClientRedirect

from dashboard.access import staff_required
from dashboard.exports import csv_response
from dashboard.rendering import render_page
from dashboard.timezones import display_zone
from platforms.access.actions import action
from platforms.access.scope import PERSONAL_FIELDS, can_see_personal_data, get_visible_platform
from platforms.audit import Actor
from platforms.mirror.filters import AccountFilter, ClosedTradeFilter, OpenTradeFilter
from platforms.mirror.models import SnapshotKind, SnapshotRun
from platforms.mirror.runs import active_run, live_progress, request_run
from platforms.mirror.selectors import (
    mirror_accounts,
    mirror_closed_trades,
    mirror_open_trades,
    mirror_state,
)

TEMPLATE = "dashboard/mirror/snapshots.html"
RUNS_SHOWN = 20
EXPORTS = {
    # table: (selector, filterset, columns)
    "accounts": (mirror_accounts, AccountFilter, [
        "login", "group", "name", "email", "phone", "country", "city", "zip_code", "address",
        "currency", "leverage", "enabled", "read_only", "last_ip", "registered_at",
        "last_access_at", "balance", "credit", "equity", "margin", "free_margin",
        "margin_level", "margin_state", "last_seen_at"]),
    "open-trades": (mirror_open_trades, OpenTradeFilter, [
        "ticket", "login", "group", "symbol", "command", "is_pending", "volume_lots",
        "open_time", "open_price", "sl", "tp", "current_price", "commission", "swap", "profit",
        "comment", "state", "last_seen_at"]),
    "closed-trades": (mirror_closed_trades, ClosedTradeFilter, [
        "ticket", "login", "group", "symbol", "command", "volume_lots", "open_time",
        "open_price", "close_time", "close_price", "sl", "tp", "commission", "swap", "profit",
        "comment", "state", "entry", "last_seen_at"]),
}


def _columns(request, table: str) -> list[str]:
    columns = EXPORTS[table][2]
    if can_see_personal_data(request.user):
        return columns
    return [c for c in columns if c not in PERSONAL_FIELDS]


@require_GET
@staff_required
def snapshot_page(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    runs = list(SnapshotRun.objects.filter(platform=platform)
                .select_related("requested_by")[:RUNS_SHOWN])
    for run in runs:
        run.live = live_progress(run)
    context = {
        "platform": platform,
        "state": mirror_state(platform),
        "runs": runs,
        "kinds": _kinds(platform),
        "can_run": request.user.has_perm("platforms.run_snapshots"),
        "active": active_run(platform),
    }
    return render_page(request, TEMPLATE, context, partial="runs")


@require_GET
@staff_required
def snapshot_run_row(request, pk: int, run_id: int):
    """One run's row (polled every second while the run is queued or running)."""
    platform = get_visible_platform(request.user, pk)
    run = get_object_or_404(SnapshotRun.objects.select_related("requested_by"),
                            platform=platform, pk=run_id)
    run.live = live_progress(run)
    return render_page(request, TEMPLATE, {"platform": platform, "run": run,
                                           "state": mirror_state(platform)},
                       partial="run-row")


@require_POST
@action("run_snapshots", label="start a snapshot run (snapshot page)")
def snapshot_run_now(request, pk: int):
    platform = get_visible_platform(request.user, pk)
    kind = request.POST.get("kind", SnapshotKind.INCREMENTAL)
    if kind not in _kinds(platform):
        return HttpResponseBadRequest("Unknown snapshot kind.")
    request_run(platform, kind, actor=Actor.of(request))
    url = reverse("dashboard:snapshots", args=[platform.pk])
    if request.htmx:
        return HttpResponseClientRedirect(url)
    return HttpResponseRedirect(url)


@require_GET
@staff_required
def snapshot_run_export(request, pk: int, run_id: int, table: str):
    """The rows run ``run_id`` read (stamped with its ``last_seen_at``) as CSV."""
    if table not in EXPORTS:
        raise Http404("No such list")
    platform = get_visible_platform(request.user, pk)
    run = get_object_or_404(SnapshotRun, platform=platform, pk=run_id)
    selector = EXPORTS[table][0]
    rows = selector(request.user, platform).filter(last_seen_at=run.stamp)
    if run.stamp is None:
        rows = rows.none()
    return csv_response(request, f"{platform.name}-run{run.pk}-{table}".replace(" ", "_"),
                        rows.order_by(rows.model._meta.ordering[-1]), _columns(request, table),
                        zone=display_zone(request, platform))


def _kinds(platform) -> list[str]:
    if platform.kind == "MT5":  # MT5 has no sync or history calls: every run reads in full
        return [SnapshotKind.FULL]
    return [SnapshotKind.INCREMENTAL, SnapshotKind.FULL, SnapshotKind.HISTORY]
