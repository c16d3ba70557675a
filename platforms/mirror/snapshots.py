"""Snapshot runs: read a trade platform in bulk and write it into the local mirror.

The one service behind the ``snapshot_*`` Celery tasks, the "Run now" buttons and the
schedules. A run is:

* **Exclusive per platform.** :func:`_claim` takes the platform's :class:`MirrorState` row
  with a conditional UPDATE (free, or ours, or its holder is gone: heartbeat older than
  :data:`LEASE`, or a dead pid on this host). A heartbeat thread with its own database
  connection keeps the claim fresh. The writes additionally run under a lock on that row
  (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite's IMMEDIATE transactions take the database
  write lock), so even a wrongly taken-over claim cannot interleave two runs' writes.
* **Atomic.** Everything is read from the server first (nothing written), then all writes of
  a full or incremental run happen in ONE transaction: a fault anywhere leaves the previous
  mirror intact. History runs (months of closed trades) commit per batch of logins together
  with a checkpoint: closed trades never change, the upserts are idempotent, and a crashed
  run resumes after the last committed batch.
* **Idempotent.** Every write is an upsert keyed by ``(platform, login|ticket)``
  (``bulk_create(update_conflicts=True)`` on both databases); a redelivered task re-runs the
  same :class:`SnapshotRun`.
* **Bounded in memory.** Records are msgspec structs (``gc=False``, compact) decoded in one
  pass; rows are built and written :data:`BATCH` at a time and dropped. See docs/mirror.md
  for the measured peak.

The MT4 x86-only reads (``UsersSnapshot``, ``TradesSnapshot``, ``…SyncRead``) go to the
sidecar, everything else to the main API: the client routes by operation.
"""

from __future__ import annotations

import calendar
import contextlib
import dataclasses
import functools
import logging
import os
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, connection, transaction
from django.db.models import Model, Q
from django.utils import timezone

from platforms import audit
from platforms.client import MT4, ManagerApiError, NotFound, split_flags
from platforms.client import records as r
from platforms.connections import client_for
from platforms.mirror.models import (
    MirrorAccount,
    MirrorClosedTrade,
    MirrorGroup,
    MirrorOpenTrade,
    MirrorState,
    MirrorSymbol,
    SnapshotKind,
    SnapshotRun,
    SnapshotState,
    SnapshotTrigger,
)
from platforms.models import TradePlatform

log = logging.getLogger(__name__)

#: Rows per INSERT … ON CONFLICT statement (Django lowers it further for SQLite's limits).
BATCH = 2000
#: Rows per COPY into the staging table on PostgreSQL.
COPY_BATCH = 20000
#: A claim whose heartbeat is older than this is considered abandoned (worker gone).
LEASE = timedelta(seconds=getattr(settings, "SNAPSHOT_LEASE_SECONDS", 60))
HEARTBEAT_SECONDS = 5.0
#: An incremental run re-reads this many seconds before the last server time reached, so a
#: change made in the same second as the previous run's start is never missed.
SYNC_OVERLAP_SECONDS = 2
#: Logins per ``ReportsRequest`` of a history run.
HISTORY_LOGINS_PER_CALL = 200
#: Upper bound of the one-shot snapshot answers (the spec's maximum).
SNAPSHOT_LIMIT = 1_000_000
MT5_MASK = "*"
MT5_FETCH_THREADS = 8

OPEN_STATES = frozenset({"OpenNormal", "OpenRemand", "OpenRestored"})
PENDING_COMMANDS = frozenset(
    {"BuyLimit", "SellLimit", "BuyStop", "SellStop", "BuyStopLimit", "SellStopLimit"}
)
TERMINAL = (SnapshotState.SUCCEEDED, SnapshotState.SKIPPED)


class RunRefused(Exception):
    """Another run holds the platform."""


# ============================================================================ requesting runs


def active_run(platform: TradePlatform) -> SnapshotRun | None:
    """The run that holds (or is about to hold) ``platform``, if any."""
    return (
        SnapshotRun.objects.filter(
            platform=platform, state__in=[SnapshotState.QUEUED, SnapshotState.RUNNING]
        )
        .order_by("-queued_at")
        .first()
    )


@transaction.atomic
def request_run(
    platform: TradePlatform, kind: str, *, user=None, request=None
) -> tuple[SnapshotRun, bool]:
    """Queue a run of ``kind`` for ``platform`` ("Run now" and schedules).

    Returns ``(run, created)``: while a run of the platform is queued or running, that run
    is returned instead of queueing a second one. A staff request is audited. The task is
    sent when the transaction commits, so the worker always finds the row.
    """
    if kind not in SnapshotKind.values:
        raise ValueError(f"unknown snapshot kind {kind!r}")
    existing = active_run(platform)
    if existing is not None and not _claim_is_stale(platform, existing):
        return existing, False
    staff = user is not None and user.is_authenticated
    run = SnapshotRun.objects.create(
        platform=platform,
        kind=kind,
        trigger=SnapshotTrigger.STAFF if staff else SnapshotTrigger.SCHEDULE,
        requested_by=user if staff else None,
    )
    if staff:
        audit.record(
            request=request,
            action="snapshot.run",
            platform=platform,
            target=f"{platform.name} {kind} snapshot #{run.pk}",
            after={"run": run.pk, "kind": kind},
        )
    transaction.on_commit(lambda: enqueue(run.pk))
    return run, True


def enqueue(run_id: int) -> None:
    from platforms.mirror.tasks import snapshot_platform

    result = snapshot_platform.delay(run_id)
    SnapshotRun.objects.filter(pk=run_id, celery_task_id="").update(celery_task_id=result.id)


def _claim_is_stale(platform: TradePlatform, run: SnapshotRun) -> bool:
    """A queued/running row whose worker is gone (so "Run now" must not return it)."""
    if run.state == SnapshotState.QUEUED:
        return timezone.now() - run.queued_at > timedelta(hours=1)
    state = MirrorState.objects.filter(platform=platform).first()
    if state is None or state.running_id != run.pk:
        return True
    return _holder_gone(state, timezone.now())


