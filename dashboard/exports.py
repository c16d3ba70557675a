"""Downloads: streamed CSV (rows go out as the database yields them, never all in memory) and
XLSX workbooks.

Under ASGI (uvicorn in the demo and in production) Django must fully consume a synchronous
iterator before it can send it, which would hold a 100,000-row export in memory; there the
rows are handed over as an async iterator that pulls blocks from the same database cursor,
always on the same thread (``thread_sensitive``), so the server-side cursor stays valid.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from datetime import datetime

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils import timezone

from dashboard.timezones import UTC_ZONE, DisplayZone, display_zone

BLOCK_LINES = 500


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
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow([export_cell(v, zone) for v in row])


def _take(lines: Iterator[str]) -> str:
    return "".join(itertools.islice(lines, BLOCK_LINES))


async def _async_blocks(lines: Iterator[str]) -> AsyncIterator[str]:
    take = sync_to_async(_take, thread_sensitive=True)
    while block := await take(lines):
        yield block


def stream_csv(request, name: str, header: Sequence[str], rows: Iterable[Sequence],
               zone: DisplayZone | None = None) -> StreamingHttpResponse:
    """``rows`` as a streamed CSV download named ``<name>-<UTC stamp>.csv``; times in ``zone``
    (default: the reader's zone on a page of no one platform)."""
    lines = _lines(header, rows, zone or display_zone(request))
    content = _async_blocks(lines) if isinstance(request, ASGIRequest) else lines
    response = StreamingHttpResponse(content, content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


def csv_response(request, name: str, queryset, fields: Sequence[str],
                 zone: DisplayZone | None = None) -> StreamingHttpResponse:
    """Stream ``fields`` of every row of ``queryset`` (read in chunks of 2,000)."""
    return stream_csv(request, name, fields,
                      queryset.values_list(*fields).iterator(chunk_size=2000), zone)


def xlsx_bytes(sheets: Iterable[tuple[str, Sequence[str], Iterable[Sequence]]],
               zone: DisplayZone = UTC_ZONE) -> bytes:
    """A workbook of ``(title, header, rows)`` sheets; text cells are made formula-safe and
    times are ISO 8601 text with their offset (Excel has no zone-aware date type)."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)  # rows stream out; no cell objects kept in memory
    for title, header, rows in sheets:
        sheet = workbook.create_sheet(title)
        sheet.append(list(header))
        for row in rows:
            sheet.append([zone.iso(v) if isinstance(v, datetime) else safe_cell(v)
                          for v in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
