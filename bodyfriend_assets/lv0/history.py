"""lv0 knows when it lost its history: an incremental table dropped, recreated or emptied while
Dagster still records its older partitions as materialized is reloaded, never carried on green.

An incremental lv0 table holds every partition ever loaded into it, but each load reads only its
own window. If ``lv0.<table>`` is dropped (and recreated by the next load) or emptied, the older
partitions' rows are gone while Dagster still shows those partitions materialized, and each
day's checks, which look at their own day, pass.

So the Data Hub keeps ``lv0_meta.loaded_partitions``: per load, the lv0 table's identity (its
oid, which a drop and re-create changes) and the range of partitions loaded into it. Before a
load, the partitions Dagster records as materialized (``instance.get_materialized_partitions``)
are compared with the ranges recorded for the table's current identity; an empty table holds
none. Any missing partition widens this load's window to everything from the first partition
(whose window is open at its start) to the end of the latest missing partition: one keyset pass
restores them, logged as a warning and counted in the metadata (``partitions_restored``).

A table with no record at all (it was loaded before this record existed) is trusted once and
recorded, unless it is missing or empty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from bodyfriend_assets.catalog import LegacyTable
from bodyfriend_assets.extraction.lv0_writer import LV0_SCHEMA, ensure_schema
from bodyfriend_assets.lv0.keys import lv0_key
from bodyfriend_assets.partitions import (
    FIRST_PARTITION_START, START_DATE, daily_partitions, last_partition_of, naive_kst,
)

HISTORY_SCHEMA = "lv0_meta"
loaded_partitions = sa.Table(
    "loaded_partitions",
    sa.MetaData(),
    sa.Column("table_name", sa.Text, nullable=False),  # the lv0 table, lower case
    sa.Column("table_oid", postgresql.OID, nullable=False),  # its identity when loaded
    sa.Column("first_partition", sa.Text, nullable=False),
    sa.Column("last_partition", sa.Text, nullable=False),
    sa.Column("run_id", sa.Text, nullable=False),
    sa.Column("loaded_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Index("loaded_partitions_table", "table_name"),
    schema=HISTORY_SCHEMA,
)


@dataclass(frozen=True)
class LoadWindow:
    """The naive KST window a load reads, and the partitions it records as loaded."""

    start: datetime
    end: datetime
    first_partition: str
    last_partition: str
    restored: int = 0  # partitions Dagster records that the table had lost


def window_to_load(
    context: dg.AssetExecutionContext, entry: LegacyTable, datahub: sa.Engine, start: datetime, end: datetime
) -> LoadWindow:
    """The run's window, or a wider one restoring the partitions ``lv0.<entry>`` has lost."""
    keys = context.partition_key_range
    window = LoadWindow(start, end, keys.start, keys.end)
    if entry.mode != "incremental":
        return window
    this_run = set(daily_partitions.get_partition_keys_in_range(keys))
    recorded = context.instance.get_materialized_partitions(lv0_key(entry)) - this_run
    if not recorded:
        return window
    with datahub.connect() as conn:
        held = _partitions_held(conn, entry)
    missing = sorted(recorded - held) if held is not None else []
    if not missing:
        return window
    until = max(end, naive_kst(daily_partitions.time_window_for_partition_key(missing[-1]).end))
    context.log.warning(
        f"lv0.{entry.name} lost {len(missing)} partition(s) Dagster records as materialized "
        f"({missing[0]} ... {missing[-1]}): it was dropped, recreated or emptied. This load "
        f"reloads everything before {until:%Y-%m-%d %H:%M} KST."
    )
    return LoadWindow(FIRST_PARTITION_START, until, START_DATE, last_partition_of(until), len(missing))


def record(datahub: sa.Engine, entry: LegacyTable, window: LoadWindow, run_id: str) -> dict:
    """Record the partitions this load put into ``lv0.<entry>``'s current identity; returns the
    materialization's metadata about it."""
    if entry.mode != "incremental":
        return {}
    _ensure_history_table(datahub)
    name = entry.name
    with datahub.begin() as conn:
        oid = _table_oid(conn, entry)
        known = conn.execute(
            sa.select(sa.func.count()).where(loaded_partitions.c.table_name == name)
        ).scalar_one()
        # Unknown until now: trusted from the first partition on (window_to_load let it pass).
        first = window.first_partition if known else START_DATE
        conn.execute(
            sa.delete(loaded_partitions).where(
                loaded_partitions.c.table_name == name, loaded_partitions.c.table_oid != oid
            )
        )
        conn.execute(
            sa.insert(loaded_partitions).values(
                table_name=name, table_oid=oid, first_partition=first,
                last_partition=window.last_partition, run_id=run_id,
            )
        )
    return {"partitions_restored": window.restored}


def _partitions_held(conn: sa.Connection, entry: LegacyTable) -> set[str] | None:
    """The partitions recorded as loaded into ``lv0.<entry>`` as it is now: none if it is
    missing or empty; None (trust Dagster) if it was never recorded."""
    oid = _table_oid(conn, entry)
    if oid is None:
        return set()
    table = sa.table(entry.name, schema=LV0_SCHEMA)
    if not conn.execute(sa.select(sa.exists().select_from(table))).scalar_one():
        return set()
    if _table_oid(conn, entry, loaded_partitions.name, HISTORY_SCHEMA) is None:
        return None
    ranges = conn.execute(
        sa.select(loaded_partitions.c.table_oid, loaded_partitions.c.first_partition, loaded_partitions.c.last_partition)
        .where(loaded_partitions.c.table_name == entry.name)
    ).all()
    if not ranges:
        return None
    held: set[str] = set()
    for table_oid, first, last in ranges:
        if table_oid == oid:
            held.update(daily_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first, last)))
    return held


def _table_oid(conn: sa.Connection, entry: LegacyTable, name: str | None = None, schema: str = LV0_SCHEMA):
    preparer = conn.dialect.identifier_preparer
    qualified = f"{preparer.quote_schema(schema)}.{preparer.quote(name or entry.name)}"
    return conn.execute(sa.select(sa.cast(sa.func.to_regclass(qualified), postgresql.OID))).scalar_one()


def _ensure_history_table(datahub: sa.Engine) -> None:
    ensure_schema(datahub, HISTORY_SCHEMA)
    with datahub.begin() as conn:
        # Two first loads creating the table at once would collide (see ensure_schema).
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("create lv0_meta tables"))))
        loaded_partitions.create(conn, checkfirst=True)
