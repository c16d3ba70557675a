"""Per-platform snapshot schedules as django-celery-beat ``PeriodicTask`` rows.

Created when a platform is saved (and by the data migration for platforms that already exist),
never overwritten afterwards: staff edit the intervals in Admin → Periodic tasks. A disabled
platform's schedules are disabled with it; a deleted platform's are deleted.
"""

from __future__ import annotations

import json

from django.db import transaction
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from platforms.models import TradePlatform

TASK = "platforms.tasks.snapshot_scheduled"


def schedule_name(platform_pk: int, kind: str) -> str:
    return f"mirror: {kind} snapshot of platform #{platform_pk}"


def ensure_snapshot_schedules(platform: TradePlatform, apps=None) -> None:
    """Incremental every minute (MT5, which can only read in full: every 5 minutes), a full
    run nightly at 02:00 UTC and, on MT4, the closed-trade history at 03:00 UTC."""
    if apps is None:
        from django_celery_beat.models import CrontabSchedule, IntervalSchedule, PeriodicTask
    else:
        CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
        IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
        PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    every, _ = IntervalSchedule.objects.get_or_create(
        every=5 if platform.kind == "MT5" else 1, period="minutes"
    )
    nightly, _ = CrontabSchedule.objects.get_or_create(
        minute="0", hour="2", day_of_week="*", day_of_month="*", month_of_year="*",
        timezone="UTC",
    )
    plans = [("incremental", {"interval": every}), ("full", {"crontab": nightly})]
    if platform.kind == "MT4":
        history, _ = CrontabSchedule.objects.get_or_create(
            minute="0", hour="3", day_of_week="*", day_of_month="*", month_of_year="*",
            timezone="UTC",
        )
        plans.append(("history", {"crontab": history}))
    for kind, when in plans:
        task, created = PeriodicTask.objects.get_or_create(
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


@receiver(post_save, sender=TradePlatform, dispatch_uid="mirror-schedules")
def _platform_saved(sender, instance: TradePlatform, raw: bool = False, **kwargs) -> None:
    if not raw:
        transaction.on_commit(lambda: ensure_snapshot_schedules(instance))


@receiver(post_delete, sender=TradePlatform, dispatch_uid="mirror-schedules-delete")
def _platform_deleted(sender, instance: TradePlatform, **kwargs) -> None:
    from django_celery_beat.models import PeriodicTask

    PeriodicTask.objects.filter(
        name__in=[schedule_name(instance.pk, k) for k in ("incremental", "full", "history")]
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
