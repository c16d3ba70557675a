"""The Django project: settings, URLs, ASGI and Celery wiring, and the staff UI."""

from .celery import app as celery_app

__all__ = ("celery_app",)
