"""Defence in depth: scrub anything that looks like a credential from every log record."""

from __future__ import annotations

import logging
import re

_PATTERNS = [
    (re.compile(r"(client_secret=)[^&\s]+", re.I), r"\1***"),
    (re.compile(r"(Bearer\s+)[A-Za-z0-9._~+/=-]+", re.I), r"\1***"),
    (re.compile(r"(\"?(?:client_secret|access_token|password)\"?\s*[:=]\s*\"?)[^\"&\s,}]+", re.I),
     r"\1***"),
]


def redact(text: str) -> str:
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactSecretsFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
