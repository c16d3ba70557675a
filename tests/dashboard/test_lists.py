"""Accounts, trades and history lists over the mirror: filters, sorts, paging, exports, scope."""

from __future__ import annotations

import csv
import io

import pytest
from django.urls import reverse

from dashboard.models import ListPreference
from tests.factories import (
    MirrorAccountFactory,
    MirrorClosedTradeFactory,
    MirrorOpenTradeFactory,
    StaffUserFactory,
    TradePlatformFactory,
    grant,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def platform():
    return TradePlatformFactory(name="Live A")


@pytest.fixture
def dealer(client, platform):
    user = grant(StaffUserFactory(username="dealer-a"), platform, role="dealer")
    client.force_login(user)
    return client


@pytest.fixture
def accounts(platform):
    return [
        MirrorAccountFactory(platform=platform, login=1001, name="Alice Low", group="real\\usd",
                             country="Germany", equity=500, margin_level=80.0,
                             margin_state="MarginCall"),
        MirrorAccountFactory(platform=platform, login=1002, name="Bob Mid", group="real\\eur",
                             country="France", equity=5000, margin_level=400.0),
        MirrorAccountFactory(platform=platform, login=1003, name="Carol High", group="demo\\usd",
                             country="Germany", equity=50000, margin_level=2500.0,
                             email="carol@secret.example"),
    ]


def _logins(response) -> list[int]:
    body = response.content.decode()
    return [int(x) for x in __import__("re").findall(r'data-live-account="\d+:(\d+)"', body)]


def _get(client, name, platform, **params):
    return client.get(reverse(f"dashboard:{name}", args=[platform.pk]), params)


def test_filters_narrow_the_accounts(dealer, platform, accounts):
    assert _logins(_get(dealer, "accounts", platform)) == [1001, 1002, 1003]
    assert _logins(_get(dealer, "accounts", platform, group="real\\*")) == [1001, 1002]
    assert _logins(_get(dealer, "accounts", platform, group="*,!demo*")) == [1001, 1002]
    assert _logins(_get(dealer, "accounts", platform, country="germany")) == [1001, 1003]
    assert _logins(_get(dealer, "accounts", platform, equity_min=1000, equity_max=6000)) == [1002]
    assert _logins(_get(dealer, "accounts", platform, level_max=100)) == [1001]
    assert _logins(_get(dealer, "accounts", platform, state="MarginCall")) == [1001]
    assert _logins(_get(dealer, "accounts", platform, q="bob")) == [1002]
    assert _logins(_get(dealer, "accounts", platform, q="1003")) == [1003]


def test_sort_on_margin_level_both_ways(dealer, platform, accounts):
    assert _logins(_get(dealer, "accounts", platform, sort="margin_level")) == [1001, 1002, 1003]
    assert _logins(_get(dealer, "accounts", platform, sort="-margin_level")) == [1003, 1002, 1001]
    assert _logins(_get(dealer, "accounts", platform, sort="-name")) == [1003, 1002, 1001]


def test_paging_and_page_size(dealer, platform):
    for n in range(30):
        MirrorAccountFactory(platform=platform, login=3000 + n)
    first = _logins(_get(dealer, "accounts", platform, per_page=10))
    second = _logins(_get(dealer, "accounts", platform, per_page=10, page=2))
    assert first == list(range(3000, 3010)) and second == list(range(3010, 3020))
    assert "30 accounts" in _get(dealer, "accounts", platform, per_page=10).content.decode()


@pytest.mark.parametrize("params", [
    {"sort": "password; DROP TABLE"}, {"sort": "__class__"}, {"page": "-4"}, {"page": "x"},
    {"page": "999999"}, {"per_page": "100000000"}, {"per_page": "-1"},
    {"q": "' OR 1=1 --"}, {"q": "%_%\\"}, {"equity_min": "lots"}, {"level_max": "NaN"},
    {"enabled": "perhaps"}, {"group": "[[[(("}, {"state": "Bankrupt"},
])
def test_bad_query_strings_give_a_normal_page(dealer, platform, accounts, params):
    response = _get(dealer, "accounts", platform, **params)
    assert response.status_code == 200


def test_htmx_filter_request_gets_only_the_table(dealer, platform, accounts):
    response = dealer.get(reverse("dashboard:accounts", args=[platform.pk]),
                          {"group": "real\\*"}, HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<section id="accounts-table"')
    assert _logins(response) == [1001, 1002]


def test_email_is_neither_shown_nor_searchable_without_the_permission(
    client, dealer, platform, accounts
):
    page = _get(dealer, "accounts", platform).content.decode()
    assert "carol@secret.example" not in page
    assert _logins(_get(dealer, "accounts", platform, q="secret.example")) == []
    support = grant(StaffUserFactory(username="support-a"), platform, role="support")
    client.force_login(support)
    assert "carol@secret.example" in _get(client, "accounts", platform).content.decode()
    assert _logins(_get(client, "accounts", platform, q="secret.example")) == [1003]


def test_column_choice_is_remembered_per_user(dealer, platform, accounts):
    response = dealer.post(reverse("dashboard:account-columns", args=[platform.pk]),
                           {"columns": ["login", "equity", "margin_level"]})
    assert response.status_code == 302
    page = _get(dealer, "accounts", platform).content.decode()
    assert "Alice Low" not in page and "Margin level" in page
    assert ListPreference.objects.get().columns == ["login", "equity", "margin_level"]


def test_export_streams_the_filtered_sorted_view(dealer, platform, accounts):
    response = _get(dealer, "accounts-export", platform, group="real\\*", sort="-margin_level")
    assert response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))
    assert rows[0][0] == "Login" and "Email" not in rows[0]
    assert [r[0] for r in rows[1:]] == ["1002", "1001"]


