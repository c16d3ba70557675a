"""Optional error reports to Sentry (``SENTRY_DSN``): Django and Celery errors, no personal
data, and the same secret redaction as the logs applied to what is sent."""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.integrations.celery import CeleryIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.types import Event, Hint

from platforms.redaction import redact


def scrub(event: Event, hint: Hint) -> Event:
    """``before_send``: the message, log entry and exception values through ``redact``."""
    if isinstance(event.get("message"), str):
        event["message"] = redact(event["message"])
    logentry: Any = event.get("logentry")
    if isinstance(logentry, dict):
        for key in ("message", "formatted"):
            if isinstance(logentry.get(key), str):
                logentry[key] = redact(logentry[key])
        if logentry.get("params"):
            logentry["params"] = [redact(str(p)) for p in logentry["params"]]
    exceptions: Any = event.get("exception") or {}
    for exception in exceptions.get("values") or []:
        if isinstance(exception.get("value"), str):
            exception["value"] = redact(exception["value"])
    return event


def init_sentry(dsn: str, *, environment: str, traces_sample_rate: float) -> None:
    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        send_default_pii=False,  # no user names, addresses, cookies or bodies leave us
        traces_sample_rate=traces_sample_rate,
        before_send=scrub,
    )
