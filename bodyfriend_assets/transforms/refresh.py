"""Refreshing one model's table inside PostgreSQL, in one transaction; no row passes through Python.

- incremental: the model's rows for the partition window are written to a temporary staging
  table, then upserted into ``<layer>.<name>`` by key. A row whose values did not change is not
  touched, so re-running a window changes nothing. Then the rows the SELECT can no longer
  produce (their driving row or a required parent deleted below) are deleted
  (``transforms.deletes``), whatever partition they are in. The table is created on first use from the
  model's shape, with its key as primary key and an index on ``_partition``.
- full: the model is built into a temporary table, which is then merged into the table in place
  (``reload_in_place``): only rows that differ are deleted, updated or inserted, and the table
  keeps its grants, the views built on it and its comments. Readers see the old rows or the new,
  never a half-built table, and are not blocked (row locks only).

Either way a failure rolls everything back. Identifiers reach SQL through SQLAlchemy (validated
model names, quoted by its preparer); the partition bounds are bound parameters.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from datetime import date, timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTableAs

from bodyfriend_assets.table_metadata import column_types, table_metadata
from bodyfriend_assets.reload_in_place import Analyze, merge_staged, replace_all
from bodyfriend_assets.table_locks import DEFAULT_LOCK_TIMEOUT_SECONDS, naming_lock_holders, set_lock_timeout
from bodyfriend_assets.transforms.deletes import vanished_rows
from bodyfriend_assets.transforms.models import PARTITION_COLUMN, SqlModel

TEMPORARY_SCHEMA = "pg_temp"  # the session's own schema of temporary tables


# -- what a refresh reports ---------------------------------------------------------------------


@dataclass(frozen=True)
class PartitionWindow:
    """The partitions a run covers: inclusive ``'YYYY-MM-DD'`` keys."""

    start: str
    end: str

    def parameters(self, model: SqlModel) -> dict[str, str]:
        """``:partition_start`` / ``:partition_end`` for ``model``, its look-back included."""
        start = date.fromisoformat(self.start) - timedelta(days=model.lookback_days)
        return {"partition_start": start.isoformat(), "partition_end": self.end}


@dataclass(frozen=True)
class RefreshResult:
    rows_changed: int  # rows inserted, updated (or, for full models, deleted)
    rows: int  # rows in the table afterwards
    rows_read: int  # rows the model returned
    seconds: float
    table: dict = field(default_factory=dict)  # the catalog's table metadata
    rows_deleted: int = 0  # incremental: rows whose source rows are gone (full: in rows_changed)
    snapshot: str | None = None  # pg_current_snapshot() when the refresh began (for its checks)

    def as_metadata(self) -> dict[str, object]:
        return self.table | {
            "rows_changed": self.rows_changed,
            "rows": self.rows,
            "rows_read": self.rows_read,
            "rows_deleted": self.rows_deleted,
            "seconds": round(self.seconds, 3),
        }


class RefreshError(RuntimeError):
    """A model returned rows its table cannot take; nothing was written. Names the model file."""


# -- the refresh -------------------------------------------------------------------------------


def refresh_model(conn: Connection, model: SqlModel, window: PartitionWindow,
                  lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS) -> RefreshResult:
    """Refresh ``model``'s table for ``window`` and commit; roll back everything on error. A lock
    on the table held longer than ``lock_timeout_seconds`` fails it, naming who holds it."""
    began = time.monotonic()
    conn.execute(sa.schema.CreateSchema(model.layer, if_not_exists=True))
    # Two runs refreshing one table (a backfill beside the nightly run) take turns.
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(model.qualified_name))))
    set_lock_timeout(conn, lock_timeout_seconds)
    snapshot = conn.execute(sa.select(sa.cast(sa.func.pg_current_snapshot(), sa.Text))).scalar_one()
    rows_deleted = 0
    reads = sorted(".".join(table) for table in model.upstream)
    with naming_lock_holders(conn, model.qualified_name, lock_timeout_seconds, reads):
        if model.mode == "incremental":
            rows_changed, rows_read, rows_deleted = _upsert(conn, model, window)
        else:
            rows_changed, rows_read = _rebuild(conn, model)
        rows = conn.execute(sa.select(sa.func.count()).select_from(_table(model.name, model.layer))).scalar_one()
        table = table_metadata(
            conn, model.layer, model.name, (window.start, window.end) if model.mode == "incremental" else None
        )
        conn.commit()
    return RefreshResult(rows_changed, rows, rows_read, time.monotonic() - began, table, rows_deleted, snapshot)


def model_select(model: SqlModel, window: PartitionWindow | None = None) -> sa.Select:
    """``SELECT * FROM (<the model's SQL>) AS model`` with the window's bounds bound."""
    text = sa.text(model.sql + "\n")  # a trailing comment line must not swallow the ')'
    if model.mode == "incremental":
        if window is None:
            raise ValueError(f"{model.qualified_name} is incremental: a partition window is needed")
        text = text.bindparams(**window.parameters(model))
    return sa.select(sa.literal_column("*")).select_from(text.columns().subquery("model"))


def _upsert(conn: Connection, model: SqlModel, window: PartitionWindow) -> tuple[int, int, int]:
    staging_name = f"_stage_{model.name}"
    conn.execute(sa.schema.DropTable(_table(staging_name, TEMPORARY_SCHEMA), if_exists=True))
    create = CreateTableAs(model_select(model, window), staging_name, temporary=True)
    rows_read = conn.execute(create).rowcount
    columns = column_types(conn, TEMPORARY_SCHEMA, staging_name)
    _require_columns(model, columns, [*model.key, PARTITION_COLUMN])
    staging = _table(staging_name, TEMPORARY_SCHEMA, columns)
    _refuse_bad_keys(conn, model, staging)

    target = _table(model.name, model.layer, columns)
    existing = column_types(conn, model.layer, model.name)
    if not existing:
        _create_incremental_table(conn, model, staging, target)
    elif existing != columns:
        raise RefreshError(_shape_changed(model, existing, columns))

    insert = postgresql.insert(target).from_select(list(columns), sa.select(*staging.c))
    non_keys = [c for c in columns if c not in model.key]
    if non_keys:
        statement = insert.on_conflict_do_update(
            index_elements=list(model.key),
            set_={c: insert.excluded[c] for c in non_keys},
            where=sa.tuple_(*(target.c[c] for c in non_keys)).is_distinct_from(
                sa.tuple_(*(insert.excluded[c] for c in non_keys))
            ),
        )
    else:
        statement = insert.on_conflict_do_nothing(index_elements=list(model.key))
    changed = conn.execute(statement).rowcount
    conn.execute(sa.schema.DropTable(staging))
    if changed and not existing:  # a new table (often a first backfill): give the planner statistics
        conn.execute(Analyze(target))
    deleted = _delete_vanished(conn, model, target) if existing else 0
    return changed, rows_read, deleted


# The SELECT over every partition (a model whose SQL does not show where its rows come from).
EVERY_PARTITION = PartitionWindow("1000-01-01", "9999-12-31")


def _delete_vanished(conn: Connection, model: SqlModel, target: sa.Table) -> int:
    """Delete the rows the model's SELECT can no longer produce; returns how many."""
    every_partition = model_select(model, EVERY_PARTITION).with_only_columns(
        *(sa.literal_column(k) for k in model.key), maintain_column_froms=False
    )
    return conn.execute(sa.delete(target).where(vanished_rows(model, target, every_partition))).rowcount


def _create_incremental_table(conn: Connection, model: SqlModel, staging: sa.Table, target: sa.Table) -> None:
    conn.execute(CreateTableAs(sa.select(*staging.c).where(sa.false()), model.name, schema=model.layer))
    primary_key = sa.PrimaryKeyConstraint(*model.key, name=_index_name(model.name, ("pkey",)))
    target.append_constraint(primary_key)
    conn.execute(sa.schema.AddConstraint(primary_key))
    _create_indexes(conn, model, target, [(PARTITION_COLUMN,), *model.indexes])


def _rebuild(conn: Connection, model: SqlModel) -> tuple[int, int]:
    staging_name = f"_rebuild_{model.name}"
    conn.execute(sa.schema.DropTable(_table(staging_name, TEMPORARY_SCHEMA), if_exists=True))
    rows_read = conn.execute(CreateTableAs(model_select(model), staging_name, temporary=True)).rowcount
    columns = column_types(conn, TEMPORARY_SCHEMA, staging_name)
    _require_columns(model, columns, model.key)
    staged = _table(staging_name, TEMPORARY_SCHEMA, columns)
    target = _table(model.name, model.layer, columns)

    existing = column_types(conn, model.layer, model.name)
    if not existing:
        conn.execute(CreateTableAs(sa.select(*staged.c), model.name, schema=model.layer))
        # Not unique: a duplicated key is the key check's to report (and block on), not a failed build.
        _create_indexes(conn, model, target, [model.key, *model.indexes])
        conn.execute(Analyze(target))
        return rows_read, rows_read
    if existing != columns:
        _follow_model_columns(conn, model, existing, columns)
    _create_indexes(conn, model, target, [model.key, *model.indexes])  # an index the header added
    keys = [staged.c[k] for k in model.key]
    keys_identify_rows = conn.execute(
        sa.select(sa.literal(1)).select_from(staged).group_by(*keys)
        .having(sa.or_(sa.func.count() > 1, *(k.is_(None) for k in keys))).limit(1)
    ).first() is None
    if keys_identify_rows:
        changes = merge_staged(conn, target, staged, model.key, list(columns))
    else:
        changes = replace_all(conn, target, staged, list(columns))
    conn.execute(sa.schema.DropTable(staged))
    return changes.rows, rows_read


def _follow_model_columns(conn: Connection, model: SqlModel, existing: dict[str, str], columns: dict[str, str]) -> None:
    """The model's SELECT changed shape (a new version of its file): add its new columns, drop the
    ones it no longer returns and retype the others, in place; every row is then rewritten from
    the model, so a retyped column starts empty. A view using a dropped or retyped column makes
    PostgreSQL refuse, naming the view."""
    preparer = conn.dialect.identifier_preparer
    table = preparer.format_table(_table(model.name, model.layer))
    for name, type_ in columns.items():
        column = preparer.quote(name)
        if name not in existing:
            conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column} {type_}")
        elif existing[name] != type_:
            conn.exec_driver_sql(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE {type_} USING NULL")
    for name in existing:
        if name not in columns:
            conn.exec_driver_sql(f"ALTER TABLE {table} DROP COLUMN {preparer.quote(name)}")


# -- helpers -----------------------------------------------------------------------------------


def _create_indexes(conn: Connection, model: SqlModel, target: sa.Table, indexes) -> None:
    for columns in indexes:
        index = sa.Index(_index_name(model.name, columns), *(target.c[c] for c in columns))
        conn.execute(sa.schema.CreateIndex(index, if_not_exists=True))


def _table(name: str, schema: str, columns: dict[str, str] | None = None) -> sa.Table:
    return sa.Table(name, sa.MetaData(), *(sa.Column(c) for c in (columns or {})), schema=schema)


def _require_columns(model: SqlModel, columns: dict[str, str], required) -> None:
    missing = [c for c in required if c not in columns]
    if missing:
        raise RefreshError(
            f"{model.file}: the SELECT returns no column {', '.join(missing)} "
            f"(it returns {', '.join(columns)})"
        )


def _refuse_bad_keys(conn: Connection, model: SqlModel, staging: sa.Table) -> None:
    keys = [staging.c[k] for k in model.key]
    bad = conn.execute(
        sa.select(*keys, sa.func.count().label("rows"))
        .group_by(*keys)
        .having(sa.or_(sa.func.count() > 1, *(k.is_(None) for k in keys)))
        .limit(3)
    ).all()
    if bad:
        examples = "; ".join(
            ", ".join(f"{k}={v!r}" for k, v in zip(model.key, row[:-1])) + f" ({row[-1]} rows)" for row in bad
        )
        raise RefreshError(
            f"{model.file}: the model returned NULL or repeated keys "
            f"({', '.join(model.key)}) for the window: {examples}. {model.qualified_name} was left unchanged"
        )


def _shape_changed(model: SqlModel, existing: dict[str, str], returned: dict[str, str]) -> str:
    added = [f"{c} {t}" for c, t in returned.items() if c not in existing]
    gone = [c for c in existing if c not in returned]
    retyped = [
        f"{c} ({existing[c]} -> {t})" for c, t in returned.items() if c in existing and existing[c] != t
    ]
    order = "" if added or gone or retyped else " (same columns, another order)"
    return (
        f"{model.qualified_name} no longer matches {model.file}{order}: "
        f"new columns {added}, columns gone {gone}, changed types {retyped}. An incremental table "
        f"only ever receives the changed rows: drop {model.qualified_name} and backfill it."
    )


def _index_name(table: str, columns: tuple[str, ...]) -> str:
    name = f"{table}_{'_'.join(columns)}"
    if len(name) <= 63:
        return name
    return f"{name[:54]}_{hashlib.sha1(name.encode()).hexdigest()[:8]}"
