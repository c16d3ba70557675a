"""Real Celery workers for the tests: child processes on the TEST database and an isolated broker.

A worker is another process: it only sees committed rows, so tests that use one need
``@pytest.mark.django_db(transaction=True)``. It gets this process's secrets so that it can
decrypt the platforms' client secrets.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from django.conf import settings
from django.db import connection

from platforms.sandbox.process import ROOT

READY_TIMEOUT = 60


def test_database_url() -> str:
    """``DATABASE_URL`` of the database the tests run on (pytest-django's, not the app's)."""
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{Path(db['NAME']).resolve()}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


def worker_env(broker_env: dict[str, str], **extra: str) -> dict[str, str]:
    # the worker shares this process's cache, as a deployment's processes share theirs: the
    # "a drain is pending" mark set by a submit here must be the one the worker's drain clears
    cache = settings.CACHES["default"]
    shared_cache = ({"DASHBOARD_CACHE_DIR": cache["LOCATION"]}
                    if cache["BACKEND"].endswith("FileBasedCache") else {})
    return {
        **os.environ,
        **broker_env,
        **shared_cache,
        "DATABASE_URL": test_database_url(),
        "DJANGO_SECRET_KEY": settings.SECRET_KEY,
        "FIELD_ENCRYPTION_KEYS": ",".join(settings.FIELD_ENCRYPTION_KEYS),
        "DJANGO_SETTINGS_MODULE": "dashboard.settings",
        **extra,
    }


class CeleryWorker:
    """One ``celery worker`` child process, started and waited for until it says "ready."."""

    def __init__(self, env: dict[str, str], log_path: Path, name: str, queues: str,
                 pool_args: tuple[str, ...] = ("-P", "solo", "-c", "1")) -> None:
        self.log_path = log_path
        self.log = open(log_path, "w")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "dashboard", "worker", "-Q", queues,
             *pool_args, "-n", f"{name}@%h", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "--loglevel", "INFO"],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + READY_TIMEOUT
        while "ready." not in log_path.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"celery worker did not start:\n{log_path.read_text()}")
            time.sleep(0.1)

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no clean-up, no acknowledgement, exactly like an OOM kill."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        self.log.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        if not self.log.closed:
            self.log.close()

    def output(self) -> str:
        return self.log_path.read_text()
