"""Platform health over time: connection samples, breaker transitions, queue depths.

Samples come from :func:`platforms.connections.check_connection` (every ``/healthz`` poll, every
health page view and the ``sample_health`` beat task record one). Breaker transitions are
written by a listener that :func:`watch_breaker` attaches to a platform's circuit breaker;
breakers live per process, so each process records the transitions it saw.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from dataclasses import dataclass
from datetime import timedelta

import redis
from django.conf import settings
from django.utils import timezone

from platforms.connections import ConnectionCheck, check_connection
from platforms.live import store
from platforms.mirror.models import MirrorState
from platforms.models import TradePlatform
from platforms.server.models import BreakerTransition, HealthSample
from platforms.transport import breaker_for
from platforms.transport.interactive import concurrently

log = logging.getLogger(__name__)

HISTORY = timedelta(hours=24)
#: Queues whose depth the health page and ``/healthz`` report.
WATCHED_QUEUES = ("trading", "reporting")


# --------------------------------------------------------------------------- breaker transitions


def _store_transition(platform_key: str, old: str, new: str) -> None:
    # Recording is best effort: a database hiccup must never disturb the breaker itself.
    try:
        BreakerTransition.objects.create(
            platform_key=platform_key, at=timezone.now(), old_state=old, new_state=new
        )
    except Exception:
        log.warning("could not record breaker transition %s -> %s for %s", old, new,
                       platform_key, exc_info=True)


def record_transition(platform_key: str, old: str, new: str) -> None:
    """Breaker listener: store the transition (in a thread when called from an event loop,
    where the ORM may not run)."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        _store_transition(platform_key, old, new)
        return
    threading.Thread(
        target=_store_transition, args=(platform_key, old, new), daemon=True
    ).start()


def watch_breaker(platform: TradePlatform) -> None:
    """Attach :func:`record_transition` to the platform's breaker (idempotent)."""
    breaker = breaker_for(str(platform.platform_id))
    if record_transition not in breaker.listeners:
        breaker.add_listener(record_transition)


# --------------------------------------------------------------------------- samples


def record_sample(check: ConnectionCheck) -> HealthSample:
    return HealthSample.objects.create(
        platform=check.platform,
        taken_at=timezone.now(),
        ok=check.ok,
        rtt_ms=check.rtt_ms,
        error=check.error[:500],
        breaker_state=check.breaker_state,
    )


def checked(platform: TradePlatform) -> ConnectionCheck:
    """Run the connection check, recording the sample and watching the breaker."""
    watch_breaker(platform)
    check = check_connection(platform)
    record_sample(check)
    return check


def prune_samples(older_than: timedelta = timedelta(days=7)) -> int:
    cutoff = timezone.now() - older_than
    deleted, _ = HealthSample.objects.filter(taken_at__lt=cutoff).delete()
    BreakerTransition.objects.filter(at__lt=cutoff).delete()
    return deleted


# --------------------------------------------------------------------------- queues, mirror


def queue_depths() -> dict[str, int | None]:
    """Messages waiting per watched queue (``None`` when the broker cannot say cheaply)."""
    url = settings.CELERY_BROKER_URL
    depths: dict[str, int | None] = dict.fromkeys(WATCHED_QUEUES)
    try:
        if url.startswith("filesystem"):
            options = getattr(settings, "CELERY_BROKER_TRANSPORT_OPTIONS", {})
            folder = options.get("data_folder_in")
            if folder and os.path.isdir(folder):
                names = os.listdir(folder)
                for queue in WATCHED_QUEUES:
                    suffix = f"{queue}.msg"
                    depths[queue] = sum(1 for n in names if n.partition(".")[2] == suffix)
        elif url.startswith(("redis://", "rediss://")):
            connection = redis.Redis.from_url(url, socket_timeout=2)
            for queue in WATCHED_QUEUES:
                depths[queue] = int(connection.llen(queue))
    except Exception:  # a health probe must answer even when the broker does not
        log.warning("queue depth unavailable", exc_info=True)
    return depths


