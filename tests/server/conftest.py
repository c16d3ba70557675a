"""Fixtures of the server-page tests: clients per role on the sandbox platforms."""

from __future__ import annotations

import pytest

from dashboard.celery import app as celery_app
from platforms.server import tasks as server_tasks
from tests.support.staff import make_staff


@pytest.fixture
def run_tasks_inline():
    """The tasks the services queue (by name, through ``platforms.server.dispatch``) run in
    this process, as a worker runs them: Celery's eager mode, errors raised here."""
    assert server_tasks.send_mail_job.name in celery_app.tasks  # registered: sent eagerly
    eager = {"task_always_eager": True, "task_eager_propagates": True}
    saved = {key: celery_app.conf[key] for key in eager}
    celery_app.conf.update(eager)
    yield
    celery_app.conf.update(saved)


@pytest.fixture
def admin_role_client(client, sandbox_platforms):
    """Staff with the admin role (health, plugins, messages, reports) on both platforms."""
    client.force_login(make_staff(*sandbox_platforms, role="admin", username="ops-admin"))
    return client


@pytest.fixture
def support_client(client, sandbox_platforms):
    """Staff with the support role (may send messages; no plugins, health or reports)."""
    client.force_login(make_staff(*sandbox_platforms, role="support", username="ops-support"))
    return client


@pytest.fixture
def sidecar_down(clean_sandbox):
    """The sandbox's sidecar listener stopped for the test, restarted afterwards."""
    clean_sandbox.control("POST", "/sidecar", json={"up": False})
    yield clean_sandbox
    clean_sandbox.control("POST", "/sidecar", json={"up": True})


def sandbox_stats(sandbox) -> dict:
    return sandbox.control("GET", "/stats").json()["operations"]


def received(sandbox, operation: str) -> int:
    return sandbox_stats(sandbox).get(operation, {}).get("received", 0)
