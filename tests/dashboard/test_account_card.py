"""The account card reads live, falls back to the mirror with a stale badge, and never 500s."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from platforms.connections import client_for
from platforms.mirror.models import MirrorAccount
from platforms.models import AuditEvent
from tests.factories import StaffUserFactory, TradePlatformFactory, grant


def _account_with_trades(platform):
    """A sandbox account that has open trades (the seeded market gives most accounts some)."""
    client = client_for(platform)
    for user in client.mt4.users_request(limit=50).items:
        trades = client.mt4.trades_get_by_login(user.login, user.group)
        if any(t.trade_command in ("Buy", "Sell") for t in trades):
            return user, trades
    raise AssertionError("the seeded sandbox has no account with open trades")


def _tab(client, platform, login, tab, **params):
    url = reverse("dashboard:account-tab", args=[platform.pk, login, tab])
    return client.get(url, params, HTTP_HX_REQUEST="true")


def test_card_shows_live_profile_and_figures(dealer_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    user, _ = _account_with_trades(mt4)
    page = dealer_client.get(reverse("dashboard:account", args=[mt4.pk, user.login]))
    body = page.content.decode()
    assert page.status_code == 200
    assert str(user.login) in body and user.group in body
    assert f"{user.balance:,.2f}" in body
    assert "Stale" not in body


def test_open_trades_tab_lists_the_accounts_trades(dealer_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    user, trades = _account_with_trades(mt4)
    body = _tab(dealer_client, mt4, user.login, "open").content.decode()
    assert "<html" not in body
    for trade in trades:
        if trade.trade_command in ("Buy", "Sell"):
            assert f'data-live-trade="{trade.order}"' in body


def test_history_tab_totals_and_balance_chart(dealer_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    user, _ = _account_with_trades(mt4)
    nine_years_ago = (timezone.now() - timedelta(days=9 * 365)).date().isoformat()
    body = _tab(dealer_client, mt4, user.login, "history", **{"from": nine_years_ago})
    body = body.content.decode()
    history = client_for(mt4).mt4.trades_user_history(user.login)
    closed = [t for t in history if t.trade_command not in ("Balance", "Credit")]
    assert closed, "seeded accounts have closed trades"
    assert f"Total ({len(closed)})" in body
    assert f"{sum(t.profit for t in closed):,.2f}" in body
    assert 'data-chart="balance-chart-data"' in body


@pytest.mark.parametrize(
    "params", [{"from": "2026-13-40"}, {"from": "2026-05-02", "to": "2026-05-01"},
               {"from": "1900-01-01"}, {"from": "'; DROP TABLE x;--"}]
)
def test_bad_date_ranges_get_a_message_not_an_error(dealer_client, sandbox_platforms, params):
    mt4, _ = sandbox_platforms
    user, _ = _account_with_trades(mt4)
    response = _tab(dealer_client, mt4, user.login, "history", **params)
    assert response.status_code == 200
    assert 'class="error" role="alert"' in response.content.decode()


def test_personal_data_is_hidden_from_a_dealer_and_shown_to_support(
    client, dealer_client, staff_user, sandbox_platforms
):
    mt4, _ = sandbox_platforms
    user, _ = _account_with_trades(mt4)
    url = reverse("dashboard:account", args=[mt4.pk, user.login])
    dealer_page = dealer_client.get(url).content.decode()
    assert user.email and user.email not in dealer_page
    assert "hidden for your role" in dealer_page
    support = grant(StaffUserFactory(username="support1"), mt4, role="support")
    client.force_login(support)
    assert user.email in client.get(url).content.decode()


def test_platform_down_falls_back_to_the_mirror_with_a_stale_badge(
    dealer_client, sandbox_platforms, clean_sandbox
):
    mt4, _ = sandbox_platforms
    user, _ = _account_with_trades(mt4)
    MirrorAccount.objects.create(platform=mt4, login=user.login, group=user.group,
                                 name="Mirrored Name", balance=123.45,
                                 last_seen_at=timezone.now())
    clean_sandbox.control("POST", "/faults", json={"operation": "UserRecordGet",
                                                   "error": "NoConnect"})
    url = reverse("dashboard:account", args=[mt4.pk, user.login])
    body = dealer_client.get(url).content.decode()
    assert "Stale" in body and "Mirrored Name" in body and "123.45" in body
    assert "NoConnect" in body or "connection" in body.lower()


def test_platform_down_without_mirror_says_so(dealer_client, sandbox_platforms, clean_sandbox):
    mt4, _ = sandbox_platforms
    clean_sandbox.control("POST", "/faults", json={"operation": "UserRecordGet",
                                                   "error": "NoConnect"})
    response = dealer_client.get(reverse("dashboard:account", args=[mt4.pk, 100001]))
    assert response.status_code == 200
    assert "unreachable" in response.content.decode()


def test_unknown_login_is_404(dealer_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    assert dealer_client.get(reverse("dashboard:account", args=[mt4.pk, 999999])).status_code == 404


def test_accounts_outside_the_users_groups_or_platforms_are_404(client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    user, _ = _account_with_trades(mt4)
    narrow = grant(StaffUserFactory(username="narrow"), mt4, group_masks="!*")
    client.force_login(narrow)
    assert client.get(reverse("dashboard:account", args=[mt4.pk, user.login])).status_code == 404
    other = grant(StaffUserFactory(username="other"), TradePlatformFactory())
    client.force_login(other)
    for tab in ("", "open"):
        url = (reverse("dashboard:account-tab", args=[mt4.pk, user.login, tab]) if tab
               else reverse("dashboard:account", args=[mt4.pk, user.login]))
        assert client.get(url).status_code == 404


def test_audit_tab_lists_changes_to_this_account(dealer_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    user, _ = _account_with_trades(mt4)
    AuditEvent.objects.create(platform=mt4, target=str(user.login), action="balance.deposit")
    body = _tab(dealer_client, mt4, user.login, "audit").content.decode()
    assert "balance.deposit" in body


def test_card_offers_exactly_the_operations_the_role_allows(client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    user, trades = _account_with_trades(mt4)
    url = reverse("dashboard:account", args=[mt4.pk, user.login])
    finance = grant(StaffUserFactory(username="finance1"), mt4, role="finance")
    client.force_login(finance)
    page = client.get(url).content.decode()
    assert reverse("dashboard:operation", args=[mt4.pk, user.login, "deposit"]) in page
    assert reverse("dashboard:operation", args=[mt4.pk, user.login, "change_leverage"]) not in page
    dealer = grant(StaffUserFactory(username="dealer9"), mt4, role="dealer")
    client.force_login(dealer)
    assert "deposit" not in client.get(url).content.decode()
    open_tab = _tab(client, mt4, user.login, "open").content.decode()
    market = next(t for t in trades if t.trade_command in ("Buy", "Sell"))
    close = reverse("dashboard:operation", args=[mt4.pk, user.login, "close_order"])
    assert f"{close}?order={market.order}" in open_tab
    form = client.get(f"{close}?order={market.order}").content.decode()
    assert f'value="{market.order}"' in form  # the ticket is filled in
