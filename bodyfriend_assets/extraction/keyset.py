"""Keyset pagination: each page starts strictly after the last row the previous page returned.

Paging by position (``ROW_NUMBER() ... BETWEEN a AND b`` or OFFSET) shifts every later page when
a row is inserted ahead of the reader, losing and duplicating rows at once. A keyset page instead
asks for rows ordered after a concrete (cursor, key) tuple, so concurrent inserts elsewhere in the
order cannot move it.

PostgreSQL compares row values, and ``(a, b) > (x, y)`` is an index condition on an index over
(a, b): the scan starts exactly at the position. SQL Server has no row-value comparison, so there
the predicate is expanded to ``a > x OR (a = x AND b > y)``, led by ``a >= x`` so the first column
can still seek an index (PostgreSQL would seek on ``a >= x`` only and then fetch and discard every
row sharing ``a = x``: tens of thousands per page on the ERP's nightly batch stamps).
The position comes from the row the database returned; keys are never compared in Python (the
server's collation decides the order).

Without a limit the same query is one ordered stream of the rest of the window (``pages`` reads it
that way when no source index serves the order, and resumes it from the last row read).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement


def after(order_by: Sequence[ColumnElement], last: Sequence, *, row_values: bool = False) -> ColumnElement:
    """Predicate selecting rows that sort strictly after ``last`` in ``order_by`` (ascending).

    ``row_values``: the database compares row values (PostgreSQL); otherwise (SQL Server) the
    comparison is expanded column by column.
    """
    if len(order_by) != len(last):
        raise ValueError("one last value per ordering column is needed")
    if row_values and len(order_by) > 1:
        return sa.tuple_(*order_by) > sa.tuple_(*last)
    alternatives = []
    for position, column in enumerate(order_by):
        equal_prefix = [order_by[i] == last[i] for i in range(position)]
        alternatives.append(sa.and_(*equal_prefix, column > last[position]))
    expanded = sa.or_(*alternatives)
    if len(order_by) == 1:
        return expanded
    return sa.and_(order_by[0] >= last[0], expanded)


def page_query(
    select_list: Sequence[ColumnElement],
    source: sa.TableClause,
    order_by: Sequence[ColumnElement],
    window: ColumnElement | None,
    last: Sequence | None,
    page_size: int | None,
    *,
    row_values: bool = False,
) -> sa.Select:
    """The query for one page: rows in the window, after ``last``, in (cursor, key) order;
    ``page_size=None``: all of them, one ordered stream."""
    position = after(order_by, last, row_values=row_values) if last is not None else None
    conditions = [c for c in (window, position) if c is not None]
    query = sa.select(*select_list).select_from(source)
    if conditions:
        query = query.where(*conditions)
    query = query.order_by(*order_by)
    return query if page_size is None else query.limit(page_size)


def page_end_query(page: sa.Select, order_by: Sequence[ColumnElement]) -> sa.Select:
    """The position (the ordering columns) of the last row ``page`` would return: the page's
    ordering columns only, read back to front. No OFFSET: ``TOP n``/``LIMIT n`` inside, ``TOP 1``
    outside."""
    positions = page.with_only_columns(*order_by).subquery("page_end")
    return sa.select(*positions.c).order_by(*(c.desc() for c in positions.c)).limit(1)
