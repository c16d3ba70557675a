from django.db import migrations

from platforms.mirror.schedules import ensure_interval_task, remove_task

NAME = "Sample platform health"


def schedule_health_samples(apps, schema_editor):
    """One connection sample per platform every minute feeds the health page (editable)."""
    ensure_interval_task(apps, NAME, "platforms.server_tasks.sample_health", 60, "reporting")


def unschedule_health_samples(apps, schema_editor):
    remove_task(apps, NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("platforms", "0007_server_ops"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule_health_samples, unschedule_health_samples)]
