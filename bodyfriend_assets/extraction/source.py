"""A legacy table as the extraction engine sees it: reflected columns and the queries to read it.

On SQL Server a catalog table is ``<DB>.<schema>.<TABLE>`` and a source-side expression calls
``<DB>.<schema>.<FUNCTION>``; on any other legacy URL (the stand-in) the table is schema ``<db>``,
table ``<table>``, and the function ``<db>.<function>``, all lower case. Source columns are matched
case-insensitively and named in lv0 by their lower-case names.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bodyfriend_assets.catalog import IDENTIFIER, LegacyTable
from bodyfriend_assets.extraction import keyset
from bodyfriend_assets.extraction.typemap import UNBOUNDED_WIDTH, estimated_width, lv0_type


class SourceTableError(LookupError):
    """The legacy table does not match its catalog entry; the message names both."""


@dataclass(frozen=True)
class SourceColumn:
    source_name: str  # as the source spells it
    name: str  # lower case: the lv0 column
    lv0_type: sa.types.TypeEngine
    width: int = 36  # estimated bytes of a value in COPY text (typemap.estimated_width)


@dataclass(frozen=True)
class SourceTable:
    entry: LegacyTable
    on_sql_server: bool
    columns: tuple[SourceColumn, ...]  # table columns, then expression columns
    # The source's indexes (primary key included), each as its lower-case column names in order.
    indexes: tuple[tuple[str, ...], ...] = ()

    @classmethod
    def reflect(cls, conn: Connection, entry: LegacyTable) -> SourceTable:
        on_sql_server = conn.dialect.name == "mssql"
        schema, name = _address(entry, on_sql_server)
        try:
            reflected = sa.inspect(conn).get_columns(name, schema=schema)
        except sa.exc.NoSuchTableError:
            reflected = []
        if not reflected:
            raise SourceTableError(
                f"legacy table {entry.qualified_name} not found on the source "
                f"(looked for {schema}.{name})"
            )
        columns = []
        for col in reflected:
            if not IDENTIFIER.match(col["name"]):
                raise SourceTableError(
                    f"{entry.qualified_name}: column {col['name']!r} is not a plain identifier"
                )
            columns.append(
                SourceColumn(
                    col["name"],
                    col["name"].lower(),
                    lv0_type(col["type"], table=entry.qualified_name, column=col["name"]),
                    estimated_width(col["type"]),
                )
            )
        widths = {c.name: c.width for c in columns}
        for expression in entry.expressions:
            # A decrypted value is about as long as the stored one (the check below names a
            # missing argument column).
            width = widths.get(expression.argument.lower(), UNBOUNDED_WIDTH)
            columns.append(SourceColumn(expression.name, expression.name.lower(), sa.Text(), width))
        table = cls(entry, on_sql_server, tuple(columns), _indexes(conn, schema, name))
        table._check_against_catalog()
        return table

    def _check_against_catalog(self) -> None:
        by_name = {c.name: c for c in self.columns}
        if len(by_name) != len(self.columns):
            raise SourceTableError(
                f"{self.entry.qualified_name}: column names collide when lower-cased "
                "(or an expression reuses a column name)"
            )
        wanted = list(self.entry.key_columns)
        if self.entry.cursor_column:
            wanted.append(self.entry.cursor_column)
        wanted += [e.argument.lower() for e in self.entry.expressions]
        missing = [w for w in wanted if w not in by_name]
        if missing:
            raise SourceTableError(
                f"{self.entry.qualified_name}: catalog names columns the source table lacks: "
                f"{missing}"
            )
        cursor = self.entry.cursor_column
        if cursor and not isinstance(by_name[cursor].lv0_type, sa.DateTime):
            raise SourceTableError(
                f"{self.entry.qualified_name}: cursor column {self.entry.cursor} must be a "
                f"date-time column, not {by_name[cursor].lv0_type}"
            )

    # -- queries ---------------------------------------------------------------------------

    @cached_property
    def _table_clause(self) -> sa.TableClause:
        schema, name = _address(self.entry, self.on_sql_server)
        expression_names = {e.name.lower() for e in self.entry.expressions}
        return sa.table(
            name,
            *(sa.column(c.source_name) for c in self.columns if c.name not in expression_names),
            schema=schema,
        )

    def _column(self, lower_name: str):
        source = self._table_clause
        for column in self.columns:
            if column.name == lower_name:
                return source.c[column.source_name]
        raise KeyError(lower_name)

    @property
    def select_list(self) -> list:
        """Every lv0 data column, in lv0 order: table columns, then source-side expressions."""
        source = self._table_clause
        expression_names = {e.name.lower() for e in self.entry.expressions}
        items = [source.c[c.source_name] for c in self.columns if c.name not in expression_names]
        for expression in self.entry.expressions:
            function = _function(self.entry, expression.function, self.on_sql_server)
            items.append(function(self._column(expression.argument.lower())).label(expression.name))
        return items

    @property
    def estimated_row_bytes(self) -> int:
        """A generous guess of a row's size in COPY text, from the declared column sizes."""
        return sum(c.width + 1 for c in self.columns)

    @property
    def order_by(self) -> list:
        """(cursor, key...) for incremental tables, (key...) for snapshots."""
        return self.read(None).order_by

    @property
    def order_names(self) -> tuple[str, ...]:
        return ((self.entry.cursor_column,) if self.entry.cursor_column else ()) + self.entry.key_columns

    def window(self, start: datetime | None, end: datetime | None):
        """Cursor in ``[start, end)`` for incremental tables; no restriction for snapshots."""
        if self.entry.cursor_column is None or start is None or end is None:
            return None
        cursor = self._column(self.entry.cursor_column)
        return sa.and_(cursor >= start, cursor < end)

    def read(self, where) -> KeysetRead:
        """A keyset pass over the rows ``where`` selects, in (cursor, key) order."""
        return KeysetRead(self, where, self.order_names)

    def load_reads(self, start: datetime | None, end: datetime, floating_from: datetime) -> list[KeysetRead]:
        """The keyset passes of one incremental load (``partitions`` explains the three kinds):

        - cursor in ``[start, end)``, in (cursor, key) order; ``start=None`` leaves it open below
          (the first partition holds every row stamped before it);
        - cursor at or after ``floating_from`` (and ``end``), in (cursor, key) order;
        - cursor NULL, in key order alone (NULL never compares, so it cannot be a keyset position).
        """
        cursor = self._column(self.entry.cursor_column)
        in_window = cursor < end if start is None else sa.and_(cursor >= start, cursor < end)
        return [
            self.read(in_window),
            self.read(cursor >= max(floating_from, end)),
            KeysetRead(self, cursor.is_(None), self.entry.key_columns),
        ]

    def key_scan(self) -> KeysetRead:
        """Every key of the source table, in key order: the keys a delete pass compares lv0 with."""
        return KeysetRead(self, None, self.entry.key_columns, columns=self.entry.key_columns)

    def with_keys(self, keys: Sequence[Sequence]):
        """A predicate selecting the rows whose catalog key is one of ``keys`` (bound values;
        expanded column by column, as SQL Server has no row-value IN)."""
        columns = [self._column(k) for k in self.entry.key_columns]
        return sa.or_(
            *(sa.and_(*(column == value for column, value in zip(columns, key))) for key in keys)
        )

    def page_query(self, window, last, page_size: int) -> sa.Select:
        return self.read(window).page_query(last, page_size)

    def count_query(self, window) -> sa.Select:
        return self.read(window).count_query()


