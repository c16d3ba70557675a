"""Signal receivers of the mirror: a platform's snapshot schedules follow its row (created or
updated when it is saved, deleted with it). :func:`connect` is called by
``PlatformsConfig.ready()``, so every process (web, worker, beat, shell) follows the rows."""

from __future__ import annotations

from django.db import connections, transaction
from django.db.models.signals import post_delete, post_migrate, post_save

from platforms.mirror.schedules import ensure_snapshot_schedules, remove_snapshot_schedules
from platforms.mirror.search_index import ensure_sqlite_index
from platforms.models import TradePlatform


def _platform_saved(sender, instance: TradePlatform, raw: bool = False, **kwargs) -> None:
    if not raw:
        transaction.on_commit(lambda: ensure_snapshot_schedules(instance))


def _platform_deleted(sender, instance: TradePlatform, **kwargs) -> None:
    remove_snapshot_schedules(instance.pk)


def _search_index_kept(sender, using: str = "default", **kwargs) -> None:
    """SQLite drops the search triggers whenever a migration rebuilds the accounts table: put
    them back (and refill the index) after every ``migrate``; a no-op when they are there."""
    if sender.name == "platforms":
        ensure_sqlite_index(connections[using])


def connect() -> None:
    post_save.connect(_platform_saved, sender=TradePlatform, dispatch_uid="mirror-schedules")
    post_delete.connect(_platform_deleted, sender=TradePlatform,
                        dispatch_uid="mirror-schedules-delete")
    post_migrate.connect(_search_index_kept, dispatch_uid="mirror-search-index")
