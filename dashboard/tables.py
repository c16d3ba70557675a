"""List definitions: columns, formats, sortable fields, and the rows of one page.

Hand-rolled rather than django-tables2: measured on a 50-row, 18-column page of the accounts
list, django-tables2's per-cell rendering took ~35 ms (signature inspection and attribute
resolution for every cell), several times the cost of the database query. Here every cell is
formatted once in Python and the template only loops, which keeps a page in a few milliseconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from html import escape

from django.core.paginator import Page, Paginator
from django.http import QueryDict
from django.urls import reverse
from django.utils.safestring import SafeString, mark_safe

from dashboard.exports import NumberField
from dashboard.numbers import NUMBER_KINDS, cell_attrs, format_number
from dashboard.timezones import UTC_ZONE, DisplayZone
from platforms.access.scope import PERSONAL_FIELDS

PAGE_SIZES = (25, 50, 100, 250, 500)
TIME_KINDS = ("date", "datetime")


@dataclass(frozen=True)
class Column:
    name: str
    label: str
    #: text, int, bool, date, datetime, link, or a number kind of ``dashboard.numbers``
    #: (money, lots, percent, price, stop)
    kind: str = "text"

    @property
    def personal(self) -> bool:
        """Shown only with ``view_personal_data`` (the gate's list of personal fields)."""
        return self.name in PERSONAL_FIELDS

    @property
    def numeric(self) -> bool:
        return self.kind in NUMBER_KINDS or self.kind == "int"

    @property
    def is_time(self) -> bool:
        """Written on the reader's clock, the header naming the zone (dashboard/timezones)."""
        return self.kind in TIME_KINDS


def _format(kind: str, value, digits: int | None = None, currency: str | None = None) -> str:
    if kind in NUMBER_KINDS:
        return format_number(value, kind, digits, currency)
    if value is None or value == "":
        return "—"
    if kind == "bool":
        return "✔" if value else "✘"
    if kind == "date":
        return value.strftime("%Y-%m-%d") if isinstance(value, datetime) else str(value)
    if kind == "datetime":
        return value.strftime("%Y-%m-%d %H:%M:%S") if isinstance(value, datetime) else str(value)
    return str(value)


@dataclass
class Cell:
    column: Column
    text: str
    href: str = ""
    #: a number's ``class="num[ neg]"`` and ``data-kind``/``data-digits`` (for ``live.js``)
    attrs: str = ""


@dataclass
class Row:
    key: object
    css: str
    cells: list[Cell]
    watch: str  # "<platform pk>:<login>": the live feed sends this account's events
    html: SafeString  # the row's <td> cells, escaped, built once


@dataclass
class HeaderCell:
    column: Column
    href: str
    order: str  # "", "asc", "desc"
    label: str = ""  # the column's title; a time column's names its zone


@dataclass
class ListSpec:
    """One list: its columns, default sort and how a row is keyed for live updates."""

    name: str
    columns: tuple[Column, ...]
    default_sort: str
    row_key: str
    live_attr: str  # e.g. "data-live-account"
    empty_text: str
    #: the live key of a row (``live.js`` keys accounts as "<platform pk>:<login>")
    live_key: str = "row"  # "row" = the row key, "account" = "<platform pk>:<login>"
    #: the row attribute holding its prices' digits and its money's currency ("": unknown)
    digits_attr: str = ""
    currency_attr: str = ""

    @property
    def labels(self) -> dict[str, str]:
        """Field name → the header people read (column chooser, CSV and XLSX headers)."""
        return {c.name: c.label for c in self.columns}

    @property
    def export_numbers(self) -> dict[str, NumberField]:
        """How an export rounds each number column, as the page does."""
        return {c.name: NumberField(c.kind,
                                    self.digits_attr if c.kind in ("price", "stop") else "",
                                    self.currency_attr if c.kind == "money" else "")
                for c in self.columns if c.kind in NUMBER_KINDS}

    def column_names(self, personal: bool) -> list[str]:
        return [c.name for c in self.columns if personal or not c.personal]

    def sort(self, raw: str | None, allowed: Sequence[str]) -> str:
        """The requested sort if it names a shown column (``name`` or ``-name``), else the
        default (never an error)."""
        raw = (raw or "").strip()
        return raw if raw.removeprefix("-") in allowed else self.default_sort

    def sort_notice(self, raw: str | None, allowed: Sequence[str]) -> str:
        """What the page says when it could not sort as asked."""
        raw = (raw or "").strip()
        if not raw or self.sort(raw, allowed) == raw:
            return ""
        shown = raw if len(raw) <= 40 else raw[:40] + "…"
        return f"Cannot sort by “{shown}”: sorted by {self.default_sort.removeprefix('-')} instead."

    def ordered(self, queryset, raw_sort: str | None, shown: Sequence[str]):
        """``queryset`` in the requested (validated) order, ties broken by the row key."""
        return queryset.order_by(*self.order_by(self.sort(raw_sort, shown)))

    def order_by(self, sort: str) -> list[str]:
        key = sort.lstrip("-")
        tie = self.row_key
        direction = "-" if sort.startswith("-") else ""
        return [sort] if key == tie else [sort, f"{direction}{tie}"]


@dataclass
class Listing:
    spec: ListSpec
    page: Page
    header: list[HeaderCell]
    rows: list[Row]
    per_page: int
    sort: str

    nav: list[tuple[str, str, str]]  # (label, href, rel) for first/prev/next/last
    notice: str = ""  # why the list is not as asked (unknown sort key…)
    #: the count is a lower bound: more rows match than were counted (``LIST_COUNT_BOUND``)
    more: bool = False

    @property
    def count(self) -> int:
        return self.page.paginator.count

    @property
    def count_text(self) -> str:
        """"1234" or "more than 10000" (a bounded count, see ``bounded_count``)."""
        return f"more than {self.count}" if self.more else str(self.count)


def _int(value, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def build_listing(spec: ListSpec, queryset, query: QueryDict, shown: list[str],
                  link=None, css=None, count: int | tuple[int, bool] | None = None,
                  zone: DisplayZone = UTC_ZONE) -> Listing:
    """Sort, paginate and format one page of ``queryset`` for the columns ``shown``.

    ``count``, when the caller knows it (cached), spares the ``COUNT(*)`` of every request;
    ``(count, more)`` is a bounded count: the pages then reach as far as ``count`` rows, the
    "Last" link is left out, and the page says "more than ``count``" (narrow the filter or
    reverse the sort to reach the rest). Times are written in ``zone`` (the reader's,
    :func:`dashboard.timezones.display_zone`).
    """
    more = False
    if isinstance(count, tuple):
        count, more = count
    sort = spec.sort(query.get("sort"), shown)
    per_page = min(max(_int(query.get("per_page"), 50), 10), PAGE_SIZES[-1])
    paginator = Paginator(spec.ordered(queryset, sort, shown), per_page)
    if count is not None:
        paginator.count = count  # Paginator.count is a cached_property
    page = paginator.get_page(max(_int(query.get("page"), 1), 1))
    columns = [c for c in spec.columns if c.name in shown]
    base = query.copy()
    base.pop("page", None)
    header = []
    for column in columns:
        order = "asc" if sort == column.name else "desc" if sort == f"-{column.name}" else ""
        toggled = f"-{column.name}" if order == "asc" else column.name
        changed = base.copy()
        changed["sort"] = toggled
        label = zone.header(column.label) if column.is_time else column.label
        header.append(HeaderCell(column, "?" + changed.urlencode(), order, label))
    rows = []
    for obj in page.object_list:
        cells = []
        digits = getattr(obj, spec.digits_attr, None) if spec.digits_attr else None
        currency = getattr(obj, spec.currency_attr, None) if spec.currency_attr else None
        for column in columns:
            value = getattr(obj, column.name)
            href = link(obj) if link and column.kind == "link" else ""
            attrs = ""
            # a price has its symbol's digits; money the decimals of the account's currency
            places = digits if column.kind in ("price", "stop") else None
            if column.kind in NUMBER_KINDS:
                attrs = cell_attrs(column.kind, value, places, currency)
            text = (zone.text(value, column.kind) if column.is_time
                    else _format(column.kind, value, places, currency))
            cells.append(Cell(column, text, href, attrs))
        watch = f"{obj.platform_id}:{obj.login}"
        key = watch if spec.live_key == "account" else getattr(obj, spec.row_key)
        rows.append(Row(key, css(obj) if css else "", cells, watch,
                        _cells_html(cells, watch if spec.live_key != "account" else "")))
    return Listing(spec, page, header, rows, per_page, sort, _page_links(page, base, more),
                   spec.sort_notice(query.get("sort"), shown), more)


def _cells_html(cells: list[Cell], watch: str) -> SafeString:
    """The row's cells as HTML, built in Python: a 50 x 18 page is ~7,000 template nodes or
    ~4,500 ``format_html`` calls, most of the request's time. Every value that is not a fixed
    column name from this module goes through ``html.escape`` before the row is marked safe."""
    parts = []
    for c in cells:
        attrs = c.attrs or (' class="num"' if c.column.numeric else "")
        if c.column.numeric:
            attrs += f' data-field="{c.column.name}"'
        text = escape(c.text)
        if c.href:
            if watch:  # trade rows watch their account, so its trade events reach the profit
                attrs += f' data-live-account="{escape(watch)}"'
            text = f'<a href="{escape(c.href)}" hx-boost="false">{text}</a>'
        parts.append(f"<td{attrs}>{text}</td>")
    return mark_safe("".join(parts))  # noqa: S308 - every interpolated value is escaped above


def _page_links(page: Page, base: QueryDict, more: bool = False) -> list[tuple[str, str, str]]:
    def href(number: int) -> str:
        query = base.copy()
        query["page"] = str(number)
        return "?" + query.urlencode()

    links = []
    if page.has_previous():
        links += [("First", href(1), "first"),
                  ("Prev", href(page.previous_page_number()), "prev")]
    if page.has_next():
        links.append(("Next", href(page.next_page_number()), "next"))
        if not more:  # a bounded count has no last page to link to
            links.append(("Last", href(page.paginator.num_pages), "last"))
    return links


def account_link(obj) -> str:
    return reverse("dashboard:account", args=[obj.platform_id, obj.login])


def margin_css(obj) -> str:
    return {"MarginCall": "row-call", "StopOut": "row-stopout"}.get(obj.margin_state, "")


ACCOUNTS = ListSpec(
    name="accounts",
    columns=(
        Column("login", "Login", "link"), Column("name", "Name"), Column("group", "Group"),
        Column("country", "Country"), Column("leverage", "Leverage", "int"),
        Column("balance", "Balance", "money"), Column("credit", "Credit", "money"),
        Column("equity", "Equity", "money"), Column("margin", "Margin", "money"),
        Column("free_margin", "Free margin", "money"),
        Column("margin_level", "Margin level", "percent"), Column("enabled", "Enabled", "bool"),
        Column("read_only", "Read-only", "bool"),
        Column("registered_at", "Registered", "date"),
        Column("last_access_at", "Last access", "datetime"),
        Column("email", "Email"), Column("phone", "Phone"), Column("last_ip", "Last IP"),
    ),
    default_sort="login", row_key="login", live_attr="data-live-account",
    empty_text="No account matches these filters.", live_key="account",
    currency_attr="currency",
)

_TRADE_COLUMNS = (
    Column("ticket", "Ticket", "int"), Column("login", "Login", "link"), Column("group", "Group"),
    Column("symbol", "Symbol"), Column("command", "Type"), Column("volume_lots", "Lots", "lots"),
    Column("open_time", "Open time", "datetime"), Column("open_price", "Open", "price"),
)

OPEN_TRADES = ListSpec(
    name="open-trades",
    columns=(*_TRADE_COLUMNS, Column("sl", "S/L", "stop"), Column("tp", "T/P", "stop"),
             Column("current_price", "Price", "price"), Column("swap", "Swap", "money"),
             Column("profit", "Profit", "money"), Column("comment", "Comment")),
    default_sort="ticket", row_key="ticket", live_attr="data-live-trade",
    empty_text="No open trade matches these filters.",
    digits_attr="digits", currency_attr="currency",
)

CLOSED_TRADES = ListSpec(
    name="closed-trades",
    columns=(*_TRADE_COLUMNS, Column("close_time", "Close time", "datetime"),
             Column("close_price", "Close", "price"), Column("commission", "Commission", "money"),
             Column("swap", "Swap", "money"), Column("profit", "Profit", "money"),
             Column("comment", "Comment")),
    default_sort="-close_time", row_key="ticket", live_attr="data-closed-trade",
    empty_text="No closed trade matches these filters.",
    digits_attr="digits", currency_attr="currency",
)


def export_fields(spec: ListSpec, shown: Iterable[str]) -> list[str]:
    return [c.name for c in spec.columns if c.name in set(shown)]
