"""Who may do what, administered: users (roles = groups, staff and superuser flags, password,
platform grants), roles themselves and two-factor devices, every write audited.

Django's own ``User`` and ``Group`` admins, django-otp's device admin and django-axes' lockout
and log admins are re-registered with :class:`~platforms.audited_admin.AuditedAdmin`: their
pages stay as Django draws them.
"""

from __future__ import annotations

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django_otp.plugins.otp_totp.models import TOTPDevice

from platforms import audit
from platforms.access.models import PlatformAccess
from platforms.audited_admin import AuditedAdmin, AuditNames, audit_registered

User = get_user_model()


class UserAccessInline(admin.TabularInline):
    """The user's platform grants on their page (audited as ``access.*`` by the user admin)."""

    model = PlatformAccess
    fk_name = "user"
    extra = 0
    verbose_name_plural = "platform access"


class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    """Role (group) changes, staff/superuser flags and grants are in the before/after values;
    the password only as ``password_changed`` (never its hash)."""

    audit_names = AuditNames("user")
    audit_exclude = frozenset({"last_login"})  # moves on every sign-in, not an admin write
    inlines = [*UserAdmin.inlines, UserAccessInline]

    def audit_target(self, obj) -> str:
        return obj.get_username()

    def audit_deleted_values(self, obj) -> dict:
        # the user's grants go with them (CASCADE)
        return {**self.audit_values(obj),
                "platform_access": sorted(str(a.platform) for a in obj.platform_access.all())}

    def user_change_password(self, request, id, form_url=""):
        """Django's password page saves outside ``save_model``: compare the stored hash before
        and after (in memory only) and record that it changed, not what it became."""
        before = User._default_manager.filter(pk=id).values_list("password", flat=True).first()
        response = super().user_change_password(request, id, form_url)
        user = User._default_manager.filter(pk=id).first()
        if user is not None and before is not None and user.password != before:
            audit.record(actor=audit.Actor.of(request), action="user.password_change",
                         target=user.get_username(),
                         after={"password_changed": True,
                                "usable_password": user.has_usable_password()})
        return response


class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    """A role's permissions are what its members may do: changing them is audited."""

    audit_names = AuditNames("role")


def _sign_in_target(self, obj: AccessAttempt) -> str:
    """Whom a lockout row locks: the username and the address it counts."""
    return f"{obj.username or '?'} from {obj.ip_address or '?'}"[:200]


def _register() -> None:
    admin.site.unregister(User)
    admin.site.register(User, AuditedUserAdmin)
    admin.site.unregister(Group)
    admin.site.register(Group, AuditedGroupAdmin)
    audit_registered(TOTPDevice, AuditNames("otp_device"),
                     audit_secrets=frozenset({"key"}),
                     audit_exclude=frozenset({"last_t", "drift", "throttling_failure_timestamp",
                                              "throttling_failure_count", "last_used_at"}))
    # Deleting a lockout row unlocks a user or an address (the README's admin unlock): audited
    # like any other write, and so is clearing the sign-in logs a security review reads.
    audit_registered(AccessAttempt, AuditNames("login_lockout", delete="unlock"),
                     audit_target=_sign_in_target)
    audit_registered(AccessLog, AuditNames("login_log"))
    audit_registered(AccessFailureLog, AuditNames("login_failure_log"))


_register()