def test_export_neutralises_spreadsheet_formulas(dealer, platform):
    MirrorAccountFactory(platform=platform, login=4242, name="=HYPERLINK(\"http://x\")")
    body = b"".join(_get(dealer, "accounts-export", platform).streaming_content).decode()
    assert "'=HYPERLINK" in body


def test_group_scope_hides_other_groups_everywhere(client, platform, accounts):
    narrow = grant(StaffUserFactory(username="eur-desk"), platform, group_masks="real\\eur")
    client.force_login(narrow)
    assert _logins(_get(client, "accounts", platform)) == [1002]
    body = b"".join(_get(client, "accounts-export", platform).streaming_content).decode()
    assert "1001" not in body and "1002" in body


def test_every_list_of_another_platform_is_404(client, platform, accounts):
    other = grant(StaffUserFactory(username="other-desk"), TradePlatformFactory(name="B"))
    client.force_login(other)
    for name in ("accounts", "accounts-export", "trades", "trades-export", "history",
                 "history-export", "symbols", "groups", "online"):
        assert _get(client, name, platform).status_code == 404, name


def test_accounts_list_query_count_does_not_grow_with_rows(
    dealer, platform, django_assert_max_num_queries
):
    for n in range(120):
        MirrorAccountFactory(platform=platform, login=9000 + n)
    with django_assert_max_num_queries(12):
        assert _get(dealer, "accounts", platform, per_page=100).status_code == 200


def test_empty_mirror_says_so(dealer, platform):
    page = _get(dealer, "accounts", platform).content.decode()
    assert "No account matches these filters." in page
    assert "The mirror has not been filled yet" in page


def test_trades_totals_and_exposure(dealer, platform):
    MirrorOpenTradeFactory(platform=platform, symbol="EURUSD", command="Buy", volume_lots=2.0,
                           profit=50)
    MirrorOpenTradeFactory(platform=platform, symbol="EURUSD", command="Sell", volume_lots=0.5,
                           profit=-20)
    MirrorOpenTradeFactory(platform=platform, symbol="XAUUSD", command="Sell", volume_lots=1.0,
                           profit=10)
    MirrorOpenTradeFactory(platform=platform, symbol="XAUUSD", command="BuyLimit",
                           volume_lots=3.0, is_pending=True)
    response = _get(dealer, "trades", platform)
    context = response.context
    assert context["totals"]["count"] == 4
    assert context["totals"]["profit"] == pytest.approx(40)
    exposure = {r["symbol"]: r for r in context["exposure"]}
    assert exposure["EURUSD"]["net"] == pytest.approx(1.5)
    assert exposure["XAUUSD"]["net"] == pytest.approx(-1.0)  # the pending order is not exposure
    filtered = _get(dealer, "trades", platform, symbol="xauusd", pending="false").context
    assert filtered["totals"]["count"] == 1


def test_history_defaults_to_thirty_days_and_filters_by_date(dealer, platform):
    from datetime import timedelta

    from django.utils import timezone

    MirrorClosedTradeFactory(platform=platform, ticket=1, profit=10)
    MirrorClosedTradeFactory(platform=platform, ticket=2, profit=20,
                             close_time=timezone.now() - timedelta(days=90))
    assert _get(dealer, "history", platform).context["totals"]["count"] == 1
    old = (timezone.now() - timedelta(days=100)).date().isoformat()
    everything = _get(dealer, "history", platform, start=old).context["totals"]
    assert (everything["count"], everything["profit"]) == (2, pytest.approx(30))
    rows = b"".join(_get(dealer, "history-export", platform, start=old).streaming_content)
    assert rows.decode().count("\n") == 3


def test_cached_trade_totals_follow_a_mirror_refresh(dealer, platform):
    from datetime import timedelta

    from django.utils import timezone

    from platforms.mirror.models import MirrorState

    state = MirrorState.objects.create(platform=platform, trades_as_of=timezone.now())
    MirrorOpenTradeFactory(platform=platform, profit=10)
    assert _get(dealer, "trades", platform).context["totals"]["count"] == 1
    MirrorOpenTradeFactory(platform=platform, profit=5)  # written by the next snapshot run...
    state.trades_as_of += timedelta(seconds=60)  # ...which also moves the mirror's version
    state.save()
    totals = _get(dealer, "trades", platform, sort="-profit", page=2).context["totals"]
    assert (totals["count"], totals["profit"]) == (2, pytest.approx(15))


def test_exports_stream_through_asgi_without_buffering(platform, accounts):
    """Under ASGI a synchronous iterator is read whole before sending; ours must be async."""
    from asgiref.sync import async_to_sync
    from django.test import AsyncClient

    boss = StaffUserFactory(username="asgi-boss", is_superuser=True)
    url = reverse("dashboard:accounts-export", args=[platform.pk])

    async def download():
        client = AsyncClient()
        await client.aforce_login(boss)
        response = await client.get(url, {"sort": "-margin_level"})
        assert response.streaming and response.is_async
        return b"".join([chunk async for chunk in response.streaming_content]).decode()

    rows = list(csv.reader(io.StringIO(async_to_sync(download)())))
    assert [r[0] for r in rows[1:]] == ["1003", "1002", "1001"]


def test_cell_values_are_escaped(dealer, platform):
    MirrorAccountFactory(platform=platform, login=666, name='<script>alert("x")</script>',
                         group='real\\"><img src=x onerror=1>')
    body = _get(dealer, "accounts", platform).content.decode()
    assert "<script>alert" not in body and "<img src=x" not in body
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in body
