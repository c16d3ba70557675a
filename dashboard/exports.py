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

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import StreamingHttpResponse
from django.utils import timezone

BLOCK_LINES = 500


class _Echo:
    def write(self, value: str) -> str:
        return value


def safe_cell(value):
    """A cell starting with = + - @ would run as a formula in a spreadsheet (CSV injection)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return value


def _lines(header: Sequence[str], rows: Iterable[Sequence]) -> Iterator[str]:
    writer = csv.writer(_Echo())
    yield writer.writerow(header)
    for row in rows:
        yield writer.writerow(["" if v is None else safe_cell(v) for v in row])


def _take(lines: Iterator[str]) -> str:
    return "".join(itertools.islice(lines, BLOCK_LINES))


async def _async_blocks(lines: Iterator[str]) -> AsyncIterator[str]:
    take = sync_to_async(_take, thread_sensitive=True)
    while block := await take(lines):
        yield block


def stream_csv(request, name: str, header: Sequence[str],
               rows: Iterable[Sequence]) -> StreamingHttpResponse:
    """``rows`` as a streamed CSV download named ``<name>-<UTC stamp>.csv``."""
    lines = _lines(header, rows)
    content = _async_blocks(lines) if isinstance(request, ASGIRequest) else lines
    response = StreamingHttpResponse(content, content_type="text/csv")
    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response["Content-Disposition"] = f'attachment; filename="{name}-{stamp}.csv"'
    return response


def csv_response(request, name: str, queryset, fields: Sequence[str]) -> StreamingHttpResponse:
    """Stream ``fields`` of every row of ``queryset`` (read in chunks of 2,000)."""
    return stream_csv(request, name, fields,
                      queryset.values_list(*fields).iterator(chunk_size=2000))


def xlsx_bytes(sheets: Iterable[tuple[str, Sequence[str], Iterable[Sequence]]]) -> bytes:
    """A workbook of ``(title, header, rows)`` sheets; text cells are made formula-safe."""
    from openpyxl import Workbook

    workbook = Workbook(write_only=True)  # rows stream out; no cell objects kept in memory
    for title, header, rows in sheets:
        sheet = workbook.create_sheet(title)
        sheet.append(list(header))
        for row in rows:
            sheet.append([safe_cell(v) for v in row])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()
