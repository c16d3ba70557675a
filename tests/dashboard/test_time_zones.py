"""Times say their zone: server times become true instants on ingest (the sandbox's MT4 runs on
UTC+2), each reader picks server time, UTC or their own zone, and pages, filters and exports
follow that choice and name it."""

from __future__ import annotations

import csv
import importlib
import io
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.apps import apps as django_apps
from django.urls import reverse

from dashboard.models import TimeZonePreference
from dashboard.timezones import zone_of
from platforms.client import NoConnect
from platforms.connections import client_for
from platforms.mirror.models import MirrorAccount, MirrorClosedTrade
from platforms.mirror.zones import align_server_zone, shift_server_times
from platforms.models import AuditEvent
from platforms.server.forms import JournalForm
from platforms.timezones import day_start, fixed_zone, journal_instant, offset_label
from tests.factories import (
    MirrorAccountFactory,
    MirrorClosedTradeFactory,
    StaffUserFactory,
    TradePlatformFactory,
    grant,
)

MIGRATION = importlib.import_module("platforms.migrations.0016_platform_time_zones")
TIME_WORDS = re.compile(r"\b(time|when|requested|queued|started|since|registered|access)\b",
                        re.IGNORECASE)


def _set_view(client, view: str, zone: str = ""):
    return client.post(reverse("dashboard:time-zone"), {"view": view, "zone": zone,
                                                       "next": "/"})


@pytest.fixture
def platform(db):
    """A mirrored platform whose server runs on UTC+2 (the admin override)."""
    return TradePlatformFactory(name="EET server", time_zone_override=120,
                                time_zone_applied=120)


@pytest.fixture
def dealer(client, platform):
    user = grant(StaffUserFactory(username="tz-dealer"), platform, role="dealer")
    client.force_login(user)
    return client


# ------------------------------------------------------------------ units


def test_offsets_are_named_and_converted_both_ways():
    assert [offset_label(m) for m in (0, 120, -210, 330)] == ["UTC", "UTC+2", "UTC-3:30",
                                                              "UTC+5:30"]
    assert journal_instant("2026.01.31 10:00:00", 120) == datetime(2026, 1, 31, 8, tzinfo=UTC)
    assert journal_instant("garbage", 120) is None
    assert day_start(datetime(2026, 1, 31).date(), fixed_zone(120)) == datetime(
        2026, 1, 30, 22, tzinfo=UTC)


def test_journal_form_reads_typed_times_on_the_readers_clock():
    form = JournalForm({"start": "2026-01-31 08:00", "end": "2026-01-31 10:00"},
                       tz=fixed_zone(120))
    assert form.is_valid(), form.errors
    assert form.cleaned_data["start"] == datetime(2026, 1, 31, 6, tzinfo=UTC)


# ------------------------------------------------------------------ migration


def _trade(platform, ticket, close_time, open_time=None):
    return MirrorClosedTradeFactory(platform=platform, ticket=ticket, login=1,
                                    open_time=open_time, close_time=close_time)


def test_migration_converts_stored_wall_clock_to_instants_and_back_exactly(db):
    eet = TradePlatformFactory(name="EET", time_zone_override=120)  # applied: 0 (as stored)
    utc = TradePlatformFactory(name="UTC")
    wall = datetime(2026, 3, 1, 12, 0, 30, tzinfo=UTC)
    _trade(eet, 1, wall, open_time=None)
    _trade(utc, 2, wall, open_time=wall)
    MirrorAccountFactory(platform=eet, login=7, last_access_at=wall, registered_at=None)

    MIGRATION.convert_known_offsets(django_apps, None)

    eet.refresh_from_db()
    assert eet.time_zone_applied == 120
    moved = MirrorClosedTrade.objects.get(platform=eet, ticket=1)
    assert moved.close_time == wall - timedelta(hours=2) and moved.open_time is None
    assert MirrorAccount.objects.get(platform=eet, login=7).last_access_at == wall - timedelta(
        hours=2)
    untouched = MirrorClosedTrade.objects.get(platform=utc, ticket=2)
    assert untouched.close_time == wall and untouched.open_time == wall

    MIGRATION.back_to_wall_clock(django_apps, None)
    assert MirrorClosedTrade.objects.get(platform=eet, ticket=1).close_time == wall
    # a zero shift writes nothing
    assert shift_server_times(lambda n: django_apps.get_model("platforms", n), eet.pk, 0) == 0
    assert MirrorClosedTrade.objects.get(platform=eet, ticket=1).close_time == wall


# ------------------------------------------------------------------ sandbox round trip


