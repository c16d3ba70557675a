"""Find a client anywhere: one search over the mirror's accounts of every platform a user may see.

A term is matched against the login (exact, prefix, substring), name, comment and, for users
holding ``view_personal_data`` only, e-mail, phone and last IP (prefix and substring, any
case). Scope comes from the one gate (:func:`platforms.access.scope.scope_for`): platforms
outside the grant are never queried, rows outside the grant's MT4 group masks never match, and
personal columns are neither searched nor returned without the permission — so a term that
only an e-mail contains finds nothing for such a user.

Reads go to the mirror, never to the trade servers, through an index on each database
(:mod:`platforms.mirror.search_index`): trigram GIN with ``ILIKE`` on PostgreSQL, FTS5 trigram
on SQLite (a ``LIKE`` scan where SQLite lacks the tokenizer). Work is bounded: at most
:data:`PER_PLATFORM` rows per platform and :data:`TOTAL` in all, a term of at most
:data:`MAX_TERM` characters, text terms of at least :data:`MIN_TEXT` (a trigram index cannot
narrow anything shorter; a login can be any length, since a prefix of digits is a few B-tree
ranges).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from django.db import connection
from django.db.models import Lookup, Q, QuerySet, TextField
from django.db.models.expressions import RawSQL

from platforms.access.masks import group_allowed, masks_q
from platforms.access.scope import MAX_ID, scope_for
from platforms.mirror.models import MirrorAccount
from platforms.mirror.search_index import (
    PERSONAL_COLUMNS,
    PUBLIC_COLUMNS,
    SEARCH_TABLE,
    pg_document,
    sqlite_index_ready,
)
from platforms.models import TradePlatform

MAX_TERM = 100
MIN_TEXT = 3
PER_PLATFORM = 10
TOTAL = 50
#: SQLite: FTS5 matches walked per platform at most (all platforms share one FTS table)
MAX_WALK = 20_000
#: Columns each result carries (personal ones are blanked for users without the permission).
SHOWN = ("platform_id", "login", "name", "group", "comment", *PERSONAL_COLUMNS)
LABELS = {"login": "login", "name": "name", "comment": "comment", "email": "e-mail",
          "phone": "phone", "last_ip": "last IP"}


class SearchTermError(ValueError):
    """A term the search refuses, with the message to show the user."""


def clean_term(raw: object) -> str:
    """The term to search for: trimmed, at most :data:`MAX_TERM` characters, no NUL or other
    control character, and either a login (digits) or :data:`MIN_TEXT` characters of text.
    An empty term is "" (nothing to search)."""
    term = str(raw or "").strip()
    if len(term) > MAX_TERM:
        raise SearchTermError(f"Search for at most {MAX_TERM} characters.")
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in term):
        raise SearchTermError("The search cannot contain control characters.")
    if term and not term.isdigit() and len(term) < MIN_TEXT:
        raise SearchTermError(f"Type at least {MIN_TEXT} characters, or a login.")
    return term


@dataclass(frozen=True)
class Hit:
    """One account found: what the result list shows, and which field the term matched."""

    platform_id: int
    login: int
    name: str
    group: str
    email: str
    matched: str


@dataclass
class PlatformHits:
    platform: TradePlatform
    hits: list[Hit] = field(default_factory=list)
    #: more accounts than shown match on this platform (narrow the term to see them)
    more: bool = False


@dataclass
class SearchResult:
    term: str
    platforms: list[PlatformHits] = field(default_factory=list)
    #: platforms whose matches were not read because :data:`TOTAL` was reached first
    skipped: list[TradePlatform] = field(default_factory=list)

    @property
    def count(self) -> int:
        return sum(len(p.hits) for p in self.platforms)


class _ContainsAnyCase(Lookup):
    """``lhs ILIKE '%term%'`` on PostgreSQL (what ``gin_trgm_ops`` serves: Django's
    ``icontains`` writes ``UPPER(lhs::text) LIKE``, which the index does not serve)."""

    lookup_name = "search_contains"

    def as_sql(self, compiler, conn):
        lhs, lhs_params = self.process_lhs(compiler, conn)
        rhs, rhs_params = self.process_rhs(compiler, conn)
        return f"{lhs} ILIKE {rhs}", [*lhs_params, *rhs_params]


def _login_ranges(digits: str, lowest: int, highest: int) -> list[tuple[int, int]]:
    """Logins that start with ``digits``, as B-tree ranges (one per possible length, shortest
    and so lowest first), only those that meet the platform's ``lowest`` … ``highest``."""
    first = int(digits)
    ranges = []
    width = 0
    while 0 < first * 10**width <= min(highest, MAX_ID):
        low, high = first * 10**width, min((first + 1) * 10**width - 1, MAX_ID)
        if high >= lowest:
            ranges.append((low, high))
        width += 1
    return ranges


