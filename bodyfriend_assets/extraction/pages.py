"""Keyset page readers: each yields pages as COPY text, ready for the lv0 writer.

- ``dbapi_pages`` runs each page query through the DBAPI driver (pymssql for SQL Server) and
  encodes the rows in Python. It works on any source.
- ``copy_pages`` is for a PostgreSQL source (the stand-in): it wraps each page query in
  ``COPY (...) TO STDOUT``, so rows travel as the server's own COPY text, straight into the target's
  ``COPY FROM STDIN`` with no per-value Python work. Only the last line of a page is decoded, to take
  the next page's keyset position from it.

``prefetched`` runs a reader in a thread, one or two pages ahead of the writer, so reading and
writing overlap while memory stays bounded by the queue.
"""

from __future__ import annotations

import io
import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.engine import Engine

from bodyfriend_assets.extraction.copy_text import RowEncoder
from bodyfriend_assets.extraction.lv0_writer import Lv0WriteError
from bodyfriend_assets.extraction.source import SourceTable


@dataclass(frozen=True)
class Page:
    copy_text: bytes
    rows: int


def dbapi_pages(
    source: SourceTable, legacy: Engine, window, page_size: int, encoder: RowEncoder
) -> Iterator[Page]:
    positions = source.order_positions
    last = None
    with legacy.connect() as conn:
        while True:
            rows = conn.execute(source.page_query(window, last, page_size)).fetchall()
            if not rows:
                return
            last = [rows[-1][i] for i in positions]
            page = Page(encoder.encode_page(rows), len(rows))
            del rows
            yield page
            if page.rows < page_size:
                return
            at_last = conn.execute(source.position_count_query(last)).scalar_one()
            _refuse_shared_position(source, at_last, last)
            # READ COMMITTED: each page is its own statement; end the implicit transaction so no
            # lock or snapshot is held between pages.
            conn.rollback()


def copy_pages(source: SourceTable, legacy: Engine, window, page_size: int) -> Iterator[Page]:
    if legacy.dialect.name != "postgresql" or legacy.dialect.driver != "psycopg2":
        raise ValueError("copy_pages reads a PostgreSQL (psycopg2) source only")
    positions = source.order_positions
    last = None
    with legacy.connect() as conn:
        driver = conn.connection.driver_connection
        with driver.cursor() as cursor:
            while True:
                compiled = source.page_query(window, last, page_size).compile(
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
                yield Page(data, rows)
                del data
                if rows < page_size:
                    return
                at_last = conn.execute(source.position_count_query(last)).scalar_one()
                _refuse_shared_position(source, at_last, last)
                conn.rollback()


def _refuse_shared_position(source: SourceTable, rows_at_position: int, last: list) -> None:
    """A page must never end between two rows with the same (cursor, key): the next page starts
    strictly after that position and would skip the others. Such rows mean the catalog keys are
    not unique on the source, which is refused rather than loaded short."""
    if rows_at_position > 1:
        entry = source.entry
        names = ([entry.cursor] if entry.cursor else []) + list(entry.keys)
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
