"""Asset checks on lv0, partition by partition. Both block downstream assets when they fail.

- ``row_count_matches_source``: lv0 holds exactly as many rows as the source for the partition
  window (cursor in ``[D 00:00, D+1 00:00)`` KST; the whole table for snapshots), so a short load
  never feeds the layers above.
- ``keys_unique_and_not_null``: the catalog keys identify lv0's rows of the window.
"""

import warnings

import dagster as dg
import sqlalchemy as sa

from bodyfriend_assets.catalog import LegacyTable
from bodyfriend_assets.extraction.lv0_writer import LV0_SCHEMA
from bodyfriend_assets.extraction.source import SourceTable
from bodyfriend_assets.lv0 import lv0_key
from bodyfriend_assets.partitions import daily_partitions, naive_window
from bodyfriend_assets.resources import DataHub, LegacyDatabase

# Partitioned asset checks are labelled preview; they are what lets a check look at one day.
warnings.filterwarnings("ignore", message=".*partitions_def.*", category=dg.PreviewWarning)


def _lv0_window(entry: LegacyTable, context) -> tuple[sa.TableClause, list]:
    columns = [sa.column(c) for c in entry.key_columns]
    if entry.cursor_column:
        columns.append(sa.column(entry.cursor_column))
    table = sa.table(entry.name, *columns, schema=LV0_SCHEMA)
    if entry.mode != "incremental":
        return table, []
    start, end = naive_window(context.partition_time_window)
    cursor = table.c[entry.cursor_column]
    return table, [cursor >= start, cursor < end]


def build_lv0_checks(entry: LegacyTable) -> list[dg.AssetChecksDefinition]:
    key = lv0_key(entry)

    @dg.asset_check(
        asset=key,
        name="row_count_matches_source",
        blocking=True,
        partitions_def=daily_partitions,
        description=f"lv0.{entry.name} has as many rows as {entry.qualified_name} for the partition.",
    )
    def row_count_matches_source(context, legacy: LegacyDatabase, datahub: DataHub):
        start, end = naive_window(context.partition_time_window)
        with legacy.engine().connect() as conn:
            source = SourceTable.reflect(conn, entry)
            window = source.window(start, end) if entry.mode == "incremental" else None
            source_rows = conn.execute(source.count_query(window)).scalar_one()
        table, conditions = _lv0_window(entry, context)
        with datahub.engine().connect() as conn:
            lv0_rows = conn.execute(
                sa.select(sa.func.count()).select_from(table).where(*conditions)
            ).scalar_one()
        return dg.AssetCheckResult(
            passed=source_rows == lv0_rows,
            metadata={"source_rows": source_rows, "lv0_rows": lv0_rows},
        )

    @dg.asset_check(
        asset=key,
        name="keys_unique_and_not_null",
        blocking=True,
        partitions_def=daily_partitions,
        description=f"{', '.join(entry.keys)} identify the rows of lv0.{entry.name}.",
    )
    def keys_unique_and_not_null(context, datahub: DataHub):
        table, conditions = _lv0_window(entry, context)
        keys = [table.c[k] for k in entry.key_columns]
        with datahub.engine().connect() as conn:
            null_keys = conn.execute(
                sa.select(sa.func.count()).select_from(table)
                .where(*conditions, sa.or_(*(k.is_(None) for k in keys)))
            ).scalar_one()
            duplicates = conn.execute(
                sa.select(*keys).where(*conditions).group_by(*keys)
                .having(sa.func.count() > 1).limit(5)
            ).fetchall()
        return dg.AssetCheckResult(
            passed=null_keys == 0 and not duplicates,
            metadata={
                "rows_with_null_key": null_keys,
                "duplicated_keys": ", ".join(str(tuple(r)) for r in duplicates) or "none",
            },
        )

    return [row_count_matches_source, keys_unique_and_not_null]