def _by_login(accounts: QuerySet, digits: str, wanted: int) -> list[dict]:
    """Up to ``wanted`` of ``accounts`` whose login starts with ``digits``, by login: one
    short index range scan per login length the platform has (usually one or two), rather than
    one query over every length, which read, sorted and cut every login of those lengths."""
    ends = [accounts.order_by(key).values_list("login", flat=True).first()
            for key in ("login", "-login")]
    if ends[0] is None or ends[1] is None:
        return []
    rows: list[dict] = []
    for low, high in _login_ranges(digits, ends[0], ends[1]):
        found = accounts.filter(login__range=(low, high)).order_by("login")
        rows += found.values(*SHOWN)[:wanted - len(rows)]
        if len(rows) >= wanted:
            break
    return rows


def _substring_pg(term: str, personal: bool) -> Q:
    pattern = f"%{connection.ops.prep_for_like_query(term)}%"
    match = Q()
    for columns in (PUBLIC_COLUMNS, PERSONAL_COLUMNS) if personal else (PUBLIC_COLUMNS,):
        document = RawSQL(pg_document(columns), [], output_field=TextField())  # noqa: S611
        match |= Q(_ContainsAnyCase(document, pattern))
    return match


def _fts_phrase(term: str, columns: Iterable[str]) -> str:
    """An FTS5 query for ``term`` as one phrase (quotes doubled, so nothing inside is syntax)
    restricted to ``columns``."""
    quoted = term.replace('"', '""')
    return f'{{{" ".join(columns)}}} : "{quoted}"'


def _substring(accounts: QuerySet, term: str, columns: tuple[str, ...]) -> QuerySet:
    """``accounts`` containing ``term`` in one of ``columns``, through the trigram index on
    PostgreSQL; elsewhere the plain ``LIKE`` scan (SQLite without FTS5's trigram tokenizer)."""
    if connection.vendor == "postgresql":
        return accounts.filter(_substring_pg(term, personal=PERSONAL_COLUMNS[0] in columns))
    match = Q()
    for column in columns:
        match |= Q(**{f"{column}__icontains": term})
    return accounts.filter(match)


_FTS_COLUMNS = ", ".join(f'a."{column}"' for column in SHOWN)  # "group" is a keyword
FTS_SQL = (
    f"SELECT {_FTS_COLUMNS} FROM {SEARCH_TABLE}"  # noqa: S608
    f" CROSS JOIN {MirrorAccount._meta.db_table} a ON a.id = {SEARCH_TABLE}.rowid"
    f" WHERE {SEARCH_TABLE} MATCH %s")


def _fts_rows(platform_id: int, allowed: Callable[[str], bool], term: str,
              columns: tuple[str, ...], wanted: int) -> tuple[list[dict], bool]:
    """SQLite: up to ``wanted`` rows of one platform whose ``columns`` contain ``term``, and
    whether the walk was cut short.

    The walk starts from the FTS5 matches (``CROSS JOIN`` fixes that order: left to choose,
    SQLite drives from the platform's accounts and runs the whole MATCH once per account);
    platform and group masks are checked here, row by row, over at most :data:`MAX_WALK`
    matches: one FTS table serves every platform, so a term common on one platform would
    otherwise be walked to its end while looking for the rare match on another.
    """
    rows: list[dict] = []
    walked = 0
    with connection.cursor() as cursor:
        cursor.execute(FTS_SQL, [_fts_phrase(term, columns)])
        while len(rows) < wanted and (batch := cursor.fetchmany(500)):
            walked += len(batch)
            for values in batch:
                row = dict(zip(SHOWN, values, strict=True))
                if row["platform_id"] == platform_id and allowed(row["group"]):
                    rows.append(row)
                    if len(rows) == wanted:
                        break
            if walked >= MAX_WALK:
                return rows, len(rows) < wanted
    return rows, False