def test_sandbox_zone_round_trip_shows_server_time_and_utc(client, sandbox_platforms):
    """The sandbox's MT4 says UTC+2 and speaks that wall clock; a deposit made now shows as
    server time (UTC+2) by default and as UTC after the reader switches."""
    mt4, mt5 = sandbox_platforms
    assert align_server_zone(mt4, client_for(mt4)) == 120
    assert align_server_zone(mt5, client_for(mt5)) == 0
    mt4.refresh_from_db()
    assert (mt4.time_zone_reported, mt4.time_zone_applied) == (120, 120)
    assert AuditEvent.objects.filter(action="platform.time_zone", platform=mt4).exists()

    api = client_for(mt4).mt4
    login = api.users_request(limit=1).items[0].login
    before = datetime.now(UTC).replace(microsecond=0)
    api.trade_transaction({"tradeTransactionType": "BrBalance", "tradeCommand": "Balance",
                           "orderBy": login, "price": 12.34, "comment": "tz round trip"})
    after = datetime.now(UTC)
    wire = [t for t in api.trades_user_history(login) if t.comment == "tz round trip"][-1]
    wall = wire.close_time.replace(tzinfo=UTC)
    instant = wall - timedelta(hours=2)
    assert before - timedelta(seconds=1) <= instant <= after, "the wire is the UTC+2 wall clock"

    user = grant(StaffUserFactory(username="tz-rt"), mt4, role="dealer")
    client.force_login(user)
    url = reverse("dashboard:account-tab", args=[mt4.pk, login, "money"])
    body = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Close time · server time (UTC+2)" in body
    assert wall.strftime("%Y-%m-%d %H:%M:%S") in body

    assert _set_view(client, "utc").status_code == 302
    body = client.get(url, HTTP_HX_REQUEST="true").content.decode()
    assert "Close time · UTC" in body
    assert instant.strftime("%Y-%m-%d %H:%M:%S") in body
    assert wall.strftime("%Y-%m-%d %H:%M:%S") not in body


# ------------------------------------------------------------------ preference


def _csv_rows(client, url, query) -> list[dict]:
    """The export's rows keyed by field name (``?raw=1``: field names, for scripts)."""
    body = b"".join(client.get(url, {**query, "raw": "1"}).streaming_content)
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def test_preference_switch_changes_the_page_and_the_csv(dealer, platform):
    instant = datetime(2026, 5, 4, 21, 30, tzinfo=UTC)
    _trade(platform, 10, instant, open_time=instant - timedelta(hours=1))
    history = reverse("dashboard:history", args=[platform.pk])
    export = reverse("dashboard:history-export", args=[platform.pk])
    query = {"start": "2026-05-01", "end": "2026-05-31"}

    page = dealer.get(history, query).content.decode()
    assert "Close time · server time (UTC+2)" in page and "2026-05-04 23:30:00" in page
    rows = _csv_rows(dealer, export, query)
    assert rows[0]["close_time"] == "2026-05-04T23:30:00+02:00"
    human = b"".join(dealer.get(export, query).streaming_content).decode("utf-8-sig")
    assert "2026-05-04T23:30:00+02:00" in human  # the people's CSV carries the offset too

    assert _set_view(dealer, "local", "America/New_York").status_code == 302
    page = dealer.get(history, query).content.decode()
    assert "Close time · America/New_York" in page and "2026-05-04 17:30:00" in page
    rows = _csv_rows(dealer, export, query)
    assert rows[0]["close_time"] == "2026-05-04T17:30:00-04:00"
    event = AuditEvent.objects.filter(action="preference.time_zone").latest("id")
    assert event.after == {"view": "local", "zone": "America/New_York"}


def test_history_filter_reads_days_on_the_chosen_zone(dealer, platform):
    """23:30 UTC on 4 May is already 5 May on the server's clock (UTC+2)."""
    _trade(platform, 20, datetime(2026, 5, 4, 23, 30, tzinfo=UTC))
    history = reverse("dashboard:history", args=[platform.pk])
    day4 = {"start": "2026-05-04", "end": "2026-05-04"}
    day5 = {"start": "2026-05-05", "end": "2026-05-05"}
    assert 'data-closed-trade="20"' not in dealer.get(history, day4).content.decode()
    page = dealer.get(history, day5).content.decode()
    assert 'data-closed-trade="20"' in page and "Closed from · server time (UTC+2)" in page
    _set_view(dealer, "utc")
    assert 'data-closed-trade="20"' in dealer.get(history, day4).content.decode()
    assert 'data-closed-trade="20"' not in dealer.get(history, day5).content.decode()