# ============================================================================ running


@dataclass
class Counts:
    read: int = 0
    inserted: int = 0
    updated: int = 0
    deleted: int = 0


@dataclass
class Progress:
    """Shared with the heartbeat thread; also published to the cache for the live bar."""

    run_id: int
    phase: str = ""
    done: int = 0
    total: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def set(self, phase: str | None = None, *, done: int | None = None,
            total: int | None = None) -> None:
        with self.lock:
            if phase is not None:
                self.phase = phase
            if done is not None:
                self.done = done
            if total is not None:
                self.total = total
            snapshot = {"phase": self.phase, "done": self.done, "total": self.total}
        cache.set(progress_key(self.run_id), snapshot, 3600)

    def advance(self, n: int) -> None:
        with self.lock:
            self.done += n
        self.set()


def progress_key(run_id: int) -> str:
    return f"snapshot-progress:{run_id}"


def live_progress(run: SnapshotRun) -> dict[str, Any]:
    """Phase/done/total of a running run: the cache is fresher than the row (see Progress)."""
    cached = cache.get(progress_key(run.pk)) if run.state == SnapshotState.RUNNING else None
    if cached:
        return cached
    return {"phase": run.phase, "done": run.progress_done, "total": run.progress_total}


def _owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _holder_gone(state: MirrorState, now: datetime) -> bool:
    if state.heartbeat_at is None or now - state.heartbeat_at > LEASE:
        return True
    host, _, pid = (state.owner or "").rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return True  # the worker that held it died on this host (e.g. SIGKILL)
        except PermissionError:
            return False
    return False


def _claim(run: SnapshotRun) -> None:
    """Take the platform for ``run`` (autocommit, so every other process sees the claim)."""
    MirrorState.objects.get_or_create(platform_id=run.platform_id)
    now = timezone.now()
    free = Q(running__isnull=True) | Q(running=run) | Q(heartbeat_at__lt=now - LEASE)
    taken = MirrorState.objects.filter(Q(platform_id=run.platform_id) & free).update(
        running=run, heartbeat_at=now, owner=_owner()
    )
    if taken:
        return
    state = MirrorState.objects.select_related("running").get(platform_id=run.platform_id)
    holder = state.running
    if holder is not None and _holder_gone(state, now):
        taken = MirrorState.objects.filter(
            platform_id=run.platform_id, running=holder, heartbeat_at=state.heartbeat_at
        ).update(running=run, heartbeat_at=now, owner=_owner())
        if taken:
            _mark_lost(holder)
            return
    raise RunRefused(
        f"run #{holder.pk if holder else '?'} of this platform is in progress"
        f" ({holder.get_kind_display().lower() if holder else 'unknown'})"
    )


def _mark_lost(run: SnapshotRun) -> None:
    SnapshotRun.objects.filter(
        pk=run.pk, state__in=[SnapshotState.QUEUED, SnapshotState.RUNNING]
    ).update(
        state=SnapshotState.FAILED,
        finished_at=timezone.now(),
        error="The worker running this snapshot stopped (no heartbeat); a later run took over.",
    )


def _release(run: SnapshotRun) -> None:
    MirrorState.objects.filter(platform_id=run.platform_id, running=run).update(
        running=None, heartbeat_at=None, owner=""
    )


class _Heartbeat(threading.Thread):
    """Keeps the claim fresh and the run row's progress current, on its own connection.

    On SQLite its UPDATE waits while the run's write transaction holds the database lock;
    the lease is long enough for that, and the cache carries the progress meanwhile.
    """

    def __init__(self, run: SnapshotRun, progress: Progress) -> None:
        super().__init__(name=f"snapshot-heartbeat-{run.pk}", daemon=True)
        self.run_obj = run
        self.progress = progress
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            while not self.stopped.wait(HEARTBEAT_SECONDS):
                with contextlib.suppress(Exception):
                    self.beat()
        finally:
            connection.close()

    def beat(self) -> None:
        now = timezone.now()
        MirrorState.objects.filter(
            platform_id=self.run_obj.platform_id, running=self.run_obj
        ).update(heartbeat_at=now)
        with self.progress.lock:
            phase, done, total = self.progress.phase, self.progress.done, self.progress.total
        SnapshotRun.objects.filter(pk=self.run_obj.pk, state=SnapshotState.RUNNING).update(
            heartbeat_at=now, phase=phase[:64], progress_done=done, progress_total=total
        )

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=HEARTBEAT_SECONDS * 2)


def execute_run(run_id: int, *, task_id: str = "") -> SnapshotRun | None:
    """Run snapshot ``run_id`` to completion (the body of the Celery task).

    Re-running a finished run does nothing; a failed or interrupted one runs again (Celery
    retries and redeliveries). Client errors are recorded on the run and re-raised so the task
    can retry the transient ones.
    """
    close_old_connections()
    run = SnapshotRun.objects.select_related("platform").filter(pk=run_id).first()
    if run is None or run.state in TERMINAL:
        return run
    try:
        _claim(run)
    except RunRefused as exc:
        now = timezone.now()
        SnapshotRun.objects.filter(pk=run.pk).update(
            state=SnapshotState.SKIPPED, error=str(exc), started_at=now, finished_at=now,
            duration=timedelta(0),
        )
        run.refresh_from_db()
        return run
    now = timezone.now()
    run.state = SnapshotState.RUNNING
    run.started_at = run.started_at or now
    run.heartbeat_at = now
    run.stamp = now
    run.attempts += 1
    run.error = ""
    run.activity_id = ""
    run.finished_at = None
    if task_id:
        run.celery_task_id = task_id
    run.save(update_fields=["state", "started_at", "heartbeat_at", "stamp", "attempts", "error",
                            "activity_id", "finished_at", "celery_task_id"])
    progress = Progress(run.pk)
    progress.set("starting", done=0, total=0)
    heartbeat = _Heartbeat(run, progress)
    heartbeat.start()
    counts = Counts()
    try:
        _dispatch(run, progress, counts)
    except BaseException as exc:
        heartbeat.stop()
        _finish_failed(run, exc, counts, progress)
        _release(run)
        raise
    heartbeat.stop()
    _release(run)
    run.refresh_from_db()
    if run.kind != SnapshotKind.INCREMENTAL or counts.inserted + counts.deleted > 10_000:
        refresh_planner_statistics()
    return run


