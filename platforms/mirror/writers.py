"""Writers: how rows reach the mirror tables, and what a run counts while writing them.

Every write is an upsert keyed by ``(platform, login|ticket)``, so a retried or redelivered
run writes the same rows again harmlessly. On PostgreSQL rows travel by binary ``COPY``
(:data:`COPY_BATCH` at a time, about four times cheaper than text COPY for our float and
timestamp columns):

* rows that are new (a first load, a history batch of logins with no closed trades yet) are
  copied straight into the table, inside a savepoint: if one of them exists after all, the
  savepoint is rolled back and the batch merged instead, so the guess is never trusted;
* other rows are copied into a temporary staging table and merged with one
  ``INSERT … SELECT … ON CONFLICT DO UPDATE`` which, for :meth:`MirrorWriter.merge`, leaves a
  row whose columns did not change untouched (no new row version, no index or WAL traffic).

Elsewhere (SQLite) ``bulk_create(update_conflicts=True)`` in batches of :data:`BATCH`, after
dropping the rows equal to what is stored. A full run deletes what it did not see
(``last_seen_at`` older than its stamp), and a bulk load ends with ``ANALYZE``
(:func:`refresh_planner_statistics`).

The callers hold the transaction: :class:`MirrorWriter` never commits.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

import psycopg
from django.db import connection, transaction
from django.db.models import Field, Model

from platforms.mirror.models import (
    MirrorAccount,
    MirrorClosedTrade,
    MirrorGroup,
    MirrorOpenTrade,
    MirrorState,
    MirrorSymbol,
)
from platforms.mirror.rows import MARGIN_COLUMNS

if TYPE_CHECKING:
    from platforms.mirror.runs import Progress
    from platforms.models import TradePlatform

#: Rows per INSERT … ON CONFLICT statement (Django lowers it further for SQLite's limits).
BATCH = 2000
#: Rows per COPY on PostgreSQL.
COPY_BATCH = 20000
#: Keys per ``… IN (…)`` lookup.
LOOKUP_BATCH = 5000

MIRROR_TABLES = ("platforms_mirroraccount", "platforms_mirroropentrade",
                 "platforms_mirrorclosedtrade", "platforms_mirrorgroup", "platforms_mirrorsymbol")


def _update_fields(model: type[Model], *keys: str) -> list[str]:
    skip = {"id", "platform", *keys}
    return [f.name for f in model._meta.concrete_fields if f.name not in skip]


#: The columns an upsert overwrites, per table (everything but the id and the key).
ACCOUNT_FIELDS = _update_fields(MirrorAccount, "login")
MARGIN_FIELDS = list(MARGIN_COLUMNS)
#: An account's columns from its user record (an incremental run refreshes margins apart).
ACCOUNT_USER_FIELDS = [f for f in ACCOUNT_FIELDS if f not in MARGIN_FIELDS]
OPEN_FIELDS = _update_fields(MirrorOpenTrade, "ticket")
CLOSED_FIELDS = _update_fields(MirrorClosedTrade, "ticket")
GROUP_FIELDS = _update_fields(MirrorGroup, "name")
SYMBOL_FIELDS = _update_fields(MirrorSymbol, "symbol")
#: Columns that say nothing about the record itself: a row differing only there is unchanged.
#: (``margin_updated_at`` is the server's computation time, new on every read.)
NOT_COMPARED = frozenset({"last_seen_at", "margin_updated_at"})
#: The margin figures that count as a change.
MARGIN_FIGURES = [f for f in MARGIN_FIELDS if f not in NOT_COMPARED]

#: psycopg's binary type per column type (varchar travels as text: same binary form).
_BINARY_TYPES = {"bigint": "int8", "integer": "int4", "smallint": "int2", "boolean": "bool",
                 "double precision": "float8", "timestamp with time zone": "timestamptz",
                 "varchar": "text", "text": "text"}


def chunks(items: Sequence | Iterable, size: int) -> Iterator[list]:
    """``items`` in lists of at most ``size`` (a generator is consumed lazily)."""
    if isinstance(items, Sequence):
        for start in range(0, len(items), size):
            yield list(items[start : start + size])
        return
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def refresh_planner_statistics() -> None:
    """``ANALYZE`` the mirror after a bulk load (PostgreSQL).

    Autovacuum would get there eventually; until it does, a freshly loaded table has no
    statistics, the planner expects a few dozen rows, and sorts 300,000 trades instead of
    walking the index that serves the page (measured: 8.6 ms vs 1.5 ms at 31,000 rows).
    """
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        for table in MIRROR_TABLES:
            cursor.execute(f"ANALYZE {table}")


@dataclass
class Counts:
    """What a run did to the mirror (copied to its :class:`SnapshotRun` row)."""

    read: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0


# ============================================================================ COPY statements


def _q(name: str) -> str:
    return connection.ops.quote_name(name)


def _column(model: type[Model], name: str) -> str:
    """The quoted column of ``model``'s concrete field ``name``."""
    field = model._meta.get_field(name)
    if not isinstance(field, Field) or field.column is None:
        raise ValueError(f"{model.__name__}.{name} is not a column")
    return _q(field.column)


