"""Keyset page readers: each yields pages as COPY text, ready for the lv0 writer.

- ``dbapi_pages`` runs each page query through the DBAPI driver (pymssql for SQL Server) and
  encodes the rows in Python. It works on any source. The next page is read ahead on a second
  connection, so the server computes it while Python encodes this one.
- ``copy_pages`` is for a PostgreSQL source (the stand-in): it wraps each page query in
  ``COPY (...) TO STDOUT``, so rows travel as the server's own COPY text, straight into the target's
  ``COPY FROM STDIN`` with no per-value Python work. Only the last line of a page is decoded, to take
  the next page's keyset position from it.

``PageSizer`` sizes pages by bytes as well as rows: at most the catalog's ``page_size`` rows and
about ``page_bytes`` of COPY text, first from the row width the reflected column types suggest,
then from the width of the rows read so far. A wide table gets shorter pages, not bigger ones.

``read_pages`` chains the keyset passes of a load (``SourceTable.load_reads``), or reads one
(the key scan of a delete pass), through whichever reader fits the source.

``prefetched`` runs a reader in a thread, one or two pages ahead of the writer, so reading and
writing overlap while memory stays bounded by the queue.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from sqlalchemy.engine import Engine

from bodyfriend_assets.extraction.copy_text import RowEncoder
from bodyfriend_assets.extraction.lv0_writer import Lv0WriteError
from bodyfriend_assets.extraction.source import KeysetRead


PAGE_BYTES = 8 << 20  # COPY text per page the sizer aims at
ENCODE_ROWS = 1000  # dbapi: rows encoded at a time


@dataclass(frozen=True)
class Page:
    copy_text: bytes
    rows: int


@dataclass
class PageSizer:
    """How many rows the next page asks for (see the module docstring)."""

    max_rows: int  # the catalog's page_size
    page_bytes: int = PAGE_BYTES
    row_bytes: float = 1.0  # estimated, until rows have been read
    _seen_rows: int = field(default=0, repr=False)
    _seen_bytes: int = field(default=0, repr=False)

    def rows(self) -> int:
        return max(1, min(self.max_rows, int(self.page_bytes / max(self.row_bytes, 1.0))))

    def observe(self, rows: int, nbytes: int) -> None:
        self._seen_rows += rows
        self._seen_bytes += nbytes
        self.row_bytes = self._seen_bytes / self._seen_rows


def read_pages(
    reads: list[KeysetRead], legacy: Engine, sizer: PageSizer, encoder: RowEncoder, reader: str
) -> Iterator[Page]:
    """The pages of ``reads``, one pass after the other; ``reader`` is ``copy`` or ``dbapi``."""
    for read in reads:
        if reader == "copy":
            yield from copy_pages(read, legacy, sizer)
        else:
            yield from dbapi_pages(read, legacy, sizer, encoder)


def dbapi_pages(read: KeysetRead, legacy: Engine, sizer: PageSizer, encoder: RowEncoder) -> Iterator[Page]:
    """Pages through the DBAPI driver, each fetched and encoded a chunk of rows at a time (while
    the chunk is still in the CPU's cache), so only a chunk of rows lives as Python objects.

    The next page is read ahead: while this page is fetched and encoded, a helper thread asks the
    source, on a second connection, where this page will end (``page_end_query``, from the keyset
    index) and sends the query for the page after that position, so the server computes it while
    Python works. The guess is checked against the row this page really ends with; if they differ
    (rows changed in between), the read-ahead is dropped and the next page asked from the true
    position. Each connection is used by one thread at a time, and holds one result at a time.
    """
    positions = read.order_positions
    with legacy.connect() as first, legacy.connect() as second, ThreadPoolExecutor(
        1, thread_name_prefix="keyset-read-ahead"
    ) as helper:
        conn, other = first, second
        last = None
        page_size = sizer.rows()
        result = conn.execute(read.page_query(last, page_size))
        while True:
            next_size = sizer.rows()
            ahead = helper.submit(_read_ahead, other, read, last, page_size, next_size)
            data, rows, final = _fetch_and_encode(result, encoder)
            predicted, next_result = ahead.result()
            if rows == 0 or rows < page_size:
                if next_result is not None:
                    next_result.close()
                if rows:
                    yield _observed(sizer, Page(data, rows))
                return
            yield _observed(sizer, Page(data, rows))
            del data
            last = [final[i] for i in positions]
            at_last = conn.execute(read.position_count_query(last)).scalar_one()
            _refuse_shared_position(read, at_last, last)
            # READ COMMITTED: each page is its own statement; end the implicit transaction so no
            # lock or snapshot is held between pages.
            conn.rollback()
            if predicted != last:
                if next_result is not None:
                    next_result.close()
                next_result = other.execute(read.page_query(last, next_size))
            result, page_size = next_result, next_size
            conn, other = other, conn


def _read_ahead(conn, read: KeysetRead, last, page_size: int, next_size: int):
    """(where the page after ``last`` will end, the result of the page after that), or
    (None, None) when no page follows."""
    end = conn.execute(read.page_end_query(last, page_size)).first()
    if end is None:
        return None, None
    predicted = list(end)
    return predicted, conn.execute(read.page_query(predicted, next_size))


def _fetch_and_encode(result, encoder: RowEncoder) -> tuple[bytes, int, object]:
    """(COPY text, rows, the last row) of a page's result."""
    parts = []
    rows = 0
    final = None
    while chunk := result.fetchmany(ENCODE_ROWS):
        parts.append(encoder.encode_rows(chunk).encode("utf-8"))
        rows += len(chunk)
        final = chunk[-1]
    return b"".join(parts), rows, final


def _observed(sizer: PageSizer, page: Page) -> Page:
    sizer.observe(page.rows, len(page.copy_text))
    return page


def copy_pages(read: KeysetRead, legacy: Engine, sizer: PageSizer) -> Iterator[Page]:
    if legacy.dialect.name != "postgresql" or legacy.dialect.driver != "psycopg2":
        raise ValueError("copy_pages reads a PostgreSQL (psycopg2) source only")
    positions = read.order_positions
    last = None
    with legacy.connect() as conn:
        driver = conn.connection.driver_connection
        with driver.cursor() as cursor:
            while True:
                page_size = sizer.rows()
                compiled = read.page_query(last, page_size).compile(
                    dialect=conn.dialect, compile_kwargs={"render_postcompile": True}
                )
                # psycopg2 binds the parameters (quoting them as literals client-side, since
                # COPY takes no server-side parameters); nothing here formats a value.
                statement = cursor.mogrify(str(compiled), compiled.params)
                buffer = io.BytesIO()
                cursor.copy_expert(b"COPY (" + statement + b") TO STDOUT", buffer)
                data = buffer.getvalue()
                del buffer
                rows = data.count(b"\n")
                if rows == 0:
                    return
                last = last_line_values(data, positions)
                sizer.observe(rows, len(data))
                yield Page(data, rows)
                del data
                if rows < page_size:
                    return
                at_last = conn.execute(read.position_count_query(last)).scalar_one()
                _refuse_shared_position(read, at_last, last)
                conn.rollback()


def _refuse_shared_position(read: KeysetRead, rows_at_position: int, last: list) -> None:
    """A page must never end between two rows with the same (cursor, key): the next page starts
    strictly after that position and would skip the others. Such rows mean the catalog keys are
    not unique on the source, which is refused rather than loaded short."""
    if rows_at_position > 1:
        entry = read.entry
        spelled = {n.lower(): n for n in ([entry.cursor] if entry.cursor else []) + list(entry.keys)}
        names = [spelled[n] for n in read.order]
        position = ", ".join(f"{n}={v!r}" for n, v in zip(names, last))
        raise Lv0WriteError(
            f"{entry.qualified_name}: {rows_at_position} source rows share the key ({position}); "
            f"the catalog keys {list(entry.keys)} are not unique on the source. "
            f"lv0.{entry.name} was left unchanged"
        )


def last_line_values(copy_text: bytes, positions: list[int]) -> list[str | None]:
    """The fields at ``positions`` of the last line of a COPY text chunk, unescaped."""
    start = copy_text.rfind(b"\n", 0, len(copy_text) - 1) + 1
    fields = copy_text[start:-1].split(b"\t")
    return [_unescape(fields[i]) for i in positions]


_UNESCAPES = {"b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\"}


def _unescape(field: bytes) -> str | None:
    if field == b"\\N":
        return None
    text = field.decode("utf-8")
    if "\\" not in text:
        return text
    out = []
    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\" and i + 1 < len(text):
            following = text[i + 1]
            out.append(_UNESCAPES.get(following, following))
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def prefetched(pages: Iterator[Page], depth: int = 2) -> Iterator[Page]:
    """Iterate ``pages`` in a background thread, at most ``depth`` pages ahead."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for page in pages:
                while not stop.is_set():
                    try:
                        slots.put(page, timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put(done)
        except BaseException as err:  # handed to the consumer, which re-raises it
            slots.put(err)
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    worker = threading.Thread(target=produce, name="keyset-reader", daemon=True)
    worker.start()
    try:
        while True:
            item = slots.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                slots.get(timeout=0.1)
            except queue.Empty:
                pass
        worker.join()