def mirror_age_seconds(platform: TradePlatform) -> float | None:
    state = MirrorState.objects.filter(platform=platform).first()
    stamps = [s for s in (state.accounts_as_of, state.last_full_at) if s] if state else []
    if not stamps:
        return None
    return round((timezone.now() - max(stamps)).total_seconds(), 1)


def realtime_status(platform: TradePlatform) -> dict | None:
    """``{"up": bool, "age_seconds": float}`` from the realtime bridge, if one published."""
    try:
        snapshot = store.latest(platform.pk)
    except Exception:
        return None
    if not snapshot:
        return None
    ts = snapshot.get("ts")
    age = round(timezone.now().timestamp() - ts, 1) if ts else None
    return {"up": bool(snapshot.get("up")), "age_seconds": age}


# --------------------------------------------------------------------------- views' reads


@dataclass(frozen=True)
class HealthHistory:
    samples: list[HealthSample]
    transitions: list[BreakerTransition]
    ok_count: int
    error_count: int
    rtt_avg_ms: float | None
    rtt_max_ms: float | None


def history(platform: TradePlatform, window: timedelta = HISTORY) -> HealthHistory:
    since = timezone.now() - window
    samples = list(HealthSample.objects.filter(platform=platform, taken_at__gte=since)[:2000])
    transitions = list(
        BreakerTransition.objects.filter(
            platform_key=str(platform.platform_id), at__gte=since
        )[:200]
    )
    rtts = [s.rtt_ms for s in samples if s.rtt_ms is not None]
    return HealthHistory(
        samples=samples,
        transitions=transitions,
        ok_count=sum(1 for s in samples if s.ok),
        error_count=sum(1 for s in samples if not s.ok),
        rtt_avg_ms=round(sum(rtts) / len(rtts), 1) if rtts else None,
        rtt_max_ms=round(max(rtts), 1) if rtts else None,
    )


def rtt_chart(samples: list[HealthSample]) -> dict:
    ordered = list(reversed(samples))
    ok = [s for s in ordered if s.ok]
    failed = [s for s in ordered if not s.ok]
    return {
        "data": [
            {"type": "scatter", "mode": "lines+markers", "name": "Round trip (ms)",
             "x": [s.taken_at.isoformat() for s in ok], "y": [s.rtt_ms for s in ok]},
            {"type": "scatter", "mode": "markers", "name": "Error",
             "x": [s.taken_at.isoformat() for s in failed], "y": [0 for _ in failed],
             "marker": {"color": "#c0392b", "symbol": "x", "size": 10}},
        ],
        "layout": {"height": 300, "margin": {"l": 50, "r": 10, "t": 10, "b": 40},
                   "yaxis": {"title": "ms", "rangemode": "tozero"}},
    }


def healthz_report() -> tuple[bool, dict]:
    """Overall status for monitoring: nothing secret (no names, URLs, ids or error text)."""
    platforms = list(TradePlatform.objects.filter(enabled=True).order_by("pk"))
    for platform in platforms:
        watch_breaker(platform)
    # Side by side, so one slow platform does not spend the others' deadline; the samples
    # are written here, in the request's thread (the pool threads do no ORM).
    checks = concurrently(*(lambda p=p: check_connection(p) for p in platforms))
    entries = []
    for platform, check in zip(platforms, checks, strict=True):
        if isinstance(check, Exception):
            raise check
        record_sample(check)
        entries.append({
            "pk": platform.pk,
            "kind": platform.kind,
            "status": "ok" if check.ok else "slow" if check.slow else "degraded",
            "breaker": check.breaker_state,
            "rtt_ms": round(check.rtt_ms, 1) if check.rtt_ms is not None else None,
            "mirror_age_seconds": mirror_age_seconds(platform),
        })
    healthy = all(e["status"] == "ok" for e in entries)
    return healthy, {
        "status": "ok" if healthy else "degraded",
        "time": timezone.now().isoformat(),
        "platforms": entries,
        "queues": queue_depths(),
    }
