"""``prepare_operation``: the one path every operation page and the hedge form take before a
form is shown, answering with a draft or a typed error (never an HTTP response)."""

from __future__ import annotations

import pytest
from django.core.exceptions import PermissionDenied

from platforms.audit import Actor
from platforms.trading.drafts import (
    AccountMissing,
    AccountRequired,
    NotInScope,
    OperationUnavailable,
    UnknownOperation,
    prepare_operation,
)
from platforms.trading.models import TaskKind
from tests.factories import grant

pytestmark = pytest.mark.django_db
LOGIN = 100005


def test_a_deposit_draft_carries_the_live_account_and_asks_for_the_password(mt4, finance_user):
    draft = prepare_operation(Actor(finance_user), mt4, TaskKind.DEPOSIT, LOGIN)
    assert draft.login == LOGIN and draft.account.login == LOGIN
    assert draft.money and draft.label == "Deposit"


def test_a_hedge_draft_acts_on_the_platform_without_an_account(mt4, dealer_user):
    draft = prepare_operation(Actor(dealer_user), mt4, TaskKind.COVERAGE_OPEN)
    assert draft.account is None and not draft.money


def test_each_refusal_is_its_own_typed_error(mt4, mt5, finance_user, support_user):
    finance = Actor(finance_user)
    with pytest.raises(UnknownOperation):
        prepare_operation(finance, mt4, "teleport", LOGIN)
    with pytest.raises(PermissionDenied):
        prepare_operation(Actor(support_user), mt4, TaskKind.DEPOSIT, LOGIN)
    with pytest.raises(OperationUnavailable):
        prepare_operation(finance, mt5, TaskKind.DEPOSIT, LOGIN)
    with pytest.raises(AccountRequired):
        prepare_operation(finance, mt4, TaskKind.DEPOSIT)
    with pytest.raises(AccountMissing):
        prepare_operation(finance, mt4, TaskKind.DEPOSIT, 99_999_999)


def test_an_account_outside_the_grant_is_not_in_scope_before_any_permission_is_asked(
    mt4, support_user
):
    grant(support_user, mt4, group_masks="!*")  # the grant narrowed to no group at all
    with pytest.raises(NotInScope):
        prepare_operation(Actor(support_user), mt4, TaskKind.DEPOSIT, LOGIN)
