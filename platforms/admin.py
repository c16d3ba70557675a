"""Django admin for trade platforms, grants, policies, snapshot runs and schedules (every write
audited, ``platforms/audited_admin.py``) and the read-only audit trail."""

from __future__ import annotations

from django.contrib import admin, messages
from django_celery_beat import models as beat

from platforms.access import admin as _access_admin  # noqa: F401 - users, roles, grants
from platforms.access.models import PlatformAccess
from platforms.audit import Actor
from platforms.audited_admin import AuditedAdmin, AuditNames, audit_registered
from platforms.connections import check_connection, learn_server_zone
from platforms.coverage import admin as _coverage_admin  # noqa: F401 - registers its admin
from platforms.forms import TradePlatformForm
from platforms.mirror.models import SnapshotRun
from platforms.mirror.runs import request_run
from platforms.models import AuditEvent, TradePlatform
from platforms.trading.models import OperationPolicy, TradeTask


class ReadOnlyAdmin(admin.ModelAdmin):
    """Records written only by the application: viewable and filterable, never edited here."""

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class RunSnapshotsPermission:
    """Admin actions marked ``permissions=["run_snapshots"]`` need the role's permission."""

    def has_run_snapshots_permission(self, request) -> bool:
        return request.user.has_perm("platforms.run_snapshots")


class PlatformAccessInline(admin.TabularInline):
    """Grants on the platform's page; each added, changed or deleted row is audited by the
    platform's admin as ``access.grant`` / ``access.change`` / ``access.revoke``."""

    model = PlatformAccess
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(PlatformAccess)
class PlatformAccessAdmin(AuditedAdmin, admin.ModelAdmin):
    """Grants are writes like any other: each one lands in the audit trail."""

    audit_names = AuditNames("access", add="grant", delete="revoke")
    list_display = ["user", "platform", "group_masks"]
    list_filter = ["platform"]
    search_fields = ["user__username", "group_masks"]
    autocomplete_fields = ["user"]

    def audit_target(self, obj: PlatformAccess) -> str:
        return str(obj.user)


