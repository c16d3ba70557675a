"""Shared fixtures: a running sandbox on free loopback ports, staff users, logged-in clients."""

from __future__ import annotations

import pytest

from tests.sandbox_process import SandboxInfo, start_sandbox


@pytest.fixture(scope="session")
def sandbox() -> SandboxInfo:
    """One sandbox process for the whole run: 300 accounts, a frozen market (steps on demand)."""
    info = start_sandbox("--users", "300", "--seed", "7", "--tick-rate", "0", "--record-exchanges")
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
    from platforms.connections import forget_clients
    from platforms.services import register_sandbox_platforms

    forget_clients()
    mt4, mt5 = register_sandbox_platforms(clean_sandbox)
    yield mt4, mt5
    forget_clients()


@pytest.fixture
def staff_user(db):
    from tests.factories import StaffUserFactory

    return StaffUserFactory(username="dealer1")


@pytest.fixture
def staff_client(client, staff_user):
    client.force_login(staff_user)
    return client
