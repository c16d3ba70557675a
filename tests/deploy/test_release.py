"""``manage.py release`` fails loudly and early, and ``DJANGO_TLS=off`` is the one documented way
to run production settings over plain HTTP (docs/deploy.md)."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

from cryptography.fernet import Fernet

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]


def _production_env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "FIELD_", "DASHBOARD_"))}
    env.update(DJANGO_ENV="production", DJANGO_SECRET_KEY=secrets.token_urlsafe(50),
               FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
               DASHBOARD_VAR_DIR=str(tmp_path), **extra)
    return env


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=180)


def test_release_stops_at_the_deploy_check_before_touching_the_database(tmp_path):
    env = _production_env(tmp_path, DJANGO_HSTS_SECONDS="0")
    env.pop("DATABASE_URL", None)  # SQLite under tmp_path: its file shows whether it migrated
    result = _manage(env, "release")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "release stopped at check --deploy" in result.stderr
    assert "security.W004" in result.stderr + result.stdout
    assert "release: migrate" not in result.stdout
    assert not (tmp_path / "db.sqlite3").exists() or (tmp_path / "db.sqlite3").stat().st_size == 0


def test_tls_off_serves_plain_http_and_passes_the_deploy_check(tmp_path):
    env = _production_env(tmp_path, DJANGO_TLS="off")
    show = ("from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, "
            "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS)")
    result = _manage(env, "shell", "-c", show)
    assert result.stdout.split()[-4:] == ["False", "False", "False", "0"], result.stderr
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0 and "no issues" in result.stdout, result.stderr
    # on by default: everything secure, and the static files hashed and compressed
    show = ("from django.conf import settings as s; print(s.SECURE_SSL_REDIRECT, "
            "s.SESSION_COOKIE_SECURE, s.STORAGES['staticfiles']['BACKEND'], "
            "s.WHITENOISE_USE_FINDERS)")
    result = _manage(_production_env(tmp_path), "shell", "-c", show)
    assert result.stdout.split()[-4:] == [
        "True", "True", "whitenoise.storage.CompressedManifestStaticFilesStorage", "False"]
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT,
                            env={**_production_env(tmp_path, DJANGO_TLS="no"),
                                 "DJANGO_SETTINGS_MODULE": "dashboard.settings"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "DJANGO_TLS must be 'on' or 'off'" in result.stderr


def test_a_redis_that_evicts_keys_fails_the_deploy_check(tmp_path):
    """A Redis of its own (changing the shared one's policy would disturb every other test)."""
    server = shutil.which("redis-server")
    assert server, "redis-server is missing (the suite needs Redis's server installed)"
    port = free_port()
    redis = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--maxmemory-policy", "allkeys-lru"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        env = _production_env(tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0")
        result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
        assert result.returncode != 0
        assert "dashboard.E001" in result.stderr and "allkeys-lru" in result.stderr
    finally:
        redis.terminate()
        redis.wait(timeout=10)
