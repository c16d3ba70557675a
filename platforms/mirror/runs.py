"""Snapshot runs: their lifecycle from "Run now" (or a schedule) to a verdict on the row.

The one service behind the ``snapshot_*`` Celery tasks, the "Run now" buttons and the
schedules. What a run reads is :mod:`platforms.mirror.sources`, how it writes is
:mod:`platforms.mirror.writers`; this module makes a run:

* **Exclusive per platform.** :func:`_claim` takes the platform's :class:`MirrorState` row
  with a conditional UPDATE (free, or ours, or its holder is gone: heartbeat older than
  :data:`LEASE`, or a dead pid on this host). A heartbeat thread with its own database
  connection keeps the claim fresh. The writes additionally run under a lock on that row
  (:meth:`MirrorWriter.lock`), so even a wrongly taken-over claim cannot interleave two runs'
  writes.
* **Atomic.** A full or incremental run writes everything, and its "succeeded" verdict, in
  ONE transaction: a fault anywhere leaves the previous mirror intact. History runs commit
  per batch of logins together with a checkpoint and resume after the last committed batch.
* **Idempotent.** Every write is an upsert keyed by ``(platform, login|ticket)``; a
  redelivered task re-runs the same :class:`SnapshotRun`, a finished one is never repeated.
* **Observable.** :class:`Progress` is published to the cache (live even while the run's
  transaction is open) and copied to the row by the heartbeat.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import socket
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone

from platforms import audit
from platforms.client import ManagerApiError
from platforms.connections import client_for
from platforms.mirror import dispatch
from platforms.mirror.models import (
    MirrorState,
    SnapshotKind,
    SnapshotRun,
    SnapshotState,
    SnapshotTrigger,
)
from platforms.mirror.sources import PlatformReader, return_freed_memory
from platforms.mirror.totals import refresh_totals
from platforms.mirror.writers import Counts, MirrorWriter, refresh_planner_statistics
from platforms.mirror.zones import align_server_zone
from platforms.models import TradePlatform

log = logging.getLogger(__name__)

#: A claim whose heartbeat is older than this is considered abandoned (worker gone).
LEASE = timedelta(seconds=getattr(settings, "SNAPSHOT_LEASE_SECONDS", 60))
HEARTBEAT_SECONDS = 5.0
TERMINAL = (SnapshotState.SUCCEEDED, SnapshotState.SKIPPED)
#: An incremental run that inserted or deleted more rows than this refreshes the planner's
#: statistics like a full run does.
ANALYZE_AFTER_ROWS = 10_000


class RunRefused(Exception):
    """Another run holds the platform."""


class RunDeferred(Exception):
    """Every slot for long runs is taken: the run stays queued and is sent again later, so
    the worker is free for another platform's incremental (:func:`long_run_slot_free`)."""


#: Full and history runs read a whole platform (minutes at a million accounts); incremental
#: runs take seconds and are what keeps every mirror fresh.
LONG_KINDS = (SnapshotKind.FULL, SnapshotKind.HISTORY)


def long_run_slot_free(run: SnapshotRun) -> bool:
    """May ``run`` start now? Incrementals always may. A full or history run may while fewer
    than ``SNAPSHOT_MAX_LONG_RUNS`` others are running (0: no limit): with N reporting workers
    and the limit at N - 1, one worker is always left for the incrementals, so no platform's
    full load starves another's minute-by-minute refresh. Runs whose heartbeat is older than
    :data:`LEASE` (a dead worker) do not count. Two workers deciding at the same instant can
    both start: the rule bounds long runs, it is not a lock (the claim per platform is)."""
    limit = getattr(settings, "SNAPSHOT_MAX_LONG_RUNS", 0)
    if not limit or run.kind not in LONG_KINDS:
        return True
    running = SnapshotRun.objects.filter(
        state=SnapshotState.RUNNING, kind__in=LONG_KINDS,
        heartbeat_at__gte=timezone.now() - LEASE,
    ).exclude(pk=run.pk).exclude(platform_id=run.platform_id)
    return running.count() < limit


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
    platform: TradePlatform, kind: str, *, actor: audit.Actor | None = None
) -> tuple[SnapshotRun, bool]:
    """Queue a run of ``kind`` for ``platform`` ("Run now" and schedules).

    Returns ``(run, created)``: while a run of the platform is queued or running, that run
    is returned instead of queueing a second one. A signed-in ``actor``'s request is audited
    (none: a schedule's). The task is sent when the transaction commits, so the worker always
    finds the row.
    """
    if kind not in SnapshotKind.values:
        raise ValueError(f"unknown snapshot kind {kind!r}")
    existing = active_run(platform)
    if existing is not None and not _claim_is_stale(platform, existing):
        return existing, False
    user = actor.signed_in_user if actor is not None else None
    run = SnapshotRun.objects.create(
        platform=platform,
        kind=kind,
        trigger=SnapshotTrigger.SCHEDULE if user is None else SnapshotTrigger.STAFF,
        requested_by=user,
    )
    if user is not None:
        audit.record(
            actor=actor,
            action="snapshot.run",
            platform=platform,
            target=f"{platform.name} {kind} snapshot #{run.pk}",
            after={"run": run.pk, "kind": kind},
        )
    transaction.on_commit(lambda: enqueue(run.pk))
    return run, True


