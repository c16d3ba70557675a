"""What the benchmarks share: a scratch PostgreSQL database, percentiles, peak memory."""

from __future__ import annotations

import os
import resource
from urllib.parse import urlsplit, urlunsplit


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def cpu_seconds(pid: int | None = None) -> float:
    """User + system CPU of a process so far (this one by default): which side of a pipeline
    the time goes to, where wall-clock figures only say that it went."""
    if pid is None:
        times = os.times()
        return times.user + times.system
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def admin_dsn(url: str) -> tuple[str, str]:
    """(a DSN to the ``postgres`` maintenance database, the database name in ``url``)."""
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    return urlunsplit(parts._replace(scheme="postgresql", path="/postgres")), name


def recreate_database(url: str) -> None:
    import psycopg

    dsn, name = admin_dsn(url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def drop_database(url: str) -> None:
    import psycopg

    dsn, name = admin_dsn(url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
