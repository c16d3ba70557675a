"""Fixtures of the trading tests: staff per desk, and a real Celery worker on the test database."""

from __future__ import annotations

import os

import pytest

from tests.support.staff import make_staff
from tests.workers import CeleryWorker, worker_env


@pytest.fixture
def celery_worker_process(transactional_db, celery_broker, tmp_path):
    """``celery -A dashboard worker -Q trading -P <CELERY_TRADING_WORKER_POOL> -c 4`` (the pool
    production uses, threads by default) as a child process on the test database.

    Needs ``@pytest.mark.django_db(transaction=True)``: the worker is another process and only
    sees committed rows.
    """
    from django.conf import settings

    worker = CeleryWorker(worker_env(celery_broker, DJANGO_LOG_LEVEL="WARNING"),
                          tmp_path / "worker.log", f"trading-test-{os.getpid()}",
                          queues="trading",
                          pool_args=("-P", settings.CELERY_TRADING_WORKER_POOL, "-c", "4"))
    yield worker
    worker.stop()


@pytest.fixture
def mt4(sandbox_platforms):
    return sandbox_platforms[0]


@pytest.fixture
def mt5(sandbox_platforms):
    return sandbox_platforms[1]


@pytest.fixture
def finance_user(sandbox_platforms):
    return make_staff(*sandbox_platforms, role="finance", username="finance1")


@pytest.fixture
def second_finance_user(sandbox_platforms):
    return make_staff(*sandbox_platforms, role="finance", username="finance2")


@pytest.fixture
def dealer_user(sandbox_platforms):
    return make_staff(*sandbox_platforms, role="dealer", username="dealer2")


@pytest.fixture
def support_user(sandbox_platforms):
    return make_staff(*sandbox_platforms, role="support", username="support1")


@pytest.fixture
def nobody_user(sandbox_platforms):
    """Staff with access to the platforms but no operation permission."""
    from platforms.access.roles import sync_roles

    sync_roles()  # transactional tests flush the groups the migration created
    return make_staff(*sandbox_platforms, username="viewer1")


@pytest.fixture
def admin_role_user(sandbox_platforms):
    return make_staff(*sandbox_platforms, role="admin", username="admin1")

