from django.db import migrations


def schedule_health_samples(apps, schema_editor):
    """One connection sample per platform every minute feeds the health page (editable)."""
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = interval_model.objects.get_or_create(every=60, period="seconds")
    task_model.objects.update_or_create(
        name="Sample platform health",
        defaults={"task": "platforms.server_tasks.sample_health", "interval": every,
                  "queue": "reporting", "enabled": True},
    )


def unschedule_health_samples(apps, schema_editor):
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name="Sample platform health").delete()


class Migration(migrations.Migration):
    dependencies = [
        ("platforms", "0007_server_ops"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(schedule_health_samples, unschedule_health_samples)]
