"""Placeholders in staff-typed mail: ``{name}``, ``{login}``, ``{balance}``, and nothing else.

These are NOT Django or Jinja templates: :func:`render_template` substitutes a fixed whitelist
and :func:`check_template` rejects anything else that looks like template syntax, so text
typed by staff can never execute or read attributes.
"""

from __future__ import annotations

import re
from typing import Any

#: Largest mail or news body accepted (UTF-8 bytes).
MAX_BODY_BYTES = 64 * 1024
PLACEHOLDERS = ("name", "login", "balance")

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")


class TemplateError(ValueError):
    """The text has template syntax other than the whitelisted placeholders."""


def check_template(text: str) -> None:
    """Raise :class:`TemplateError` unless every brace belongs to a known placeholder."""
    for opener in ("{{", "{%", "{#"):
        if opener in text:
            raise TemplateError(
                f"{opener!r}: template code is not allowed; use only "
                + ", ".join("{" + p + "}" for p in PLACEHOLDERS) + "."
            )
    for match in _PLACEHOLDER.finditer(text):
        if match.group(1) not in PLACEHOLDERS:
            shown = match.group(0)[:40]
            raise TemplateError(
                f"Unknown placeholder {shown}; use only "
                + ", ".join("{" + p + "}" for p in PLACEHOLDERS) + "."
            )
    if "{" in _PLACEHOLDER.sub("", text) or "}" in _PLACEHOLDER.sub("", text):
        raise TemplateError("Unbalanced brace: braces may only surround a placeholder.")


def uses_placeholders(text: str) -> bool:
    return bool(_PLACEHOLDER.search(text))


def render_template(text: str, values: dict[str, Any]) -> str:
    """Plain whitelist substitution (after :func:`check_template` accepted ``text``)."""
    check_template(text)
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), "")), text)


def recipient_values(account) -> dict[str, str]:
    """Placeholder values for one mirrored account."""
    return {"name": account.name or "", "login": str(account.login),
            "balance": f"{account.balance:,.2f} {account.currency}".strip()}
