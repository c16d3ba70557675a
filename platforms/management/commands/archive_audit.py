"""``manage.py archive_audit --before 2026-01-01 --to audit-2025.jsonl.gz``: retention of the
audit trail, the one way rows ever leave it.

The events older than the date are written to a new file (JSON Lines, gzip if the name ends in
``.gz``), flushed and fsynced; the file is read back and its rows counted; only then are those
rows deleted, in one transaction in :func:`platforms.audit.maintenance` (the append-only trigger
refuses the delete otherwise), and the archive itself is recorded as an ``audit.archive`` event
with the file's name, row count and SHA-256. Any failure before the delete leaves the table as
it was.
"""

from __future__ import annotations

import datetime as dt
import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import IO

from django.core.management.base import BaseCommand, CommandError
from django.core.serializers.json import DjangoJSONEncoder
from django.utils import timezone

from platforms import audit
from platforms.models import AuditEvent

COLUMNS = ["id", "at", "actor_id", "actor_name", "ip_address", "action", "platform_id",
           "platform_name", "target", "before", "after", "request_id", "outcome", "detail"]
DELETE_CHUNK = 1000


def _open(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8")  # type: ignore[return-value]
    return path.open(mode, encoding="utf-8")


def _fsync(path: Path) -> None:
    with path.open("rb") as stored:
        os.fsync(stored.fileno())
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)  # the file's name is durable too
    finally:
        os.close(directory)


class Command(BaseCommand):
    help = ("Archive audit events older than --before to a JSON Lines file (--to, .gz to "
            "compress), verify it, then delete them from the database. Records the archive.")

    def add_arguments(self, parser):
        parser.add_argument("--before", required=True, type=dt.date.fromisoformat,
                            help="archive events recorded before this date (YYYY-MM-DD, "
                                 "midnight in TIME_ZONE)")
        parser.add_argument("--to", required=True, type=Path,
                            help="new file to write (refused if it exists)")

    def handle(self, *args, before: dt.date, to: Path, **options) -> None:
        cutoff = timezone.make_aware(dt.datetime.combine(before, dt.time.min))
        if cutoff > timezone.now():
            raise CommandError("--before is in the future: today's events are still being "
                               "written.")
        if to.exists():
            raise CommandError(f"{to} exists: an archive is never overwritten.")
        if not to.parent.is_dir():
            raise CommandError(f"{to.parent} is not a directory.")

        with audit.maintenance():
            # Fixed ids: rows recorded while this runs are neither written nor deleted.
            events = AuditEvent.objects.filter(at__lt=cutoff).order_by("id")
            ids = list(events.values_list("id", flat=True))
            if not ids:
                self.stdout.write(f"No audit events before {before}; nothing written.")
                return
            with _open(to, "x") as archive:
                for row in events.filter(id__lte=ids[-1]).values(*COLUMNS).iterator(2000):
                    archive.write(json.dumps(row, cls=DjangoJSONEncoder, sort_keys=True) + "\n")
            _fsync(to)

            with _open(to, "r") as archive:
                written = sum(1 for line in archive if line.strip())
            if written != len(ids):
                raise CommandError(f"{to} holds {written} rows, expected {len(ids)}; "
                                   "nothing deleted.")
            digest = hashlib.sha256(to.read_bytes()).hexdigest()

            deleted = 0
            for start in range(0, len(ids), DELETE_CHUNK):
                chunk = ids[start:start + DELETE_CHUNK]
                deleted += AuditEvent.objects.filter(id__in=chunk).delete()[0]
            if deleted != written:
                # raising rolls the deletes back: the file is an extra copy, nothing is lost
                raise CommandError(f"deleted {deleted} rows, archived {written}; rolled back.")
            audit.record(actor=audit.Actor.system(), action="audit.archive", target=to.name[:200],
                         after={"before": before.isoformat(), "rows": written,
                                "first_id": ids[0], "last_id": ids[-1], "sha256": digest},
                         detail=f"archived to {to}")
        self.stdout.write(f"Archived {written} audit events before {before} to {to} "
                          f"(sha256 {digest}); deleted them from the database.")
