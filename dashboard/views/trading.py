"""Dealer and finance operations: forms with a confirmation step, task lists, the audit trail.

Each view parses input, checks scope and permission, and calls one service or selector.
A write ends with a redirect to the task (``HttpResponseClientRedirect`` for htmx).
"""

from __future__ import annotations

from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from dashboard.access import staff_required
from dashboard.exports import stream_csv
from dashboard.rendering import render_page
from platforms.access.scope import get_visible_platform, valid_id
from platforms.client import ManagerApiError
from platforms.trading import operations as ops
from platforms.trading import selectors, services
from platforms.trading.errors import staff_message
from platforms.trading.filters import AuditFilter
from platforms.trading.forms import FORMS, ReauthForm, mark_reauth, reauth_fresh
from platforms.trading.models import TaskKind, TaskState

TEMPLATE = "dashboard/trading/operation.html"
ACCOUNT_FREE_KINDS = {TaskKind.CREATE_ACCOUNT, *ops.BULK_COMMANDS}


def _redirect(request, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _forbidden(request, exc: PermissionDenied) -> HttpResponse:
    response = render_page(request, "dashboard/trading/forbidden.html", {"reason": str(exc)})
    response.status_code = 403
    return response


def _kind_or_404(kind: str) -> str:
    if kind not in ops.OPERATIONS or kind in ops.COVERAGE_KINDS:  # hedges: the exposure page
        raise Http404("No such operation")
    return kind


@require_http_methods(["GET", "POST"])
@staff_required
def operation(request, pk: int, kind: str, login: int | None = None):
    """One operation on one account (or, for create/bulk, on the platform): form → confirm."""
    platform = get_visible_platform(request.user, pk)
    kind = _kind_or_404(kind)
    actor = services.Actor.of(request)
    if login is not None and not selectors.login_in_scope(request.user, platform, login):
        raise Http404("No such account")  # outside the grant: not found, whatever the role
    try:
        services.ensure_allowed(actor, platform, kind, login=login)
    except PermissionDenied as exc:
        return _forbidden(request, exc)
    context = {"platform": platform, "kind": kind, "kind_label": TaskKind(kind).label,
               "login": login, "money": ops.spec_for(kind).category == ops.MONEY}
    if not ops.available_on(kind, platform.kind):
        context["unavailable"] = (f"{TaskKind(kind).label} is not available for {platform.kind}: "
                                  "its WebAPI only offers PATCH UserRecord / GroupRecord.")
        return render_page(request, TEMPLATE, context)
    account = None
    if login is not None:
        try:
            account = selectors.account_state(platform, login)
        except selectors.AccountMissing as exc:
            context["account_error"] = str(exc)
            response = render_page(request, TEMPLATE, context)
            response.status_code = 404
            return response
        except ManagerApiError as exc:
            context["account_error"] = staff_message(exc)
            return render_page(request, TEMPLATE, context)
        if not selectors.in_scope(request.user, platform, account.group):
            raise Http404("No such account")
    elif kind not in ACCOUNT_FREE_KINDS:
        raise Http404("This operation needs an account")
    context["account"] = account
    form_class = FORMS[kind]
    market = selectors.Market(platform)
    data = request.POST if request.method == "POST" else None
    initial = {}
    order = valid_id(request.GET.get("order"))  # "Close" / "Modify" links from a trade row
    if order is not None:
        initial["order"] = order
    form = form_class(data, kind=kind, market=market, account=account, initial=initial)
    context["form"] = form
    if request.method == "GET" or not form.is_valid():
        return render_page(request, TEMPLATE, context, partial="operation-panel")

    needs_reauth = context["money"] and not reauth_fresh(request)
    reauth = ReauthForm(request.POST if "confirm" in request.POST else None, user=request.user)
    payload = form.payload()
    preview = selectors.preview(account, kind, payload) if account else {}
    context.update(confirming=True, payload=payload, preview=preview,
                   reauth=reauth if needs_reauth else None,
                   approval=services.needs_approval(platform, kind, payload))
    if "confirm" not in request.POST:
        return render_page(request, TEMPLATE, context, partial="operation-panel")
    if needs_reauth:
        if not reauth.is_valid():
            return render_page(request, TEMPLATE, context, partial="operation-panel")
        mark_reauth(request)
    try:
        submission = services.submit(
            actor=actor, platform=platform, kind=kind, login=login, payload=payload,
            request_id=form.cleaned_data["request_id"], secret=form.secret(), preview=preview,
        )
    except services.IdempotencyConflict as exc:
        context["conflict"] = str(exc)
        response = render_page(request, TEMPLATE, context, partial="operation-panel")
        response.status_code = 409
        return response
    except services.OperationRefused as exc:
        context["refused"] = str(exc)
        return render_page(request, TEMPLATE, context, partial="operation-panel")
    return _redirect(request, reverse("dashboard:operation-task",
                                      args=[platform.pk, submission.task.pk]))


@require_GET
@staff_required
def task_list(request, pk: int):
    """The platform's tasks with live states (the rows partial is polled every second)."""
    platform = get_visible_platform(request.user, pk)
    tasks = selectors.tasks_for(request.user, platform)
    state = request.GET.get("state")
    if state in TaskState.values:
        tasks = tasks.filter(state=state)
    context = {"platform": platform, "tasks": selectors.visible_tasks(request.user, tasks[:200]),
               "states": TaskState.choices,
               "state": state or ""}
    return render_page(request, "dashboard/trading/tasks.html", context, partial="task-rows")


@require_GET
@staff_required
def task_detail(request, pk: int, task_pk: int):
    platform = get_visible_platform(request.user, pk)
    task = get_object_or_404(selectors.tasks_for(request.user, platform), pk=task_pk)
    return render_page(request, "dashboard/trading/task.html",
                       {"platform": platform, "task": selectors.visible_task(request.user, task)},
                       partial="task-state")


@require_POST
@staff_required
def task_action(request, pk: int, task_pk: int, action: str):
    """approve / reject / cancel / reconcile."""
    platform = get_visible_platform(request.user, pk)
    task = get_object_or_404(selectors.tasks_for(request.user, platform), pk=task_pk)
    actor = services.Actor.of(request)
    try:
        if action in ("approve", "reject"):
            services.decide(task.pk, actor=actor, approve=action == "approve",
                            note=request.POST.get("note", ""))
        elif action == "cancel":
            services.cancel(task.pk, actor=actor)
        elif action == "reconcile":
            services.request_reconcile(task.pk, actor=actor)
        else:
            raise Http404("No such action")
    except PermissionDenied as exc:
        return _forbidden(request, exc)
    except services.OperationRefused as exc:
        response = render_page(request, "dashboard/trading/task.html",
                               {"platform": platform,
                                "task": selectors.visible_task(request.user, task),
                                "refused": str(exc)})
        response.status_code = 409
        return response
    return _redirect(request, reverse("dashboard:operation-task", args=[platform.pk, task.pk]))


# ------------------------------------------------------------------------------ audit

AUDIT_COLUMNS = ["at", "actor", "ip_address", "action", "platform", "target", "request_id",
                 "outcome", "before", "after", "detail"]


def _filtered_audit(request) -> AuditFilter:
    return AuditFilter(request.GET or None, queryset=selectors.audit_events(request.user))


@require_GET
@staff_required
def audit_log(request):
    """Every write attempt, filterable; ``?format=csv`` downloads the filtered rows."""
    if not request.user.has_perm("platforms.view_auditevent") and not request.user.has_perm(
        "platforms.approve_operations"
    ):
        return _forbidden(request, PermissionDenied("You need access to the audit trail."))
    audit = _filtered_audit(request)
    events = audit.qs
    if request.GET.get("format") == "csv":
        rows = (
            [e.at.isoformat(), e.actor.get_username() if e.actor else "", e.ip_address or "",
             e.action, e.platform.name if e.platform else "", e.target, e.request_id,
             e.outcome, e.before, e.after, e.detail]
            for e in selectors.visible_events(
                request.user, events.select_related("actor", "platform").iterator(chunk_size=2000))
        )
        return stream_csv(request, "audit", AUDIT_COLUMNS, rows)
    return render_page(request, "dashboard/trading/audit.html",
                       {"events": list(selectors.visible_events(request.user, events[:200])),
                        "filters": request.GET,
                        "problems": audit.problems()}, partial="audit-rows")
