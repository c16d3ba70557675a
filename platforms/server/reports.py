"""Daily-report summaries: net deposits and broker P&L by day, per account or per group, and
the top winning and losing accounts, computed from ``DailyReportsRequest`` on ``reporting``.

Broker P&L is the mirror image of the clients' closed P&L (a B-book view): a client's win is
the broker's loss. :func:`mirror_summary` computes the same figures from the mirrored closed
trades, so the two can be reconciled.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import date, datetime, time

from django.db import transaction
from django.db.models import Q, Sum
from django.utils import timezone

from platforms import audit
from platforms.access.masks import masks_q
from platforms.access.scope import group_masks_for
from platforms.client import ManagerApiError
from platforms.connections import client_for
from platforms.mirror.models import MirrorAccount, MirrorClosedTrade
from platforms.models import TradePlatform
from platforms.server import dispatch
from platforms.server.models import JobState, ReportJob
from platforms.timezones import server_to_utc

#: Logins per ``DailyReportsRequest`` call.
LOGIN_BATCH = 500
TOP = 10


def _r(value: float) -> float:
    return round(value + 0.0, 2)


def summarize(reports: Iterable, scope: str) -> dict:
    """Fold ``MT4DailyReport`` records (or anything with the same attributes) into a result."""
    days: dict[str, dict[str, float]] = defaultdict(lambda: {"deposit": 0.0, "client_pnl": 0.0})
    accounts: dict[int, dict] = {}
    for rep in reports:
        day = rep.ctm.date().isoformat() if rep.ctm else ""
        days[day]["deposit"] += rep.deposit
        days[day]["client_pnl"] += rep.profit_closed
        row = accounts.setdefault(rep.login, {"login": rep.login, "group": rep.group or "",
                                              "deposit": 0.0, "client_pnl": 0.0})
        row["deposit"] += rep.deposit
        row["client_pnl"] += rep.profit_closed
    account_rows = [
        {**a, "deposit": _r(a["deposit"]), "client_pnl": _r(a["client_pnl"]),
         "broker_pnl": _r(-a["client_pnl"])}
        for a in sorted(accounts.values(), key=lambda a: a["login"])
    ]
    if scope == "group":
        groups: dict[str, dict] = {}
        for a in account_rows:
            g = groups.setdefault(a["group"], {"group": a["group"], "accounts": 0,
                                               "deposit": 0.0, "client_pnl": 0.0})
            g["accounts"] += 1
            g["deposit"] += a["deposit"]
            g["client_pnl"] += a["client_pnl"]
        rows = [{**g, "deposit": _r(g["deposit"]), "client_pnl": _r(g["client_pnl"]),
                 "broker_pnl": _r(-g["client_pnl"])} for _, g in sorted(groups.items())]
    else:
        rows = account_rows
    day_rows = [{"day": d, "deposit": _r(v["deposit"]), "client_pnl": _r(v["client_pnl"]),
                 "broker_pnl": _r(-v["client_pnl"])} for d, v in sorted(days.items())]
    by_pnl = sorted(account_rows, key=lambda a: a["client_pnl"], reverse=True)
    return {
        "scope": scope,
        "days": day_rows,
        "rows": rows,
        "top_winners": [a for a in by_pnl if a["client_pnl"] > 0][:TOP],
        "top_losers": [a for a in reversed(by_pnl) if a["client_pnl"] < 0][:TOP],
        "totals": {
            "deposit": _r(sum(d["deposit"] for d in day_rows)),
            "client_pnl": _r(sum(d["client_pnl"] for d in day_rows)),
            "broker_pnl": _r(-sum(d["client_pnl"] for d in day_rows)),
            "accounts": len(account_rows),
        },
    }


def report_logins(platform: TradePlatform, group_masks: str) -> list[int]:
    """Logins of the mirrored accounts inside the requester's group masks."""
    return list(MirrorAccount.objects.filter(platform=platform).filter(
        masks_q("group", group_masks)).order_by("login").values_list("login", flat=True))


def fetch_daily_reports(platform: TradePlatform, start, end, logins: list[int]) -> list:
    client = client_for(platform)
    records = []
    for i in range(0, len(logins), LOGIN_BATCH):
        records.extend(client.mt4.daily_reports_request(start, end, logins[i:i + LOGIN_BATCH]))
    return records


