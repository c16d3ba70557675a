"""Trigram search over the mirror's accounts ("find a client anywhere").

PostgreSQL: the ``pg_trgm`` extension and one GIN index (``gin_trgm_ops``) over the login (as
text), name, comment, e-mail, phone and last IP. SQLite: an FTS5 trigram table kept by triggers.
Neither is part of the model's state, so each database gets only its own kind and SQLite never
meets a GIN index (see ``platforms.mirror.search_index``).
"""

from django.contrib.postgres.operations import TrigramExtension
from django.db import migrations

from platforms.mirror.search_index import (
    create_pg_index,
    drop_pg_index,
    drop_sqlite_index,
    ensure_sqlite_index,
)


def _create(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        create_pg_index(schema_editor)
    else:
        ensure_sqlite_index(connection)


def _drop(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor == "postgresql":
        drop_pg_index(schema_editor)
    else:
        drop_sqlite_index(connection)


class Migration(migrations.Migration):
    dependencies = [("platforms", "0016_platform_time_zones")]

    operations = [
        TrigramExtension(),
        migrations.RunPython(_create, _drop, elidable=False),
    ]
