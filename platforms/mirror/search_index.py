"""The indexes behind "find a client anywhere" (:mod:`platforms.mirror.search`).

PostgreSQL: one GIN index with ``gin_trgm_ops`` (``pg_trgm``) over two documents of
``platforms_mirroraccount``: the public fields (login as text, name, comment) and the personal
ones (e-mail, phone, last IP); ``document ILIKE '%term%'`` is answered from it. Built by
migration ``0017_mirror_account_search``, after ``CREATE EXTENSION pg_trgm``.

SQLite: an FTS5 table with the ``trigram`` tokenizer (SQLite ≥ 3.34) over the same columns,
with the mirror table as its external content, kept in step by three triggers (the update
trigger fires only when a searched column really changed, so a snapshot that rewrites an
unchanged row or refreshes margins costs the index nothing). SQLite drops a table's triggers
when a migration rebuilds the table (its ``ALTER`` is a copy), so :func:`ensure_sqlite_index`
also runs after every ``migrate`` and puts back what is missing. Without the trigram tokenizer
the search falls back to a bounded ``LIKE`` scan (:func:`sqlite_index_ready` says which).
"""

from __future__ import annotations

import sqlite3

TABLE = "platforms_mirroraccount"
SEARCH_TABLE = "platforms_mirroraccount_search"
PG_INDEX = "mirror_acc_search_trgm"
#: Searched columns: what everyone may search, then what only ``view_personal_data`` may.
PUBLIC_COLUMNS = ("login", "name", "comment")
PERSONAL_COLUMNS = ("email", "phone", "last_ip")
COLUMNS = PUBLIC_COLUMNS + PERSONAL_COLUMNS
TRIGGERS = {f"{SEARCH_TABLE}_{suffix}" for suffix in ("ai", "ad", "au")}


#: Between two fields of a document: a character no search term may contain (control
#: characters are refused), so a term never matches across two fields.
_SEPARATOR = "E'\\x1f'"


def pg_document(columns: tuple[str, ...]) -> str:
    """``columns`` as one text (the login cast), in SQL: the expression both the index and the
    search write, character for character, so that the planner matches them."""
    parts = ['"login"::text' if column == "login" else f'"{column}"' for column in columns]
    return "(" + f" || {_SEPARATOR} || ".join(parts) + ")"


def create_pg_index(schema_editor) -> None:
    """The PostgreSQL index: ``gin_trgm_ops`` on two documents, the public fields and the
    personal ones. Two documents, not six columns: the planner costs each ``OR`` arm of a
    trigram search as a separate index scan, and at six arms chose to read the whole table
    instead (1.4 s at 100,000 accounts for a term that matched nothing).

    Written as SQL: Django's ``GinIndex(OpClass(...))`` renders an operator class on an
    expression only with ``django.contrib.postgres`` installed, whose ``ready()`` would add a
    type-lookup query to every new database connection of every process.
    """
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {PG_INDEX} ON {TABLE} USING gin"
        f" ({pg_document(PUBLIC_COLUMNS)} gin_trgm_ops,"
        f" {pg_document(PERSONAL_COLUMNS)} gin_trgm_ops)")


def drop_pg_index(schema_editor) -> None:
    schema_editor.execute(f"DROP INDEX IF EXISTS {PG_INDEX}")


def sqlite_trigram_supported() -> bool:
    """FTS5's trigram tokenizer arrived in SQLite 3.34."""
    return sqlite3.sqlite_version_info >= (3, 34, 0)


def _sqlite_ddl() -> list[str]:
    cols = ", ".join(COLUMNS)
    new = ", ".join(f"new.{c}" for c in COLUMNS)
    old = ", ".join(f"old.{c}" for c in COLUMNS)
    changed = " OR ".join(f"old.{c} IS NOT new.{c}" for c in COLUMNS)
    add = f"INSERT INTO {SEARCH_TABLE}(rowid, {cols}) VALUES (new.id, {new});"  # noqa: S608
    drop = (f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}, rowid, {cols})"  # noqa: S608
            f" VALUES ('delete', old.id, {old});")
    return [
        f"CREATE VIRTUAL TABLE IF NOT EXISTS {SEARCH_TABLE} USING fts5({cols},"
        f" content='{TABLE}', content_rowid='id', tokenize='trigram')",
        f"CREATE TRIGGER IF NOT EXISTS {SEARCH_TABLE}_ai AFTER INSERT ON {TABLE}"
        f" BEGIN {add} END",
        f"CREATE TRIGGER IF NOT EXISTS {SEARCH_TABLE}_ad AFTER DELETE ON {TABLE}"
        f" BEGIN {drop} END",
        f"CREATE TRIGGER IF NOT EXISTS {SEARCH_TABLE}_au AFTER UPDATE OF {cols} ON {TABLE}"
        f" WHEN {changed} BEGIN {drop} {add} END",
    ]


def _sqlite_present(cursor) -> set[str]:
    cursor.execute("SELECT name FROM sqlite_master WHERE name = %s OR (type = 'trigger'"
                   " AND tbl_name = %s)", [SEARCH_TABLE, TABLE])
    return {row[0] for row in cursor.fetchall()}


def ensure_sqlite_index(connection) -> bool:
    """Create the FTS5 table and its triggers where missing, and fill the table from the mirror
    when anything had to be created. Returns whether the index is in place."""
    if connection.vendor != "sqlite" or not sqlite_trigram_supported():
        return False
    with connection.cursor() as cursor:
        present = _sqlite_present(cursor)
        wanted = TRIGGERS | {SEARCH_TABLE}
        if TABLE not in connection.introspection.table_names(cursor):
            return False
        connection.__dict__.pop("_mirror_search_ready", None)
        if wanted <= present:
            return True
        for statement in _sqlite_ddl():
            cursor.execute(statement)
        cursor.execute(f"INSERT INTO {SEARCH_TABLE}({SEARCH_TABLE}) VALUES ('rebuild')")  # noqa: S608
    return True


def drop_sqlite_index(connection) -> None:
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for trigger in sorted(TRIGGERS):
            cursor.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        cursor.execute(f"DROP TABLE IF EXISTS {SEARCH_TABLE}")


def sqlite_index_ready(connection) -> bool:
    """Is the FTS5 table and every trigger there (SQLite)? Asked once per connection."""
    known = getattr(connection, "_mirror_search_ready", None)
    if known is None:
        with connection.cursor() as cursor:
            known = (TRIGGERS | {SEARCH_TABLE}) <= _sqlite_present(cursor)
        connection._mirror_search_ready = known
    return known
