"""Django admin for trade platforms and the (read-only) audit trail."""

from __future__ import annotations

from django.contrib import admin, messages
from django.forms.models import model_to_dict

from platforms import audit
from platforms.forms import TradePlatformForm
from platforms.health import check_connection
from platforms.models import AuditEvent, TradePlatform

AUDITED_FIELDS = [f for f in TradePlatformForm.Meta.fields]


@admin.register(TradePlatform)
class TradePlatformAdmin(admin.ModelAdmin):
    form = TradePlatformForm
    list_display = ["name", "kind", "environment", "api_base_url", "platform_id", "enabled"]
    list_filter = ["kind", "environment", "enabled"]
    search_fields = ["name", "platform_id", "api_base_url"]
    actions = ["test_connection"]
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
            request=request,
            action="platform.change" if change else "platform.create",
            platform=obj,
            target=obj.name,
            before=before,
            after=after,
        )

    def delete_model(self, request, obj):
        audit.record(request=request, action="platform.delete", target=obj.name,
                     before=_audited(obj))
        super().delete_model(request, obj)

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
class AuditEventAdmin(admin.ModelAdmin):
    """Append-only: nobody edits or deletes history, not even a superuser through the admin."""

    list_display = ["at", "actor", "ip_address", "action", "platform", "target", "outcome"]
    list_filter = ["action", "outcome", "platform"]
    search_fields = ["target", "detail", "request_id", "actor__username"]
    date_hierarchy = "at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
