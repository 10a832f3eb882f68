"""The one way rows are written into a Data Hub table from Python: COPY text, in a transaction.

``CopyWriter`` streams chunks of COPY text (``extraction.copy_text``) into one table through
psycopg2's ``copy_expert``, on the caller's connection, so the caller's transaction decides what
becomes visible: the lv0 loads (``extraction.lv0_writer``) and the IO manager (``io_manager``)
both commit once, at the end, and a failure rolls everything back.

``lock_for_load`` is how a load starts its transaction: loads of one table queue behind each
other (an advisory lock on the table's name), and any other lock on the table is waited for at
most ``lock_timeout_seconds`` (``table_locks``).

``refused_column`` names the column of a COPY row PostgreSQL refused, from the error's context
(``COPY t, line 3, column amount: "..."``), never its value.
"""

from __future__ import annotations

import io
import re

import psycopg2
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bodyfriend_assets.table_locks import set_lock_timeout

# psycopg2 reads COPY input from its file object in chunks of this size (its default is 8 kB:
# a Python call, and a hand-over of the GIL, every 8 kB).
COPY_CHUNK_BYTES = 1 << 20
# "COPY address_master, line 2, column amount: "x"": the column's name, before the value.
_COPY_CONTEXT_COLUMN = re.compile(r"^COPY [^,]+, line \d+, column ([^:]+):", re.MULTILINE)


def copy_statement(conn: Connection, table: sa.Table, columns: list[str] | None = None) -> str:
    """``COPY <table> (<columns>) FROM STDIN``, names quoted by the dialect."""
    preparer = conn.dialect.identifier_preparer
    names = ", ".join(preparer.quote(c) for c in (columns or [c.name for c in table.columns]))
    return f"COPY {preparer.format_table(table)} ({names}) FROM STDIN"


def lock_for_load(conn: Connection, qualified_name: str, lock_timeout_seconds: float) -> None:
    """Start a load of ``qualified_name`` (schema.table) in ``conn``'s transaction: wait for the
    table's other loads, then bound the wait for any other lock on it."""
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(qualified_name))))
    set_lock_timeout(conn, lock_timeout_seconds)


def refused_column(err: psycopg2.Error) -> str | None:
    """The column PostgreSQL named for a refused COPY row (its diagnostics, else its context)."""
    diag = getattr(err, "diag", None)
    column = getattr(diag, "column_name", None)
    if column:
        return column
    found = _COPY_CONTEXT_COLUMN.search(getattr(diag, "context", None) or "")
    return found.group(1) if found else None


class CopyWriter:
    """COPY text chunks into ``table`` (``columns``, in the chunks' field order) on ``conn``."""

    def __init__(self, conn: Connection, table: sa.Table, columns: list[str] | None = None):
        self._cursor = conn.connection.driver_connection.cursor()
        self._sql = copy_statement(conn, table, columns)

    def write(self, copy_text: bytes) -> None:
        """Write one chunk; psycopg2's errors pass through for the caller to name its table."""
        if copy_text:
            self._cursor.copy_expert(self._sql, io.BytesIO(copy_text), size=COPY_CHUNK_BYTES)