def _substring_rows(platform_id: int, masks: str, term: str, columns: tuple[str, ...],
                    wanted: int) -> tuple[list[dict], bool]:
    """Up to ``wanted`` rows of one platform, inside ``masks``, containing ``term``, and
    whether the search stopped before it could tell that there are no more."""
    if connection.vendor == "sqlite" and sqlite_index_ready(connection):
        return _fts_rows(platform_id, lambda group: _group_allowed(group, masks), term, columns,
                         wanted)
    # unordered: the model's default order (by platform *name*) would join and sort every
    # match before the LIMIT; the few rows found are ranked by the caller
    found = _substring(_scoped_accounts(platform_id, masks), term, columns).order_by()
    if connection.vendor != "postgresql":
        return list(found.values(*SHOWN)[:wanted]), False
    # Planned whole, read lazily: under a bare LIMIT the planner bets that a scan of the table
    # meets enough matches early (it guesses a few dozen) and loses the bet for a rare term;
    # a MATERIALIZED CTE is planned for all its rows (the index, for a rare term) yet the
    # LIMIT outside still stops it at the first ``wanted`` rows.
    inner, params = found.values_list(*SHOWN).query.sql_with_params()
    with connection.cursor() as cursor:
        cursor.execute(f"WITH found AS MATERIALIZED ({inner}) SELECT * FROM found LIMIT %s",  # noqa: S608
                       [*params, wanted])
        return [dict(zip(SHOWN, values, strict=True)) for values in cursor.fetchall()], False


@lru_cache(maxsize=4096)
def _group_allowed(group: str, masks: str) -> bool:
    return not masks.strip() or group_allowed(group, masks)


def _scoped_accounts(platform_id: int, masks: str) -> QuerySet:
    return MirrorAccount.objects.filter(platform_id=platform_id).filter(masks_q("group", masks))


def _matched(row: dict, term: str, columns: tuple[str, ...]) -> tuple[int, str]:
    """(rank, field): 0 exact login, 1 a field starting with the term, 2 a field containing it."""
    needle = term.casefold()
    if str(row["login"]) == term:
        return 0, "login"
    found = ""
    for column in columns:
        value = str(row[column] or "").casefold()
        if value.startswith(needle):
            return 1, column
        if not found and needle in value:
            found = column
    return 2, found or columns[0]


def _platform_hits(platform_id: int, masks: str, term: str, columns: tuple[str, ...],
                   limit: int, personal: bool) -> tuple[list[Hit], bool]:
    """The platform's hits, best first, and whether more may match than are shown."""
    rows: dict[int, dict] = {}
    cut = False
    wanted = limit + 1
    if term.isdigit():
        for row in _by_login(_scoped_accounts(platform_id, masks), term, wanted):
            rows.setdefault(row["login"], row)
    if len(term) >= MIN_TEXT and len(rows) < wanted:
        found, cut = _substring_rows(platform_id, masks, term, columns, wanted)
        for row in found:
            rows.setdefault(row["login"], row)
    ranked = sorted(rows.values(), key=lambda r: (*_matched(r, term, columns)[:1], r["login"]))
    hits = [Hit(r["platform_id"], r["login"], r["name"], r["group"],
                r["email"] if personal else "", LABELS[_matched(r, term, columns)[1]])
            for r in ranked[:limit]]
    return hits, cut or len(ranked) > limit


def find_clients(user, term: str) -> SearchResult:
    """Accounts matching ``term`` (already :func:`clean_term`-ed) on every platform ``user`` may
    see, grouped by platform (by name), at most :data:`PER_PLATFORM` each and :data:`TOTAL` in
    all."""
    result = SearchResult(term)
    scope = scope_for(user)
    if not term or not scope.platforms:
        return result
    columns = PUBLIC_COLUMNS + (PERSONAL_COLUMNS if scope.personal else ())
    left = TOTAL
    for platform in TradePlatform.objects.filter(pk__in=scope.platforms).order_by("name"):
        if left <= 0:
            result.skipped.append(platform)
            continue
        hits, more = _platform_hits(platform.pk, scope.platforms[platform.pk], term, columns,
                                    min(PER_PLATFORM, left), scope.personal)
        if hits or more:
            result.platforms.append(PlatformHits(platform, hits, more))
            left -= len(hits)
    return result
