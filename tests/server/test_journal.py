"""The server journal page: range, mode and text filters; bad ranges; the account card link."""

from __future__ import annotations

from django.urls import reverse

from tests.factories import MirrorAccountFactory


def test_journal_filters_by_login_and_text(dealer_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    url = reverse("dashboard:server-journal", args=[mt4.pk])
    everything = dealer_client.get(url)
    assert everything.status_code == 200
    lines = everything.context["lines"]
    assert lines, "the sandbox journal has lines for the last day"
    needle = lines[0].message.split()[0]
    narrowed = dealer_client.get(url, {"text": needle})
    assert narrowed.status_code == 200
    assert all(needle.lower() in ln.message.lower() for ln in narrowed.context["lines"])


def test_journal_rejects_bad_ranges_clearly(dealer_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    url = reverse("dashboard:server-journal", args=[mt4.pk])
    backwards = dealer_client.get(url, {"start": "2026-02-02 00:00", "end": "2026-02-01 00:00"})
    assert "The start of the range must be before its end." in backwards.content.decode()
    too_long = dealer_client.get(url, {"start": "2025-01-01 00:00", "end": "2026-01-01 00:00"})
    assert "at most 31 days" in too_long.content.decode()
    garbage = dealer_client.get(url, {"start": "yesterday-ish"})
    assert garbage.status_code == 200 and "Enter a valid date/time" in garbage.content.decode()


def test_journal_htmx_answers_the_results_partial(dealer_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    response = dealer_client.get(reverse("dashboard:server-journal", args=[mt4.pk]),
                                 HTTP_HX_REQUEST="true")
    body = response.content.decode()
    assert body.lstrip().startswith('<div id="journal-results">') and "<nav" not in body


def test_account_card_journal_tab_links_to_the_page(dealer_client, sandbox_platforms):
    mt4, _ = sandbox_platforms
    MirrorAccountFactory(platform=mt4, login=100001)
    tab = dealer_client.get(reverse("dashboard:account-tab", args=[mt4.pk, 100001, "journal"]),
                            HTTP_HX_REQUEST="true")
    page = reverse("dashboard:server-journal", args=[mt4.pk])
    assert f'href="{page}?filter=100001"' in tab.content.decode()


def test_journal_on_mt5_says_mt4_only(dealer_client, sandbox_platforms):
    _, mt5 = sandbox_platforms
    response = dealer_client.get(reverse("dashboard:server-journal", args=[mt5.pk]))
    assert response.status_code == 200 and "MT5" in response.context["error"]
