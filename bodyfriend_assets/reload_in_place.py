"""Reloading a whole table in place: the staged new contents merged into the existing table.

A snapshot lv0 table and a full lv1/lv2 model used to be rebuilt as ``<table>__incoming`` and
renamed over the old table. That dropped what others had built on the table (GRANTs, views,
comments) and a view on it made every reload fail. Here the table stays; in the load's one
transaction:

- rows whose key is gone from the new contents are deleted,
- rows whose values changed are updated (columns dropped from the source are set to NULL),
- rows with a new key are inserted;

an unchanged row is not touched, so a reload where 1% changed writes about 1% of the table, and
readers go on reading the old rows (row locks only, no ACCESS EXCLUSIVE lock) until the commit.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import ExecutableDDLElement


@dataclass(frozen=True)
class Changes:
    deleted: int
    updated: int
    inserted: int

    @property
    def rows(self) -> int:
        return self.deleted + self.updated + self.inserted


class Analyze(ExecutableDDLElement):
    """``ANALYZE <table> [(<columns>)]``: statistics for a table the next statements join or read
    right away (of ``columns`` only: a wide staged table's text columns take long to sample)."""

    def __init__(self, table: sa.Table, columns: Sequence[str] = ()):
        self.table = table
        self.columns = list(columns)


@compiles(Analyze)
def _analyze(element: Analyze, compiler, **kw) -> str:
    preparer = compiler.preparer
    columns = f" ({', '.join(preparer.quote(c) for c in element.columns)})" if element.columns else ""
    return f"ANALYZE {preparer.format_table(element.table)}{columns}"


def merge_staged(
    conn: Connection,
    target: sa.Table,
    staged: sa.Table,
    keys: Sequence[str],
    columns: Sequence[str],
    *,
    written: Mapping[str, sa.ColumnElement] | None = None,
    cleared: Sequence[str] = (),
) -> Changes:
    """Make ``target`` hold exactly the rows of ``staged`` (matched by ``keys``, which must be
    unique in ``staged``), touching only the rows that differ in ``columns``.

    ``written``: values set on every inserted or updated row besides ``columns`` (lineage);
    ``cleared``: target columns the staged rows no longer have, NULL in updated rows."""
    written = dict(written or {})
    conn.execute(Analyze(staged, keys))  # the planner joins by key: its row count and key statistics
    same_key = [target.c[k] == staged.c[k] for k in keys]
    deleted = conn.execute(sa.delete(target).where(~sa.exists().where(*same_key))).rowcount
    values = [c for c in columns if c not in keys]
    updated = 0
    if values:
        changed = sa.tuple_(*(target.c[c] for c in values)).is_distinct_from(
            sa.tuple_(*(staged.c[c] for c in values))
        )
        assignments = {c: staged.c[c] for c in values} | written | {c: sa.null() for c in cleared}
        updated = conn.execute(sa.update(target).values(assignments).where(*same_key, changed)).rowcount
    inserted_columns = [*columns, *written]
    inserted = conn.execute(
        sa.insert(target).from_select(
            inserted_columns,
            sa.select(*(staged.c[c] for c in columns), *written.values()).where(
                ~sa.exists().where(*same_key)
            ),
        )
    ).rowcount
    return Changes(deleted=deleted, updated=updated, inserted=inserted)


def replace_all(conn: Connection, target: sa.Table, staged: sa.Table, columns: Sequence[str]) -> Changes:
    """Make ``target`` hold exactly the rows of ``staged`` when no key identifies them (a model
    whose key repeats, which its key check reports): every row deleted and inserted again, in
    place, so grants and views stay."""
    deleted = conn.execute(sa.delete(target)).rowcount
    inserted = conn.execute(
        sa.insert(target).from_select(list(columns), sa.select(*(staged.c[c] for c in columns)))
    ).rowcount
    return Changes(deleted=deleted, updated=0, inserted=inserted)
