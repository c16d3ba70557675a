"""Staff see only the platforms (and account groups) they were granted; roles come ready-made."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.urls import reverse
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.django import TestCase

from platforms.access.masks import group_allowed, masks_q
from platforms.access.scope import visible_platforms
from platforms.models import AuditEvent, TradePlatform
from tests.factories import StaffUserFactory, TradePlatformFactory, grant


@pytest.mark.django_db
def test_roles_exist_with_their_desk_permissions():
    roles = {g.name: {p.codename for p in g.permissions.all()} for g in Group.objects.all()}
    assert {"dealer", "support", "finance", "risk", "admin"} <= set(roles)
    assert "operate_balance" in roles["finance"] and "operate_balance" not in roles["dealer"]
    assert "operate_trades" in roles["dealer"] and "operate_trades" not in roles["support"]
    assert "view_personal_data" in roles["support"] and "view_personal_data" not in roles["risk"]
    assert "manage_plugins" in roles["admin"]


@pytest.mark.django_db
def test_a_user_of_platform_a_gets_404_for_platform_b(client):
    a, b = TradePlatformFactory(name="A"), TradePlatformFactory(name="B")
    user = grant(StaffUserFactory(), a)
    client.force_login(user)
    assert list(visible_platforms(user)) == [a]
    page = client.get(reverse("dashboard:overview")).content.decode()
    assert "A" in page and reverse("dashboard:platform-health", args=[b.pk]) not in page
    assert client.get(reverse("dashboard:platform-health", args=[b.pk])).status_code == 404


@pytest.mark.django_db
def test_superusers_see_every_enabled_platform_and_nobody_sees_disabled_ones():
    a = TradePlatformFactory(name="A")
    TradePlatformFactory(name="Off", enabled=False)
    boss = StaffUserFactory(is_superuser=True)
    assert list(visible_platforms(boss)) == [a]
    assert list(visible_platforms(grant(StaffUserFactory(), a, TradePlatform.objects.get(
        name="Off")))) == [a]


@pytest.mark.django_db
def test_granting_access_in_admin_is_audited(admin_client):
    platform = TradePlatformFactory(name="A")
    user = StaffUserFactory(username="newdealer")
    response = admin_client.post(reverse("admin:platforms_platformaccess_add"), {
        "user": user.pk, "platform": platform.pk, "group_masks": "real*",
    })
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="access.grant")
    assert event.target == "newdealer" and event.after["group_masks"] == "real*"


@pytest.mark.parametrize(
    ("group", "masks", "allowed"),
    [
        ("real\\usd-std", "", True),
        ("real\\usd-std", "real\\*", True),
        ("demo\\usd", "real\\*", False),
        ("real\\vip", "real\\*,!real\\vip*", False),
        ("REAL\\EUR", "real\\*", True),
        ("real\\eur", "!*", False),
    ],
)
def test_group_masks_follow_mt4_syntax(group, masks, allowed):
    assert group_allowed(group, masks) is allowed


group_names = st.text(alphabet="abcdemo\\-_*.+?[]()^$|", min_size=1, max_size=12)
mask_lists = st.lists(
    st.builds(lambda neg, body: ("!" if neg else "") + body, st.booleans(),
              st.text(alphabet="abcdemo\\-_*.+?[]", min_size=1, max_size=6)),
    max_size=3,
).map(",".join)


class TestMaskFilterMatchesPython(TestCase):
    """The SQL filter and the Python check must agree, or scoped users could see other groups."""

    @settings(max_examples=60, deadline=None)
    @given(names=st.lists(group_names, min_size=1, max_size=6, unique=True), masks=mask_lists)
    def test_database_filter_equals_python_rule(self, names, masks):
        TradePlatform.objects.all().delete()
        for name in names:
            TradePlatformFactory(name=name)
        in_db = set(TradePlatform.objects.filter(masks_q("name", masks)).values_list("name",
                                                                                   flat=True))
        assert in_db == {n for n in names if group_allowed(n, masks)}
