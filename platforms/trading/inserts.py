"""PostgreSQL fast inserts for the desk's hot path (a submit): a row travels as ONE JSON
parameter of an ``INSERT … SELECT``, and the statement runs server-side prepared.

Django's ``save()`` builds a query and a compiler per row and binds every value client-side;
a submit is the latency a dealer waits for, so :mod:`platforms.trading.submit` composes its
statement from these pieces instead (see docs/trading.md).
"""

from __future__ import annotations

import functools
import json
from datetime import date, datetime
from decimal import Decimal
from ipaddress import IPv4Address, IPv6Address
from typing import Any, cast
from uuid import UUID

import psycopg
from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connection, connections
from django.db.models import Model


@functools.cache
def _inserted_fields(model: type[Model]) -> tuple:
    meta = model._meta
    return tuple(f for f in meta.local_concrete_fields
                 if f is not meta.auto_field and not f.generated)


def insert_values(obj: Model) -> dict[str, Any]:
    """Per column, the prepared value Django's ``save()`` would insert for a new ``obj``
    (``auto_now_add`` and the like filled in on ``obj``; secrets encrypted): what its insert
    compiler does per field, without building a query and a compiler for one row."""
    # the thread's own connection object: every attribute read through the ``connection``
    # proxy is a thread-local lookup, and preparing a row reads dozens
    wrapper = connections[DEFAULT_DB_ALIAS]
    return {f.column: f.get_db_prep_save(f.pre_save(obj, True), wrapper)
            for f in _inserted_fields(type(obj))}


def _json_value(value: Any) -> Any:
    """A prepared value as PostgreSQL reads it back from JSON (``jsonb_populate_record``)."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal | UUID):
        return str(value)
    wrapped = getattr(value, "obj", _NOT_WRAPPED)  # psycopg's Json/Jsonb around a JSON value
    if wrapped is not _NOT_WRAPPED:
        return wrapped
    if isinstance(value, IPv4Address | IPv6Address):
        return str(value)
    raise TypeError(f"no JSON form for {type(value).__name__}")


_NOT_WRAPPED = object()


def insert_select(model: type[Model], values: dict[str, Any],
                  overrides: dict[str, str]) -> tuple[str, str]:
    """``INSERT … SELECT`` of one row that travels as ONE JSON parameter, and that parameter.

    One parameter instead of one per column: psycopg composes client-side statements in
    Python, value by value. ``overrides`` replaces a column's value by an SQL expression
    (generated here, never from input)."""
    sql = _insert_select_sql(model, tuple(values), tuple(sorted(overrides.items())))
    return sql, json.dumps(values, default=_json_value)


@functools.cache
def _insert_select_sql(model: type[Model], columns: tuple[str, ...],
                       overrides: tuple[tuple[str, str], ...]) -> str:
    qn = connection.ops.quote_name
    table = qn(model._meta.db_table)
    expressions = dict(overrides)
    selected = ", ".join(expressions.get(column, f"r.{qn(column)}") for column in columns)
    # names from the models and generated expressions only; the row is the one parameter
    return (f"INSERT INTO {table} ({', '.join(qn(c) for c in columns)}) "  # noqa: S608
            f"SELECT {selected} FROM jsonb_populate_record(NULL::{table}, %s::jsonb) AS r")


def fetch_one_prepared(sql: str, params: list) -> tuple:
    """PostgreSQL: the first row of a hot statement, run as a server-side prepared statement
    (``DATABASE_PREPARED_STATEMENTS``).

    Django binds parameters client-side and never prepares, so PostgreSQL parsed and planned
    submit's statement (two inserts and a policy read) on every call: about 40 % of the
    database's CPU per submit. Prepared once per connection, each later call only binds.
    Errors are Django's, as through ``connection.cursor()``. The statement returns a row.
    """
    if not settings.DATABASE_PREPARED_STATEMENTS:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cast(tuple, cursor.fetchone())
    connection.ensure_connection()
    with connection.wrap_database_errors, psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(sql, params, prepare=True)
        return cast(tuple, cursor.fetchone())
