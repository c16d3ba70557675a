"""Find a client anywhere: scope, group masks, personal fields, matching and hostile input, on
whichever database the suite runs (SQLite: FTS5 trigram; PostgreSQL: pg_trgm GIN)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.urls import reverse

from platforms.mirror.models import MirrorAccount
from platforms.mirror.search import (
    FTS_SQL,
    PER_PLATFORM,
    _substring,
    clean_term,
    find_clients,
)
from platforms.mirror.search_index import PG_INDEX, SEARCH_TABLE, TRIGGERS, ensure_sqlite_index
from tests.factories import MirrorAccountFactory, TradePlatformFactory
from tests.support.staff import make_staff

URL = "/search/"

ALICE = {"login": 700101, "name": "Alice Marchetti", "email": "alice.m@mailhost.test",
         "phone": "+44 7700 900123", "comment": "vip referral Q3", "last_ip": "203.0.113.45",
         "group": "real\\usd"}


@pytest.fixture
def book(db):
    """Three platforms: two granted to the users below, one granted to nobody."""
    london, tokyo, hidden = (TradePlatformFactory(name=n) for n in ("London", "Tokyo", "Zurich"))
    MirrorAccountFactory(platform=london, **ALICE)
    MirrorAccountFactory(platform=london, login=700102, name="Bob Stone", group="real\\vip",
                         email="bob@stone.test", phone="+1 555 0100", comment="",
                         last_ip="198.51.100.7")
    MirrorAccountFactory(platform=london, login=700103, name="Carla 100% bonus",
                         group="real\\usd", email="carla@x.test", phone="", comment="",
                         last_ip="")
    MirrorAccountFactory(platform=tokyo, login=810055, name="Alina Petrova", group="demo\\eur",
                         email="alina@mailhost.test", phone="", comment="", last_ip="")
    MirrorAccountFactory(platform=hidden, login=900001, name="Alice Hidden", group="real\\usd",
                         email="alice.h@mailhost.test", phone="", comment="", last_ip="")
    return london, tokyo, hidden


@pytest.fixture
def support(book):
    """May see personal data (the support role), on London and Tokyo."""
    return make_staff(*book[:2], role="support", username="support-personal")


@pytest.fixture
def reader(book):
    """No role: may not see personal data, on London and Tokyo."""
    return make_staff(*book[:2], username="reader-plain")


def logins(result) -> dict[str, list[int]]:
    return {group.platform.name: [hit.login for hit in group.hits] for group in result.platforms}


def test_only_granted_platforms_are_searched(book, support):
    assert logins(find_clients(support, "alice")) == {"London": [700101]}
    assert logins(find_clients(support, "ali")) == {"London": [700101], "Tokyo": [810055]}
    boss = make_staff(is_superuser=True, username="boss")
    assert logins(find_clients(boss, "alice")) == {"London": [700101], "Zurich": [900001]}
    nobody = make_staff(username="no-grant", perms=("view_personal_data",))
    assert find_clients(nobody, "alice").platforms == []


def test_disabled_platform_is_not_searched(book, support):
    london = book[0]
    london.enabled = False
    london.save(update_fields=["enabled"])
    assert logins(find_clients(support, "ali")) == {"Tokyo": [810055]}


def test_group_masks_narrow_the_search(book):
    masked = make_staff(*book[:2], role="support", masks="real\\*,!real\\vip*")
    assert logins(find_clients(masked, "stone")) == {}
    assert logins(find_clients(masked, "7001")) == {"London": [700101, 700103]}
    assert logins(find_clients(masked, "ali")) == {"London": [700101]}  # Tokyo's is demo\eur


@pytest.mark.parametrize(("term", "field"), [
    ("mailhost", "e-mail"), ("alice.m@", "e-mail"), ("7700 900", "phone"), ("+44", "phone"),
    ("203.0.113", "last IP"), ("113.45", "last IP"),
])
def test_personal_fields_are_searchable_only_with_the_permission(book, support, reader, term,
                                                                 field):
    found = find_clients(support, term)
    assert logins(found)["London"][0] == 700101
    assert found.platforms[0].hits[0].matched == field
    assert find_clients(reader, term).platforms == []


def test_personal_fields_are_not_shown_without_the_permission(client, book, support, reader):
    hit = find_clients(reader, "700101").platforms[0].hits[0]
    assert (hit.login, hit.name, hit.email) == (700101, "Alice Marchetti", "")
    client.force_login(reader)
    page = client.get(URL, {"q": "alice"}).content.decode()
    assert "Alice Marchetti" in page and "mailhost" not in page
    client.force_login(support)
    assert "alice.m@mailhost.test" in client.get(URL, {"q": "alice"}).content.decode()


@pytest.mark.parametrize(("field", "prefix", "substring"), [
    ("login", "7001", "0010"), ("name", "Alic", "archet"), ("email", "alice.m", "e.m@mail"),
    ("phone", "+44 77", "900123"), ("comment", "vip ref", "ferral q"),
    ("last_ip", "203.0", "0.113.4"),
])
def test_prefix_and_substring_of_each_field(book, support, field, prefix, substring):
    for term in (prefix, substring, substring.upper(), prefix.lower()):
        assert 700101 in logins(find_clients(support, term)).get("London", []), (field, term)


def test_an_exact_login_comes_first(book, support):
    london = book[0]
    for n in range(PER_PLATFORM + 3):  # more logins containing 700101 than one platform shows
        MirrorAccountFactory(platform=london, login=1_700_101_000 + n, name=f"N{n}")
    found = find_clients(support, "700101")
    group = found.platforms[0]
    assert group.hits[0].login == 700101 and group.hits[0].matched == "login"
    assert len(group.hits) == PER_PLATFORM and group.more


def test_the_index_follows_the_mirror(book, support):
    alice = MirrorAccount.objects.get(login=700101)
    alice.name = "Alicia Renamed"
    alice.save()
    assert logins(find_clients(support, "renamed")) == {"London": [700101]}
    assert logins(find_clients(support, "marchetti")) == {}
    alice.name = "Upserted Name"  # as the snapshot writer writes on SQLite
    MirrorAccount.objects.bulk_create([alice], update_conflicts=True,
                                      unique_fields=["platform", "login"], update_fields=["name"])
    assert logins(find_clients(support, "upserted")) == {"London": [700101]}
    assert logins(find_clients(support, "renamed")) == {}
    MirrorAccount.objects.filter(login=700101).delete()
    assert logins(find_clients(support, "upserted")) == {}
    if connection.vendor == "sqlite":  # the FTS5 index agrees with its content table
        with connection.cursor() as cursor:
            cursor.execute(f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE})"  # noqa: S608
                           " VALUES ('integrity-check')")


def test_the_database_index_is_in_place_and_used(book, support):
    """PostgreSQL: the GIN index exists and serves the search's own expressions (the login is
    cast exactly as in the index); SQLite: the walk starts from the FTS5 matches (never one
    MATCH per account), and the triggers come back after a migration rebuilt the table
    (simulated by dropping one)."""
    query = _substring(MirrorAccount.objects.order_by(), "7001", ("login", "name", "email"))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            # a few rows: without this the planner rightly prefers reading them all
            cursor.execute("SET LOCAL enable_seqscan = off; SET LOCAL enable_indexscan = off")
            plan = query.explain()
            assert PG_INDEX in plan, plan
        else:
            cursor.execute(f"EXPLAIN QUERY PLAN {FTS_SQL}", ['"7001"'])
            plan = [row[-1] for row in cursor.fetchall()]
            assert plan[0].startswith(f"SCAN {SEARCH_TABLE} VIRTUAL TABLE"), plan
            assert "PRIMARY KEY" in plan[1], plan  # then each match's account by its id
            cursor.execute(f"DROP TRIGGER {sorted(TRIGGERS)[0]}")
            connection.__dict__.pop("_mirror_search_ready", None)
            assert ensure_sqlite_index(connection)
            cursor.execute("SELECT count(*) FROM sqlite_master WHERE type = 'trigger'"
                           " AND name LIKE %s", [f"{SEARCH_TABLE}%"])
            assert cursor.fetchone()[0] == len(TRIGGERS)
    assert logins(find_clients(support, "archet")) == {"London": [700101]}


@pytest.mark.parametrize("term", ["%%%", "___", "a%b", "0% b", "'; DROP TABLE x; --",
                                  '"alice"', 'al"ice', "\\\\\\", "{name} : ali", "NEAR(a b)",
                                  "ali*", "^ali", "\uff41\uff4c\uff49", "😀😀😀"])
def test_hostile_terms_match_only_themselves(client, book, support, term):
    client.force_login(support)
    response = client.get(URL, {"q": term})
    assert response.status_code == 200
    found = logins(find_clients(support, clean_term(term)))
    assert found == ({"London": [700103]} if term == "0% b" else {}), term


@pytest.mark.parametrize(("term", "message"), [
    ("x" * 101, "at most 100 characters"), ("a\x00b", "control characters"),
    ("ab", "at least 3 characters"), ("%", "at least 3 characters"),
    ("_", "at least 3 characters"),
])
def test_refused_terms_get_a_clear_message(client, book, support, term, message):
    client.force_login(support)
    page = client.get(URL, {"q": term})
    assert page.status_code == 400 and message in page.content.decode()
    dropdown = client.get(URL, {"q": term}, HTTP_HX_REQUEST="true")
    assert dropdown.status_code == 200 and message in dropdown.content.decode()
    assert "<html" not in dropdown.content.decode()


def test_a_login_of_any_length_is_searched(book, support):
    assert logins(find_clients(support, "7")) == {"London": [700101, 700102, 700103]}
    assert logins(find_clients(support, "8")) == {"Tokyo": [810055]}
    assert logins(find_clients(support, "9" * 19)) == {}  # beyond the largest id: no overflow
    assert logins(find_clients(support, "0")) == {}


def test_the_page_needs_staff_and_links_each_result_to_its_card(client, book, support):
    assert client.get(URL, {"q": "alice"}).status_code == 302
    client.force_login(support)
    page = client.get(URL, {"q": "ali"}).content.decode()
    assert reverse("dashboard:account", args=[book[0].pk, 700101]) in page
    assert reverse("dashboard:account", args=[book[1].pk, 810055]) in page
    assert page.index("London") < page.index("Tokyo")
    assert "Zurich" not in page
    top = client.get("/").content.decode()
    assert 'id="client-search-input"' in top and "dashboard/search.js" in top
