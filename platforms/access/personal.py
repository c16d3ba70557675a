"""Personal data inside what pages show verbatim: task payloads, audit before/after values,
free-text details, mail jobs and server journal lines.

The rule is :data:`~platforms.access.scope.PERSONAL_FIELDS`, the same one tables, exports and
the socket apply, carried into nested values: without ``view_personal_data`` a personal key's
value reads :data:`HIDDEN` (it does not vanish: a reader of an audit row must still see that
the email changed), and e-mail and IP addresses inside free text read :data:`HIDDEN` too (a
journal line names the IP a client logged in from). Pages ask through the domain selectors,
never in templates.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

from platforms.access.scope import PERSONAL_FIELDS

HIDDEN = "hidden"

#: personal keys however a payload spells them (``eMail``, ``e_mail``, ``LastIP``)
_PERSONAL_KEYS = frozenset(name.lower().replace("_", "") for name in PERSONAL_FIELDS)
_EMAIL = re.compile(r"[\w.%+-]{1,64}@[\w-]{1,63}(?:\.[\w-]{1,63})+")  # bounded, as _IPV6
#: candidates only, bounded (no backtracking storm on long text); :mod:`ipaddress` decides,
#: so a time such as 12:30:45 or a hex word stays as it is
_IPV4 = re.compile(r"(?<![\d.])\d{1,3}(?:\.\d{1,3}){3}(?!\d)")
_IPV6 = re.compile(r"(?<![\w:])[0-9A-Fa-f:]{2,39}(?![\w:])")
#: the accounts list's search term inside a query string (a mail job's audience): for those
#: allowed it matches e-mail and IP, so the term typed may be part of one
_SEARCH_TERM = re.compile(r"(?<=[?&]q=)[^&\s]+")


def is_personal_key(key: Any) -> bool:
    return isinstance(key, str) and key.lower().replace("_", "") in _PERSONAL_KEYS


def _ip_or_text(match: re.Match[str]) -> str:
    try:
        ipaddress.ip_address(match.group())
    except ValueError:
        return match.group()
    return HIDDEN


def visible_text(personal: bool, text: str) -> str:
    """``text`` with e-mail addresses, IP addresses and account-search terms hidden unless
    ``personal``."""
    if personal or not text:
        return text
    if "@" in text:
        text = _EMAIL.sub(HIDDEN, text)
    text = _IPV4.sub(_ip_or_text, text)
    if ":" in text:
        text = _IPV6.sub(_ip_or_text, text)
    return _SEARCH_TERM.sub(HIDDEN, text)


def visible_value(personal: bool, value: Any) -> Any:
    """``value`` (a payload: dicts and lists nested at any depth) as a user may read it: each
    personal key's non-empty value reads :data:`HIDDEN`, and text elsewhere goes through
    :func:`visible_text`. The value itself is never changed."""
    if personal:
        return value
    if isinstance(value, Mapping):
        return {key: (HIDDEN if is_personal_key(key) and item not in (None, "")
                      else visible_value(False, item))
                for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [visible_value(False, item) for item in value]
    if isinstance(value, str):
        return visible_text(False, value)
    return value


class _Shown:
    """A read-only stand-in for an object: the named attributes as :func:`visible_value`
    shows them, every other attribute the object's own (templates read it unchanged, and the
    model instance itself is never altered, so it cannot be saved masked)."""

    __slots__ = ("_original", "_shown")

    def __init__(self, original: Any, shown: dict[str, Any]) -> None:
        self._original = original
        self._shown = shown

    def __getattr__(self, name: str) -> Any:
        shown = object.__getattribute__(self, "_shown")
        if name in shown:
            return shown[name]
        return getattr(object.__getattribute__(self, "_original"), name)

    def __str__(self) -> str:
        return str(self._original)


def visible_fields(personal: bool, original: Any, fields: Iterable[str]) -> Any:
    """``original`` itself when ``personal``; otherwise a stand-in whose ``fields`` read as
    :func:`visible_value` shows them."""
    if personal:
        return original
    return _Shown(original, {name: visible_value(False, getattr(original, name))
                             for name in fields})
