"""Fixtures for the mirror tests: a sandbox of their own, the sandbox platforms registered in the
TEST database, and real Celery worker processes consuming the ``reporting`` queue.

The workers are child processes (``python -m celery -A dashboard worker``) pointed at the test
database (pytest-django's, not the app's) and at a broker of their own (a temporary folder for
kombu's filesystem transport, or a separate Redis database), so that neither a running demo nor
messages left over from it can meet these tests. They get the test process's secrets so that
they can decrypt the platforms' client secrets.
"""

from __future__ import annotations

import pytest

from tests.sandbox_process import forget_connections, start_sandbox
from tests.workers import CeleryWorker, worker_env

WORKER_READY_TIMEOUT = 60


@pytest.fixture(scope="session")
def mirror_sandbox():
    """300 MT4 accounts (50 MT5 users), a frozen market: every change is one a test made."""
    info = start_sandbox("--users", "300", "--seed", "11", "--tick-rate", "0")
    yield info
    info.stop()


@pytest.fixture(scope="session")
def worker_factory(django_db_setup, django_db_blocker, celery_broker, tmp_path_factory):
    """Start real workers against the test database; all are stopped at the end."""
    with django_db_blocker.unblock():
        env = worker_env(celery_broker)
    logs = tmp_path_factory.mktemp("workers")
    started: list[CeleryWorker] = []

    def start(name: str = "mirror", **extra_env: str) -> CeleryWorker:
        worker = CeleryWorker({**env, **extra_env}, logs / f"{name}-{len(started)}.log",
                              f"{name}{len(started)}", queues="reporting")
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@pytest.fixture
def celery_worker(worker_factory):
    """A worker for this test only (so no test inherits another's breaker or queue state)."""
    worker = worker_factory("worker")
    yield worker
    worker.stop()


@pytest.fixture
def mirror_platforms(transactional_db, mirror_sandbox):
    """The sandbox's MT4 and MT5 platforms registered in the test database, no faults, the
    sidecar up, circuits closed (in this process and, through Redis, in the workers)."""
    from platforms.services import register_sandbox_platforms

    def reset():
        mirror_sandbox.clear_faults()  # also brings the sidecar back up
        forget_connections(mirror_sandbox)

    reset()
    mt4, mt5 = register_sandbox_platforms(mirror_sandbox)
    yield mt4, mt5
    reset()
