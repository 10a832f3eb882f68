"""One lv0 load: read a legacy table's window page by page and write it atomically to lv0.

At most a few pages (the one being written and the reader's prefetch) are in memory at a time,
whatever the table size.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy.engine import Engine

from bodyfriend_assets.catalog import LegacyTable
from bodyfriend_assets.extraction.copy_text import RowEncoder
from bodyfriend_assets.extraction.lv0_writer import Lineage, Lv0Load
from bodyfriend_assets.extraction.pages import PAGE_BYTES, PageSizer, copy_pages, dbapi_pages, prefetched
from bodyfriend_assets.extraction.source import SourceTable
from bodyfriend_assets.partitions import naive_kst

PROGRESS_EVERY_SECONDS = 5.0


@dataclass
class ExtractionResult:
    table: str
    mode: str
    window_start: datetime | None
    window_end: datetime | None
    source_rows: int  # rows in the read window when the load started
    load_started: datetime | None = None  # naive KST, before the source was first asked
    rows: int = 0  # rows read (the read window, look-back included) and written
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
        # One name per figure: the read window (look-back included, the whole range in a range
        # run) is what these count; a partition's own rows are in the checks' metadata.
        data = {
            "rows_read": self.rows,
            "pages": self.pages,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "read_window_source_rows": self.source_rows,
            "rows_changed": self.rows_changed,
            "nul_characters_removed": self.nul_characters_removed,
            "mode": self.mode,
        }
        if self.load_started is not None:
            data["load_started_kst"] = self.load_started.isoformat(sep=" ", timespec="seconds")
        if self.window_start is not None:
            data["read_window_start_kst"] = self.window_start.isoformat(sep=" ")
            data["read_window_end_kst"] = self.window_end.isoformat(sep=" ")
        return data


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def open_source(
    entry: LegacyTable, legacy: Engine, start: datetime | None, end: datetime | None
) -> tuple[SourceTable, object, int]:
    """Reflect the source, build the read window's predicate and count the rows in it.

    For incremental tables the window is ``[start - lookback, end)`` on the cursor column.
    The count runs on its own connection (pymssql holds one result per connection).
    """
    with legacy.connect() as conn:
        source = SourceTable.reflect(conn, entry)
        if entry.mode == "incremental":
            start = start - timedelta(minutes=entry.lookback_minutes)
        window = source.window(start, end)
        total = conn.execute(source.count_query(window)).scalar_one()
    return source, window, total


def choose_reader(legacy: Engine, reader: str) -> str:
    if reader == "auto":
        is_postgres = legacy.dialect.name == "postgresql" and legacy.dialect.driver == "psycopg2"
        return "copy" if is_postgres else "dbapi"
    if reader not in ("dbapi", "copy"):
        raise ValueError(f"unknown page reader {reader!r} (auto, dbapi or copy)")
    return reader


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
    page_bytes: int = PAGE_BYTES,
    reader: str = "auto",
) -> ExtractionResult:
    """Copy the window of ``entry`` from ``legacy`` into lv0 on ``datahub``, atomically.

    ``reader`` picks the page reader: ``copy`` (PostgreSQL sources), ``dbapi`` (any source, the
    SQL Server path), or ``auto``. Pages hold at most ``page_size`` rows (default: the catalog's)
    and about ``page_bytes`` of COPY text.
    """
    began = time.monotonic()
    load_started = naive_kst(datetime.now(timezone.utc))
    source, window, total = open_source(entry, legacy, start, end)
    sizer = PageSizer(page_size or entry.page_size, page_bytes, source.estimated_row_bytes)
    encoder = RowEncoder([c.lv0_type for c in source.columns])
    if choose_reader(legacy, reader) == "copy":
        pages = copy_pages(source, legacy, window, sizer)
    else:
        pages = dbapi_pages(source, legacy, window, sizer, encoder)
    result = ExtractionResult(
        table=entry.qualified_name,
        mode=entry.mode,
        window_start=start - timedelta(minutes=entry.lookback_minutes) if entry.mode == "incremental" else None,
        window_end=end if entry.mode == "incremental" else None,
        source_rows=total,
        load_started=load_started,
    )
    log(f"{entry.qualified_name}: {total:,} source rows to read ({entry.mode})")
    last_report = began
    with datahub.connect() as conn:
        load = Lv0Load(conn, source, lineage)
        for page in prefetched(pages):
            load.write_page(page.copy_text)
            result.rows += page.rows
            result.pages += 1
            result.bytes += len(page.copy_text)
            del page
            now = time.monotonic()
            if now - last_report >= PROGRESS_EVERY_SECONDS:
                last_report = now
                log(_progress(entry, result.rows, total, now - began))
        result.rows_changed = load.finish()
    result.nul_characters_removed = encoder.nul_characters_removed
    result.seconds = time.monotonic() - began
    result.peak_rss_mb = peak_rss_mb()
    # The totals are the materialization's metadata (``as_metadata``), not another log line.
    return result


def _progress(entry: LegacyTable, rows: int, total: int, elapsed: float) -> str:
    rate = rows / elapsed if elapsed > 0 else 0.0
    remaining = max(total - rows, 0)
    eta = f"about {remaining / rate:,.0f}s left" if rate > 0 else "time left unknown"
    share = f" ({100 * rows / total:.0f}%)" if total else ""
    return f"{entry.qualified_name}: {rows:,} of {total:,} rows{share}, {rate:,.0f} rows/s, {eta}"