def _binary_type(field) -> str:
    db_type = field.db_type(connection).split("(")[0].strip()
    return _BINARY_TYPES[db_type]


@dataclass(frozen=True)
class _CopyPlan:
    """The statements and row layout of one (model, key, update columns) upsert.

    Identifiers come from the model's metadata, never from input.
    """

    table: str
    columns: list[str]
    types: list[str]
    defaults: dict[str, Any]
    #: row dict with every column → tuple in column order
    pick: Callable[[dict[str, Any]], tuple]
    copy_into_table: str
    create_stage: str
    copy_into_stage: str
    truncate_stage: str
    merge: str


@functools.cache
def _copy_plan(model: type[Model], keys: tuple[str, ...], fields: tuple[str, ...],
               skip_unchanged: bool) -> _CopyPlan:
    meta = model._meta
    concrete = [f for f in meta.concrete_fields if f.name != "id"]
    columns = [f.attname for f in concrete]
    defaults = {f.attname: f.get_default() for f in concrete}
    table = _q(meta.db_table)
    stage = _q(f"stage_{meta.db_table}")
    column_list = ", ".join(_column(model, f.name) for f in concrete)
    conflict = ", ".join(_column(model, k) for k in keys)
    updated = [_column(model, f) for f in fields]
    assignments = ", ".join(f"{c} = EXCLUDED.{c}" for c in updated)
    guard = ""
    if skip_unchanged:
        compared = [_column(model, f) for f in fields if f not in NOT_COMPARED]
        guard = (f" WHERE ({', '.join(f'mirror.{c}' for c in compared)}) IS DISTINCT FROM "
                 f"({', '.join(f'EXCLUDED.{c}' for c in compared)})")
    return _CopyPlan(
        table=table,
        columns=columns,
        types=[_binary_type(f) for f in concrete],
        defaults=defaults,
        pick=operator.itemgetter(*columns),
        copy_into_table=f"COPY {table} ({column_list}) FROM STDIN (FORMAT BINARY)",
        create_stage=(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DROP AS "  # noqa: S608
                      f"SELECT {column_list} FROM {table} WITH NO DATA"),
        copy_into_stage=f"COPY {stage} ({column_list}) FROM STDIN (FORMAT BINARY)",
        truncate_stage=f"TRUNCATE {stage}",
        merge=(
            f"WITH written AS (INSERT INTO {table} AS mirror ({column_list}) "  # noqa: S608
            f"SELECT {column_list} FROM {stage} ON CONFLICT ({conflict}) "
            f"DO UPDATE SET {assignments}{guard} RETURNING (xmax = 0) AS fresh) "
            "SELECT count(*) FILTER (WHERE fresh), count(*) FILTER (WHERE NOT fresh) "
            "FROM written"
        ),
    )


def _tuples(plan: _CopyPlan, rows: list[dict[str, Any]]) -> list[tuple]:
    """Rows in column order. Rows from one builder share their keys: the columns the first
    one lacks are filled with defaults in all of them (a cheap update, not a copy)."""
    missing = {c: v for c, v in plan.defaults.items() if c not in rows[0]}
    try:
        if missing:
            for row in rows:
                row.update(missing)
        return list(map(plan.pick, rows))
    except KeyError:  # rows of mixed shapes
        return [plan.pick({**plan.defaults, **row}) for row in rows]


def _copy(cursor: psycopg.Cursor, statement: str, types: list[str], rows: list[tuple]) -> None:
    with cursor.copy(statement) as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


# ============================================================================ the writer


