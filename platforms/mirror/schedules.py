"""Per-platform snapshot schedules as django-celery-beat ``PeriodicTask`` rows.

Created when a platform is saved (and by the data migration for platforms that already exist),
never overwritten afterwards: staff edit the intervals in Admin → Periodic tasks. A disabled
platform's schedules are disabled with it; a deleted platform's are deleted.
"""

from __future__ import annotations

import json

from django.apps import apps as global_apps

from platforms.mirror import dispatch
from platforms.models import TradePlatform

TASK = dispatch.SNAPSHOT_SCHEDULED


def schedule_name(platform_pk: int, kind: str) -> str:
    return f"mirror: {kind} snapshot of platform #{platform_pk}"


def ensure_snapshot_schedules(platform: TradePlatform, apps=None) -> None:
    """Incremental every minute (MT5, which can only read in full: every 5 minutes), a full
    run nightly at 02:00 UTC and, on MT4, the closed-trade history at 03:00 UTC."""
    models = apps or global_apps
    crontab_model = models.get_model("django_celery_beat", "CrontabSchedule")
    interval_model = models.get_model("django_celery_beat", "IntervalSchedule")
    task_model = models.get_model("django_celery_beat", "PeriodicTask")
    every, _ = interval_model.objects.get_or_create(
        every=5 if platform.kind == "MT5" else 1, period="minutes"
    )
    nightly, _ = crontab_model.objects.get_or_create(
        minute="0", hour="2", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="UTC",
    )
    plans = [("incremental", {"interval": every}), ("full", {"crontab": nightly})]
    if platform.kind == "MT4":
        history, _ = crontab_model.objects.get_or_create(
            minute="0", hour="3", day_of_week="*", day_of_month="*", month_of_year="*",
            timezone="UTC",
        )
        plans.append(("history", {"crontab": history}))
    for kind, when in plans:
        task, created = task_model.objects.get_or_create(
            name=schedule_name(platform.pk, kind),
            defaults={
                "task": TASK,
                "kwargs": json.dumps({"platform_id": platform.pk, "kind": kind}),
                "queue": "reporting",
                "enabled": platform.enabled,
                **when,
            },
        )
        if not created and task.enabled != platform.enabled:
            task.enabled = platform.enabled
            task.save(update_fields=["enabled"])


def remove_snapshot_schedules(platform_pk: int) -> None:
    """Delete the schedules of a deleted platform."""
    global_apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(
        name__in=[schedule_name(platform_pk, k) for k in ("incremental", "full", "history")]
    ).delete()


def ensure_interval_task(apps, name: str, task: str, seconds: int, queue: str) -> None:
    """Create or update a periodic task running every ``seconds`` (used by data migrations)."""
    interval_model = apps.get_model("django_celery_beat", "IntervalSchedule")
    task_model = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = interval_model.objects.get_or_create(every=seconds, period="seconds")
    task_model.objects.update_or_create(
        name=name, defaults={"task": task, "interval": every, "queue": queue, "enabled": True}
    )


def remove_task(apps, name: str) -> None:
    apps.get_model("django_celery_beat", "PeriodicTask").objects.filter(name=name).delete()
