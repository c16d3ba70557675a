"""Coverage accounts in Django admin: secrets encrypted and write-only, changes audited, the
"Test connection" action against the sandbox bridge, and the demo's registration."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from platforms.coverage.models import CoverageAccount
from platforms.coverage.services import register_sandbox_coverage_accounts
from platforms.models import AuditEvent
from platforms.services import register_sandbox_platforms
from tests.coverage.conftest import LOGIN, Wire
from tests.sandbox_process import SandboxInfo

KEY = "bridge-key-never-shown"
PASSWORD = "terminal-pass-never-shown"


def _account(info: SandboxInfo | None = None, **overrides) -> CoverageAccount:
    values = dict(
        name="LP One", lp_name="Sandbox Liquidity",
        bridge_base_url=info.bridge_url if info else "https://bridge.example.com/mt4/client",
        api_key=info.bridge_api_key if info else KEY, account_id="acct-1",
        server=info.bridge_server if info else "LP-Demo", login=LOGIN,
        terminal_password=info.bridge_password if info else PASSWORD,
    )
    values.update(overrides)
    return CoverageAccount.objects.create(**values)


def _form(account: CoverageAccount, **overrides) -> dict:
    data = {"name": account.name, "lp_name": account.lp_name,
            "bridge_base_url": account.bridge_base_url, "api_key": "", "account_id":
            account.account_id, "server": account.server, "login": str(account.login),
            "terminal_password": "", "enabled": "on"}
    data.update(overrides)
    return data


def _run_check(admin_client, account: CoverageAccount):
    return admin_client.post(
        reverse("admin:platforms_coverageaccount_changelist"),
        {"action": "test_connection", "_selected_action": [account.pk]}, follow=True,
    )


@pytest.mark.django_db
def test_secrets_are_encrypted_at_rest() -> None:
    account = _account()
    with connection.cursor() as cursor:
        cursor.execute("SELECT api_key, terminal_password FROM platforms_coverageaccount "
                       "WHERE id = %s", [account.pk])
        stored = cursor.fetchone()
    assert KEY not in stored[0] and PASSWORD not in stored[1]
    assert stored[0].startswith("gAAAA") and stored[1].startswith("gAAAA")
    fresh = CoverageAccount.objects.get(pk=account.pk)
    assert (fresh.api_key, fresh.terminal_password) == (KEY, PASSWORD)


@pytest.mark.django_db
def test_change_form_never_renders_the_secrets_and_blank_keeps_them(admin_client) -> None:
    account = _account()
    url = reverse("admin:platforms_coverageaccount_change", args=[account.pk])
    page = admin_client.get(url).content.decode()
    assert KEY not in page and PASSWORD not in page
    assert 'name="api_key"' in page and 'name="terminal_password"' in page

    assert admin_client.post(url, _form(account, name="Renamed")).status_code == 302
    account.refresh_from_db()
    assert (account.name, account.api_key, account.terminal_password) == ("Renamed", KEY,
                                                                          PASSWORD)
    assert admin_client.post(url, _form(account, api_key="rotated-key")).status_code == 302
    account.refresh_from_db()
    assert account.api_key == "rotated-key" and account.terminal_password == PASSWORD

    events = list(AuditEvent.objects.filter(action="coverage.change").order_by("id"))
    assert [e.after["api_key_changed"] for e in events] == [False, True]
    assert events[0].before["name"] == "LP One" and events[0].after["name"] == "Renamed"
    for event in events:
        trail = str(event.before) + str(event.after) + event.detail
        assert KEY not in trail and PASSWORD not in trail and "rotated-key" not in trail


@pytest.mark.django_db
def test_deleting_accounts_one_or_many_is_audited_without_secrets(admin_client) -> None:
    one, two, three = (_account(name=name, account_id=name, login=LOGIN + n)
                       for n, name in enumerate(("A", "B", "C")))
    url = reverse("admin:platforms_coverageaccount_delete", args=[one.pk])
    assert admin_client.post(url, {"post": "yes"}).status_code == 302
    assert admin_client.post(reverse("admin:platforms_coverageaccount_changelist"), {
        "action": "delete_selected", "_selected_action": [two.pk, three.pk], "post": "yes",
    }).status_code == 302
    assert not CoverageAccount.objects.exists()
    deleted = AuditEvent.objects.filter(action="coverage.delete").order_by("target")
    assert [e.target for e in deleted] == ["A", "B", "C"]
    for event in deleted:
        assert event.before["lp_name"] == "Sandbox Liquidity"
        assert KEY not in str(event.before) and PASSWORD not in str(event.before)


@pytest.mark.django_db
def test_a_new_account_needs_both_secrets_and_covers_platforms(admin_client, lp) -> None:
    mt4, mt5 = register_sandbox_platforms(lp)
    add = reverse("admin:platforms_coverageaccount_add")
    data = {"name": "LP Two", "lp_name": "Prime", "bridge_base_url": lp.bridge_url,
            "api_key": "", "account_id": "acct-2", "server": "LP-Demo", "login": "900002",
            "terminal_password": "", "enabled": "on", "covers": [mt4.pk, mt5.pk]}
    refused = admin_client.post(add, data)
    assert refused.status_code == 200 and not CoverageAccount.objects.exists()
    assert refused.content.decode().count("Required for a new coverage account.") == 2

    data.update(api_key=KEY, terminal_password=PASSWORD)
    assert admin_client.post(add, data).status_code == 302
    account = CoverageAccount.objects.get(name="LP Two")
    assert set(account.covers.all()) == {mt4, mt5}
    created = AuditEvent.objects.get(action="coverage.create")
    assert created.after["covers"] == sorted([mt4.name, mt5.name])
    assert created.after["terminal_password_changed"] is True


@pytest.mark.django_db
def test_test_connection_shows_balance_and_round_trip_and_releases(admin_client,
                                                                   wire: Wire) -> None:
    account = _account(wire.info, login=900004)
    page = _run_check(admin_client, account).content.decode()
    assert "LP One: OK — balance 100," in page and "USD" in page
    assert "/account round trip" in page and "session opened and released" in page
    assert wire.state(900004)["sessions"] == 0  # released
    assert wire.op_stats("session.close")["executed"] == 1
    event = AuditEvent.objects.get(action="coverage.test_connection")
    assert event.outcome == "ok" and event.target == "LP One"
    assert event.after["currency"] == "USD" and event.after["rtt_ms"] > 0
    for secret in (wire.info.bridge_api_key, wire.info.bridge_password):
        assert secret not in page and secret not in str(event.after)
    assert "sess_" not in page


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "fault", "expected"),
    [
        ({"terminal_password": "wrong-password"}, None,
         "session.open: terminal login to LP-Demo failed: wrong login or password "
         "(ValidationError, HTTP 400)"),
        ({"api_key": "wrong-key"}, None,
         "session.open: the API key is not valid for this workspace (Unauthorized, HTTP 401)"),
        ({}, {"operation": "account", "error": "BridgeUnavailable"},
         "account: the bridge cannot reach the MT4 terminal of this account "
         "(BridgeUnavailable, HTTP 502)"),
    ],
)
def test_test_connection_shows_the_exact_error(admin_client, wire: Wire, overrides, fault,
                                               expected) -> None:
    if fault:
        wire.fault(**fault)
    account = _account(wire.info, **overrides)
    page = _run_check(admin_client, account).content.decode()
    assert f"LP One: FAILED — {expected}" in page
    event = AuditEvent.objects.get(action="coverage.test_connection")
    assert event.outcome == "failed" and event.detail == expected
    for secret in ("wrong-password", "wrong-key", wire.info.bridge_password):
        assert secret not in page and secret not in event.detail


@pytest.mark.django_db
def test_the_demo_registers_five_accounts_covering_both_platforms(lp) -> None:
    platforms = register_sandbox_platforms(lp)
    accounts = register_sandbox_coverage_accounts(lp, platforms)
    again = register_sandbox_coverage_accounts(lp, platforms)  # idempotent on restart
    assert [a.pk for a in again] == [a.pk for a in accounts]
    assert sorted(a.login for a in accounts) == [900001, 900002, 900003, 900004, 900005]
    for account in CoverageAccount.objects.prefetch_related("covers"):
        assert {p.kind for p in account.covers.all()} == {"MT4", "MT5"}
        assert account.bridge_base_url == lp.bridge_url and account.server == "LP-Demo"
        assert account.terminal_password == lp.bridge_password
    assert AuditEvent.objects.filter(action="coverage.create").count() == 5
