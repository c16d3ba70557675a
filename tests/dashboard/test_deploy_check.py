"""Production settings pass Django's deployment check; HSTS and the redirect can be switched off."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[2]


def _production_env(tmp_path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "FIELD_"))}
    env.update(
        DJANGO_ENV="production",
        DJANGO_SECRET_KEY="x" * 20 + "-not-a-real-key-but-long-and-random-enough-0123456789",
        FIELD_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DASHBOARD_VAR_DIR=str(tmp_path),
        **extra,
    )
    return env


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_production_settings_pass_the_deployment_check_with_no_warning(tmp_path):
    result = _manage(_production_env(tmp_path), "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_hsts_and_redirect_can_be_switched_off_for_a_tls_terminating_proxy(tmp_path):
    env = _production_env(tmp_path, DJANGO_SSL_REDIRECT="false", DJANGO_HSTS_SECONDS="0")
    result = _manage(env, "shell", "-c",
                     "from django.conf import settings as s;"
                     "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS)")
    assert result.stdout.split()[-2:] == ["False", "0"], result.stdout + result.stderr
    result = _manage(env, "check", "--deploy", "--fail-level", "WARNING")
    assert "W004" in result.stdout + result.stderr and "W008" in result.stdout + result.stderr


def test_production_asks_for_2fa_and_the_demo_does_not_unless_told(tmp_path):
    show = ("from django.conf import settings as s;"
            "print(s.DASHBOARD_REQUIRE_2FA, s.DASHBOARD_ADMIN_REQUIRE_2FA)")
    result = _manage(_production_env(tmp_path), "shell", "-c", show)
    assert result.stdout.split()[-2:] == ["True", "True"], result.stdout + result.stderr
    demo = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "DASHBOARD_"))}
    demo["DASHBOARD_VAR_DIR"] = str(tmp_path / "demo")
    result = _manage(demo, "shell", "-c", show)
    assert result.stdout.split()[-2:] == ["False", "False"], result.stdout + result.stderr
    result = _manage({**demo, "DASHBOARD_ADMIN_REQUIRE_2FA": "true"}, "shell", "-c", show)
    assert result.stdout.split()[-2:] == ["False", "True"], result.stdout + result.stderr
