"""Shared fixtures: a running sandbox on free loopback ports, staff users, logged-in clients."""

from __future__ import annotations

import pytest

from tests import sandbox_process
from tests.sandbox_process import SandboxInfo, start_sandbox


def pytest_sessionfinish(session, exitstatus):
    """Every answer any sandbox gave this session was judged against the vendor's document."""
    if sandbox_process.violations:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        reporter.section("sandbox answers that violate the vendor's OpenAPI document", red=True)
        for line in sandbox_process.violations:
            reporter.line(line)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
    from platforms.client import breaker_for, reset_breakers
    from platforms.connections import forget_clients
    from platforms.services import register_sandbox_platforms

    def forget():
        forget_clients()
        for platform_id in (clean_sandbox.mt4_id, clean_sandbox.mt5_id):
            breaker_for(platform_id).reset()  # the state may live in Redis, across runs
        reset_breakers()

    forget()
    mt4, mt5 = register_sandbox_platforms(clean_sandbox)
    yield mt4, mt5
    forget()


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