@transaction.atomic
def request_report(*, actor: audit.Actor, platform: TradePlatform, date_from: date,
                   date_to: date, scope: str) -> ReportJob:
    """Store a report job (scoped to the requester's group masks) and queue it at commit."""
    job = ReportJob.objects.create(
        platform=platform, requested_by=actor.user, scope=scope, date_from=date_from,
        date_to=date_to, group_masks=group_masks_for(actor.user, platform),
    )
    dispatch.build_report_after_commit(job.pk)
    return job


def execute_report(job_id: int) -> ReportJob | None:
    """Compute and store the result of report ``job_id`` (re-running recomputes it)."""
    job = ReportJob.objects.select_related("platform").filter(pk=job_id).first()
    if job is None:
        return None
    job.state = JobState.RUNNING
    job.save(update_fields=["state"])
    start, end = day_bounds(job.date_from, job.date_to)
    logins = report_logins(job.platform, job.group_masks)
    try:
        records = fetch_daily_reports(job.platform, start, end, logins) if logins else []
    except ManagerApiError as exc:
        job.state, job.error = JobState.FAILED, str(exc)[:2000]
    else:
        job.result = summarize(records, job.scope)
        job.state, job.error = JobState.SUCCEEDED, ""
    job.finished_at = timezone.now()
    job.save()
    return job


def mirror_summary(platform: TradePlatform, start, end, logins: Iterable[int]) -> dict:
    """Deposits and clients' closed P&L of the mirrored closed trades in [start, end], bounds
    on the server's clock (report days are server days; the mirror holds instants)."""
    minutes = platform.utc_offset_minutes
    trades = MirrorClosedTrade.objects.filter(
        platform=platform, login__in=list(logins),
        close_time__gte=server_to_utc(start, minutes), close_time__lte=server_to_utc(end, minutes))
    deposit = trades.filter(command="Balance").aggregate(s=Sum("profit"))["s"] or 0.0
    client_pnl = trades.filter(Q(command="Buy") | Q(command="Sell")).aggregate(
        s=Sum("profit"))["s"] or 0.0
    return {"deposit": _r(deposit), "client_pnl": _r(client_pnl), "broker_pnl": _r(-client_pnl)}


# --------------------------------------------------------------------------- periods

def day_bounds(start, end) -> tuple[datetime, datetime]:
    """The first instant of ``start`` and the last of ``end`` on the server's clock, written
    the wire's way (wall clock tagged UTC): reports are in server days."""
    tz = timezone.get_current_timezone()
    return (datetime.combine(start, time.min, tzinfo=tz),
            datetime.combine(end, time.max, tzinfo=tz))


# --------------------------------------------------------------------------- downloads

def table(result: dict) -> tuple[list[str], list[list]]:
    """Header and rows of a report's main table (per account or per group)."""
    if result.get("scope") == "group":
        header = ["group", "accounts", "deposit", "client_pnl", "broker_pnl"]
    else:
        header = ["login", "group", "deposit", "client_pnl", "broker_pnl"]
    return header, [[row.get(h) for h in header] for row in result.get("rows", [])]


def workbook_sheets(result: dict) -> list[tuple[str, list[str], list[list]]]:
    """The report as sheets (title, header, rows): the main table, the days, the top accounts."""
    header, rows = table(result)
    sheets = [("Report", header, rows),
              ("By day", ["day", "deposit", "client_pnl", "broker_pnl"],
               [[d["day"], d["deposit"], d["client_pnl"], d["broker_pnl"]]
                for d in result.get("days", [])])]
    for title, key in (("Top winners", "top_winners"), ("Top losers", "top_losers")):
        sheets.append((title, ["login", "group", "client_pnl"],
                       [[a["login"], a["group"], a["client_pnl"]] for a in result.get(key, [])]))
    return sheets


def pnl_chart(result: dict) -> dict:
    days = result.get("days", [])
    x = [d["day"] for d in days]
    return {
        "data": [
            {"type": "bar", "name": "Net deposits", "x": x, "y": [d["deposit"] for d in days]},
            {"type": "scatter", "mode": "lines+markers", "name": "Broker P&L", "x": x,
             "y": [d["broker_pnl"] for d in days]},
        ],
        "layout": {"height": 320, "margin": {"l": 60, "r": 10, "t": 10, "b": 40},
                   "barmode": "group"},
    }