class MirrorWriter:
    """Writes one run's rows of one platform, counting them and advancing the progress bar."""

    def __init__(self, platform: TradePlatform, stamp: datetime, progress: Progress,
                 counts: Counts) -> None:
        self.platform = platform
        self.stamp = stamp
        self.progress = progress
        self.counts = counts

    def lock(self) -> MirrorState:
        """Inside the write transaction: the platform's row lock (``SELECT … FOR UPDATE`` on
        PostgreSQL; SQLite's IMMEDIATE transactions already hold the database write lock)."""
        return MirrorState.objects.select_for_update().get(platform=self.platform)

    def commit_without_flush_wait(self) -> None:
        """This transaction's commit returns before its WAL is flushed to disk (PostgreSQL).

        For the many commits of a history run: a crash can lose the last few of them, but
        each carries its own checkpoint, so the run repeats exactly the rows that were lost;
        the database stays consistent either way.
        """
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit TO OFF")

    def set_state(self, **stamps: Any) -> None:
        """The platform's "data as of" stamps and the server time reached."""
        MirrorState.objects.filter(platform=self.platform).update(**stamps)

    # ------------------------------------------------------------------ upserts
    def replace(self, model: type[Model], rows: Iterable[dict[str, Any]], keys: list[str],
                fields: list[str]) -> None:
        """Upsert every row read, then delete what the server no longer has.

        Every row read is written (its ``last_seen_at`` is how the deletion finds the rest).
        """
        scope = model._default_manager.filter(platform=self.platform)
        before = scope.count()
        read, _, _ = self._upsert(model, rows, ["platform", *keys], fields, new=before == 0,
                                  skip_unchanged=False)
        deleted, _ = scope.filter(last_seen_at__lt=self.stamp).delete()
        inserted = scope.count() + deleted - before
        self.counts.read += read
        self.counts.inserted += inserted
        self.counts.updated += read - inserted
        self.counts.deleted += deleted

    def merge(self, model: type[Model], rows: Iterable[dict[str, Any]], keys: list[str],
              fields: list[str], *, new: bool = False) -> None:
        """Upsert rows, leaving the unchanged ones untouched; counts inserted vs updated.

        ``new``: the caller expects none of the rows to exist yet (checked, not trusted).
        """
        read, inserted, updated = self._upsert(model, rows, ["platform", *keys], fields,
                                               new=new, skip_unchanged=True)
        self.counts.read += read
        self.counts.inserted += inserted
        self.counts.updated += updated

    def _upsert(self, model: type[Model], rows: Iterable[dict[str, Any]], keys: list[str],
                fields: list[str], *, new: bool, skip_unchanged: bool) -> tuple[int, int, int]:
        """Insert or update ``rows`` (dicts of column values) in batches.

        Returns (rows read, rows inserted, rows updated).
        """
        if connection.vendor == "postgresql":
            return self._upsert_copy(model, rows, keys, fields, new=new,
                                     skip_unchanged=skip_unchanged)
        return self._upsert_orm(model, rows, keys, fields, skip_unchanged=skip_unchanged)

    def _upsert_copy(self, model: type[Model], rows: Iterable[dict[str, Any]], keys: list[str],
                     fields: list[str], *, new: bool,
                     skip_unchanged: bool) -> tuple[int, int, int]:
        plan = _copy_plan(model, tuple(keys), tuple(fields), skip_unchanged)
        read = inserted = updated = 0
        staged = False
        with connection.cursor() as cursor:
            raw = cursor.cursor
            for chunk in chunks(rows, COPY_BATCH):
                batch = _tuples(plan, chunk)
                del chunk
                if new:
                    try:
                        with transaction.atomic():
                            _copy(raw, plan.copy_into_table, plan.types, batch)
                    except psycopg.errors.UniqueViolation:
                        new = False  # some rows exist after all: merge from here on
                    else:
                        read += len(batch)
                        inserted += len(batch)
                        self.progress.advance(len(batch))
                        continue
                if not staged:
                    raw.execute(plan.create_stage)
                    staged = True
                raw.execute(plan.truncate_stage)
                _copy(raw, plan.copy_into_stage, plan.types, batch)
                raw.execute(plan.merge)
                fresh, rewritten = raw.fetchone()
                read += len(batch)
                inserted += fresh
                updated += rewritten
                self.progress.advance(len(batch))
        return read, inserted, updated

    def _upsert_orm(self, model: type[Model], rows: Iterable[dict[str, Any]], keys: list[str],
                    fields: list[str], *, skip_unchanged: bool) -> tuple[int, int, int]:
        """``bulk_create(update_conflicts=True)``; with ``skip_unchanged`` the rows equal to
        the stored ones are dropped first (and inserted vs updated is counted)."""
        key = keys[-1]
        compared = [f for f in fields if f not in NOT_COMPARED]
        defaults = _defaults(model)
        read = inserted = updated = 0
        for chunk in chunks(rows, BATCH):
            read += len(chunk)
            if skip_unchanged:
                stored = {
                    row[key]: row
                    for row in model._default_manager.filter(
                        platform=self.platform, **{f"{key}__in": [row[key] for row in chunk]}
                    ).values(key, *compared)
                }
                written = [row for row in chunk
                           if not _same(row, stored.get(row[key]), compared, defaults)]
                fresh = sum(1 for row in written if row[key] not in stored)
                inserted += fresh
                updated += len(written) - fresh
            else:
                written = chunk
            if written:
                model._default_manager.bulk_create(
                    [model(**row) for row in written], batch_size=BATCH,
                    update_conflicts=True, unique_fields=keys, update_fields=fields,
                )
            self.progress.advance(len(chunk))
        return read, inserted, updated

    def delete_open(self, tickets: list[int]) -> None:
        """Open trades that came back closed or deleted leave the open table."""
        for chunk in chunks(tickets, LOOKUP_BATCH):
            deleted, _ = MirrorOpenTrade.objects.filter(
                platform=self.platform, ticket__in=chunk
            ).delete()
            self.counts.deleted += deleted

    # ------------------------------------------------------------------ margins
    def refresh_margins(self, margins: list[tuple], written: set[int]) -> None:
        """Write the margin figures that moved (prices move them without a user change).

        ``margins`` are ``(login, *MARGIN_FIELDS)`` of the accounts the server may have
        recomputed (the caller has dropped the others unread); only those whose figures
        differ from the stored ones are written, and only accounts the mirror holds.
        ``written`` are logins this run has just written otherwise (counted once).
        """
        if connection.vendor == "postgresql":
            changed = self._write_margins_copy(margins) if margins else set()
        else:
            changed = self._write_margins_orm(margins)
        self.counts.updated += len(changed - written)
        self.progress.advance(len(margins))

    def _write_margins_copy(self, margins: list[tuple]) -> set[int]:
        """Staged by binary COPY, then one UPDATE that skips the rows whose figures are the
        stored ones (no new row version); returns the logins it changed."""
        table = _q(MirrorAccount._meta.db_table)
        stage = _q("stage_margins")
        columns = ["login", *MARGIN_FIELDS]
        column_list = ", ".join(_q(c) for c in columns)
        types = [_binary_type(MirrorAccount._meta.get_field(c)) for c in columns]
        figures = [_q(c) for c in MARGIN_FIGURES]
        with connection.cursor() as cursor:
            raw = cursor.cursor
            raw.execute(f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DROP AS "  # noqa: S608
                        f"SELECT {column_list} FROM {table} WITH NO DATA")
            raw.execute(f"TRUNCATE {stage}")
            _copy(raw, f"COPY {stage} ({column_list}) FROM STDIN (FORMAT BINARY)", types,
                  margins)
            raw.execute(
                f"UPDATE {table} AS mirror SET "  # noqa: S608
                + ", ".join(f"{_q(c)} = stage.{_q(c)}" for c in MARGIN_FIELDS)
                + f" FROM {stage} AS stage WHERE mirror.platform_id = %s"
                " AND mirror.login = stage.login"
                f" AND ({', '.join(f'mirror.{c}' for c in figures)}) IS DISTINCT FROM"
                f" ({', '.join(f'stage.{c}' for c in figures)}) RETURNING mirror.login",
                [self.platform.pk],
            )
            return {login for (login,) in raw.fetchall()}

    def _write_margins_orm(self, margins: list[tuple]) -> set[int]:
        """Compared with the stored figures of just these logins; returns the changed ones."""
        count = len(MARGIN_FIGURES)
        changed: list[tuple] = []
        for chunk in chunks(margins, LOOKUP_BATCH):
            stored = {
                row[0]: row[1:]
                for row in MirrorAccount.objects.filter(
                    platform=self.platform, login__in=[m[0] for m in chunk]
                ).values_list("login", *MARGIN_FIGURES)
            }
            changed += [m for m in chunk
                        if (now := stored.get(m[0])) is not None and m[1:count + 1] != now]
        # last_seen_at only satisfies the INSERT half; the update sets the margins alone.
        accounts = [
            MirrorAccount(platform_id=self.platform.pk, login=login, last_seen_at=self.stamp,
                          **dict(zip(MARGIN_FIELDS, values, strict=True)))
            for login, *values in changed
        ]
        for batch in chunks(accounts, BATCH):
            MirrorAccount.objects.bulk_create(
                batch, batch_size=BATCH, update_conflicts=True,
                unique_fields=["platform", "login"], update_fields=MARGIN_FIELDS,
            )
        return {m[0] for m in changed}


@functools.cache
def _defaults(model: type[Model]) -> dict[str, Any]:
    return {f.attname: f.get_default() for f in model._meta.concrete_fields}


def _same(row: dict[str, Any], stored: dict[str, Any] | None, compared: list[str],
          defaults: dict[str, Any]) -> bool:
    """``row`` would write nothing new over ``stored`` (a missing column takes its default)."""
    if stored is None:
        return False
    return all(row.get(f, defaults[f]) == stored[f] for f in compared)