@dataclass(frozen=True)
class KeysetRead:
    """One keyset pass over a source table: the rows ``where`` selects, ordered by the columns
    ``order`` names (lower case), with every lv0 column or only those ``columns`` names (lower
    case, table columns; they must include ``order``)."""

    source: SourceTable
    where: object  # a SQLAlchemy condition, or None for the whole table
    order: tuple[str, ...]
    columns: tuple[str, ...] | None = None  # None: every lv0 column

    def only(self, *names: str) -> KeysetRead:
        """The same pass reading only the columns ``names`` and its ordering columns (e.g. the
        keys and the cursor, which the lv0 check compares)."""
        return replace(self, columns=tuple(dict.fromkeys([*names, *self.order])))

    @property
    def entry(self) -> LegacyTable:
        return self.source.entry

    @property
    def select_list(self) -> list:
        if self.columns is not None:
            return [self.source._column(name) for name in self.columns]
        return self.source.select_list

    @property
    def column_names(self) -> list[str]:
        """The lv0 names of the columns a page holds, in order."""
        if self.columns is not None:
            return list(self.columns)
        return [c.name for c in self.source.columns]

    @property
    def order_by(self) -> list:
        return [self.source._column(n) for n in self.order]

    @property
    def indexed(self) -> bool:
        """Whether a source index leads with the first ordering column, so a keyset page can
        seek to its position instead of reading and sorting the rest of the pass."""
        return any(index[:1] == self.order[:1] for index in self.source.indexes)

    @property
    def order_positions(self) -> list[int]:
        """Where each ordering column sits in a fetched row (to take the next page's position)."""
        names = self.column_names
        return [names.index(n) for n in self.order]

    def page_query(self, last, page_size: int) -> sa.Select:
        return keyset.page_query(
            self.select_list, self.source._table_clause, self.order_by, self.where, last, page_size,
            row_values=not self.source.on_sql_server,
        )

    def stream_query(self, last) -> sa.Select:
        """Every row of the pass after ``last`` (from the start: None), in order: one stream."""
        return self.page_query(last, None)

    def page_end_query(self, last, page_size: int) -> sa.Select:
        """Where the page after ``last`` will end, read from the keyset index alone."""
        return keyset.page_end_query(self.page_query(last, page_size), self.order_by)

    def position_count_query(self, last) -> sa.Select:
        """How many source rows sit exactly at keyset position ``last`` (more than one means the
        catalog keys are not unique on the source, and keyset paging would skip the others)."""
        return (
            sa.select(sa.func.count())
            .select_from(self.source._table_clause)
            .where(*(column == value for column, value in zip(self.order_by, last)))
        )

    def count_query(self) -> sa.Select:
        query = sa.select(sa.func.count()).select_from(self.source._table_clause)
        return query if self.where is None else query.where(self.where)

    def null_key_query(self) -> sa.Select:
        """(rows with any NULL key column, then per key column the rows where it is NULL)."""
        keys = [self.source._column(k) for k in self.entry.key_columns]
        query = sa.select(
            sa.func.count(),
            *(sa.func.coalesce(sa.func.sum(sa.case((k.is_(None), 1), else_=0)), 0) for k in keys),
        ).select_from(self.source._table_clause)
        conditions = [c for c in (self.where, sa.or_(*(k.is_(None) for k in keys))) if c is not None]
        return query.where(*conditions)


def _indexes(conn: Connection, schema: str, name: str) -> tuple[tuple[str, ...], ...]:
    """The table's primary key and indexes as lower-case column lists (an expression's column,
    which has no name, ends the list)."""
    inspector = sa.inspect(conn)
    found = [inspector.get_pk_constraint(name, schema=schema).get("constrained_columns") or []]
    found += [index["column_names"] for index in inspector.get_indexes(name, schema=schema)]
    indexes = []
    for columns in found:
        named = []
        for column in columns:
            if column is None:
                break
            named.append(column.lower())
        if named:
            indexes.append(tuple(named))
    return tuple(indexes)


def _address(entry: LegacyTable, on_sql_server: bool) -> tuple[str, str]:
    if on_sql_server:
        # A two-part schema reaches across databases: RENTAL.dbo.R_ORDER_CONTRACT.
        return f"{entry.database}.{entry.schema_}", entry.table
    return entry.source_schema, entry.name


def _function(entry: LegacyTable, name: str, on_sql_server: bool):
    if on_sql_server:
        return getattr(getattr(getattr(sa.func, entry.database), entry.schema_), name)
    return getattr(getattr(sa.func, entry.source_schema), name.lower())
