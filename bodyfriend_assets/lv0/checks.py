"""Asset checks on lv0, partition by partition. Both block downstream assets when they fail.

- ``row_count_matches_source``: lv0 holds exactly as many rows as the source for the partition
  window (cursor in ``[D 00:00, D+1 00:00)`` KST; the whole table for snapshots), so a short load
  never feeds the layers above.
- ``keys_unique_and_not_null``: the catalog keys identify lv0's rows of the window.

They are evaluated in the lv0 step, right after the table's load (or alone, when only the
checks are selected).
"""

from __future__ import annotations

import warnings

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bodyfriend_assets.catalog import LegacyTable
from bodyfriend_assets.extraction.lv0_writer import LV0_SCHEMA
from bodyfriend_assets.extraction.source import SourceTable
from bodyfriend_assets.lv0.keys import lv0_key
from bodyfriend_assets.partitions import daily_partitions, naive_window

# Partitioned asset checks are labelled preview; they are what lets a check look at one day.
warnings.filterwarnings("ignore", message=".*partitions_def.*", category=dg.PreviewWarning)

ROW_COUNT = "row_count_matches_source"
KEYS = "keys_unique_and_not_null"


def lv0_check_specs(entry: LegacyTable) -> list[dg.AssetCheckSpec]:
    key = lv0_key(entry)
    return [
        dg.AssetCheckSpec(
            ROW_COUNT,
            asset=key,
            blocking=True,
            partitions_def=daily_partitions,
            description=f"`lv0.{entry.name}` has as many rows as `{entry.qualified_name}` for the partition.",
        ),
        dg.AssetCheckSpec(
            KEYS,
            asset=key,
            blocking=True,
            partitions_def=daily_partitions,
            description=f"{', '.join(f'`{k}`' for k in entry.keys)} identify the rows of `lv0.{entry.name}`.",
        ),
    ]


def evaluate_lv0_check(
    entry: LegacyTable, name: str, legacy: Engine, datahub: Engine, time_window
) -> dg.AssetCheckResult:
    """The result of check ``name`` on ``lv0.<entry>`` for the partitions of ``time_window``."""
    if name == ROW_COUNT:
        passed, metadata = _row_count(entry, legacy, datahub, time_window)
    elif name == KEYS:
        passed, metadata = _keys(entry, datahub, time_window)
    else:
        raise ValueError(f"lv0.{entry.name} has no check {name!r}")
    return dg.AssetCheckResult(asset_key=lv0_key(entry), check_name=name, passed=passed, metadata=metadata)


def _lv0_window(entry: LegacyTable, time_window) -> tuple[sa.TableClause, list]:
    columns = [sa.column(c) for c in entry.key_columns]
    if entry.cursor_column:
        columns.append(sa.column(entry.cursor_column))
    table = sa.table(entry.name, *columns, schema=LV0_SCHEMA)
    if entry.mode != "incremental":
        return table, []
    start, end = naive_window(time_window)
    cursor = table.c[entry.cursor_column]
    return table, [cursor >= start, cursor < end]


def _row_count(entry: LegacyTable, legacy: Engine, datahub: Engine, time_window) -> tuple[bool, dict]:
    start, end = naive_window(time_window)
    with legacy.connect() as conn:
        source = SourceTable.reflect(conn, entry)
        window = source.window(start, end) if entry.mode == "incremental" else None
        source_rows = conn.execute(source.count_query(window)).scalar_one()
    table, conditions = _lv0_window(entry, time_window)
    with datahub.connect() as conn:
        lv0_rows = conn.execute(
            sa.select(sa.func.count()).select_from(table).where(*conditions)
        ).scalar_one()
    return source_rows == lv0_rows, {"source_rows": source_rows, "lv0_rows": lv0_rows}


def _keys(entry: LegacyTable, datahub: Engine, time_window) -> tuple[bool, dict]:
    table, conditions = _lv0_window(entry, time_window)
    keys = [table.c[k] for k in entry.key_columns]
    with datahub.connect() as conn:
        null_keys = conn.execute(
            sa.select(sa.func.count()).select_from(table)
            .where(*conditions, sa.or_(*(k.is_(None) for k in keys)))
        ).scalar_one()
        duplicates = conn.execute(
            sa.select(*keys).where(*conditions).group_by(*keys)
            .having(sa.func.count() > 1).limit(5)
        ).fetchall()
    return null_keys == 0 and not duplicates, {
        "rows_with_null_key": null_keys,
        "duplicated_keys": ", ".join(str(tuple(r)) for r in duplicates) or "none",
    }