def enqueue(run_id: int) -> None:
    """Send the task of ``run_id`` and remember its id on the row."""
    task_id = dispatch.snapshot_platform(run_id)
    SnapshotRun.objects.filter(pk=run_id, celery_task_id="").update(celery_task_id=task_id)


def _claim_is_stale(platform: TradePlatform, run: SnapshotRun) -> bool:
    """A queued/running row whose worker is gone (so "Run now" must not return it)."""
    if run.state == SnapshotState.QUEUED:
        return timezone.now() - run.queued_at > timedelta(hours=1)
    state = MirrorState.objects.filter(platform=platform).first()
    if state is None or state.running_id != run.pk:
        return True
    return _holder_gone(state, timezone.now())


# ============================================================================ progress


@dataclass
class Progress:
    """Shared with the heartbeat thread; also published to the cache for the live bar."""

    key: str
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
        cache.set(self.key, snapshot, 3600)

    def advance(self, n: int) -> None:
        with self.lock:
            self.done += n
        self.set()


def progress_key(run: SnapshotRun) -> str:
    """The run's cache key: its id and when it was queued (ids start over in a new database
    while a shared cache may still hold an old run's progress)."""
    return f"snapshot-progress:{run.pk}:{run.queued_at.timestamp():.6f}"


def live_progress(run: SnapshotRun) -> dict[str, Any]:
    """Phase/done/total of a running run: the cache is fresher than the row (see Progress)."""
    cached = cache.get(progress_key(run)) if run.state == SnapshotState.RUNNING else None
    if cached:
        return cached
    return {"phase": run.phase, "done": run.progress_done, "total": run.progress_total}


# ============================================================================ the claim


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


# ============================================================================ running


def execute_run(run_id: int, *, task_id: str = "") -> SnapshotRun | None:
    """Run snapshot ``run_id`` to completion (the body of the Celery task).

    Re-running a finished run does nothing; a failed or interrupted one runs again (Celery
    retries and redeliveries). A long run with no free slot raises :class:`RunDeferred`
    before touching anything (the task sends itself again later). Client errors are recorded
    on the run and re-raised so the task can retry the transient ones.
    """
    close_old_connections()
    run = SnapshotRun.objects.select_related("platform").filter(pk=run_id).first()
    if run is None or run.state in TERMINAL:
        return run
    if not long_run_slot_free(run):
        raise RunDeferred(f"{run.get_kind_display()} run #{run.pk} waits for a free long-run "
                          "slot (SNAPSHOT_MAX_LONG_RUNS)")
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
    progress = Progress(progress_key(run))
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
    finally:
        return_freed_memory()
    heartbeat.stop()
    _release(run)
    run.refresh_from_db()
    if run.kind != SnapshotKind.INCREMENTAL or counts.inserted + counts.deleted > \
            ANALYZE_AFTER_ROWS:
        refresh_planner_statistics()
    return run


def _dispatch(run: SnapshotRun, progress: Progress, counts: Counts) -> None:
    """Read the platform the way its kind and the run's kind ask, writing as it goes."""
    platform = run.platform
    assert run.stamp is not None  # set by execute_run before the dispatch
    client = client_for(platform)
    progress.set("reading the server's time zone")
    align_server_zone(platform, client)
    reader = PlatformReader(
        run, client, progress,
        MirrorWriter(platform, run.stamp, progress, counts),
        finish=functools.partial(_succeed, run, counts, progress),
    )
    if platform.kind == "MT5":
        reader.mt5_full()
    elif run.kind == SnapshotKind.HISTORY:
        reader.mt4_history()
    elif run.kind == SnapshotKind.INCREMENTAL and reader.state.sync_timestamp is not None:
        reader.mt4_incremental()
    else:
        reader.mt4_full()


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
    """Record success and release the claim inside the run's write transaction: data, verdict
    and release commit together, so nobody sees a finished run still holding the platform."""
    _release(run)
    if run.stamp is not None and MirrorState.objects.filter(
            platform_id=run.platform_id, trades_as_of=run.stamp).exists():
        progress.set("adding up totals")
        refresh_totals(run.platform, run.stamp)
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
