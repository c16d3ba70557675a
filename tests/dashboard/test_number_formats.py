"""Numbers read one way everywhere (``dashboard.numbers``): the rules, the list pages, the
account card's and symbols' cells, and the downloads (labels, BOM, ``?raw=1``)."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.template import Context, Template
from django.urls import reverse

from dashboard.numbers import format_number, is_negative
from tests.factories import (
    MirrorAccountFactory,
    MirrorClosedTradeFactory,
    MirrorOpenTradeFactory,
    StaffUserFactory,
    TradePlatformFactory,
    grant,
)

GROUPED_MONEY = re.compile(r"^-?\d{1,3}(,\d{3})*\.\d{2}$")


@pytest.mark.parametrize(("value", "kind", "digits", "currency", "text"), [
    (23026.61, "money", None, "USD", "23,026.61"),
    (25329.27, "money", None, "EUR", "25,329.27"),
    (-1234567.5, "money", None, "", "-1,234,567.50"),
    (1234567.5, "money", None, "JPY", "1,234,568"),
    (-12.5, "money", None, "KWD", "-12.500"),
    (-0.0, "money", None, "USD", "0.00"),
    (-0.004, "money", None, "USD", "0.00"),  # rounds to zero: no minus sign
    (0.005, "money", None, "USD", "0.01"),  # half away from zero, on the written number
    (1.005, "lots", None, None, "1.01"),
    (1500.0, "lots", None, None, "1,500.00"),
    (123.4, "percent", None, None, "123.40 %"),
    (1.238, "price", 5, None, "1.23800"),
    (6025, "price", 1, None, "6025.0"),
    (150.1234, "price", 3, None, "150.123"),
    (65432.1, "price", 2, None, "65432.10"),
    (1.2, "price", None, None, "1.2"),
    (0.0, "stop", 5, None, "—"),
    (1.1, "stop", 5, None, "1.10000"),
    (None, "money", None, "USD", "—"),
    ("", "lots", None, None, "—"),
    (float("nan"), "money", None, None, "—"),
    (float("inf"), "price", 5, None, "—"),
])
def test_each_kind_reads_one_way(value, kind, digits, currency, text):
    assert format_number(value, kind, digits, currency) == text


def test_negative_means_shown_negative():
    assert is_negative(-0.5, "money")
    assert not is_negative(-0.001, "money") and not is_negative(-0.0, "money")
    assert not is_negative(0.0, "stop")


def test_the_template_tag_marks_negatives_and_tells_live_js_the_kind():
    html = Template('{% load numbers %}{% number "td" v "money" currency="JPY" field="profit" %}'
                    '{{ p|price:5 }} {{ l|percent }} {{ s|stop:3 }}').render(
        Context({"v": -1234.5, "p": 1.238, "l": 123.4, "s": 0}))
    assert html == ('<td class="num neg" data-kind="money" data-digits="0" data-currency="JPY"'
                    ' data-field="profit">-1,235</td>1.23800 123.40 % —')



@pytest.fixture
def platform():
    return TradePlatformFactory(name="Numbers")


@pytest.fixture
def dealer(client, platform):
    client.force_login(grant(StaffUserFactory(username="numbers-dealer"), platform,
                             role="dealer"))
    return client


def _get(client, name, platform, **params):
    return client.get(reverse(f"dashboard:{name}", args=[platform.pk]), params)


def _cells(html: str, field: str) -> list[str]:
    return re.findall(rf'<td[^>]*data-field="{field}"[^>]*>([^<]*)</td>', html)


@pytest.mark.django_db
def test_accounts_list_groups_every_money_column_like_balance(dealer, platform):
    MirrorAccountFactory(platform=platform, login=1, balance=23026.61, credit=1500,
                         equity=25329.27, margin=12345.6, free_margin=-12983.67,
                         margin_level=205.17)
    MirrorAccountFactory(platform=platform, login=2, currency="JPY", balance=1234567.0,
                         equity=1234567.4, margin=0.0, free_margin=1234567.4,
                         margin_level=None)
    html = _get(dealer, "accounts", platform).content.decode()
    assert _cells(html, "balance") == ["23,026.61", "1,234,567"]
    assert _cells(html, "equity") == ["25,329.27", "1,234,567"]
    assert _cells(html, "margin") == ["12,345.60", "0"]
    assert _cells(html, "free_margin") == ["-12,983.67", "1,234,567"]
    assert _cells(html, "margin_level") == ["205.17 %", "—"]
    assert 'class="num neg" data-kind="money" data-digits="2" data-currency="USD" ' \
           'data-field="free_margin"' in html
    assert 'data-digits="0" data-currency="JPY" data-field="equity"' in html


@pytest.mark.django_db
def test_trade_prices_have_the_symbols_digits_and_an_empty_stop_is_a_dash(dealer, platform):
    MirrorAccountFactory(platform=platform, login=200000, currency="USD")
    MirrorOpenTradeFactory(platform=platform, symbol="GBPUSD", digits=5, open_price=1.238,
                           current_price=1.2391, sl=0.0, tp=1.25, profit=-1234.5)
    MirrorOpenTradeFactory(platform=platform, symbol="US500", digits=1, open_price=6025.0,
                           current_price=6030.25, sl=6000.0, tp=0.0, profit=99.999)
    html = _get(dealer, "trades", platform, sort="symbol").content.decode()
    assert _cells(html, "open_price") == ["1.23800", "6025.0"]
    assert _cells(html, "current_price") == ["1.23910", "6030.3"]
    assert _cells(html, "sl") == ["—", "6000.0"]
    assert _cells(html, "tp") == ["1.25000", "—"]
    assert _cells(html, "profit") == ["-1,234.50", "100.00"]


@pytest.mark.django_db
def test_column_chooser_shows_labels_and_posts_field_names(dealer, platform):
    html = _get(dealer, "accounts", platform).content.decode()
    chooser = html[html.index('<details class="columns">'):html.index("</details>")]
    assert 'value="free_margin" checked> Free margin</label>' in chooser
    assert 'value="last_access_at" checked> Last access</label>' in chooser
    assert "> free_margin<" not in chooser and "> margin_level<" not in chooser


def _download(response) -> bytes:
    assert response.status_code == 200, response
    return b"".join(response.streaming_content)


@pytest.mark.django_db
def test_csv_has_a_bom_labels_and_a_cyrillic_name_round_trips(dealer, platform):
    MirrorAccountFactory(platform=platform, login=7, name="Иван Петров", balance=-1234.5,
                         currency="JPY", equity=1e6 + 0.4)
    MirrorAccountFactory(platform=platform, login=8, name="Γιώργος Παπαδόπουλος",
                         balance=0.005)
    body = _download(_get(dealer, "accounts-export", platform))
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert rows[0]["Login"] == "7" and rows[0]["Name"] == "Иван Петров"
    assert rows[1]["Name"] == "Γιώργος Παπαδόπουλος"
    # rounded as the page rounds them, but without grouping: still numbers to a spreadsheet
    assert (rows[0]["Balance"], rows[0]["Equity"]) == ("-1235", "1000000")
    assert (rows[1]["Balance"], rows[1]["Margin level"]) == ("0.01", "1000.00")


@pytest.mark.django_db
def test_raw_csv_keeps_field_names_and_stored_values(dealer, platform):
    MirrorAccountFactory(platform=platform, login=7, name="Иван", balance=-1234.5,
                         currency="JPY")
    body = _download(_get(dealer, "accounts-export", platform, raw="1"))
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    assert list(rows[0])[:3] == ["login", "name", "group"]
    assert (rows[0]["name"], rows[0]["balance"]) == ("Иван", "-1234.5")


@pytest.mark.django_db
def test_trade_exports_round_prices_to_digits_and_leave_no_stop_empty(dealer, platform):
    MirrorOpenTradeFactory(platform=platform, symbol="GBPUSD", digits=5, open_price=1.238,
                           sl=0.0, tp=1.25)
    MirrorClosedTradeFactory(platform=platform, symbol="US500", digits=1, open_price=6025.0,
                             close_price=6030.25, profit=-0.004)
    opened = list(csv.DictReader(io.StringIO(
        _download(_get(dealer, "trades-export", platform)).decode("utf-8-sig"))))
    assert (opened[0]["Open"], opened[0]["S/L"], opened[0]["T/P"]) == ("1.23800", "", "1.25000")
    closed = list(csv.DictReader(io.StringIO(
        _download(_get(dealer, "history-export", platform)).decode("utf-8-sig"))))
    assert (closed[0]["Close"], closed[0]["Profit"]) == ("6030.3", "0.00")
