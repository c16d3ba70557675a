"""Staff roles: Django groups with the permissions each desk needs.

The migration that creates them calls :func:`sync_roles`; run it again after adding a permission
(``python manage.py shell -c "from platforms.access.roles import sync_roles; sync_roles()"``).
"""

from __future__ import annotations

from django.apps import apps as global_apps

ROLE_PERMISSIONS: dict[str, list[str]] = {
    "dealer": ["view_tradeplatform", "operate_trades", "acknowledge_alerts", "view_reports"],
    "support": ["view_tradeplatform", "view_personal_data", "edit_accounts", "send_messages"],
    "finance": ["view_tradeplatform", "view_personal_data", "operate_balance", "view_reports",
                "approve_operations"],
    "risk": ["view_tradeplatform", "acknowledge_alerts", "view_reports", "run_snapshots",
             "approve_operations"],
    "admin": ["view_tradeplatform", "change_tradeplatform", "add_tradeplatform",
              "view_personal_data", "operate_balance", "operate_trades", "edit_accounts",
              "approve_operations", "acknowledge_alerts", "run_snapshots", "send_messages",
              "manage_plugins", "view_health", "view_reports", "view_auditevent",
              "view_platformaccess", "add_platformaccess", "change_platformaccess",
              "delete_platformaccess"],
}


def sync_roles(apps=None) -> None:
    """Create the role groups and give each exactly its permissions (idempotent)."""
    apps = apps or global_apps
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    for role, codenames in ROLE_PERMISSIONS.items():
        group, _ = group_model.objects.get_or_create(name=role)
        permissions = permission_model.objects.filter(
            content_type__app_label="platforms", codename__in=codenames
        )
        group.permissions.set(permissions)
