"""One lv0 load: read a legacy table's window page by page and write it atomically to lv0.

At most a few pages (the one being written and the reader's prefetch) are in memory at a time,
whatever the table size. When the load writes straight into an empty lv0 table (``lv0_writer``),
the reader's thread also appends each page's lineage fields, so the writer's thread only COPYs. A pass whose order a source index serves is read a keyset page per
query; one without such an index (e.g. no index on the cursor) as one ordered, streamed query,
resumed from the last row read if the connection is lost (``pages``).

An incremental load reads three keyset passes (``SourceTable.load_reads``): the window (open
below for the first partition), the rows stamped in the future and the rows with a NULL cursor.
A row with a NULL key is refused before anything is written: keyset paging cannot place it and
lv0's key cannot hold it, so it would otherwise be skipped in silence.

Deletes. After the upserts, in the same transaction, the delete pass streams every key of the
source table (a key-only keyset pass in key order, through the same page readers) into a
temporary table and deletes the lv0 rows whose key is not there. The key scan starts only after
the last upsert page was read, so:

- a row present in the source during the whole key scan is read by it (keyset paging never skips
  a row that exists throughout: inserts and deletes elsewhere cannot shift a page) and is never
  deleted, whether this load or an earlier one wrote it;
- a row inserted during the run is in lv0 only if a window pass read it, that is before the key
  scan began; still present, it is read by the scan and kept; if deleted since, deleting it is
  right;
- a row deleted before the scan reaches its key is deleted from lv0 now; one deleted after the
  scan passed its key stays until the next run's scan;
- a row whose key changes is a delete and an insert: the new key loads with the partition of its
  new stamp, the old one goes with this or the next run.

Memory stays one page of keys; the comparison is one anti-join in the Data Hub.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy.engine import Engine

from bodyfriend_assets.catalog import LegacyTable
from bodyfriend_assets.extraction.copy_text import RowEncoder
from bodyfriend_assets.extraction.lv0_writer import FloatingRows, Lineage, Lv0Load, Lv0WriteError
from bodyfriend_assets.extraction.pages import PAGE_BYTES, Page, PageSizer, prefetched, read_pages, read_plan
from bodyfriend_assets.extraction.source import KeysetRead, SourceTable
from bodyfriend_assets.partitions import FIRST_PARTITION_START, last_partition_of, naive_kst, start_of_tomorrow
from bodyfriend_assets.table_metadata import size_metadata, table_metadata, window_partitions
from bodyfriend_assets.table_locks import DEFAULT_LOCK_TIMEOUT_SECONDS, naming_lock_holders

PROGRESS_EVERY_SECONDS = 5.0
KEY_PAGE_FACTOR = 10  # a delete-pass page holds this many times page_size keys (a few bytes each)
DELETED_KEYS_LOGGED = 5


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
    rows_changed: int = 0  # lv0 rows inserted or updated (snapshot: and deleted)
    rows_deleted: int = 0  # incremental: lv0 rows whose key the source no longer holds
    source_keys: int = 0  # incremental: keys the delete pass read
    delete_seconds: float = 0.0
    nul_characters_removed: int = 0
    schema_changes: list[str] = field(default_factory=list)  # how lv0 followed the source's columns
    source_read: str = ""  # how the main pass was read: keyset pages or one ordered stream
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
            **size_metadata("copy_text", self.bytes),
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(self.rows_per_second, 1),
            "peak_rss_mb": round(self.peak_rss_mb, 1),
            "read_window_source_rows": self.source_rows,
            "rows_changed": self.rows_changed,
            "rows_deleted": self.rows_deleted,
            "nul_characters_removed": self.nul_characters_removed,
            "mode": self.mode,
            "source_read": self.source_read,
        }
        if self.schema_changes:
            data["schema_changes"] = "\n".join(self.schema_changes)
        if self.load_started is not None:
            data["load_started_kst"] = self.load_started.isoformat(sep=" ", timespec="seconds")
        if self.mode == "incremental":
            start = self.window_start.isoformat(sep=" ") if self.window_start else "open (the first partition)"
            data["read_window_start_kst"] = start
            data["read_window_end_kst"] = self.window_end.isoformat(sep=" ")
            data["source_keys"] = self.source_keys
            data["delete_seconds"] = round(self.delete_seconds, 3)
        return data | self.extra


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def read_window_start(entry: LegacyTable, start: datetime) -> datetime | None:
    """Where an incremental load's window starts: ``start`` less the look-back, or None (open)
    for a window starting at the first partition, which holds every row stamped before it."""
    if start <= FIRST_PARTITION_START:
        return None
    return start - timedelta(minutes=entry.lookback_minutes)


def open_source(
    entry: LegacyTable,
    legacy: Engine,
    start: datetime | None,
    end: datetime | None,
    floating_from: datetime | None = None,
) -> tuple[SourceTable, list[KeysetRead], int]:
    """Reflect the source, plan the load's keyset passes and count the rows they will read.

    Incremental: the window ``[start - lookback, end)`` (open below at the first partition), the
    rows stamped at or after ``floating_from`` (default: the start of tomorrow, KST) and those
    with a NULL cursor. Snapshot: the whole table. A NULL key in any of them refuses the load.
    The counts run on their own connection (pymssql holds one result per connection).
    """
    with legacy.connect() as conn:
        source = SourceTable.reflect(conn, entry)
        if entry.mode == "incremental":
            floating_from = floating_from or start_of_tomorrow()
            reads = source.load_reads(read_window_start(entry, start), end, floating_from)
        else:
            reads = [source.read(None)]
        total = sum(conn.execute(read.count_query()).scalar_one() for read in reads)
        _refuse_null_keys(entry, [conn.execute(read.null_key_query()).one() for read in reads])
    return source, reads, total


def _refuse_null_keys(entry: LegacyTable, counts: list) -> None:
    rows = sum(c[0] for c in counts)
    if rows:
        per_key = ", ".join(
            f"{key} NULL in {sum(c[1 + i] for c in counts):,}" for i, key in enumerate(entry.keys)
        )
        raise Lv0WriteError(
            f"{entry.qualified_name}: {rows:,} source row(s) to load have a NULL key ({per_key}); "
            f"a key column cannot be NULL in lv0.{entry.name}, and nothing was loaded. "
            f"Give the rows a key at the source"
        )


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
    warn: Callable[[str], None] = lambda message: None,
    page_size: int | None = None,
    page_bytes: int = PAGE_BYTES,
    reader: str = "auto",
    floating_from: datetime | None = None,
    lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS,
    plan: str = "auto",
) -> ExtractionResult:
    """Copy the window of ``entry`` from ``legacy`` into lv0 on ``datahub``, atomically.

    ``reader`` picks the page reader: ``copy`` (PostgreSQL sources), ``dbapi`` (any source, the
    SQL Server path), or ``auto``. Pages hold at most ``page_size`` rows (default: the catalog's)
    and about ``page_bytes`` of COPY text. ``plan`` (``pages.read_plan``): ``auto`` reads a pass
    by keyset pages when a source index serves its order, as one ordered stream otherwise;
    ``pages`` or ``stream`` force one way. ``floating_from`` (default: the start of tomorrow,
    KST): incremental rows stamped at or after it are read by every load. A change of the
    source's columns is reported through ``warn``; a lock on the lv0 table held longer than
    ``lock_timeout_seconds`` fails the load.
    """
    began = time.monotonic()
    now = datetime.now(timezone.utc)
    load_started = naive_kst(now)  # the lv0 check derives the floating rows' start from it too
    floating_from = floating_from or start_of_tomorrow(now)
    source, reads, total = open_source(entry, legacy, start, end, floating_from)
    sizer = PageSizer(page_size or entry.page_size, page_bytes, source.estimated_row_bytes)
    encoder = RowEncoder([c.lv0_type for c in source.columns])
    reader = choose_reader(legacy, reader)
    pages = read_pages(reads, legacy, sizer, encoder, reader, plan, log)
    incremental = entry.mode == "incremental"
    result = ExtractionResult(
        table=entry.qualified_name,
        mode=entry.mode,
        window_start=read_window_start(entry, start) if incremental else None,
        window_end=end if incremental else None,
        source_rows=total,
        load_started=load_started,
        source_read=_described(reads[0], plan),
    )
    floating = FloatingRows(floating_from, last_partition_of(end)) if incremental else None
    log(f"{entry.qualified_name}: {total:,} source rows to read ({entry.mode})")
    last_report = began
    with datahub.connect() as conn, naming_lock_holders(conn, f"lv0.{entry.name}", lock_timeout_seconds):
        load = Lv0Load(conn, source, lineage, floating, lock_timeout_seconds)
        result.schema_changes = load.schema_changes
        for change in load.schema_changes:
            warn(f"{entry.qualified_name}: source columns changed: {change}")
        for page, lineage_appended, read_bytes in prefetched(_with_lineage(pages, load)):
            load.write_page(page.copy_text, lineage_appended)
            result.rows += page.rows
            result.pages += 1
            result.bytes += read_bytes
            del page
            now = time.monotonic()
            if now - last_report >= PROGRESS_EVERY_SECONDS:
                last_report = now
                log(_progress(entry, result.rows, total, now - began))
        if incremental:
            _delete_pass(load, source, legacy, reader, plan, sizer.max_rows * KEY_PAGE_FACTOR, page_bytes, result, log)
        result.rows_changed = load.finish()
        result.extra = table_metadata(conn, "lv0", entry.name, window_partitions(start, end) if result.window_end else None)
        if "note" in result.extra:
            log(f"{entry.qualified_name}: {result.extra['note']}")
    result.nul_characters_removed = encoder.nul_characters_removed
    result.seconds = time.monotonic() - began
    result.peak_rss_mb = peak_rss_mb()
    # The totals are the materialization's metadata (``as_metadata``), not another log line.
    return result


def _with_lineage(pages: Iterator[Page], load: Lv0Load) -> Iterator[tuple[Page, bool, int]]:
    """(each page as the load writes it, whether its lineage fields are appended, the bytes read).
    ``load.with_lineage`` is worked out by the reader thread (``prefetched``) while the writer
    writes the page before; a page in flight is then held with its lineage fields only, not
    also as read."""
    with closing(pages):
        for page in pages:
            read_bytes = len(page.copy_text)
            lines = load.with_lineage(page.copy_text)
            appended = lines is not None
            if appended:
                page = Page(lines, page.rows)  # the page as read is let go here
            del lines
            yield page, appended, read_bytes


def _delete_pass(
    load: Lv0Load, source: SourceTable, legacy: Engine, reader: str, plan: str, page_rows: int,
    page_bytes: int, result: ExtractionResult, log: Callable[[str], None],
) -> None:
    """Delete from lv0 the rows the source no longer holds (the module docstring says why this
    runs after the upserts, in their transaction)."""
    began = time.monotonic()
    scan = source.key_scan()
    sizer = PageSizer(page_rows, page_bytes)
    types = {c.name: c.lv0_type for c in source.columns}
    encoder = RowEncoder([types[name] for name in scan.column_names])
    load.start_key_scan()
    for page in prefetched(read_pages([scan], legacy, sizer, encoder, reader, plan, log)):
        load.write_source_keys(page.copy_text)
        result.source_keys += page.rows
        del page
    result.rows_deleted, sample = load.delete_missing(DELETED_KEYS_LOGGED)
    result.delete_seconds = time.monotonic() - began
    if result.rows_deleted:
        shown = ", ".join(str(key[0] if len(key) == 1 else key) for key in sample)
        more = " ..." if result.rows_deleted > len(sample) else ""
        log(
            f"lv0.{source.entry.name}: {result.rows_deleted:,} row(s) no longer in "
            f"{source.entry.qualified_name} deleted (keys {list(source.entry.keys)}: {shown}{more})"
        )


def _described(read: KeysetRead, plan: str) -> str:
    """How the load's main pass was read, for its metadata."""
    way = "keyset pages" if read_plan(read, plan) == "pages" else "one ordered stream"
    index = "a source index leads with" if read.indexed else "no source index leads with"
    return f"{way} ({index} {read.order[0]})"


def _progress(entry: LegacyTable, rows: int, total: int, elapsed: float) -> str:
    rate = rows / elapsed if elapsed > 0 else 0.0
    remaining = max(total - rows, 0)
    eta = f"about {remaining / rate:,.0f}s left" if rate > 0 else "time left unknown"
    share = f" ({100 * rows / total:.0f}%)" if total else ""
    return f"{entry.qualified_name}: {rows:,} of {total:,} rows{share}, {rate:,.0f} rows/s, {eta}"