@pytest.mark.parametrize("view,zone", [("bogus", ""), ("local", "Mars/Olympus_Mons"),
                                       ("local", ""), ("local", "../../etc/passwd"),
                                       ("x" * 5000, "")])
def test_a_bad_preference_is_a_400_and_changes_nothing(dealer, view, zone):
    response = _set_view(dealer, view, zone)
    assert response.status_code == 400
    assert not TimeZonePreference.objects.exists()
    assert not AuditEvent.objects.filter(action="preference.time_zone").exists()


def test_setting_a_preference_needs_post_and_staff(client, platform):
    assert _set_view(client, "utc").status_code == 302  # to the sign-in page
    assert not TimeZonePreference.objects.exists()
    user = grant(StaffUserFactory(username="tz-get"), platform, role="dealer")
    client.force_login(user)
    assert client.get(reverse("dashboard:time-zone")).status_code == 405


def test_server_time_on_a_page_of_several_platforms_is_utc_and_says_so(platform):
    assert zone_of("server", "", None).label == "UTC"
    assert zone_of("server", "", platform).label == "server time (UTC+2)"
    assert zone_of("local", "Europe/Athens", platform).label == "Europe/Athens"


# ------------------------------------------------------------------ every time column


def test_every_time_column_header_names_a_zone(dealer, platform):
    MirrorAccountFactory(platform=platform, login=1)
    _trade(platform, 30, datetime(2026, 5, 4, 10, tzinfo=UTC))
    pages = [
        reverse("dashboard:accounts", args=[platform.pk]) + "?columns=all",
        reverse("dashboard:trades", args=[platform.pk]),
        reverse("dashboard:history", args=[platform.pk]) + "?start=2026-05-01",
        reverse("dashboard:snapshots", args=[platform.pk]),
        reverse("dashboard:operation-tasks", args=[platform.pk]),
    ]
    checked = 0
    for url in pages:
        response = dealer.get(url)
        assert response.status_code == 200, url
        for header in re.findall(r"<th[^>]*>(.*?)</th>", response.content.decode(), re.S):
            text = re.sub(r"<[^>]+>", "", header).strip()
            if TIME_WORDS.search(text):
                checked += 1
                assert "UTC" in text, f"{url}: column {text!r} names no zone"
    assert checked >= 5


# ------------------------------------------------------------------ admin override


def _admin_form(platform, **overrides) -> dict:
    return {"name": platform.name, "kind": platform.kind, "environment": platform.environment,
            "platform_id": str(platform.platform_id), "api_base_url": platform.api_base_url,
            "sidecar_base_url": "", "oauth_authority": platform.oauth_authority,
            "oauth_scope": "", "client_id": platform.client_id, "client_secret": "",
            "enabled": "on", "access-TOTAL_FORMS": "0", "access-INITIAL_FORMS": "0",
            **overrides}


def test_admin_override_is_audited_validated_and_rebases_the_mirror(admin_client, db):
    platform = TradePlatformFactory(name="Override me")
    instant = datetime(2026, 5, 4, 21, 30, tzinfo=UTC)
    _trade(platform, 40, instant)
    url = reverse("admin:platforms_tradeplatform_change", args=[platform.pk])
    refused = admin_client.post(url, _admin_form(platform, time_zone_override="9999"))
    assert refused.status_code == 200 and "less than or equal to 840" in refused.content.decode()

    assert admin_client.post(url, _admin_form(platform, time_zone_override="180")).status_code \
        == 302
    event = AuditEvent.objects.filter(action="platform.change", platform=platform).latest("id")
    assert (event.before["time_zone_override"], event.after["time_zone_override"]) == (None, 180)

    platform.refresh_from_db()

    class Dead:  # the server does not answer: the override still applies
        class mt4:
            @staticmethod
            def manager_common():
                raise NoConnect(message="down")

    assert align_server_zone(platform, Dead()) == 180
    assert MirrorClosedTrade.objects.get(platform=platform, ticket=40).close_time == \
        instant - timedelta(hours=3)


def test_the_picker_never_echoes_the_page_path_and_goes_back_only_on_this_site(dealer,
                                                                               platform):
    page = dealer.get(reverse("dashboard:accounts", args=[platform.pk]) + "?q=secret-login")
    assert "secret-login" not in page.content.decode().split('id="tz-picker"')[1].split(
        "</form>")[0]
    url = reverse("dashboard:time-zone")
    back = dealer.post(url, {"view": "utc"}, HTTP_REFERER="http://testserver/platforms/")
    assert back.status_code == 302 and back["Location"] == "http://testserver/platforms/"
    away = dealer.post(url, {"view": "utc", "next": "https://evil.example/"})
    assert away["Location"] == reverse("dashboard:overview")
