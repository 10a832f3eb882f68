"""A legacy engine that reports each page query a load runs, so a test can act mid-load (commit
a row, kill the process) at a known page. Imported by the tests and by the child processes they
start."""

from __future__ import annotations

from collections.abc import Callable

import psycopg2.extensions
import sqlalchemy as sa


def page_observing_engine(url, table: str, on_page: Callable[[], None], **connect_args) -> sa.engine.Engine:
    """An engine on ``url`` whose cursors call ``on_page()`` once each page query of ``table``
    (``schema.table`` as the stand-in names it) has run.

    Page queries are the table's ``... LIMIT`` statements, whether executed for rows (dbapi
    reader) or wrapped in ``COPY (...) TO STDOUT`` (copy reader)."""

    def seen(statement) -> None:
        sql = statement.decode() if isinstance(statement, bytes) else str(statement)
        if table in sql and "LIMIT" in sql.upper():
            on_page()

    class PageObservingCursor(psycopg2.extensions.cursor):
        def execute(self, query, *args, **kwargs):
            result = super().execute(query, *args, **kwargs)
            seen(query)
            return result

        def copy_expert(self, sql, *args, **kwargs):
            result = super().copy_expert(sql, *args, **kwargs)
            seen(sql)
            return result

    return sa.create_engine(url, connect_args={**connect_args, "cursor_factory": PageObservingCursor})
