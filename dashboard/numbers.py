"""How every number on a page reads: one set of rules for tables, templates, exports and the
live cells ``static/dashboard/live.js`` rewrites (its ``formatNumber`` applies the same rules,
and ``tests/dashboard/test_numbers_browser.py`` holds the two to identical strings).

A dealer must never read two figures of one kind two ways, so a kind fixes the decimals and
the grouping:

============  ==========================================  ===========================
kind          decimals                                    example
============  ==========================================  ===========================
``money``     the account currency's (JPY 0, most 2)      ``-23,026.61``, ``1,250``
``lots``      2                                           ``1,000.50``
``percent``   2, followed by `` %``                       ``123.40 %``
``price``     the symbol's ``digits``, never grouped      ``1.23800``, ``6025.0``
``stop``      a price, but ``0`` (no S/L or T/P) is "—"   ``—``
============  ==========================================  ===========================

No value (``None``, ``""``, NaN, infinity) reads "—". Rounding is half away from zero on the
number as it is written (its shortest decimal form, ``1.005`` rounds to ``1.01``), which is
what ``Intl.NumberFormat`` does in the browser; a value that rounds to zero never shows a
minus sign. A negative figure is marked with the CSS class ``neg`` wherever it is shown.
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Context, Decimal, InvalidOperation, localcontext

from django.utils.html import escape

NUMBER_KINDS = ("money", "lots", "percent", "price", "stop")
NO_VALUE = "—"

#: ISO 4217 currencies without minor units: their amounts are whole numbers.
ZERO_DECIMAL_CURRENCIES = frozenset({
    "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND",
    "VUV", "XAF", "XOF", "XPF",
})
#: ISO 4217 currencies with three decimals.
THREE_DECIMAL_CURRENCIES = frozenset({"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
#: A price whose symbol's digits are unknown: up to this many decimals, trailing zeros cut.
UNKNOWN_DIGITS_MAX = 8
_CONTEXT = Context(prec=120)


def currency_decimals(currency: str | None) -> int:
    """Decimals of an amount in ``currency`` (2 when unknown or blank)."""
    code = (currency or "").strip().upper()
    if code in ZERO_DECIMAL_CURRENCIES:
        return 0
    if code in THREE_DECIMAL_CURRENCIES:
        return 3
    return 2


def decimals_for(kind: str, digits: int | None = None, currency: str | None = None) -> int | None:
    """The fixed decimals of ``kind`` (``None``: a price of unknown digits, see above)."""
    given = digits if isinstance(digits, int) and 0 <= digits <= 20 else None
    if kind == "money":
        return given if given is not None else currency_decimals(currency)
    if kind in ("lots", "percent"):
        return 2
    if kind in ("price", "stop"):
        return given
    raise ValueError(f"unknown number kind {kind!r}")


def _decimal(value) -> Decimal | None:
    """``value`` as the decimal it is written as (a float's shortest form), or None."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return Decimal(repr(value))
    try:
        number = Decimal(value) if isinstance(value, int | Decimal) else Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def rounded(value, kind: str, digits: int | None = None,
            currency: str | None = None) -> Decimal | None:
    """``value`` rounded as ``kind`` shows it (no negative zero); None when there is none."""
    number = _decimal(value)
    if number is None or (kind == "stop" and number == 0):
        return None
    places = decimals_for(kind, digits, currency)
    with localcontext(_CONTEXT):
        if places is None:
            number = number.quantize(Decimal(1).scaleb(-UNKNOWN_DIGITS_MAX), ROUND_HALF_UP)
            number = number.normalize() if number else Decimal(0)
            if number.adjusted() >= len(number.as_tuple().digits):  # normalize(): 6000 → 6E+3
                number = number.quantize(Decimal(1))
        else:
            number = number.quantize(Decimal(1).scaleb(-places), ROUND_HALF_UP)
    return number.copy_abs() if number == 0 else number


def format_number(value, kind: str, digits: int | None = None,
                  currency: str | None = None) -> str:
    """The text a page shows for ``value`` of ``kind`` (see the module's table)."""
    number = rounded(value, kind, digits, currency)
    if number is None:
        return NO_VALUE
    if kind in ("price", "stop"):
        return f"{number:f}"
    text = f"{number:,f}"
    return f"{text} %" if kind == "percent" else text


def is_negative(value, kind: str, digits: int | None = None, currency: str | None = None) -> bool:
    """Whether the figure shows as negative (a value that rounds to zero does not)."""
    number = rounded(value, kind, digits, currency)
    return number is not None and number < 0


def cell_attrs(kind: str, value=None, digits: int | None = None,
               currency: str | None = None) -> str:
    """The attributes of a number's cell: ``class="num[ neg]"`` and the ``data-kind`` /
    ``data-digits`` that ``live.js`` formats a later value with (``data-digits`` carries the
    decimals the server chose, so the currency table lives here only)."""
    css = "num neg" if is_negative(value, kind, digits, currency) else "num"
    places = decimals_for(kind, digits, currency)
    attrs = f' class="{css}" data-kind="{escape(kind)}"'
    if places is not None:
        attrs += f' data-digits="{places}"'
    if kind == "money" and currency:
        attrs += f' data-currency="{escape(currency)}"'
    return attrs
