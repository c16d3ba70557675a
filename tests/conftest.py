"""Shared fixtures: a running sandbox on free loopback ports, staff users, logged-in clients."""

from __future__ import annotations

import re

import pytest
from django.conf import settings

from tests import sandbox_process
from tests.sandbox_process import SandboxInfo, forget_connections, start_sandbox


def pytest_configure(config):
    """Hash test users' passwords with few rounds (``tests.hashers``): the suite's CPU went
    mostly to PBKDF2 otherwise. Production settings are untouched."""
    settings.PASSWORD_HASHERS = ["tests.hashers.QuickPBKDF2PasswordHasher"]


def pytest_sessionfinish(session, exitstatus):
    """Every answer any sandbox gave this session was judged against the vendor's document."""
    if sandbox_process.violations:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.section("sandbox answers that violate the vendor's OpenAPI document", red=True)
        for line in sandbox_process.violations:
            reporter.line(line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test databases, and on PostgreSQL the test database's other sessions
    ended before it is dropped: the in-process ASGI server's worker threads (browser and socket
    tests) keep connections of their own, and the drop failed on them ("is being accessed by
    other users"), leaving the database behind for the next run to find."""
    yield
    with django_db_blocker.unblock():
        from django.db import connections

        for connection in connections.all():
            if connection.vendor != "postgresql":
                continue
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                               " WHERE datname = current_database() AND pid <> pg_backend_pid()")


@pytest.fixture(scope="session", autouse=True)
def _flush_is_audit_maintenance():
    """The flush between transactional tests (``TRUNCATE`` on PostgreSQL) runs as audit
    maintenance, as the retention command does: the append-only trigger refuses it otherwise.
    Only the suite's own flush: tests that write to the audit table still meet the trigger."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    from platforms.audit import maintenance

    flush = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        with maintenance(self.connection.alias):
            flush(self, sql_list)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(DatabaseOperations, "execute_sql_flush", execute_sql_flush)
        yield


@pytest.fixture(scope="session")
def sandbox() -> SandboxInfo:
    """One sandbox process for the whole run: 300 accounts, a frozen market (steps on demand)."""
    info = start_sandbox("--users", "300", "--seed", "7", "--tick-rate", "0")
    yield info
    info.stop()


@pytest.fixture
def clean_sandbox(sandbox: SandboxInfo) -> SandboxInfo:
    """The shared sandbox with no faults set before and after the test."""
    sandbox.clear_faults()
    yield sandbox
    sandbox.clear_faults()


@pytest.fixture
def sandbox_platforms(db, clean_sandbox: SandboxInfo):
    """The two sandbox platforms registered in the database, as the demo registers them."""
    from platforms.services import register_sandbox_platforms

    forget_connections(clean_sandbox)
    mt4, mt5 = register_sandbox_platforms(clean_sandbox)
    yield mt4, mt5
    forget_connections(clean_sandbox)


@pytest.fixture
def staff_user(db):
    from tests.factories import StaffUserFactory

    return StaffUserFactory(username="dealer1")


@pytest.fixture
def staff_client(client, staff_user):
    """A staff user with no platform granted yet (grant with ``tests.factories.grant``)."""
    client.force_login(staff_user)
    return client


@pytest.fixture
def dealer_client(client, staff_user, sandbox_platforms):
    """A logged-in dealer with access to both sandbox platforms."""
    from tests.factories import grant

    grant(staff_user, *sandbox_platforms, role="dealer")
    client.force_login(staff_user)
    return client


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


@pytest.fixture
def browser(monkeypatch):
    """Debian's Chromium driven by Playwright. Missing Chromium fails loudly, never skips.

    Function-scoped on purpose: Playwright's sync API keeps an event loop on this thread while
    it runs, which must not outlive the test (async tests follow). For the same reason Django's
    async-safety guard is lifted only for the test: its ORM calls remain synchronous.
    """
    import os

    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (never skipped)")
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def artifacts(request):
    """Where a browser test saves its screenshots (``test-results/<test name>/``)."""
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "test-results" / request.node.name
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="session")
def celery_broker(tmp_path_factory):
    """Point this process's Celery app at an isolated broker; returns the workers' env.

    A folder of its own for kombu's filesystem transport, or a Redis database of its own, so
    that neither a running demo nor messages left from an earlier run can meet the tests.
    """
    from dashboard.celery import app

    env: dict[str, str] = {}
    if settings.REDIS_URL:
        broker = re.sub(r"/\d*$", "", settings.REDIS_URL.rstrip("/")) + "/13"
        env["CELERY_BROKER_URL"] = broker
        app.conf.broker_url = broker
        import redis

        redis.Redis.from_url(broker).flushdb()  # nothing from an earlier session is left over
    else:
        var_dir = tmp_path_factory.mktemp("worker-var")
        queue, processed = var_dir / "celery" / "queue", var_dir / "celery" / "processed"
        queue.mkdir(parents=True)
        processed.mkdir(parents=True)
        env["DASHBOARD_VAR_DIR"] = str(var_dir)
        app.conf.broker_transport_options = {
            **settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            "data_folder_in": str(queue),
            "data_folder_out": str(queue),
            "processed_folder": str(processed),
        }
    if app._pool is not None:
        app._pool.force_close_all()
        app._pool = None
    app.amqp._producer_pool = None
    return env
