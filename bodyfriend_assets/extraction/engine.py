"""One lv0 load: read a legacy table's window page by page and write it atomically to lv0.

At most one page of source rows and its COPY text are held at a time, whatever the table size.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bodyfriend_assets.catalog import LegacyTable
from bodyfriend_assets.extraction.copy_text import RowEncoder
from bodyfriend_assets.extraction.lv0_writer import Lineage, Lv0Load
from bodyfriend_assets.extraction.source import SourceTable

PROGRESS_EVERY_SECONDS = 5.0


@dataclass
class ExtractionResult:
    table: str
    mode: str
    window_start: datetime | None
    window_end: datetime | None
    source_rows: int  # rows in the read window when the load started
    rows: int = 0  # rows read and written
    pages: int = 0
    bytes: int = 0
    rows_changed: int = 0  # lv0 rows inserted or updated (snapshot: rows in the new table)
    nul_characters_removed: int = 0
    seconds: float = 0.0
    peak_rss_mb: float = 0.0
    extra: dict = field(default_factory=dict)

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0

    def as_metadata(self) -> dict:
        data = {
            "rows": self.rows,
            "pages": self.pages,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "source_rows": self.source_rows,
            "rows_changed": self.rows_changed,
            "nul_characters_removed": self.nul_characters_removed,
            "mode": self.mode,
        }
        if self.window_start is not None:
            data["window_start_kst"] = self.window_start.isoformat(sep=" ")
            data["window_end_kst"] = self.window_end.isoformat(sep=" ")
        return data


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def read_window(
    entry: LegacyTable,
    legacy: Engine,
    start: datetime | None,
    end: datetime | None,
    page_size: int | None = None,
) -> tuple[SourceTable, int, Iterator[list]]:
    """Reflect the source, count the window, and return a lazy iterator of keyset pages.

    For incremental tables the window is ``[start - lookback, end)`` on the cursor column.
    """
    with legacy.connect() as conn:
        source = SourceTable.reflect(conn, entry)
        if entry.mode == "incremental":
            start = start - timedelta(minutes=entry.lookback_minutes)
        window = source.window(start, end)
        total = conn.execute(source.count_query(window)).scalar_one()
    return source, total, _pages(source, legacy, window, page_size or entry.page_size)


def _pages(source: SourceTable, legacy: Engine, window, page_size: int) -> Iterator[list]:
    positions = source.order_positions
    last = None
    with legacy.connect() as conn:
        while True:
            rows = conn.execute(source.page_query(window, last, page_size)).fetchall()
            if not rows:
                return
            yield rows
            if len(rows) < page_size:
                return
            final = rows[-1]
            last = [final[i] for i in positions]
            # READ COMMITTED: each page is its own statement; end the implicit transaction so
            # no lock or snapshot is held between pages.
            conn.rollback()


def extract_to_lv0(
    entry: LegacyTable,
    legacy: Engine,
    datahub: Engine,
    *,
    start: datetime | None,
    end: datetime | None,
    lineage: Lineage,
    log: Callable[[str], None] = lambda message: None,
    page_size: int | None = None,
) -> ExtractionResult:
    began = time.monotonic()
    source, total, pages = read_window(entry, legacy, start, end, page_size)
    result = ExtractionResult(
        table=entry.qualified_name,
        mode=entry.mode,
        window_start=start - timedelta(minutes=entry.lookback_minutes) if entry.mode == "incremental" else None,
        window_end=end if entry.mode == "incremental" else None,
        source_rows=total,
    )
    log(f"{entry.qualified_name}: {total:,} source rows to read ({entry.mode})")
    encoder = RowEncoder()
    last_report = began
    with datahub.connect() as conn:
        load = Lv0Load(conn, source, lineage)
        for page in pages:
            chunk = encoder.encode_page(page)
            load.write_page(chunk)
            result.rows += len(page)
            result.pages += 1
            result.bytes += len(chunk)
            del page, chunk
            now = time.monotonic()
            if now - last_report >= PROGRESS_EVERY_SECONDS:
                last_report = now
                log(_progress(entry, result.rows, total, now - began))
        result.rows_changed = load.finish()
    result.nul_characters_removed = encoder.nul_characters_removed
    result.seconds = time.monotonic() - began
    result.peak_rss_mb = peak_rss_mb()
    log(
        f"{entry.qualified_name}: {result.rows:,} rows in {result.pages} pages, "
        f"{result.seconds:.1f}s ({result.rows_per_second:,.0f} rows/s), "
        f"{result.rows_changed:,} lv0 rows changed"
    )
    return result


def _progress(entry: LegacyTable, rows: int, total: int, elapsed: float) -> str:
    rate = rows / elapsed if elapsed > 0 else 0.0
    remaining = max(total - rows, 0)
    eta = f"about {remaining / rate:,.0f}s left" if rate > 0 else "time left unknown"
    share = f" ({100 * rows / total:.0f}%)" if total else ""
    return f"{entry.qualified_name}: {rows:,} of {total:,} rows{share}, {rate:,.0f} rows/s, {eta}"
