"""Django admin of coverage accounts: secrets write-only, every change and check audited."""

from __future__ import annotations

from django.contrib import admin, messages
from django.forms.models import model_to_dict

from platforms import audit
from platforms.coverage.forms import SECRET_FIELDS, CoverageAccountForm
from platforms.coverage.models import CoverageAccount
from platforms.coverage.services import check_connection, record_check

AUDITED_FIELDS = [f for f in CoverageAccountForm.Meta.fields
                  if f not in SECRET_FIELDS and f != "covers"]


def _audited(account: CoverageAccount) -> dict:
    values = model_to_dict(account, fields=AUDITED_FIELDS)
    if account.pk:
        values["covers"] = sorted(p.name for p in account.covers.all())
    return values


@admin.register(CoverageAccount)
class CoverageAccountAdmin(admin.ModelAdmin):
    form = CoverageAccountForm
    list_display = ["name", "lp_name", "server", "login", "bridge_base_url", "enabled",
                    "covered_platforms"]
    list_filter = ["enabled", "lp_name", "server"]
    search_fields = ["name", "lp_name", "server", "login", "account_id"]
    filter_horizontal = ["covers"]
    actions = ["test_connection"]
    fieldsets = [
        (None, {"fields": ["name", "lp_name", "enabled", "covers"]}),
        ("Terminal bridge", {"fields": ["bridge_base_url", "api_key"]}),
        ("MT4 account", {"fields": ["account_id", "server", "login", "terminal_password"]}),
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("covers")

    @admin.display(description="Covers")
    def covered_platforms(self, obj: CoverageAccount) -> str:
        return ", ".join(p.name for p in obj.covers.all()) or "—"

    def save_model(self, request, obj, form, change):
        # Remember what was stored before the save; the M2M is saved afterwards (save_related).
        request._coverage_before = {}
        request._coverage_secrets_changed = {}
        if change:
            stored = CoverageAccount.objects.get(pk=obj.pk)
            request._coverage_before = _audited(stored)
            request._coverage_secrets_changed = {
                f"{name}_changed": getattr(stored, name) != getattr(obj, name)
                for name in SECRET_FIELDS
            }
        else:
            request._coverage_secrets_changed = {f"{n}_changed": True for n in SECRET_FIELDS}
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)
        obj = form.instance
        audit.record(
            actor=audit.Actor.of(request),
            action="coverage.change" if change else "coverage.create",
            target=obj.name,
            before=getattr(request, "_coverage_before", {}),
            after={**_audited(obj), **getattr(request, "_coverage_secrets_changed", {})},
        )

    def delete_model(self, request, obj):
        audit.record(actor=audit.Actor.of(request), action="coverage.delete", target=obj.name,
                     before=_audited(obj))
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            audit.record(actor=audit.Actor.of(request), action="coverage.delete", target=obj.name,
                         before=_audited(obj))
        super().delete_queryset(request, queryset)

    @admin.action(description="Test connection (open a bridge session, read the account)")
    def test_connection(self, request, queryset):
        for account in queryset:
            check = check_connection(account)
            record_check(audit.Actor.of(request), check)
            self.message_user(request, check.summary(),
                              messages.SUCCESS if check.ok else messages.ERROR)
