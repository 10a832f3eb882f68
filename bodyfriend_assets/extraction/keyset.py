"""Keyset pagination: each page starts strictly after the last row the previous page returned.

Paging by position (``ROW_NUMBER() ... BETWEEN a AND b`` or OFFSET) shifts every later page when
a row is inserted ahead of the reader, losing and duplicating rows at once. A keyset page instead
asks for rows ordered after a concrete (cursor, key) tuple, so concurrent inserts elsewhere in the
order cannot move it. SQL Server has no row-value comparison, so ``(a, b) > (x, y)`` is expanded
to ``a > x OR (a = x AND b > y)``, led by ``a >= x`` so the first column can still seek an index.
The position comes from the row the database returned; keys are never compared in Python (the
server's collation decides the order).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement


def after(order_by: Sequence[ColumnElement], last: Sequence) -> ColumnElement:
    """Predicate selecting rows that sort strictly after ``last`` in ``order_by`` (ascending)."""
    if len(order_by) != len(last):
        raise ValueError("one last value per ordering column is needed")
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
    page_size: int,
) -> sa.Select:
    """The query for one page: rows in the window, after ``last``, in (cursor, key) order."""
    conditions = [c for c in (window, after(order_by, last) if last is not None else None) if c is not None]
    query = sa.select(*select_list).select_from(source)
    if conditions:
        query = query.where(*conditions)
    return query.order_by(*order_by).limit(page_size)
