"""What the Dagster catalog shows of a Data Hub table: its columns, types and row counts.

Every layer (lv0, lv1, lv2, hc) attaches Dagster's standard table metadata to a materialization,
read from the Data Hub's own catalog right after the load, so the UI lists the table's columns and
types and plots its size:

- ``dagster/column_schema``: the columns in table order, with their PostgreSQL types and whether
  they may be NULL;
- ``dagster/row_count``: the rows of the whole table;
- ``dagster/partition_row_count``: the rows of the partitions the run wrote (tables with a
  ``_partition`` column only; a range run counts the range);
- ``dagster/table_name``: ``<schema>.<table>``;
- ``note``, when those partitions hold no rows: the source had nothing for those days, which is
  said rather than left to be guessed from a 0.

``column_types`` and ``regclass`` are the one place that asks the catalog for a table's columns
or identity by name (the model refresh and the hc load and checks use them).

Sizes are shown for people (``human_size``: "3.4 MB"), a raw number beside them where a program
may want it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

PARTITION_COLUMN = "_partition"

_COLUMNS = sa.text(
    """
    SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, NOT a.attnotnull AS nullable
    FROM pg_attribute AS a
    JOIN pg_class AS c ON c.oid = a.attrelid
    JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE n.nspname = :schema AND c.relname = :table AND a.attnum > 0 AND NOT a.attisdropped
    ORDER BY a.attnum
    """
)


def table_metadata(
    conn: Connection, schema: str, table: str, partitions: tuple[str, str] | None = None
) -> dict[str, object]:
    """The standard table metadata of ``schema.table`` as it is now (see the module docstring).

    ``partitions`` (first and last daily partition key, inclusive) also counts the rows whose
    ``_partition`` falls in them, when the table has that column. A missing table raises,
    naming it."""
    columns = conn.execute(_COLUMNS, {"schema": schema, "table": table}).all()
    if not columns:
        raise LookupError(f"table {schema}.{table} is not in the Data Hub's catalog")
    relation = sa.table(table, *(sa.column(c.name) for c in columns), schema=schema)
    row_count = conn.execute(sa.select(sa.func.count()).select_from(relation)).scalar_one()
    partition_row_count = None
    if partitions is not None and any(c.name == PARTITION_COLUMN for c in columns):
        first, last = partitions
        partition_row_count = conn.execute(
            sa.select(sa.func.count())
            .select_from(relation)
            .where(relation.c[PARTITION_COLUMN].between(first, last))
        ).scalar_one()
    schema_value = dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=c.name,
                type=c.type,
                constraints=dg.TableColumnConstraints(nullable=bool(c.nullable)),
            )
            for c in columns
        ]
    )
    metadata: dict[str, object] = {
        "dagster/column_schema": schema_value,
        "dagster/row_count": row_count,
        "dagster/table_name": f"{schema}.{table}",
    }
    if partition_row_count is not None:
        metadata["dagster/partition_row_count"] = partition_row_count
        if partition_row_count == 0:
            metadata["note"] = empty_partition_note(partitions)
    return metadata


def regclass(conn: Connection, schema: str, table: str) -> sa.ColumnElement:
    """``to_regclass`` of ``schema.table`` (NULL when there is no such table), the name quoted as
    PostgreSQL reads it, so a name with capitals or odd characters finds its own table."""
    quoted = conn.dialect.identifier_preparer.format_table(sa.table(table, schema=schema))
    return sa.func.to_regclass(sa.literal(quoted))


def column_types(conn: Connection, schema: str, table: str) -> dict[str, str]:
    """Column name -> PostgreSQL type of ``schema.table``, in table order; empty if it does not exist."""
    attribute = sa.table(
        "pg_attribute",
        *(sa.column(c) for c in ("attrelid", "attname", "atttypid", "atttypmod", "attnum", "attisdropped")),
        schema="pg_catalog",
    )
    rows = conn.execute(
        sa.select(attribute.c.attname, sa.func.format_type(attribute.c.atttypid, attribute.c.atttypmod))
        .where(attribute.c.attrelid == regclass(conn, schema, table), attribute.c.attnum > 0,
               sa.not_(attribute.c.attisdropped))
        .order_by(attribute.c.attnum)
    ).all()
    return {column: type_ for column, type_ in rows}


def empty_partition_note(partitions: tuple[str, str]) -> str:
    """Why an incremental partition holds no rows: its source had none for those days."""
    first, last = partitions
    days = first if first == last else f"{first}..{last}"
    return f"no source rows changed on {days} (KST)"


def human_size(size_bytes: int) -> str:
    """``3569592`` -> ``"3.4 MB"`` (binary multiples, as ``ls -h`` and ``pg_size_pretty`` count)."""
    size = float(size_bytes)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if abs(size) < 1024 or unit == "TB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def size_metadata(name: str, size_bytes: int) -> dict[str, object]:
    """``{name: "3.4 MB", name + "_bytes": 3569592}``: the size for people, the number for programs."""
    return {name: human_size(size_bytes), f"{name}_bytes": size_bytes}


def window_partitions(start: datetime, end: datetime) -> tuple[str, str]:
    """The first and last daily partition key of a window ``[start, end)`` of naive KST times."""
    return start.date().isoformat(), (end - timedelta(microseconds=1)).date().isoformat()
