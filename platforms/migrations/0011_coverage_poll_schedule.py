from django.db import migrations

from platforms.mirror.schedules import ensure_interval_task, remove_task

NAME = "Poll coverage accounts"


def schedule_coverage_polls(apps, schema_editor):
    """Every enabled coverage account's balance, positions and floating P/L read every 10 s on
    ``reporting``, with or without an exposure page open (editable in admin); fills also
    arrive at once through the stream process's ``/events``."""
    ensure_interval_task(apps, NAME, "platforms.coverage.tasks.poll_all_coverage", 10,
                         "reporting")


def unschedule_coverage_polls(apps, schema_editor):
    remove_task(apps, NAME)


class Migration(migrations.Migration):
    dependencies = [
        ("platforms", "0010_coverage_hedge_kinds"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule_coverage_polls, unschedule_coverage_polls)]
