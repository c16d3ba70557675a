"""Logs as JSON lines (``DJANGO_LOG_FORMAT=json``) and error reports to Sentry (``SENTRY_DSN``),
both with secrets redacted, in a real ``manage.py`` process."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _shell(code: str, tmp_path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("DJANGO_", "SENTRY_"))}
    return subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT,
                          env={**clean, "DASHBOARD_VAR_DIR": str(tmp_path), **env},
                          capture_output=True, text=True, timeout=120)


def test_a_json_log_line_parses_and_has_its_secrets_redacted(tmp_path):
    result = _shell(
        "import logging; logging.getLogger('platforms.client').warning("
        "'token refused: client_secret=%s Authorization: Bearer %s', 's3cr3t-value', "
        "'eyJhbGciOi.payload.sig')", tmp_path, DJANGO_LOG_FORMAT="json")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if "platforms.client" in line]
    assert len(lines) == 1, result.stderr
    record = json.loads(lines[0])
    assert record["level"] == "WARNING" and record["logger"] == "platforms.client"
    assert record["time"] and record["process"] > 0
    assert record["message"] == "token refused: client_secret=*** Authorization: Bearer ***"
    assert "s3cr3t-value" not in result.stderr and "eyJhbGciOi" not in result.stderr


def test_plain_logs_stay_the_default_and_a_bad_format_is_refused(tmp_path):
    result = _shell("import logging; logging.getLogger('x').warning('hello')", tmp_path)
    assert result.returncode == 0 and " WARNING x hello" in result.stderr, result.stderr
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DJANGO_")}
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=ROOT,
                            env={**clean, "DJANGO_SETTINGS_MODULE": "dashboard.settings",
                                 "DASHBOARD_VAR_DIR": str(tmp_path), "DJANGO_LOG_FORMAT": "xml"},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "DJANGO_LOG_FORMAT must be 'plain' or 'json'" in result.stderr


class _Collector(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        self.received.append(body)
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


def test_sentry_receives_an_error_without_personal_data_or_secrets(tmp_path):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Collector)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _Collector.received = []
    try:
        dsn = f"http://publickey@127.0.0.1:{server.server_port}/42"
        result = _shell(
            "import sentry_sdk\n"
            "options = sentry_sdk.get_client().options\n"
            "print('pii', options['send_default_pii'])\n"
            "print('integrations', sorted(sentry_sdk.get_client().integrations))\n"
            "password = 'hun' + 'ter2'\n"  # a secret in a local variable too
            "try:\n"
            "    raise RuntimeError(f'refused: password={password}')\n"
            "except RuntimeError:\n"
            "    sentry_sdk.capture_exception()\n"
            "sentry_sdk.flush(timeout=10)\n", tmp_path, SENTRY_DSN=dsn)
    finally:
        server.shutdown()
    assert result.returncode == 0, result.stderr
    assert "pii False" in result.stdout
    assert "'celery'" in result.stdout and "'django'" in result.stdout, result.stdout
    envelopes = b"".join(_Collector.received).decode()
    assert "RuntimeError" in envelopes, envelopes[:2000]
    assert "refused: password=***" in envelopes and "hunter2" not in envelopes
