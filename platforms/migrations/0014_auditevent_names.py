"""Audit events keep the actor's and the platform's name: deleting a user or a platform sets
the link to NULL, the trail must still say who and where. Existing rows are filled in here,
before migration 0015 makes the table append-only."""

import platforms.models.platform
from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import migrations
from django.db.models import OuterRef, Subquery


def _fill_names(apps, schema_editor):
    events = apps.get_model("platforms", "AuditEvent")._base_manager
    user_model = apps.get_model(settings.AUTH_USER_MODEL)
    platform_model = apps.get_model("platforms", "TradePlatform")
    events.filter(actor__isnull=False).update(actor_name=Subquery(
        user_model._base_manager.filter(pk=OuterRef("actor_id"))
        .values(get_user_model().USERNAME_FIELD)[:1]))
    events.filter(platform__isnull=False).update(platform_name=Subquery(
        platform_model._base_manager.filter(pk=OuterRef("platform_id")).values("name")[:1]))


class Migration(migrations.Migration):

    dependencies = [
        ('platforms', '0013_leaner_task_and_audit_indexes'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name='auditevent',
            name='actor_name',
            field=platforms.models.platform.CopiedNameField(blank=True, db_default='', max_length=150, source='actor'),
        ),
        migrations.AddField(
            model_name='auditevent',
            name='platform_name',
            field=platforms.models.platform.CopiedNameField(blank=True, db_default='', max_length=100, source='platform'),
        ),
        migrations.RunPython(_fill_names, migrations.RunPython.noop),
    ]