MIRROR_TABLES = ("platforms_mirroraccount", "platforms_mirroropentrade",
                 "platforms_mirrorclosedtrade", "platforms_mirrorgroup", "platforms_mirrorsymbol")


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


def _dispatch(run: SnapshotRun, progress: Progress, counts: Counts) -> None:
    platform = run.platform
    job = _Job(run, platform, client_for(platform), progress, counts)
    if platform.kind == "MT5":
        job.mt5_full()
    elif run.kind == SnapshotKind.HISTORY:
        job.mt4_history()
    elif run.kind == SnapshotKind.INCREMENTAL and job.state.sync_timestamp is not None:
        job.mt4_incremental()
    else:
        job.mt4_full()


def _finish_failed(run: SnapshotRun, exc: BaseException, counts: Counts,
                   progress: Progress) -> None:
    if isinstance(exc, ManagerApiError):
        message = f"{type(exc).__name__}: {exc}"
        activity = exc.activity_id or ""
    else:
        message = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
        activity = ""
    now = timezone.now()
    SnapshotRun.objects.filter(pk=run.pk).update(
        state=SnapshotState.FAILED,
        error=message[:4000],
        activity_id=activity[:64],
        finished_at=now,
        duration=now - (run.started_at or now),
        phase=f"failed while {progress.phase}"[:64],
        progress_done=progress.done,
        progress_total=progress.total,
        rows_read=counts.read,
    )
    log.warning("snapshot run %s of platform %s failed: %s", run.pk, run.platform_id, message)


def _succeed(run: SnapshotRun, counts: Counts, progress: Progress, **fields: Any) -> None:
    """Record success (inside the run's write transaction: data and verdict commit together)."""
    now = timezone.now()
    SnapshotRun.objects.filter(pk=run.pk).update(
        state=SnapshotState.SUCCEEDED,
        finished_at=now,
        duration=now - (run.started_at or now),
        phase="done",
        rows_read=counts.read,
        rows_inserted=counts.inserted,
        rows_updated=counts.updated,
        rows_deleted=counts.deleted,
        progress_done=progress.total,
        progress_total=progress.total,
        **fields,
    )
    progress.set("done", done=progress.total)


# ============================================================================ the job


def server_seconds(value: datetime) -> int:
    """Server time as the sync calls want it: Unix seconds of the server's wall clock."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return calendar.timegm(value.timetuple())


def _dt(value: datetime | None) -> datetime | None:
    """Wire date-times are server-local wall clock; MT4's "unset" is the epoch."""
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    if value.year <= 1970:
        return None
    return value


def _s(value: Any, limit: int) -> str:
    return (value or "")[:limit] if isinstance(value, str) else ("" if value is None else
                                                                  str(value)[:limit])


def _chunks(items: Sequence | Iterable, size: int) -> Iterator[list]:
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


def _update_fields(model: type[Model], *keys: str) -> list[str]:
    skip = {"id", "platform", *keys}
    return [f.name for f in model._meta.concrete_fields if f.name not in skip]


ACCOUNT_FIELDS = _update_fields(MirrorAccount, "login")
ACCOUNT_USER_FIELDS = [
    f for f in ACCOUNT_FIELDS
    if f not in {"equity", "margin", "free_margin", "margin_level", "margin_state",
                 "margin_controlling_type", "margin_updated_at"}
]
MARGIN_FIELDS = ["equity", "margin", "free_margin", "margin_level", "margin_state",
                 "margin_controlling_type", "margin_updated_at"]
OPEN_FIELDS = _update_fields(MirrorOpenTrade, "ticket")
CLOSED_FIELDS = _update_fields(MirrorClosedTrade, "ticket")
GROUP_FIELDS = _update_fields(MirrorGroup, "name")
SYMBOL_FIELDS = _update_fields(MirrorSymbol, "symbol")