@admin.register(TradePlatform)
class TradePlatformAdmin(AuditedAdmin, RunSnapshotsPermission, admin.ModelAdmin):
    audit_names = AuditNames("platform")
    # check_connection writes nothing (a first read of the zone records its own event);
    # request_run records ``snapshot.request`` itself
    audit_recorded_by = frozenset({"test_connection", "run_full_snapshot"})
    form = TradePlatformForm
    inlines = [PlatformAccessInline]
    list_display = ["name", "kind", "environment", "api_base_url", "platform_id", "enabled"]
    list_filter = ["kind", "environment", "enabled"]
    search_fields = ["name", "platform_id", "api_base_url"]
    actions = ["test_connection", "run_full_snapshot"]
    fieldsets = [
        (None, {"fields": ["name", "kind", "environment", "platform_id", "enabled"]}),
        ("WebAPI", {"fields": ["api_base_url", "sidecar_base_url"]}),
        ("OAuth client credentials", {"fields": ["oauth_authority", "oauth_scope", "client_id",
                                                 "client_secret"]}),
        ("Server time zone", {"fields": ["time_zone_reported", "time_zone_override",
                                         "time_zone_applied"]}),
    ]
    readonly_fields = ["time_zone_reported", "time_zone_applied"]

    def audit_target(self, obj: TradePlatform) -> str:
        return obj.name

    def audit_deleted_values(self, obj: TradePlatform) -> dict:
        # the grants go with the platform (CASCADE): the trail names whose access ended
        return {**self.audit_values(obj),
                "grants": sorted(str(a.user) for a in obj.access.select_related("user"))}

    @admin.action(description="Run a full snapshot now", permissions=["run_snapshots"])
    def run_full_snapshot(self, request, queryset):
        _queue_snapshots(self, request, queryset, lambda platform: "full")

    @admin.action(description="Test connection (authenticate, read server time)")
    def test_connection(self, request, queryset):
        for platform in queryset:
            learn_server_zone(platform)  # asked once, if no snapshot run has asked yet
            result = check_connection(platform)
            if result.ok:
                self.message_user(
                    request,
                    f"{platform.name}: OK — server time {result.server_time:%Y-%m-%d %H:%M:%S}, "
                    f"round trip {result.rtt_ms:.0f} ms, circuit {result.breaker_state}.",
                    messages.SUCCESS,
                )
            else:
                self.message_user(request, f"{platform.name}: FAILED — {result.error}",
                                  messages.ERROR)


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Append-only: nobody edits or deletes history, not even a superuser through the admin."""

    list_display = ["at", "who", "ip_address", "action", "where", "target", "outcome"]
    list_filter = ["action", "outcome", "platform"]
    search_fields = ["target", "detail", "request_id", "actor__username", "actor_name"]

    @admin.display(description="Actor", ordering="actor_name")
    def who(self, event: AuditEvent) -> str:
        return event.who

    @admin.display(description="Platform", ordering="platform_name")
    def where(self, event: AuditEvent) -> str:
        return str(event.platform) if event.platform_id else event.platform_name
    date_hierarchy = "at"
    list_select_related = ["actor", "platform"]



# --- mirror snapshots ------------------------------------------------------------------------


def _queue_snapshots(modeladmin, request, platforms, kind_of) -> None:

    for platform in platforms:
        run, created = request_run(platform, kind_of(platform), actor=Actor.of(request))
        if created:
            modeladmin.message_user(request, f"{platform.name}: {run.kind} snapshot #{run.pk} "
                                    "queued.", messages.SUCCESS)
        else:
            modeladmin.message_user(request, f"{platform.name}: run #{run.pk} is already "
                                    f"{run.state}.", messages.WARNING)


@admin.register(SnapshotRun)
class SnapshotRunAdmin(AuditedAdmin, RunSnapshotsPermission, admin.ModelAdmin):
    """Runs are written by the snapshot service only; staff read them, start new ones and may
    delete old ones (audited)."""

    audit_names = AuditNames("snapshot_run")
    audit_recorded_by = frozenset({"run_again"})  # request_run records ``snapshot.request``

    list_display = ["id", "platform", "kind", "trigger", "requested_by", "state", "rows_read",
                     "rows_inserted", "rows_updated", "rows_deleted", "started_at", "duration"]
    list_filter = ["state", "kind", "trigger", "platform"]
    search_fields = ["error", "activity_id", "celery_task_id", "requested_by__username"]
    date_hierarchy = "queued_at"
    list_select_related = ["platform", "requested_by"]
    actions = ["run_again"]
    readonly_fields = [f.name for f in SnapshotRun._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Run now (same kind, same platform)", permissions=["run_snapshots"])
    def run_again(self, request, queryset):
        kinds = {}
        for run in queryset.select_related("platform"):
            kinds[run.platform] = run.kind
        _queue_snapshots(self, request, kinds, lambda platform: kinds[platform])


@admin.register(OperationPolicy)
class OperationPolicyAdmin(AuditedAdmin, admin.ModelAdmin):
    """The maker-checker threshold per platform; changing it is itself audited."""

    audit_names = AuditNames("policy")
    list_display = ["platform", "approval_threshold", "bulk_requires_approval"]

    def audit_target(self, obj: OperationPolicy) -> str:
        return str(obj.platform)


@admin.register(TradeTask)
class TradeTaskAdmin(ReadOnlyAdmin):
    """Read-only: tasks change only through the pipeline (the dashboard retries/reconciles)."""

    list_display = ["created_at", "platform", "login", "kind", "state", "requested_by",
                    "request_id"]
    list_filter = ["state", "kind", "platform"]
    search_fields = ["request_id", "login", "requested_by__username"]
    date_hierarchy = "created_at"
    exclude = ["secret"]



# --- schedules (django-celery-beat's admin) --------------------------------------------------
# Snapshot, health and coverage-poll schedules are PeriodicTask rows, and a PeriodicTask can
# start any registered task with any arguments: editing one is a write like any other.

audit_registered(beat.PeriodicTask, AuditNames("schedule"),
                 audit_exclude=frozenset({"last_run_at", "total_run_count"}))
for _schedule in (beat.IntervalSchedule, beat.CrontabSchedule, beat.SolarSchedule,
                  beat.ClockedSchedule):
    audit_registered(_schedule, AuditNames(f"schedule.{_schedule._meta.model_name}"))
