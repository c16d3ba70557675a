"""Downloads: streamed CSV (rows go out as the database yields them, never all in memory) and
XLSX workbooks.

Under ASGI (uvicorn in the demo and in production) Django must fully consume a synchronous
iterator before it can send it, which would hold a 100,000-row export in memory; there the
rows are handed over as an async iterator that pulls blocks from the same database cursor,
always on the same thread (``thread_sensitive``), so the server-side cursor stays valid.

Downloads are for people first: headers are the pages' labels ("Free margin", "S/L"), numbers
are rounded as the pages round them (``dashboard.numbers``, without grouping so a spreadsheet
still reads them as numbers; an empty S/L is an empty cell), and a CSV starts with a UTF-8 BOM
so Excel reads Cyrillic or Greek names. ``?raw=1`` gives machines the field names and the
stored values instead.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils import timezone

from dashboard.numbers import rounded
from dashboard.timezones import UTC_ZONE, DisplayZone, display_zone

BLOCK_LINES = 500
#: Excel takes a CSV without it for the machine's legacy code page and garbles non-Latin text.
BOM = "\ufeff"

#: Header labels of fields no page column names (a page's own labels are passed in).
FIELD_LABELS = {
    "sl": "S/L", "tp": "T/P", "volume_lots": "Lots", "is_pending": "Pending",
    "ip_address": "IP address", "last_ip": "Last IP", "request_id": "Request ID",
    "client_pnl": "Clients' closed P&L", "broker_pnl": "Broker P&L", "deposit": "Net deposits",
    "at": "Time", "command": "Type",
}


def wants_raw(request) -> bool:
    """``?raw=1``: field names and stored values, for scripts."""
    return request.GET.get("raw") == "1"


def human_label(field: str, labels: Mapping[str, str] | None = None) -> str:
    """A column's header for people: the page's label, else a known one, else the field's
    name in words (``client_buy_lots`` → "Client buy lots")."""
    if labels and field in labels:
        return labels[field]
    if field in FIELD_LABELS:
        return FIELD_LABELS[field]
    words = field.replace("_", " ").strip()
    return words[:1].upper() + words[1:]


@dataclass(frozen=True)
class NumberField:
    """How an exported number is rounded: its kind and the row fields that hold the digits
    (prices) and the currency (money), if any."""

    kind: str
    digits_field: str = ""
    currency_field: str = ""


class _Echo:
    def write(self, value: str) -> str:
        return value


def safe_cell(value):
    """A cell starting with = + - @ would run as a formula in a spreadsheet (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def export_cell(value, zone: DisplayZone = UTC_ZONE):
    """A cell as written out: times as ISO 8601 with the offset of ``zone`` (the reader's), so
    a spreadsheet or a script never guesses the zone; text made formula-safe."""
    if value is None:
        return ""
    if isinstance(value, datetime):
        return zone.iso(value)
    return safe_cell(value)


def _lines(header: Sequence[str], rows: Iterable[Sequence],
           zone: DisplayZone = UTC_ZONE) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield BOM + writer.writerow(header)
    for row in rows:
        yield writer.writerow([export_cell(v, zone) for v in row])


def _take(lines: Iterator[str]) -> str:
    return "".join(itertools.islice(lines, BLOCK_LINES))


async def _async_blocks(lines: Iterator[str]) -> AsyncIterator[str]:
    take = sync_to_async(_take, thread_sensitive=True)
    while block := await take(lines):
        yield block


def stream_csv(request, name: str, header: Sequence[str], rows: Iterable[Sequence],
               labels: Mapping[str, str] | None = None,
               zone: DisplayZone | None = None) -> StreamingHttpResponse:
    """``rows`` as a streamed CSV download named ``<name>-<UTC stamp>.csv``; ``header`` holds
    field names, shown as labels unless ``?raw=1``; times in ``zone`` (default: the reader's
    zone on a page of no one platform), ISO 8601 with the offset."""
    if not wants_raw(request):
        header = [human_label(field, labels) for field in header]
    lines = _lines(header, rows, zone or display_zone(request))
    content = _async_blocks(lines) if isinstance(request, ASGIRequest) else lines
    response = StreamingHttpResponse(content, content_type="text/csv; charset=utf-8")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


def csv_response(request, name: str, queryset, fields: Sequence[str],
                 labels: Mapping[str, str] | None = None,
                 numbers: Mapping[str, NumberField] | None = None,
                 zone: DisplayZone | None = None) -> StreamingHttpResponse:
    """Stream ``fields`` of every row of ``queryset`` (read in chunks of 2,000), the
    ``numbers`` among them rounded as the pages show them (unless ``?raw=1``)."""
    numbers = {} if wants_raw(request) else {f: n for f, n in (numbers or {}).items()
                                             if f in fields}
    helpers = [f for n in numbers.values() for f in (n.digits_field, n.currency_field)
               if f and f not in fields]
    read = [*fields, *dict.fromkeys(helpers)]
    rows = queryset.values_list(*read).iterator(chunk_size=2000)
    if numbers:
        rows = _rounded_rows(rows, list(fields), read, numbers)
    return stream_csv(request, name, fields, rows, labels, zone)


def _rounded_rows(rows: Iterable[Sequence], fields: list[str], read: list[str],
                  numbers: Mapping[str, NumberField]) -> Iterator[list]:
    at = {field: i for i, field in enumerate(read)}
    plan = [(i, numbers.get(field)) for i, field in enumerate(fields)]
    for row in rows:
        out = []
        for i, number in plan:
            value = row[i]
            if number is not None:
                digits = row[at[number.digits_field]] if number.digits_field else None
                currency = row[at[number.currency_field]] if number.currency_field else None
                value = rounded(value, number.kind, digits, currency)
            out.append(value)
        yield out


def xlsx_bytes(sheets: Iterable[tuple[str, Sequence[str], Iterable[Sequence]]],
               raw: bool = False, labels: Mapping[str, str] | None = None,
               zone: DisplayZone = UTC_ZONE) -> bytes:
    """A workbook of ``(title, header, rows)`` sheets; text cells are made formula-safe, the
    header's field names become labels unless ``raw``, and times are ISO 8601 text with their
    offset (Excel has no zone-aware date type)."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)  # rows stream out; no cell objects kept in memory
    for title, header, rows in sheets:
        sheet = workbook.create_sheet(title)
        sheet.append(list(header) if raw else [human_label(f, labels) for f in header])
        for row in rows:
            sheet.append([zone.iso(v) if isinstance(v, datetime) else safe_cell(v)
                          for v in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
