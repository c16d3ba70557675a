"""Fixtures of the trading tests: staff per desk, and a real Celery worker on the test database."""

from __future__ import annotations

import os
import time

import pytest

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


def _staff(username: str, role: str | None, platforms):
    from platforms.access.roles import sync_roles
    from tests.factories import StaffUserFactory, grant

    sync_roles()  # transactional tests flush the groups the migration created
    user = StaffUserFactory(username=username)
    if role:
        grant(user, *platforms, role=role)
    else:
        grant(user, *platforms)
    return user


@pytest.fixture
def finance_user(sandbox_platforms):
    return _staff("finance1", "finance", sandbox_platforms)


@pytest.fixture
def second_finance_user(sandbox_platforms):
    return _staff("finance2", "finance", sandbox_platforms)


@pytest.fixture
def dealer_user(sandbox_platforms):
    return _staff("dealer2", "dealer", sandbox_platforms)


@pytest.fixture
def support_user(sandbox_platforms):
    return _staff("support1", "support", sandbox_platforms)


@pytest.fixture
def nobody_user(sandbox_platforms):
    """Staff with access to the platforms but no operation permission."""
    return _staff("viewer1", None, sandbox_platforms)


@pytest.fixture
def admin_user(sandbox_platforms):
    return _staff("admin1", "admin", sandbox_platforms)


def wait_for(predicate, timeout: float = 60.0, interval: float = 0.2, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
