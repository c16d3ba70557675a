"""What the benchmarks share: a scratch PostgreSQL database, percentiles, peak memory."""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent


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


def _migrations_key() -> str:
    """What a migrated schema depends on: our migration files and the versions of the packages
    whose migrations run too."""
    from importlib import metadata

    digest = hashlib.sha256()
    for path in sorted(ROOT.glob("*/migrations/*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    for dist in ("django", "django-celery-beat", "django-axes", "django-otp"):
        digest.update(f"{dist}={metadata.version(dist)}".encode())
    return digest.hexdigest()[:12]


def _migrated_template(dsn: str) -> str:
    """The name of a database migrated to today's schema, made once (by ``manage.py migrate`` in
    a child) and then copied by every bench: migrating from scratch cost each bench ~15 s."""
    import psycopg

    name = f"bench_template_{_migrations_key()}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        found = conn.execute("SELECT datname FROM pg_database WHERE datname LIKE 'bench_template_%'"
                             ).fetchall()
        if (name,) in found:
            return name
        for (stale,) in found:
            conn.execute(f'DROP DATABASE IF EXISTS "{stale}" WITH (FORCE)')
        building = f"{name}_building"
        conn.execute(f'DROP DATABASE IF EXISTS "{building}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{building}"')
        url = urlunsplit(urlsplit(dsn)._replace(path=f"/{building}"))
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--verbosity", "0"],
                       env={**env, "DATABASE_URL": url}, check=True, cwd=ROOT)
        conn.execute(f'ALTER DATABASE "{building}" RENAME TO "{name}"')
    return name


def migrated_sqlite(path: Path) -> None:
    """A SQLite file at ``path`` holding today's schema, copied from one migrated once per
    schema (in the temp folder) rather than migrated again by every bench."""
    template = Path(tempfile.gettempdir()) / f"bench-template-{_migrations_key()}.sqlite3"
    if not template.exists():
        building = template.with_suffix(f".{os.getpid()}.part")
        env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
        subprocess.run([sys.executable, str(ROOT / "manage.py"), "migrate", "--verbosity", "0"],
                       env={**env, "DATABASE_URL": f"sqlite:///{building}",
                            "DASHBOARD_VAR_DIR": tempfile.mkdtemp(prefix="bench-template-")},
                       check=True, cwd=ROOT)
        os.replace(building, template)
    shutil.copyfile(template, path)


def recreate_database(url: str) -> None:
    """A fresh database at ``url`` holding today's schema (its ``migrate`` finds nothing to do)."""
    import psycopg

    dsn, name = admin_dsn(url)
    template = _migrated_template(dsn)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def drop_database(url: str) -> None:
    import psycopg

    dsn, name = admin_dsn(url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def child_django(db: str, prefix: str, pg_url: str) -> Path:
    """Set up Django in a bench's child process on a fresh, migrated database of ``db``
    ("sqlite" in a temp folder, else ``pg_url``) with no Redis; returns its work folder."""
    workdir = Path(tempfile.mkdtemp(prefix=f"{prefix}-{db}-"))
    os.environ["DASHBOARD_VAR_DIR"] = str(workdir)
    os.environ.pop("REDIS_URL", None)
    if db == "sqlite":
        migrated_sqlite(workdir / "bench.sqlite3")
        os.environ["DATABASE_URL"] = f"sqlite:///{workdir / 'bench.sqlite3'}"
    else:
        recreate_database(pg_url)
        os.environ["DATABASE_URL"] = pg_url
    os.environ["DJANGO_SETTINGS_MODULE"] = "dashboard.settings"
    import django

    django.setup()
    from django.core.management import call_command
    from django.test.utils import setup_test_environment

    setup_test_environment()
    call_command("migrate", verbosity=0)
    return workdir


def sandbox_from_ready_file(path: str):
    """The sandbox a bench's parent started, as its ready file describes it."""
    import json

    from platforms.sandbox.process import SandboxInfo

    info = json.loads(Path(path).read_text())
    return SandboxInfo(info["base_url"], info["sidecar_url"], info["authority"],
                       info["client_id"], info["client_secret"], info["platforms"]["MT4"],
                       info["platforms"]["MT5"], info["control_url"], process=None)


def child_finished(db: str, pg_url: str) -> None:
    """A bench child's last step: its PostgreSQL database dropped (kept with BENCH_KEEP_DB)."""
    if db == "postgres" and not os.environ.get("BENCH_KEEP_DB"):
        from django.db import connections

        connections.close_all()
        drop_database(pg_url)
