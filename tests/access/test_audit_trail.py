"""The audit trail cannot be bypassed: every admin write is recorded (bulk deletes, inlines,
actions, users' roles and passwords, policies, schedules), and recorded events can be neither
changed nor deleted, by the ORM on any database and by any SQL on PostgreSQL."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from decimal import Decimal

import pytest
from django.contrib import admin
from django.contrib.auth.models import Group, Permission
from django.core.management import CommandError, call_command
from django.db import IntegrityError, connection, transaction
from django.test import RequestFactory
from django.urls import reverse
from django.utils import timezone
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from platforms import audit
from platforms.access.models import PlatformAccess
from platforms.audited_admin import AuditedAdmin
from platforms.models import AuditEvent, TradePlatform
from platforms.models.platform import AppendOnlyError
from platforms.trading.models import OperationPolicy
from tests.factories import StaffUserFactory, TradePlatformFactory, grant

SECRET = "s3cret-value-never-shown"
NEW_PASSWORD = "Another-Long-Passphrase-42"
on_postgresql = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the trigger is PostgreSQL's (migration 0015); on SQLite the model's guard is the "
           "one tested (test_the_orm_refuses_...)",
)


def _actions(**filters) -> list[str]:
    return list(AuditEvent.objects.filter(**filters).order_by("id")
                .values_list("action", flat=True))


def _delete_selected(client, model: str, pks: list[int]):
    return client.post(reverse(f"admin:platforms_{model}_changelist"),
                       {"action": "delete_selected", "_selected_action": pks, "post": "yes"})


# --- every admin write is recorded -----------------------------------------------------------


@pytest.mark.django_db
def test_every_admin_that_can_write_is_audited(admin_user):
    """No admin of any model may add, change or delete without the audited mixin."""
    request = RequestFactory().get("/admin/")
    request.user = admin_user
    unaudited = [
        model._meta.label for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedAdmin)
        and (model_admin.has_add_permission(request)
             or model_admin.has_change_permission(request)
             or model_admin.has_delete_permission(request))
    ]
    assert unaudited == []


@pytest.mark.django_db
def test_bulk_delete_of_platforms_is_audited_with_the_grants_it_ends(admin_client):
    a, b = TradePlatformFactory(name="A"), TradePlatformFactory(name="B")
    grant(StaffUserFactory(username="dealer7"), a)
    response = _delete_selected(admin_client, "tradeplatform", [a.pk, b.pk])
    assert response.status_code == 302 and not TradePlatform.objects.exists()
    events = {e.target: e for e in AuditEvent.objects.filter(action="platform.delete")}
    assert set(events) == {"A", "B"}
    assert events["A"].before["grants"] == ["dealer7"] and events["A"].platform_name == "A"
    assert events["A"].actor == AuditEvent.objects.get(target="B").actor
    for event in events.values():
        assert SECRET not in str(event.before)


@pytest.mark.django_db
def test_bulk_revoke_of_grants_is_audited(admin_client):
    platform = TradePlatformFactory(name="A")
    grants = [PlatformAccess.objects.create(user=StaffUserFactory(username=name),
                                            platform=platform, group_masks="real*")
              for name in ("d1", "d2")]
    response = _delete_selected(admin_client, "platformaccess", [g.pk for g in grants])
    assert response.status_code == 302 and not PlatformAccess.objects.exists()
    revoked = AuditEvent.objects.filter(action="access.revoke").order_by("target")
    assert [(e.target, e.platform, e.before["group_masks"]) for e in revoked] == [
        ("d1", platform, "real*"), ("d2", platform, "real*")]


@pytest.mark.django_db
def test_operation_policy_add_change_and_delete_are_audited(admin_client):
    platform = TradePlatformFactory(name="A")
    add = admin_client.post(reverse("admin:platforms_operationpolicy_add"), {
        "platform": platform.pk, "approval_threshold": "5000.00",
        "bulk_requires_approval": "on"})
    assert add.status_code == 302
    policy = OperationPolicy.objects.get(platform=platform)
    change = admin_client.post(
        reverse("admin:platforms_operationpolicy_change", args=[policy.pk]),
        {"platform": platform.pk, "approval_threshold": "250.00"})
    assert change.status_code == 302
    delete = admin_client.post(
        reverse("admin:platforms_operationpolicy_delete", args=[policy.pk]), {"post": "yes"})
    assert delete.status_code == 302 and not OperationPolicy.objects.exists()

    created, changed, deleted = AuditEvent.objects.filter(platform=platform).order_by("id")
    assert (created.action, changed.action, deleted.action) == (
        "policy.create", "policy.change", "policy.delete")
    assert Decimal(changed.before["approval_threshold"]) == Decimal("5000")
    assert Decimal(changed.after["approval_threshold"]) == Decimal("250")
    assert changed.after["bulk_requires_approval"] is False
    assert deleted.before["approval_threshold"] == changed.after["approval_threshold"]


@pytest.mark.django_db
def test_bulk_delete_of_operation_policies_is_audited(admin_client):
    policies = [OperationPolicy.objects.create(platform=TradePlatformFactory())
                for _ in range(2)]
    assert _delete_selected(admin_client, "operationpolicy",
                            [p.pk for p in policies]).status_code == 302
    assert _actions() == ["policy.delete", "policy.delete"]


def _user_form(user, **overrides) -> dict:
    data = {
        "username": user.username, "first_name": "", "last_name": "", "email": "",
        "is_active": "on", "is_staff": "on", "groups": [g.pk for g in user.groups.all()],
        "user_permissions": [], "date_joined_0": "2026-01-01", "date_joined_1": "09:00:00",
        "platform_access-TOTAL_FORMS": "0", "platform_access-INITIAL_FORMS": "0",
    }
    data.update(overrides)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.django_db
def test_a_users_role_and_flags_changed_in_admin_are_audited(admin_client):
    dealer, risk = Group.objects.get(name="dealer"), Group.objects.get(name="risk")
    user = StaffUserFactory(username="newhire")
    user.groups.add(dealer)
    url = reverse("admin:auth_user_change", args=[user.pk])
    response = admin_client.post(url, _user_form(user, groups=[risk.pk],
                                                 is_superuser="on"))
    assert response.status_code == 302, response.content.decode()[:2000]

    event = AuditEvent.objects.get(action="user.change")
    assert event.target == "newhire"
    assert (event.before["groups"], event.after["groups"]) == (["dealer"], ["risk"])
    assert (event.before["is_superuser"], event.after["is_superuser"]) == (False, True)
    assert event.after["password_changed"] is False
    assert user.password not in json.dumps(event.before) + json.dumps(event.after)


@pytest.mark.django_db
def test_grants_added_on_a_users_page_are_audited(admin_client):
    platform = TradePlatformFactory(name="A")
    user = StaffUserFactory(username="newhire")
    url = reverse("admin:auth_user_change", args=[user.pk])
    response = admin_client.post(url, _user_form(user, **{
        "platform_access-TOTAL_FORMS": "1", "platform_access-0-platform": platform.pk,
        "platform_access-0-group_masks": "real*", "platform_access-0-user": user.pk}))
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.get(action="access.grant")
    assert (event.target, event.platform, event.after["group_masks"]) == ("newhire", platform,
                                                                          "real*")


@pytest.mark.django_db
def test_a_password_change_is_audited_without_the_password_or_its_hash(admin_client):
    user = StaffUserFactory(username="newhire")
    old_hash = user.password
    response = admin_client.post(
        reverse("admin:auth_user_password_change", args=[user.pk]),
        {"password1": NEW_PASSWORD, "password2": NEW_PASSWORD, "usable_password": "true"})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(NEW_PASSWORD)

    event = AuditEvent.objects.get(action="user.password_change")
    assert event.target == "newhire" and event.after == {"password_changed": True,
                                                         "usable_password": True}
    trail = "".join(json.dumps([e.before, e.after]) + e.detail + e.target
                    for e in AuditEvent.objects.all())
    for secret in (NEW_PASSWORD, user.password, old_hash, old_hash.split("$")[-1]):
        assert secret not in trail


@pytest.mark.django_db
def test_a_roles_permissions_changed_in_admin_are_audited(admin_client):
    role = Group.objects.create(name="auditor")
    perm = Permission.objects.get(codename="view_reports")
    response = admin_client.post(reverse("admin:auth_group_change", args=[role.pk]),
                                 {"name": "auditor", "permissions": [perm.pk]})
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="role.change")
    assert (event.before["permissions"], event.after["permissions"]) == (
        [], ["platforms.view_reports"])


@pytest.mark.django_db
def test_schedule_actions_and_edits_in_admin_are_audited(admin_client):
    every = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.MINUTES)
    task = PeriodicTask.objects.create(name="snapshot #1", task="platforms.mirror.tasks.x",
                                       interval=every, enabled=True)
    changelist = reverse("admin:django_celery_beat_periodictask_changelist")
    response = admin_client.post(changelist, {"action": "disable_tasks",
                                              "_selected_action": [task.pk]})
    assert response.status_code == 302
    task.refresh_from_db()
    assert task.enabled is False
    event = AuditEvent.objects.get(action="schedule.disable_tasks")
    assert (event.before["enabled"], event.after["enabled"]) == (True, False)
    assert event.target.startswith("snapshot #1")


# --- recorded events cannot be changed or deleted ---------------------------------------------


@pytest.mark.django_db
def test_the_orm_refuses_to_change_or_delete_an_audit_event():
    event = audit.record(actor=None, action="test.write", target="x", after={"a": 1})
    event.target = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(target="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.all().delete()
    stored = AuditEvent.objects.get(pk=event.pk)
    assert (stored.target, stored.after) == ("x", {"a": 1})
    assert isinstance(AppendOnlyError("x"), IntegrityError)


@pytest.mark.django_db
def test_deleting_a_user_or_platform_keeps_their_names_in_the_trail(admin_client):
    platform = TradePlatformFactory(name="Gone")
    user = StaffUserFactory(username="leaver")
    event = AuditEvent.objects.create(actor=user, platform=platform, action="test.write")
    assert (event.actor_name, event.platform_name) == ("leaver", "Gone")

    assert admin_client.post(reverse("admin:auth_user_delete", args=[user.pk]),
                             {"post": "yes"}).status_code == 302
    platform.delete()
    event = AuditEvent.objects.get(pk=event.pk)
    assert (event.actor_id, event.platform_id) == (None, None)
    assert (event.who, event.actor_name, event.platform_name) == ("leaver", "leaver", "Gone")
    deleted = AuditEvent.objects.get(action="user.delete")
    assert deleted.target == "leaver" and deleted.before["is_staff"] is True


def _raw(sql: str, params=()) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@on_postgresql
@pytest.mark.django_db
def test_postgresql_refuses_update_delete_and_truncate_of_the_audit_table_in_any_sql():
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    # first: PostgreSQL cannot TRUNCATE a table this transaction has inserted into
    with pytest.raises(IntegrityError, match="append-only"):
        _raw(f"TRUNCATE {table}")
    event = audit.record(actor=None, action="test.write", target="x",
                         platform=TradePlatformFactory())
    other = StaffUserFactory(username="someone")
    for statement in (f"UPDATE {table} SET target = 'rewritten' WHERE id = %s",  # noqa: S608
                      f"DELETE FROM {table} WHERE id = %s",  # noqa: S608
                      f"UPDATE {table} SET actor_name = 'someone' WHERE id = %s",  # noqa: S608
                      # the SET NULL of a deleted link passes only if nothing else changes
                      f"UPDATE {table} SET platform_id = NULL, target = '' "  # noqa: S608
                      "WHERE id = %s",
                      f"UPDATE {table} SET actor_id = %s WHERE id = %s"):  # noqa: S608
        params = [other.pk, event.pk] if statement.count("%s") == 2 else [event.pk]
        with pytest.raises(IntegrityError, match="append-only"):
            _raw(statement, params)
    # the base manager is not the guarded one: the trigger still refuses
    with pytest.raises(IntegrityError, match="append-only"), transaction.atomic():
        AuditEvent._base_manager.filter(pk=event.pk).update(target="rewritten")

    _raw(f"INSERT INTO {table} (at, action, target, before, after, request_id, outcome, "  # noqa: S608
         "detail) VALUES (now(), 'raw.insert', 'y', '{}', '{}', gen_random_uuid(), 'ok', '')")
    assert AuditEvent.objects.get(pk=event.pk).target == "x"
    assert AuditEvent.objects.filter(action="raw.insert").exists()


@on_postgresql
@pytest.mark.django_db
def test_postgresql_names_a_deleted_user_on_rows_inserted_without_the_name():
    """The trading fast path inserts rows in SQL without the names; the trigger copies the
    name when the user is deleted and the link is set to NULL."""
    user = StaffUserFactory(username="leaver")
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    _raw(f"INSERT INTO {table} (at, actor_id, action, target, before, after, request_id, "  # noqa: S608
         "outcome, detail) VALUES (now(), %s, 'raw.insert', '', '{}', '{}', "
         "gen_random_uuid(), 'ok', '')", [user.pk])
    assert AuditEvent.objects.get(action="raw.insert").actor_name == ""
    user.delete()
    event = AuditEvent.objects.get(action="raw.insert")
    assert (event.actor_id, event.actor_name) == (None, "leaver")


# --- retention: archive to a file, then delete -------------------------------------------------


def _event_at(when, action: str, **fields) -> AuditEvent:
    """An event dated in the past (``at`` is set on insert, in SQL, never updated)."""
    event = AuditEvent(action=action, **fields)
    event.save()
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    with audit.maintenance(), connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET at = %s WHERE id = %s", [when, event.pk])  # noqa: S608
    return event


@pytest.mark.django_db
@pytest.mark.parametrize("name", ["audit-2025.jsonl", "audit-2025.jsonl.gz"])
def test_archive_audit_writes_the_old_events_then_deletes_them(tmp_path, name):
    old = timezone.make_aware(dt.datetime(2025, 6, 1, 12, 0))
    user = StaffUserFactory(username="dealer1")
    first = _event_at(old, "old.one", actor=user, target="a", before={"x": 1})
    second = _event_at(old, "old.two", target="b")
    recent = audit.record(actor=None, action="recent.one")
    archive = tmp_path / name

    call_command("archive_audit", "--before", "2026-01-01", "--to", str(archive))

    opener = gzip.open if name.endswith(".gz") else open
    with opener(archive, "rt", encoding="utf-8") as stored:
        rows = [json.loads(line) for line in stored]
    assert [(r["id"], r["action"], r["actor_name"]) for r in rows] == [
        (first.pk, "old.one", "dealer1"), (second.pk, "old.two", "")]
    assert rows[0]["before"] == {"x": 1} and rows[0]["at"].startswith("2025-06-01")
    assert not AuditEvent.objects.filter(pk__in=[first.pk, second.pk]).exists()
    assert AuditEvent.objects.filter(pk=recent.pk).exists()
    record = AuditEvent.objects.get(action="audit.archive")
    assert record.target == name and record.after["rows"] == 2
    assert record.after["first_id"] == first.pk and len(record.after["sha256"]) == 64


@pytest.mark.django_db
def test_archive_audit_refuses_to_overwrite_and_leaves_the_rows(tmp_path):
    old = timezone.make_aware(dt.datetime(2025, 6, 1, 12, 0))
    event = _event_at(old, "old.one")
    archive = tmp_path / "audit.jsonl"
    archive.write_text("earlier archive\n")
    with pytest.raises(CommandError, match="never overwritten"):
        call_command("archive_audit", "--before", "2026-01-01", "--to", str(archive))
    with pytest.raises(CommandError, match="future"):
        call_command("archive_audit", "--before", "2999-01-01", "--to", str(tmp_path / "n"))
    assert archive.read_text() == "earlier archive\n"
    assert AuditEvent.objects.filter(pk=event.pk).exists()
    # and after the command, the guard is back on
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
