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
from dashboard.timezones import display_zone
from platforms.access.actions import FORBIDDEN_TEMPLATE, action
from platforms.access.scope import get_visible_platform, valid_id
from platforms.audit import Actor
from platforms.client import ManagerApiError
from platforms.trading import kinds as ops
from platforms.trading import selectors
from platforms.trading.approvals import cancel, decide, needs_approval
from platforms.trading.drafts import (
    AccountMissing,
    AccountRequired,
    Draft,
    NotInScope,
    OperationUnavailable,
    prepare_operation,
)
from platforms.trading.errors import OperationRefused, staff_message
from platforms.trading.filters import AuditFilter
from platforms.trading.forms import FORMS, ReauthForm, mark_reauth, reauth_fresh
from platforms.trading.models import TaskKind, TaskState, TradeTask
from platforms.trading.reconcile import request_reconcile
from platforms.trading.submit import IdempotencyConflict, submit

TEMPLATE = "dashboard/trading/operation.html"


def _redirect(request, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def forbidden_page(request, exc: PermissionDenied) -> HttpResponse:
    return render_page(request, FORBIDDEN_TEMPLATE, {"reason": str(exc)}, status=403)


def _kind_or_404(kind: str) -> str:
    if kind not in ops.OPERATIONS or kind in ops.COVERAGE_KINDS:  # hedges: the exposure page
        raise Http404("No such operation")
    return kind


def operation_permission(kwargs: dict) -> tuple[str, ...]:
    """Each operation kind has its own permission (``platforms.trading.kinds``)."""
    return (ops.spec_for(_kind_or_404(kwargs["kind"])).permission,)


def operation_target(user, platform, *, login: int | None = None, **_) -> bool:
    """The account inside the user's group masks (a platform-wide operation: the platform)."""
    return login is None or selectors.login_in_scope(user, platform, login)


@require_http_methods(["GET", "POST"])
@action(operation_permission, target=operation_target,
        label="the operation forms of its kinds (account card, bulk, create account)")
def operation(request, pk: int, kind: str, login: int | None = None):
    """One operation on one account (or, for create/bulk, on the platform): form → confirm."""
    platform = get_visible_platform(request.user, pk)
    kind = _kind_or_404(kind)
    context = {"platform": platform, "kind": kind, "kind_label": TaskKind(kind).label,
               "login": login, "money": ops.spec_for(kind).category == ops.MONEY}
    try:
        draft = prepare_operation(Actor.of(request), platform, kind, login)
    except NotInScope:
        raise Http404("No such account") from None  # outside the grant, whatever the role
    except AccountRequired:
        raise Http404("This operation needs an account") from None
    except PermissionDenied as exc:
        return forbidden_page(request, exc)
    except OperationUnavailable as exc:
        context["unavailable"] = str(exc)
        return render_page(request, TEMPLATE, context)
    except AccountMissing as exc:
        context["account_error"] = str(exc)
        return render_page(request, TEMPLATE, context, status=404)
    except ManagerApiError as exc:
        context["account_error"] = staff_message(exc)
        return render_page(request, TEMPLATE, context)
    context["account"] = draft.account
    initial = {}
    order = valid_id(request.GET.get("order"))  # "Close" / "Modify" links from a trade row
    if order is not None:
        initial["order"] = order
    form = FORMS[kind](request.POST if request.method == "POST" else None, kind=kind,
                       market=selectors.Market(platform), account=draft.account,
                       initial=initial)
    return confirm_and_submit(request, draft, form, context)


def confirm_and_submit(request, draft: Draft, form, context: dict) -> HttpResponse:
    """The form, then its confirmation (preview, approval, the password again for money), then
    the task: the one tail of every operation page, the hedge form's included."""
    context["form"] = form
    if request.method == "GET" or not form.is_valid():
        return render_page(request, TEMPLATE, context, partial="operation-panel")
    needs_reauth = draft.money and not reauth_fresh(request)
    reauth = ReauthForm(request.POST if "confirm" in request.POST else None, user=request.user,
                        request=request)
    payload = form.payload()
    preview = selectors.preview(draft.account, draft.kind, payload) if draft.account else {}
    context.update(confirming=True, payload=payload, preview=preview,
                   reauth=reauth if needs_reauth else None,
                   approval=needs_approval(draft.platform, draft.kind, payload))
    if "confirm" not in request.POST:
        return render_page(request, TEMPLATE, context, partial="operation-panel")
    if needs_reauth:
        if not reauth.is_valid():
            return render_page(request, TEMPLATE, context, partial="operation-panel")
        mark_reauth(request)
    try:
        submission = submit(
            actor=Actor.of(request), platform=draft.platform, kind=draft.kind,
            login=draft.login, payload=payload, request_id=form.cleaned_data["request_id"],
            secret=form.secret(), preview=preview,
        )
    except IdempotencyConflict as exc:
        context["conflict"] = str(exc)
        return render_page(request, TEMPLATE, context, partial="operation-panel", status=409)
    except OperationRefused as exc:
        context["refused"] = str(exc)
        return render_page(request, TEMPLATE, context, partial="operation-panel")
    return _redirect(request, reverse("dashboard:operation-task",
                                      args=[draft.platform.pk, submission.task.pk]))


@require_GET
@staff_required
def task_list(request, pk: int):
    """The platform's tasks with live states (the rows partial is polled every second while a
    task may still change, and not at all once every one is final)."""
    platform = get_visible_platform(request.user, pk)
    tasks = selectors.tasks_for(request.user, platform)
    state = request.GET.get("state")
    if state in TaskState.values:
        tasks = tasks.filter(state=state)
    context = {"platform": platform, "tasks": selectors.visible_tasks(request.user, tasks[:200]),
               "states": TaskState.choices,
               "state": state or "",
               "polling": selectors.has_unfinished_tasks(request.user, platform)}
    return render_page(request, "dashboard/trading/tasks.html", context, partial="task-rows")


@require_GET
@staff_required
def task_detail(request, pk: int, task_pk: int):
    platform = get_visible_platform(request.user, pk)
    task = get_object_or_404(selectors.tasks_for(request.user, platform), pk=task_pk)
    return render_page(request, "dashboard/trading/task.html",
                       {"platform": platform, "task": selectors.visible_task(request.user, task)},
                       partial="task-state")


TASK_ACTIONS = ("approve", "reject", "cancel", "reconcile")


def task_action_permission(kwargs: dict) -> tuple[str, ...]:
    """approve / reject: ``approve_operations``; reconcile: the task kind's permission; cancel:
    either (the requester holds the kind's permission; the service lets only the requester or
    an approver cancel)."""
    verb = kwargs["action"]
    if verb not in TASK_ACTIONS:
        raise Http404("No such action")
    if verb in ("approve", "reject"):
        return ("approve_operations",)
    kind = TradeTask.objects.filter(pk=kwargs["task_pk"]).values_list("kind", flat=True).first()
    if kind is None:
        raise Http404("No such task")
    permission = ops.spec_for(kind).permission
    return (permission, "approve_operations") if verb == "cancel" else (permission,)


def task_target(user, platform, *, task_pk: int, **_) -> bool:
    """A task of the platform that the user's group masks show."""
    return (valid_id(task_pk) is not None
            and selectors.tasks_for(user, platform).filter(pk=task_pk).exists())


@require_POST
@action(task_action_permission, target=task_target,
        label="approve, reject, cancel or reconcile a task (task page)")
def task_action(request, pk: int, task_pk: int, action: str):
    """approve / reject / cancel / reconcile."""
    platform = get_visible_platform(request.user, pk)
    task = get_object_or_404(selectors.tasks_for(request.user, platform), pk=task_pk)
    actor = Actor.of(request)
    try:
        if action in ("approve", "reject"):
            decide(task.pk, actor=actor, approve=action == "approve",
                   note=request.POST.get("note", ""))
        elif action == "cancel":
            cancel(task.pk, actor=actor)
        elif action == "reconcile":
            request_reconcile(task.pk, actor=actor)
        else:
            raise Http404("No such action")
    except PermissionDenied as exc:
        return forbidden_page(request, exc)
    except OperationRefused as exc:
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
    """Its days are read on the reader's clock (several platforms: "server time" is UTC)."""
    zone = display_zone(request)
    return AuditFilter(request.GET or None, tz=zone.tz, zone_label=zone.label,
                       queryset=selectors.audit_events(request.user))


@require_GET
@staff_required
def audit_log(request):
    """Every write attempt, filterable; ``?format=csv`` downloads the filtered rows."""
    if not request.user.has_perm("platforms.view_auditevent") and not request.user.has_perm(
        "platforms.approve_operations"
    ):
        return forbidden_page(request, PermissionDenied("You need access to the audit trail."))
    audit = _filtered_audit(request)
    events = audit.qs
    if request.GET.get("format") == "csv":
        rows = (
            [e.at, e.actor.get_username() if e.actor else "", e.ip_address or "",
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
