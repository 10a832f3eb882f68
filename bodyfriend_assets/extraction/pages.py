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

Both readers above ask one query per page, which is cheap only when a source index leads with
the pass's first ordering column (the cursor, or the key): the page seeks to its position. Without
such an index every page would read and sort the rest of the pass again, a cost growing with the
square of the table. ``streamed_pages`` reads such a pass as one ordered query instead (one sort
on the server), fetched as it arrives and cut into the same pages: COPY text through ``COPY (...)
TO STDOUT`` on a PostgreSQL source, row fetches (a server-side cursor on psycopg2; pymssql
streams a result as it is fetched) otherwise. If the connection is lost, or PostgreSQL's
statement timeout ends the stream, after at least one page was handed out in this query, a new
query reads on strictly after the last row handed out (``keyset.after``), so no row is lost or
read twice; a failure before the first page is raised (the step's retry takes over).

``read_pages`` chains the keyset passes of a load (``SourceTable.load_reads``), or reads one
(the key scan of a delete pass), through whichever reader fits the source, paged or streamed
(``read_plan``).

The rule ``read_plan`` applies (``auto``): a pass is read by keyset pages when a source index
leads with its first ordering column, whatever its size (a first or full-history load
included), and as one stream otherwise. Size is deliberately not a criterion: on an indexed
source the two ways measured the same within the machine's noise (the stream took 0.54 to 1.53
times the pages' time in seven paired measurements of 500,000 rows, median 1.13), as both wait
on the Data Hub's COPY, not on the source (README, "Which way a pass is read"). Pages hold
nothing on the ERP between pages (no open statement, lock or snapshot); a stream holds its
statement, under SQL Server's locking READ COMMITTED the shared lock of what it is reading, for
the whole load, and stalls there (ASYNC_NETWORK_IO) whenever the Data Hub writes slower than
the source sends. ``plan="stream"`` or ``"pages"`` forces one way.

``prefetched`` runs a reader in a thread, one or two pages ahead of the writer, so reading and
writing overlap while memory stays bounded by the queue (``pushed``, which the COPY stream uses
too).
"""

from __future__ import annotations

import io
import queue
import threading
from contextlib import closing
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import psycopg2.errors
from sqlalchemy.engine import Connection, Engine

from bodyfriend_assets.extraction.copy_text import RowEncoder
from bodyfriend_assets.extraction.lv0_writer import Lv0WriteError
from bodyfriend_assets.extraction.source import KeysetRead
from bodyfriend_assets.retries import CONNECTION_ERRORS, classify


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


READ_PLANS = ("auto", "pages", "stream")


def read_plan(read: KeysetRead, plan: str = "auto") -> str:
    """How ``read`` is read: ``pages`` (a query per page) or ``stream`` (one ordered query);
    ``auto`` pages when a source index leads with the pass's first ordering column, whatever
    the pass's size (the module docstring says why)."""
    if plan not in READ_PLANS:
        raise ValueError(f"unknown read plan {plan!r} (auto, pages or stream)")
    if plan == "auto":
        return "pages" if read.indexed else "stream"
    return plan


def read_pages(
    reads: list[KeysetRead], legacy: Engine, sizer: PageSizer, encoder: RowEncoder, reader: str,
    plan: str = "auto", log: Callable[[str], None] = lambda message: None,
) -> Iterator[Page]:
    """The pages of ``reads``, one pass after the other; ``reader`` is ``copy`` or ``dbapi``,
    ``plan`` as ``read_plan`` takes it. A streamed pass resumed after a lost connection is
    reported through ``log``."""
    for read in reads:
        if read_plan(read, plan) == "stream":
            yield from streamed_pages(read, legacy, sizer, encoder, reader, log)
        elif reader == "copy":
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
                _copy_out(cursor, b"COPY (" + statement + b") TO STDOUT", buffer)
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


def streamed_pages(
    read: KeysetRead, legacy: Engine, sizer: PageSizer, encoder: RowEncoder, reader: str,
    log: Callable[[str], None] = lambda message: None,
) -> Iterator[Page]:
    """The pages of one ordered query over ``read``, resumed after a lost connection from the
    last row handed out (the module docstring says when)."""
    stream = _copy_stream if reader == "copy" else _dbapi_stream
    last = None
    resumes = 0
    while True:
        progressed = False
        with legacy.connect() as conn:
            try:
                if last is not None:
                    # The new query starts strictly after ``last``: rows sharing it would be skipped.
                    _refuse_shared_position(read, conn.execute(read.position_count_query(last)).scalar_one(), last)
                    conn.rollback()
                with closing(stream(conn, read, last, sizer, encoder)) as pages:
                    for page, last_position in pages:
                        yield page
                        last, progressed = last_position, True
                return
            except CONNECTION_ERRORS as err:
                if not progressed:
                    raise
                fault = classify(err)
                timed_out = isinstance(getattr(err, "orig", err), psycopg2.errors.QueryCanceled)
                if not (fault.transient or timed_out):
                    raise
                conn.invalidate()
        resumes += 1
        log(
            f"{read.entry.qualified_name}: the source read stopped ({fault}); resume {resumes} reads "
            f"on after the last row read"
        )


def _dbapi_stream(
    conn: Connection, read: KeysetRead, last, sizer: PageSizer, encoder: RowEncoder
) -> Iterator[tuple[Page, list]]:
    """(page, its last row's position) of one ordered query fetched through the DBAPI driver, a
    chunk of rows at a time (``yield_per``: a server-side cursor on psycopg2, whose FETCHes are
    statements of their own; pymssql streams the result as it is fetched). The chunks are fetched
    in a thread of their own (``pushed``), so the source works while Python encodes."""
    positions = read.order_positions
    result = conn.execution_options(yield_per=ENCODE_ROWS).execute(read.stream_query(last))

    def fetch(put: Callable[[object], None]) -> None:
        while chunk := result.fetchmany(ENCODE_ROWS):
            put(chunk)

    chunks = pushed(fetch)
    carried: list = []
    previous = None
    exhausted = False
    try:
        while not exhausted:
            limit = sizer.rows()
            parts, rows, size, first, final = [], 0, 0, None, None
            while rows < limit and size < sizer.page_bytes:
                chunk = carried or next(chunks, None)
                if not chunk:
                    exhausted = True
                    break
                chunk, carried = chunk[:limit - rows], chunk[limit - rows:]
                if first is None:
                    first = chunk[0]
                text = encoder.encode_rows(chunk).encode("utf-8")
                parts.append(text)
                size += len(text)
                rows += len(chunk)
                final = chunk[-1]
            if not rows:
                return
            first_position = [first[i] for i in positions]
            if first_position == previous:
                _refuse_shared_position(read, 2, first_position)
            previous = [final[i] for i in positions]
            yield _observed(sizer, Page(b"".join(parts), rows)), previous
    finally:
        chunks.close()


def _copy_stream(
    conn: Connection, read: KeysetRead, last, sizer: PageSizer, encoder: RowEncoder
) -> Iterator[tuple[Page, list]]:
    """(page, its last row's position) of one ``COPY (ordered query) TO STDOUT``. psycopg2 writes
    the rows to a file object from inside ``copy_expert``, so the COPY runs in a thread of its
    own that hands out pages (``pushed``)."""
    if conn.dialect.name != "postgresql" or conn.dialect.driver != "psycopg2":
        raise ValueError("the copy reader reads a PostgreSQL (psycopg2) source only")
    positions = read.order_positions
    compiled = read.stream_query(last).compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    driver = conn.connection.driver_connection
    with driver.cursor() as cursor:
        # psycopg2 binds the parameters (as literals, client-side: COPY takes no parameters).
        statement = b"COPY (" + cursor.mogrify(str(compiled), compiled.params) + b") TO STDOUT"

    def produce(put: Callable[[object], None]) -> None:
        sink = _CopyPages(put, sizer)
        with driver.cursor() as cursor:
            _copy_out(cursor, statement, sink)
        sink.flush()

    pages = pushed(produce)
    finished = False
    try:
        previous = None
        for data, rows in pages:
            first_position = _line_fields(data[:data.index(b"\n") + 1], positions)
            if first_position == previous:
                _refuse_shared_position(read, 2, [_unescape(f) for f in first_position])
            previous = _line_fields(data[data.rfind(b"\n", 0, len(data) - 1) + 1:], positions)
            yield _observed(sizer, Page(data, rows)), [_unescape(f) for f in previous]
        finished = True
    finally:
        if not finished:
            try:
                driver.cancel()  # the COPY may be waiting for the server: end it there
            except psycopg2.Error:
                pass  # the connection is gone already
            pages.close()
            conn.invalidate()  # its COPY was cut short: never back into the pool


def _copy_out(cursor, statement: bytes, sink) -> None:
    """``COPY ... TO STDOUT`` into ``sink``. A connection lost during the COPY surfaces in
    psycopg2 as a bare DatabaseError ("error with status PGRES_COPY_OUT"); it is raised as the
    connection error it is, so it is resumed or retried like any other."""
    try:
        cursor.copy_expert(statement, sink)
    except psycopg2.DatabaseError:
        if not cursor.connection.closed:
            raise
        raise psycopg2.OperationalError("server closed the connection during COPY") from None


class _CopyPages:
    """The file object ``COPY ... TO STDOUT`` writes to (psycopg2 hands it one row at a time):
    cuts the text into pages of ``sizer.rows()`` rows or about ``sizer.page_bytes``."""

    def __init__(self, put: Callable[[object], None], sizer: PageSizer):
        self.put = put
        self.sizer = sizer
        self.parts: list[bytes] = []
        self.size = 0
        self.limit = sizer.rows()

    def write(self, data: bytes) -> None:
        self.parts.append(data)
        self.size += len(data)
        if len(self.parts) >= self.limit or self.size >= self.sizer.page_bytes:
            self.flush()

    def flush(self) -> None:
        data = b"".join(self.parts)
        end = data.rfind(b"\n") + 1  # a page holds whole rows; the rest waits for the next
        self.parts = [data[end:]] if end < len(data) else []
        self.size = len(data) - end
        if end:
            self.put((data[:end], data.count(b"\n", 0, end)))
        self.limit = self.sizer.rows()


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
    return [_unescape(f) for f in _line_fields(copy_text[start:], positions)]


def _line_fields(line: bytes, positions: list[int]) -> list[bytes]:
    """The fields at ``positions`` of one COPY text line (ending in a newline), as sent."""
    fields = line[:-1].split(b"\t")
    return [fields[i] for i in positions]


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


class _Stopped(Exception):
    """The consumer of ``pushed`` went away: its producer stops."""


def pushed(produce: Callable[[Callable[[object], None]], None], depth: int = 2) -> Iterator:
    """The items ``produce`` hands to the function it is given, produced in a background thread at
    most ``depth`` ahead; an error of ``produce`` is raised to the consumer. Once the consumer
    stops, that function raises in the producer, which is waited for."""
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(item: object) -> None:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.2)
                return
            except queue.Full:
                continue
        raise _Stopped

    def run() -> None:
        try:
            produce(put)
            put(done)
        except _Stopped:
            pass
        except BaseException as err:  # handed to the consumer, which re-raises it
            try:
                put(err)
            except _Stopped:
                pass

    worker = threading.Thread(target=run, name="keyset-reader", daemon=True)
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


def prefetched(pages: Iterator[Page], depth: int = 2) -> Iterator[Page]:
    """Iterate ``pages`` in a background thread, at most ``depth`` pages ahead."""

    def produce(put: Callable[[object], None]) -> None:
        try:
            for page in pages:
                put(page)
        finally:
            close = getattr(pages, "close", None)
            if close is not None:
                close()

    return pushed(produce, depth)