class _Job:
    def __init__(self, run, platform, client, progress: Progress, counts: Counts) -> None:
        self.run = run
        self.platform = platform
        self.client = client
        self.progress = progress
        self.counts = counts
        self.stamp = run.stamp
        self.state = MirrorState.objects.get(platform=platform)

    # ------------------------------------------------------------------ writing helpers
    def _lock(self) -> MirrorState:
        """Inside the write transaction: the platform's row lock (see module docstring)."""
        return MirrorState.objects.select_for_update().get(platform=self.platform)

    def _upsert(self, model: type[Model], rows: Iterable[dict[str, Any]], keys: list[str],
                fields: list[str]) -> tuple[int, int | None]:
        """Insert or update ``rows`` (dicts of column values) in batches.

        Returns (rows written, rows inserted — or None where the backend cannot tell cheaply).
        On PostgreSQL the batches go through ``COPY`` into a temporary table and one
        ``INSERT … SELECT … ON CONFLICT DO UPDATE`` each (several times faster than multi-row
        INSERTs, see the benchmark); elsewhere through ``bulk_create(update_conflicts=True)``.
        """
        if connection.vendor == "postgresql":
            return self._upsert_copy(model, rows, keys, fields)
        written = 0
        for chunk in _chunks(rows, BATCH):
            model.objects.bulk_create(
                [model(**row) for row in chunk], batch_size=BATCH, update_conflicts=True,
                unique_fields=keys, update_fields=fields,
            )
            written += len(chunk)
            self.progress.advance(len(chunk))
        return written, None

    def _upsert_copy(self, model: type[Model], rows: Iterable[dict[str, Any]], keys: list[str],
                     fields: list[str]) -> tuple[int, int | None]:
        meta = model._meta
        columns = [f.attname for f in meta.concrete_fields if f.name != "id"]
        defaults = {f.attname: f.get_default() for f in meta.concrete_fields if f.name != "id"}
        table = connection.ops.quote_name(meta.db_table)
        stage = connection.ops.quote_name(f"stage_{meta.db_table}")
        column_list = ", ".join(connection.ops.quote_name(c) for c in columns)
        conflict = ", ".join(connection.ops.quote_name(meta.get_field(k).column) for k in keys)
        assignments = ", ".join(
            f"{connection.ops.quote_name(meta.get_field(f).column)} = "
            f"EXCLUDED.{connection.ops.quote_name(meta.get_field(f).column)}"
            for f in fields
        )
        written = inserted = 0
        with connection.cursor() as cursor:
            raw = cursor.cursor
            # Identifiers come from the model's metadata, never from input.
            create = (f"CREATE TEMPORARY TABLE IF NOT EXISTS {stage} ON COMMIT DROP AS "  # noqa: S608
                      f"SELECT {column_list} FROM {table} WITH NO DATA")
            merge = (
                f"WITH written AS (INSERT INTO {table} ({column_list}) "  # noqa: S608
                f"SELECT {column_list} FROM {stage} ON CONFLICT ({conflict}) "
                f"DO UPDATE SET {assignments} RETURNING (xmax = 0) AS fresh) "
                "SELECT count(*) FILTER (WHERE fresh) FROM written"
            )
            raw.execute(create)
            for chunk in _chunks(rows, COPY_BATCH):
                raw.execute(f"TRUNCATE {stage}")
                with raw.copy(f"COPY {stage} ({column_list}) FROM STDIN") as copy:
                    for row in chunk:
                        copy.write_row([row.get(c, defaults[c]) for c in columns])
                raw.execute(merge)
                inserted += raw.fetchone()[0]
                written += len(chunk)
                self.progress.advance(len(chunk))
        return written, inserted

    def _replace(self, model: type[Model], rows: Iterable[dict[str, Any]], keys: list[str],
                 fields: list[str]) -> None:
        """Upsert every row read, then delete what the server no longer has."""
        scope = model.objects.filter(platform=self.platform)
        before = scope.count()
        read, _ = self._upsert(model, rows, ["platform", *keys], fields)
        deleted, _ = scope.filter(last_seen_at__lt=self.stamp).delete()
        inserted = scope.count() + deleted - before
        self.counts.read += read
        self.counts.inserted += inserted
        self.counts.updated += read - inserted
        self.counts.deleted += deleted

    def _merge(self, model: type[Model], rows: list[dict[str, Any]], keys: list[str],
               fields: list[str]) -> None:
        """Upsert rows, counting inserted vs updated."""
        if not rows:
            return
        key = keys[0]
        present: set | None = None
        if connection.vendor != "postgresql":
            present = set()
            for chunk in _chunks([row[key] for row in rows], 5000):
                present.update(
                    model.objects.filter(platform=self.platform, **{f"{key}__in": chunk})
                    .values_list(key, flat=True)
                )
        written, inserted = self._upsert(model, rows, ["platform", *keys], fields)
        if inserted is None:
            inserted = sum(1 for row in rows if row[key] not in present)
        self.counts.read += written
        self.counts.inserted += inserted
        self.counts.updated += written - inserted

    def _phase(self, phase: str, total: int | None = None) -> None:
        self.progress.set(phase, total=total)

    # ------------------------------------------------------------------ MT4 full
    def mt4_full(self) -> None:
        """Reads and writes interleave inside ONE transaction so that only one big answer is
        held at a time (a fault in any read still rolls everything back)."""
        mt4 = self.client.mt4
        self._phase("reading server time")
        reached = server_seconds(mt4.server_time())
        self._phase("reading groups and symbols")
        groups = list(mt4.iter_groups())
        symbols = mt4.cfg_request_symbol()
        currency = {g.group: g.currency or "" for g in groups}
        group_of: dict[int, str] = {}
        with transaction.atomic():
            self._lock()
            self._phase("reading accounts (sidecar UsersSnapshot)")
            users = _raw_items(self.client, "UsersSnapshot", limit=SNAPSHOT_LIMIT)
            self._phase("reading margins (MarginsGet)")
            margins = {m.login: m for m in mt4.margins_get()}
            self._phase("writing accounts", total=len(groups) + len(symbols) + len(users))
            self._replace(MirrorGroup, (self._mt4_group(g) for g in groups), ["name"],
                          GROUP_FIELDS)
            self._replace(MirrorSymbol, (self._mt4_symbol(s) for s in symbols), ["symbol"],
                          SYMBOL_FIELDS)

            def account_rows(items, margin_of):
                for u in _decoded(items, r.MT4User):
                    group_of[u.login] = u.group or ""
                    yield self._mt4_account(u, margin_of.pop(u.login, None), currency)

            self._replace(MirrorAccount, account_rows(users, margins), ["login"],
                          ACCOUNT_FIELDS)
            del users, margins
            self._phase("reading open trades (sidecar TradesSnapshot)")
            trades = _raw_items(self.client, "TradesSnapshot", limit=SNAPSHOT_LIMIT)
            self._phase("writing open trades", total=self.progress.done + len(trades))
            self._replace(
                MirrorOpenTrade,
                (self._mt4_open(t, group_of) for t in _decoded(trades, r.MT4Trade)
                 if (t.trade_record_state or "OpenNormal") in OPEN_STATES),
                ["ticket"], OPEN_FIELDS,
            )
            del trades
            MirrorState.objects.filter(platform=self.platform).update(
                sync_timestamp=reached, accounts_as_of=self.stamp, trades_as_of=self.stamp,
                last_full_at=self.stamp,
            )
            self.progress.total = self.progress.done
            _succeed(self.run, self.counts, self.progress, server_timestamp_to=reached)

    # ------------------------------------------------------------------ MT4 incremental
    def mt4_incremental(self) -> None:
        mt4 = self.client.mt4
        since = max(0, self.state.sync_timestamp - SYNC_OVERLAP_SECONDS)
        self._phase("reading server time")
        reached = server_seconds(mt4.server_time())
        self._phase("reading changed accounts (UsersSyncStart → sidecar UsersSyncRead)")
        mt4.users_sync_start(since)
        users = mt4.users_sync_read(limit=SNAPSHOT_LIMIT)
        self._phase("reading changed trades (TradesSyncStart → sidecar TradesSyncRead)")
        mt4.trades_sync_start(since)
        trades = mt4.trades_sync_read(limit=SNAPSHOT_LIMIT)
        self._phase("reading margins (MarginsGet)")
        margins = mt4.margins_get()
        currency = dict(
            MirrorGroup.objects.filter(platform=self.platform).values_list("name", "currency")
        )
        margin_of = {m.login: m for m in margins}
        open_trades = [t for t in trades if (t.trade_record_state or "OpenNormal") in OPEN_STATES]
        closed = [t for t in trades if (t.trade_record_state or "OpenNormal") not in OPEN_STATES]
        self._phase("writing", total=len(users) + len(trades) + len(margins))
        with transaction.atomic():
            self._lock()
            self._merge(
                MirrorAccount,
                [self._mt4_account(u, margin_of.get(u.login), currency) for u in users],
                ["login"], ACCOUNT_FIELDS,
            )
            logins = {t.login for t in trades}
            group_of = self._groups_of(logins)
            self._merge(MirrorOpenTrade, [self._mt4_open(t, group_of) for t in open_trades],
                        ["ticket"], OPEN_FIELDS)
            gone = [t.order for t in closed]
            for chunk in _chunks(gone, 5000):
                deleted, _ = MirrorOpenTrade.objects.filter(
                    platform=self.platform, ticket__in=chunk
                ).delete()
                self.counts.deleted += deleted
            self._merge(MirrorClosedTrade, [self._mt4_closed(t, group_of) for t in closed],
                        ["ticket"], CLOSED_FIELDS)
            self._refresh_margins(margins, skip={u.login for u in users})
            MirrorState.objects.filter(platform=self.platform).update(
                sync_timestamp=reached, accounts_as_of=self.stamp, trades_as_of=self.stamp
            )
            _succeed(self.run, self.counts, self.progress, server_timestamp_from=since,
                     server_timestamp_to=reached)

    def _groups_of(self, logins: Iterable[int]) -> dict[int, str]:
        found: dict[int, str] = {}
        for chunk in _chunks(sorted(logins), 5000):
            found.update(
                MirrorAccount.objects.filter(platform=self.platform, login__in=chunk)
                .values_list("login", "group")
            )
        return found

    def _refresh_margins(self, margins: list[r.MT4MarginLevel], skip: set[int]) -> None:
        """Write the margin figures that moved (prices move them without a user change)."""
        wanted = [m for m in margins if m.login not in skip]
        wanted.sort(key=lambda m: m.login)
        for chunk in _chunks(wanted, 5000):
            current = {
                login: (equity, level, state)
                for login, equity, level, state in MirrorAccount.objects.filter(
                    platform=self.platform, login__in=[m.login for m in chunk]
                ).values_list("login", "equity", "margin_level", "margin_state")
            }
            changed = []
            for m in chunk:
                now = current.get(m.login)
                if now is None:
                    continue
                level = m.level if m.margin else None
                if now != (m.equity, level, m.level_type or ""):
                    row = {"platform_id": self.platform.pk, "login": m.login,
                           "last_seen_at": self.stamp}
                    self._apply_margin(row, m)
                    changed.append(MirrorAccount(**row))
            if changed:
                MirrorAccount.objects.bulk_create(
                    changed, batch_size=BATCH, update_conflicts=True,
                    unique_fields=["platform", "login"], update_fields=MARGIN_FIELDS,
                )
                self.counts.updated += len(changed)
            self.progress.advance(len(chunk))

    # ------------------------------------------------------------------ MT4 history
    def mt4_history(self) -> None:
        """Closed trades (incl. balance/credit operations) through ``ReportsRequest``, in
        batches of logins, each committed with its checkpoint (resumable, idempotent)."""
        mt4 = self.client.mt4
        self._phase("reading server time")
        reached = datetime.fromtimestamp(server_seconds(mt4.server_time()), tz=UTC)
        checkpoint = dict(self.run.checkpoint or {})
        if "to" not in checkpoint:
            start = self.state.history_to - timedelta(days=1) if self.state.history_to else None
            checkpoint = {
                "from": (start or datetime(1970, 1, 2, tzinfo=UTC)).isoformat(),
                "to": reached.isoformat(),
                "after_login": 0,
            }
        t_from = datetime.fromisoformat(checkpoint["from"])
        t_to = datetime.fromisoformat(checkpoint["to"])
        logins = list(
            MirrorAccount.objects.filter(platform=self.platform).order_by("login")
            .values_list("login", flat=True)
        )
        done_before = sum(1 for x in logins if x <= checkpoint["after_login"])
        todo = [x for x in logins if x > checkpoint["after_login"]]
        group_of = dict(
            MirrorAccount.objects.filter(platform=self.platform).values_list("login", "group")
        )
        self._phase("reading closed trades (ReportsRequest)", total=len(logins))
        self.progress.set(done=done_before)
        batches = list(_chunks(todo, HISTORY_LOGINS_PER_CALL))
        # The next batch is read while this one is written: the server's time and ours overlap.
        with ThreadPoolExecutor(max_workers=1) as reader:
            ahead = reader.submit(mt4.reports_request, t_from, t_to, batches[0]) if batches \
                else None
            for index, batch in enumerate(batches):
                rows = ahead.result()
                ahead = (reader.submit(mt4.reports_request, t_from, t_to, batches[index + 1])
                         if index + 1 < len(batches) else None)
                self._write_history_batch(rows, batch, group_of, checkpoint)
                # _merge advanced the bar by rows; the bar counts logins here.
                done_before += len(batch)
                self.progress.set(done=done_before)
        with transaction.atomic():
            MirrorState.objects.filter(platform=self.platform).update(
                history_as_of=self.stamp, history_to=t_to
            )
            _succeed(self.run, self.counts, self.progress)

    def _write_history_batch(self, rows, batch, group_of, checkpoint) -> None:
        """One batch of logins' closed trades, committed together with the checkpoint."""
        with transaction.atomic():
            self._lock()
            self._merge(MirrorClosedTrade, [self._mt4_closed(t, group_of) for t in rows],
                        ["ticket"], CLOSED_FIELDS)
            checkpoint["after_login"] = batch[-1]
            SnapshotRun.objects.filter(pk=self.run.pk).update(checkpoint=checkpoint)

    # ------------------------------------------------------------------ MT5
    def mt5_full(self) -> None:
        """MT5 has no snapshot or sync calls: page positions, orders and deals by group mask,
        then read each user, group and symbol they mention. Every kind is a full run."""
        mt5 = self.client.mt5
        self._phase("reading server time")
        reached = server_seconds(mt5.server_time())
        self._phase("reading positions (PositionByGroup)")
        positions = list(mt5.iter_positions(MT5_MASK))
        self._phase("reading orders (OrderByGroup)")
        orders = list(mt5.iter_orders(MT5_MASK))
        self._phase("reading deals (DealByGroup)")
        deals = list(mt5.iter_deals(MT5_MASK))
        logins = {x.login for x in (*positions, *orders, *deals) if x.login}
        logins.update(
            MirrorAccount.objects.filter(platform=self.platform).values_list("login", flat=True)
        )
        self._phase("reading users (UserGet)", total=len(logins))
        users = [u for u in self._fetch_each(mt5.user_get, sorted(logins)) if u is not None]
        group_names = sorted({u.group for u in users if u.group})
        symbol_names = sorted({x.symbol for x in (*positions, *orders, *deals) if x.symbol})
        self._phase("reading groups and symbols (GroupGet, SymbolGet)")
        groups = [g for g in self._fetch_each(mt5.group_get, group_names) if g is not None]
        symbols = [s for s in self._fetch_each(mt5.symbol_get, symbol_names) if s is not None]
        group_of = {u.login: u.group or "" for u in users}
        currency = {g.group: g.currency or "" for g in groups}
        floating: dict[int, float] = {}
        for p in positions:
            floating[p.login] = floating.get(p.login, 0.0) + (p.profit or 0.0) + (p.storage or 0.0)
        total = len(groups) + len(symbols) + len(users) + len(positions) + len(orders) + len(deals)
        self._phase("writing", total=total)
        with transaction.atomic():
            self._lock()
            self._replace(MirrorGroup, (self._mt5_group(g) for g in groups), ["name"],
                          GROUP_FIELDS)
            self._replace(MirrorSymbol, (self._mt5_symbol(s) for s in symbols), ["symbol"],
                          SYMBOL_FIELDS)
            self._replace(
                MirrorAccount, (self._mt5_account(u, currency, floating) for u in users),
                ["login"], ACCOUNT_FIELDS,
            )
            opened = [self._mt5_position(p, group_of) for p in positions]
            opened += [self._mt5_order(o, group_of) for o in orders]
            self._replace(MirrorOpenTrade, opened, ["ticket"], OPEN_FIELDS)
            self._merge(MirrorClosedTrade, [self._mt5_deal(d, group_of) for d in deals],
                        ["ticket"], CLOSED_FIELDS)
            MirrorState.objects.filter(platform=self.platform).update(
                sync_timestamp=reached, accounts_as_of=self.stamp, trades_as_of=self.stamp,
                history_as_of=self.stamp, last_full_at=self.stamp,
            )
            _succeed(self.run, self.counts, self.progress, server_timestamp_to=reached)

    def _fetch_each(self, fetch: Callable[[Any], Any], keys: list) -> list:
        """One read per key, a few in parallel (the client is thread-safe); NotFound → None."""

        def one(key):
            try:
                return fetch(key)
            except NotFound:
                return None

        if not keys:
            return []
        with ThreadPoolExecutor(max_workers=MT5_FETCH_THREADS) as pool:
            return list(pool.map(one, keys))

    # ------------------------------------------------------------------ record → row
    def _apply_margin(self, row: dict[str, Any], m: r.MT4MarginLevel | None) -> None:
        if m is None:
            row.update(equity=None, margin=None, free_margin=None, margin_level=None,
                       margin_state="", margin_controlling_type="", margin_updated_at=None)
            return
        row.update(
            equity=m.equity, margin=m.margin, free_margin=m.free,
            margin_level=m.level if m.margin else None, margin_state=m.level_type or "",
            margin_controlling_type=m.controlling_type or "",
            margin_updated_at=datetime.fromtimestamp(m.updated, tz=UTC) if m.updated > 0
            else None,
        )

    def _mt4_account(self, u: r.MT4User, m: r.MT4MarginLevel | None,
                     currency: dict[str, str]) -> dict[str, Any]:
        row = dict(
            platform_id=self.platform.pk, login=u.login, group=_s(u.group, 64),
            name=_s(u.name, 128),
            email=_s(u.email, 128), phone=_s(u.phone, 64), country=_s(u.country, 64),
            city=_s(u.city, 64), state=_s(u.state, 64), zip_code=_s(u.zip_code, 32),
            address=_s(u.address, 256), external_id=_s(u.external_id, 64),
            status=_s(u.status, 32), lead_source=_s(u.lead_source, 64),
            comment=_s(u.comment, 256), currency=currency.get(u.group or "", ""),
            leverage=u.leverage, agent_account=u.agent_account,
            enabled=bool(u.enable_flags & 0x01), read_only=bool(u.enable_flags & 0x04),
            enable_flags=u.enable_flags, last_ip=_ipv4(u.last_ip),
            registered_at=_dt(u.registration_date), last_access_at=_dt(u.last_date),
            balance=u.balance, credit=u.credit, prev_balance=u.prev_balance,
            prev_month_balance=u.prev_month_balance, prev_equity=u.prev_equity,
            prev_month_equity=u.prev_month_equity, interest_rate=u.interest_rate,
            taxes=u.taxes, last_seen_at=self.stamp,
        )
        self._apply_margin(row, m)
        return row

    def _mt4_trade_fields(self, t: r.MT4Trade, group_of: dict[int, str]) -> dict[str, Any]:
        return {
            "platform_id": self.platform.pk, "ticket": t.order, "login": t.login,
            "group": group_of.get(t.login, ""), "symbol": _s(t.symbol, 32),
            "command": t.trade_command or "Buy", "digits": t.digits, "volume": t.volume,
            "volume_lots": t.volume_lots, "open_price": t.open_price, "sl": t.sl, "tp": t.tp,
            "open_time": _dt(t.open_time), "commission": t.commission,
            "commission_agent": t.commission_agent, "swap": t.storage, "profit": t.profit,
            "taxes": t.taxes, "magic": t.magic, "comment": _s(t.comment, 128),
            "state": t.trade_record_state or "", "reason": t.trade_record_reason or "",
            "activation": t.activation_type or "", "margin_rate": t.margin_rate,
            "modified_at": _dt(t.time_stamp), "last_seen_at": self.stamp,
        }

    def _mt4_open(self, t: r.MT4Trade, group_of: dict[int, str]) -> dict[str, Any]:
        return {
            **self._mt4_trade_fields(t, group_of),
            "is_pending": (t.trade_command or "") in PENDING_COMMANDS,
            "current_price": t.close_price, "expiration": _dt(t.expiration),
        }

    def _mt4_closed(self, t: r.MT4Trade, group_of: dict[int, str]) -> dict[str, Any]:
        fields = self._mt4_trade_fields(t, group_of)
        if t.trade_command in ("Balance", "Credit"):
            # A balance/credit operation's time is its open time on MT4.
            close_time = _dt(t.close_time) or fields["open_time"]
        else:
            close_time = _dt(t.close_time)
        return {**fields, "close_price": t.close_price, "close_time": close_time}

    def _mt4_group(self, g: r.MT4Group) -> dict[str, Any]:
        return dict(
            platform_id=self.platform.pk, name=_s(g.group, 64), company=_s(g.company, 128),
            currency=_s(g.currency, 16), enabled=bool(g.enable),
            default_leverage=g.default_leverage, default_deposit=g.default_deposit,
            margin_call=g.margin_call, stop_out=g.margin_stopout,
            stop_out_mode=g.margin_controlling_type or "", margin_mode=g.margin_mode or "",
            interest_rate=g.interest_rate, credit=g.credit, max_positions=g.max_positions,
            hedge_prohibited=bool(g.hedge_prohibited), last_seen_at=self.stamp,
        )

    def _mt4_symbol(self, s: r.MT4SymbolConfig) -> dict[str, Any]:
        return dict(
            platform_id=self.platform.pk, symbol=_s(s.symbol, 32),
            description=_s(s.description, 128),
            currency_profit=_s(s.currency, 16), currency_margin=_s(s.margin_currency, 16),
            digits=s.digits, point=s.point, contract_size=s.contract_size,
            tick_value=s.tick_value, tick_size=s.tick_size, spread=s.spread,
            stops_level=s.stops_level, freeze_level=s.freeze_level,
            trade_mode=s.trade_mode or "", execution_mode=s.symbol_exec_mode or "",
            profit_mode=s.profit_calculation_mode or "",
            margin_mode=s.margin_calculation_mode or "", margin_initial=s.margin_initial,
            margin_maintenance=s.margin_maintenance, margin_hedged=s.margin_hedged,
            margin_divider=s.margin_divider, percentage=s.percentage,
            swap_type=s.swap_type or "", swap_long=s.swap_long, swap_short=s.swap_short,
            last_seen_at=self.stamp,
        )

    def _mt5_account(self, u: r.MT5User, currency: dict[str, str],
                     floating: dict[int, float]) -> dict[str, Any]:
        rights = split_flags(u.rights)
        return dict(
            platform_id=self.platform.pk, login=u.login, group=_s(u.group, 64),
            name=_s(u.name, 128),
            first_name=_s(u.first_name, 64), last_name=_s(u.last_name, 64),
            email=_s(u.e_mail, 128), phone=_s(u.phone, 64), country=_s(u.country, 64),
            city=_s(u.city, 64), state=_s(u.state, 64), zip_code=_s(u.zip_code, 32),
            address=_s(u.address, 256), company=_s(u.company, 128), external_id=_s(u.id, 64),
            status=_s(u.status, 32), lead_source=_s(u.lead_source, 64),
            comment=_s(u.comment, 256), currency=currency.get(u.group or "", ""),
            leverage=u.leverage, agent_account=u.agent, enabled="Enabled" in rights,
            read_only="TradeDisabled" in rights, rights=_s(u.rights, 256),
            last_ip=_s(u.last_ip, 45), registered_at=_dt(u.registration),
            last_access_at=_dt(u.last_access), balance=u.balance, credit=u.credit,
            prev_balance=u.balance_prev_day, prev_month_balance=u.balance_prev_month,
            prev_equity=u.equity_prev_day, prev_month_equity=u.equity_prev_month,
            interest_rate=u.interest_rate,
            equity=round(u.balance + u.credit + floating.get(u.login, 0.0), 2),
            last_seen_at=self.stamp,
        )

    def _mt5_position(self, p: r.MT5Position, group_of: dict[int, str]) -> dict[str, Any]:
        return dict(
            platform_id=self.platform.pk, ticket=p.position or 0, login=p.login or 0,
            group=group_of.get(p.login or 0, ""), symbol=_s(p.symbol, 32),
            command=p.action or "Buy", digits=p.digits or 0, volume=p.volume or 0,
            volume_lots=(p.volume or 0) / 10000.0, open_price=p.price_open or 0.0,
            sl=p.price_sl or 0.0, tp=p.price_tp or 0.0, open_time=_dt(p.time_create),
            swap=p.storage or 0.0, profit=p.profit or 0.0, magic=p.expert_id or 0,
            comment=_s(p.comment, 128), state="Open", reason=p.reason or "",
            activation=p.activation_mode or "", margin_rate=p.rate_margin or 0.0,
            position_id=p.position or 0, modified_at=_dt(p.time_update),
            is_pending=False, current_price=p.price_current or 0.0, last_seen_at=self.stamp,
        )

    def _mt5_order(self, o: r.MT5Order, group_of: dict[int, str]) -> dict[str, Any]:
        return dict(
            platform_id=self.platform.pk, ticket=o.order or 0, login=o.login or 0,
            group=group_of.get(o.login or 0, ""), symbol=_s(o.symbol, 32),
            command=o.type or "BuyLimit", digits=o.digits or 0,
            volume=o.volume_current or 0, volume_lots=(o.volume_current or 0) / 10000.0,
            open_price=o.price_order or 0.0, sl=o.price_sl or 0.0, tp=o.price_tp or 0.0,
            open_time=_dt(o.time_setup), magic=o.expert_id or 0, comment=_s(o.comment, 128),
            state=o.state or "", reason=o.reason or "", margin_rate=o.rate_margin or 0.0,
            position_id=o.position_id or 0, is_pending=True,
            current_price=o.price_current or 0.0, expiration=_dt(o.time_expiration),
            last_seen_at=self.stamp,
        )

    def _mt5_deal(self, d: r.MT5Deal, group_of: dict[int, str]) -> dict[str, Any]:
        return dict(
            platform_id=self.platform.pk, ticket=d.deal, login=d.login or 0,
            group=group_of.get(d.login or 0, ""), symbol=_s(d.symbol, 32),
            command=d.action or "", digits=d.digits or 0, volume=d.volume or 0,
            volume_lots=(d.volume or 0) / 10000.0, open_price=d.price_position or 0.0,
            sl=d.price_sl or 0.0, tp=d.price_tp or 0.0, commission=d.commission or 0.0,
            swap=d.storage or 0.0, profit=d.profit or 0.0, magic=d.expert_id or 0,
            comment=_s(d.comment, 128), reason=d.reason or "",
            margin_rate=d.rate_margin or 0.0, position_id=d.position_id or 0,
            close_price=d.price or 0.0, close_time=_dt(d.time), entry=_s(d.entry, 8),
            order=d.order or 0, last_seen_at=self.stamp,
        )

    def _mt5_group(self, g: r.MT5ConGroup) -> dict[str, Any]:
        return dict(
            platform_id=self.platform.pk, name=_s(g.group, 64), company=_s(g.company, 128),
            currency=_s(g.currency, 16), currency_digits=g.currency_digits or 2,
            default_leverage=g.demo_leverage or 0, default_deposit=g.demo_deposit or 0.0,
            margin_call=g.margin_call or 0.0, stop_out=g.margin_stop_out or 0.0,
            stop_out_mode=g.margin_so_mode or "", margin_mode=g.margin_mode or "",
            interest_rate=g.trade_interest_rate or 0.0,
            credit=g.trade_virtual_credit or 0.0, max_positions=g.limit_positions or 0,
            last_seen_at=self.stamp,
        )

    def _mt5_symbol(self, s: r.MT5Symbol) -> dict[str, Any]:
        return dict(
            platform_id=self.platform.pk, symbol=_s(s.symbol, 32),
            description=_s(s.description, 128),
            currency_base=_s(s.currency_base, 16), currency_profit=_s(s.currency_profit, 16),
            currency_margin=_s(s.currency_margin, 16), digits=s.digits or 0,
            point=s.point or 0.0, contract_size=s.contract_size or 0.0,
            tick_value=s.tick_value or 0.0, tick_size=s.tick_size or 0.0,
            spread=s.spread or 0, stops_level=s.stops_level or 0,
            freeze_level=s.freeze_level or 0, trade_mode=s.trade_mode or "",
            execution_mode=s.exec_mode or "", profit_mode=s.calc_mode or "",
            margin_mode=s.calc_mode or "", margin_initial=s.margin_initial or 0.0,
            margin_maintenance=s.margin_maintenance or 0.0,
            margin_hedged=s.margin_hedged or 0.0, swap_type=s.swap_mode or "",
            swap_long=s.swap_long or 0.0, swap_short=s.swap_short or 0.0,
            volume_min=(s.volume_min or 0) / 10000.0, volume_max=(s.volume_max or 0) / 10000.0,
            volume_step=(s.volume_step or 0) / 10000.0, last_seen_at=self.stamp,
        )


def _raw_items(client, operation: str, **query: Any) -> list[msgspec.Raw]:
    """A one-shot list answer as raw JSON slices of the one response body.

    The items are decoded batch by batch later (:func:`_decoded`), so the body is held once
    and never next to 100,000s of decoded records. Same send path as every typed call: retry
    policy, circuit breaker (the sidecar's own for x86 operations) and error mapping.
    """
    op = dataclasses.replace(MT4[operation], response=list[msgspec.Raw])
    return client._call(op, query=query)


def _decoded(items: list[msgspec.Raw], record: type) -> Iterator[Any]:
    decoder = _item_decoder(record)
    for item in items:
        yield decoder.decode(item)


@functools.cache
def _item_decoder(record: type) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(record)


def _ipv4(value: int) -> str:
    """MT4's ``lastIP`` is the raw in_addr integer (network byte order read little-endian)."""
    if not value:
        return ""
    value &= 0xFFFFFFFF
    return ".".join(str((value >> shift) & 0xFF) for shift in (0, 8, 16, 24))
