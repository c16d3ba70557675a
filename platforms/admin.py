"""Django admin for trade platforms and the (read-only) audit trail."""

from __future__ import annotations

from django.contrib import admin, messages
from django.forms.models import model_to_dict

from platforms import audit
from platforms.access.models import PlatformAccess
from platforms.connections import check_connection
from platforms.coverage import admin as _coverage_admin  # noqa: F401 - registers its admin
from platforms.forms import TradePlatformForm
from platforms.mirror.models import SnapshotRun
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


AUDITED_FIELDS = [f for f in TradePlatformForm.Meta.fields]


class PlatformAccessInline(admin.TabularInline):
    model = PlatformAccess
    extra = 0
    autocomplete_fields = ["user"]


def _access_values(access: PlatformAccess) -> dict:
    return {"user": str(access.user), "platform": str(access.platform),
            "group_masks": access.group_masks}


def _audit_access(request, access: PlatformAccess, action: str, before: dict) -> None:
    audit.record(actor=audit.Actor.of(request), action=action, platform=access.platform,
                 target=str(access.user), before=before,
                 after={} if action.endswith("revoke") else _access_values(access))


@admin.register(PlatformAccess)
class PlatformAccessAdmin(admin.ModelAdmin):
    """Grants are writes like any other: each one lands in the audit trail."""

    list_display = ["user", "platform", "group_masks"]
    list_filter = ["platform"]
    search_fields = ["user__username", "group_masks"]
    autocomplete_fields = ["user"]

    def save_model(self, request, obj, form, change):
        before = _access_values(PlatformAccess.objects.get(pk=obj.pk)) if change else {}
        super().save_model(request, obj, form, change)
        _audit_access(request, obj, "access.change" if change else "access.grant", before)

    def delete_model(self, request, obj):
        _audit_access(request, obj, "access.revoke", _access_values(obj))
        super().delete_model(request, obj)


@admin.register(TradePlatform)
class TradePlatformAdmin(RunSnapshotsPermission, admin.ModelAdmin):
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
    ]

    def save_model(self, request, obj, form, change):
        before = {}
        if change:
            stored = TradePlatform.objects.get(pk=obj.pk)
            before = _audited(stored)
            secret_changed = stored.client_secret != obj.client_secret
        else:
            secret_changed = True
        super().save_model(request, obj, form, change)
        after = _audited(obj)
        after["client_secret_changed"] = secret_changed
        audit.record(
            actor=audit.Actor.of(request),
            action="platform.change" if change else "platform.create",
            platform=obj,
            target=obj.name,
            before=before,
            after=after,
        )

    def save_formset(self, request, form, formset, change):
        before = {a.pk: _access_values(a) for a in formset.get_queryset()}
        for deleted in formset.deleted_forms:
            if deleted.instance.pk:
                _audit_access(request, deleted.instance, "access.revoke",
                              before[deleted.instance.pk])
        instances = formset.save()
        for access in instances:
            existed = access.pk in before
            _audit_access(request, access, "access.change" if existed else "access.grant",
                          before.get(access.pk, {}))

    def delete_model(self, request, obj):
        audit.record(actor=audit.Actor.of(request), action="platform.delete", target=obj.name,
                     before=_audited(obj))
        super().delete_model(request, obj)

    @admin.action(description="Run a full snapshot now", permissions=["run_snapshots"])
    def run_full_snapshot(self, request, queryset):
        _queue_snapshots(self, request, queryset, lambda platform: "full")

    @admin.action(description="Test connection (authenticate, read server time)")
    def test_connection(self, request, queryset):
        for platform in queryset:
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


def _audited(platform: TradePlatform) -> dict:
    values = model_to_dict(platform, fields=[f for f in AUDITED_FIELDS if f != "client_secret"])
    values["platform_id"] = str(values.get("platform_id") or "")
    return values


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    """Append-only: nobody edits or deletes history, not even a superuser through the admin."""

    list_display = ["at", "actor", "ip_address", "action", "platform", "target", "outcome"]
    list_filter = ["action", "outcome", "platform"]
    search_fields = ["target", "detail", "request_id", "actor__username"]
    date_hierarchy = "at"



# --- mirror snapshots ------------------------------------------------------------------------


def _queue_snapshots(modeladmin, request, platforms, kind_of) -> None:
    from platforms.mirror.runs import request_run

    for platform in platforms:
        run, created = request_run(platform, kind_of(platform), actor=audit.Actor.of(request))
        if created:
            modeladmin.message_user(request, f"{platform.name}: {run.kind} snapshot #{run.pk} "
                                    "queued.", messages.SUCCESS)
        else:
            modeladmin.message_user(request, f"{platform.name}: run #{run.pk} is already "
                                    f"{run.state}.", messages.WARNING)


@admin.register(SnapshotRun)
class SnapshotRunAdmin(RunSnapshotsPermission, admin.ModelAdmin):
    """Runs are written by the snapshot service only; staff read them and start new ones."""

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
class OperationPolicyAdmin(admin.ModelAdmin):
    """The maker-checker threshold per platform; changing it is itself audited."""

    list_display = ["platform", "approval_threshold", "bulk_requires_approval"]

    def save_model(self, request, obj, form, change):
        before = {}
        if change:
            stored = OperationPolicy.objects.get(pk=obj.pk)
            before = {"approval_threshold": str(stored.approval_threshold),
                      "bulk_requires_approval": stored.bulk_requires_approval}
        super().save_model(request, obj, form, change)
        audit.record(actor=audit.Actor.of(request),
                     action="policy.change" if change else "policy.create",
                     platform=obj.platform, target=str(obj.platform), before=before,
                     after={"approval_threshold": str(obj.approval_threshold),
                            "bulk_requires_approval": obj.bulk_requires_approval})


@admin.register(TradeTask)
class TradeTaskAdmin(ReadOnlyAdmin):
    """Read-only: tasks change only through the pipeline (the dashboard retries/reconciles)."""

    list_display = ["created_at", "platform", "login", "kind", "state", "requested_by",
                    "request_id"]
    list_filter = ["state", "kind", "platform"]
    search_fields = ["request_id", "login", "requested_by__username"]
    date_hierarchy = "created_at"
    exclude = ["secret"]

