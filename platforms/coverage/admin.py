"""Django admin of coverage accounts: secrets write-only, every change and check audited."""

from __future__ import annotations

from django.contrib import admin, messages
from django.forms.models import model_to_dict

from platforms.audit import Actor
from platforms.audited_admin import AuditedAdmin, AuditNames
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
class CoverageAccountAdmin(AuditedAdmin, admin.ModelAdmin):
    audit_names = AuditNames("coverage")
    audit_secrets = frozenset(SECRET_FIELDS)
    audit_recorded_by = frozenset({"test_connection"})  # record_check writes its own event
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

    def audit_values(self, obj: CoverageAccount) -> dict:
        return _audited(obj)

    def audit_target(self, obj: CoverageAccount) -> str:
        return obj.name

    @admin.action(description="Test connection (open a bridge session, read the account)")
    def test_connection(self, request, queryset):
        for account in queryset:
            check = check_connection(account)
            record_check(Actor.of(request), check)
            self.message_user(request, check.summary(),
                              messages.SUCCESS if check.ok else messages.ERROR)
