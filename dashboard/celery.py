"""Celery application.

Quotes, trading and reporting work go to separate queues so that a slow month-end report can
never delay a client's deposit, and a flood of quote work never delays either.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "dashboard.settings")

app = Celery("dashboard")
app.config_from_object("django.conf:settings", namespace="CELERY")
# One ``tasks.py`` per domain that has background work.
app.autodiscover_tasks(["platforms.mirror", "platforms.trading", "platforms.server"])
