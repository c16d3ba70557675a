"""Net exposure: clients' net position per symbol minus the coverage held at the LPs.

Thin: scope and role come from ``platforms.coverage.selectors.exposure_platforms`` (404 for a
user without the risk/dealer/admin role or outside the platform grant), the figures from
``exposure_report`` (mirror + the stream's recent trades + cached bridge reads, never the
network); stale coverage figures are refreshed by a background poll on the ``reporting`` queue.
The page re-reads its table partial when the live socket says the exposure changed
(``platforms.live``: ``exposure_group``), polling only while the socket is down.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied
from django.http import Http404
from django.views.decorators.http import require_GET, require_http_methods

from dashboard.access import staff_required
from dashboard.exports import stream_csv
from dashboard.rendering import render_page
from dashboard.views.trading import confirm_and_submit, forbidden_page
from platforms.access.actions import action as declare_action
from platforms.audit import Actor
from platforms.coverage.forms import HedgeForm
from platforms.coverage.models import CoverageAccount
from platforms.coverage.selectors import ExposureReport, exposure_platforms, exposure_report
from platforms.coverage.services import request_coverage_polls
from platforms.trading.drafts import prepare_operation
from platforms.trading.kinds import COVERAGE_KINDS, spec_for

logger = logging.getLogger(__name__)


def _report(request, pk: int | None) -> ExposureReport:
    report = exposure_report(request.user, exposure_platforms(request.user, pk))
    if report.stale:
        try:
            request_coverage_polls(report.stale)
        except Exception:  # a broker outage must not take the page down: the age shows it
            logger.warning("could not queue coverage polls", exc_info=True)
    return report


def _chart(report: ExposureReport) -> dict:
    symbols = [r.symbol for r in report.rows]
    bar = {"type": "bar", "x": symbols}
    return {
        "data": [
            {**bar, "y": [round(r.client_net, 2) for r in report.rows], "name": "Clients' net"},
            {**bar, "y": [round(r.coverage_net, 2) for r in report.rows], "name": "Coverage"},
            {**bar, "y": [round(r.net, 2) for r in report.rows], "name": "Net exposure"},
        ],
        "layout": {"height": 260, "barmode": "group",
                   "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
                   "yaxis": {"title": {"text": "lots"}}},
    }


@require_GET
@staff_required
def exposure_page(request, pk: int | None = None):
    """Every visible platform together, or platform ``pk``; the table re-reads itself on the
    socket's "exposure changed" frames."""
    report = _report(request, pk)
    context = {
        "report": report,
        "platform": report.platforms[0] if pk is not None else None,
        "coverage_rows": [
            {"snapshot": s, "lots": [r.coverage.get(s.account_pk, 0.0) for r in report.rows]}
            for s in report.coverage
        ],
        "chart": _chart(report),
        "can_hedge": pk is not None and request.user.has_perm("platforms.operate_trades"),
    }
    return render_page(request, "dashboard/coverage/exposure.html", context,
                       partial="exposure-table")


CSV_HEADER = ["symbol", "client_buy_lots", "client_sell_lots", "client_net_lots",
              "client_notional", "coverage_net_lots", "net_exposure_lots",
              "net_exposure_notional", "client_profit", "coverage_profit", "net_profit",
              "currency"]


@require_GET
@staff_required
def exposure_export(request, pk: int | None = None):
    report = _report(request, pk)
    accounts = [s.account_pk for s in report.coverage]
    header = CSV_HEADER + [f"coverage_{s.login}_lots" for s in report.coverage]
    rows = (
        [r.symbol, r.client_buy, r.client_sell, r.client_net, round(r.client_notional, 2),
         r.coverage_net, r.net, round(r.net_notional, 2), round(r.client_profit, 2),
         round(r.coverage_profit, 2), round(r.net_profit, 2), report.currency,
         *[r.coverage.get(a, 0.0) for a in accounts]]
        for r in report.rows
    )
    name = f"net-exposure-{pk}" if pk is not None else "net-exposure"
    return stream_csv(request, name, header, rows)


HEDGE_KINDS = {action: kind for kind, action in COVERAGE_KINDS.items()}


def hedge_permission(kwargs: dict) -> tuple[str, ...]:
    """A hedge is a trade task of a coverage kind: that kind's permission."""
    if kwargs["action"] not in HEDGE_KINDS:
        raise Http404("No such hedge action")
    return (spec_for(HEDGE_KINDS[kwargs["action"]]).permission,)


@require_http_methods(["GET", "POST"])
@declare_action(hedge_permission, label="open, modify or close a coverage hedge (exposure page)")
def hedge(request, pk: int, action: str):
    """Open, modify or close a coverage hedge as a trade task: the operation pages' one path
    (``prepare_operation``, then their confirmation and submit; the ``trading`` queue sends it
    to the LP)."""
    if action not in HEDGE_KINDS:
        raise Http404("No such hedge action")
    [platform] = exposure_platforms(request.user, pk)
    kind = HEDGE_KINDS[action]
    try:
        draft = prepare_operation(Actor.of(request), platform, kind)
    except PermissionDenied as exc:
        return forbidden_page(request, exc)
    accounts = CoverageAccount.objects.filter(enabled=True, covers=platform).defer(
        "api_key", "terminal_password")
    initial = {k: request.GET[k] for k in ("coverage_account", "ticket", "bridge_task_id",
                                           "symbol", "side") if request.GET.get(k)}
    form = HedgeForm(request.POST if request.method == "POST" else None, action=action,
                     accounts=accounts, initial=initial)
    context = {"platform": platform, "kind": kind, "kind_label": draft.label, "login": None,
               "money": draft.money}
    return confirm_and_submit(request, draft, form, context)
