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
        table = cls(entry, on_sql_server, tuple(columns))
        table._check_against_catalog()
        return table

    def keys_only(self) -> SourceTable:
        """The same table read for its cursor and key columns only: a key-only keyset scan
        with the page readers, in the same (cursor, key) order."""
        wanted = set(self.entry.key_columns) | {self.entry.cursor_column}
        return replace(self, columns=tuple(c for c in self.columns if c.name in wanted))

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
        read = {c.name for c in self.columns}
        for expression in self.entry.expressions:
            if expression.name.lower() not in read:
                continue  # a key-only read (``keys_only``)
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
        names = ([self.entry.cursor_column] if self.entry.cursor_column else []) + list(
            self.entry.key_columns
        )
        return [self._column(n) for n in names]

    @property
    def order_positions(self) -> list[int]:
        """Where each ordering column sits in a fetched row (to take the next page's position)."""
        names = [c.name for c in self.columns]
        ordering = ([self.entry.cursor_column] if self.entry.cursor_column else []) + list(
            self.entry.key_columns
        )
        return [names.index(n) for n in ordering]

    def window(self, start: datetime | None, end: datetime | None):
        """Cursor in ``[start, end)`` for incremental tables; no restriction for snapshots."""
        if self.entry.cursor_column is None or start is None or end is None:
            return None
        cursor = self._column(self.entry.cursor_column)
        return sa.and_(cursor >= start, cursor < end)

    def page_query(self, window, last, page_size: int) -> sa.Select:
        return keyset.page_query(
            self.select_list, self._table_clause, self.order_by, window, last, page_size,
            row_values=not self.on_sql_server,
        )

    def page_end_query(self, window, last, page_size: int) -> sa.Select:
        """Where the page after ``last`` will end, read from the keyset index alone."""
        return keyset.page_end_query(self.page_query(window, last, page_size), self.order_by)

    def position_count_query(self, last) -> sa.Select:
        """How many source rows sit exactly at keyset position ``last`` (more than one means the
        catalog keys are not unique on the source, and keyset paging would skip the others)."""
        return (
            sa.select(sa.func.count())
            .select_from(self._table_clause)
            .where(*(column == value for column, value in zip(self.order_by, last)))
        )

    def with_keys(self, keys: Sequence[Sequence]):
        """A predicate selecting the rows whose catalog key is one of ``keys`` (bound values;
        expanded column by column, as SQL Server has no row-value IN)."""
        columns = [self._column(k) for k in self.entry.key_columns]
        return sa.or_(
            *(sa.and_(*(column == value for column, value in zip(columns, key))) for key in keys)
        )

    def count_query(self, window) -> sa.Select:
        query = sa.select(sa.func.count()).select_from(self._table_clause)
        return query if window is None else query.where(window)


def _address(entry: LegacyTable, on_sql_server: bool) -> tuple[str, str]:
    if on_sql_server:
        # A two-part schema reaches across databases: RENTAL.dbo.R_ORDER_CONTRACT.
        return f"{entry.database}.{entry.schema_}", entry.table
    return entry.source_schema, entry.name


def _function(entry: LegacyTable, name: str, on_sql_server: bool):
    if on_sql_server:
        return getattr(getattr(getattr(sa.func, entry.database), entry.schema_), name)
    return getattr(getattr(sa.func, entry.source_schema), name.lower())
