"""lv0: a raw copy of every legacy table, one asset per catalog entry (``lv0/<table>``).

Each asset is daily-partitioned in Korean time and backfills a range of days in one run and one
keyset pass. Incremental tables load the rows whose cursor falls in the partition window (plus
the entry's look-back) and upsert them by key; snapshot tables copy the whole table and swap it in.
"""

import warnings
from datetime import datetime, timezone

import dagster as dg

from bodyfriend_assets.catalog import Catalog, LegacyTable
from bodyfriend_assets.extraction.engine import extract_to_lv0
from bodyfriend_assets.extraction.lv0_writer import Lineage
from bodyfriend_assets.legacy import legacy_key
from bodyfriend_assets.partitions import daily_freshness, daily_partitions, naive_window
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets.retries import retry_connection_errors

# Single-run backfills are what make a year of partitions one keyset pass; the API is stable
# in practice but still labelled beta.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

GROUP = "lv0"
LARGE_TABLE_POOL = "large_tables"


def lv0_key(entry: LegacyTable) -> dg.AssetKey:
    return dg.AssetKey(["lv0", entry.name])


def build_lv0_asset(entry: LegacyTable) -> dg.AssetsDefinition:
    @dg.asset(
        key=lv0_key(entry),
        deps=[legacy_key(entry)],
        group_name=GROUP,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=LARGE_TABLE_POOL if entry.large else None,
        kinds={"postgres"},
        freshness_policy=daily_freshness,
        description=(
            f"Raw copy of {entry.qualified_name} in lv0.{entry.name} "
            f"({'rows changed in the partition, upserted by ' + ', '.join(entry.keys) if entry.mode == 'incremental' else 'whole-table snapshot'})."
        ),
        metadata={
            "table": f"lv0.{entry.name}",
            "partition_expr": "_partition",
            "mode": entry.mode,
            "large": entry.large,
        },
    )
    def _lv0(context: dg.AssetExecutionContext, legacy: LegacyDatabase, datahub: DataHub):
        start, end = naive_window(context.partition_time_window)
        keys = context.partition_key_range
        partition = keys.start if keys.start == keys.end else f"{keys.start}...{keys.end}"
        lineage = Lineage(
            loaded_at=datetime.now(timezone.utc),
            run_id=context.run.run_id,
            partition=keys.end if entry.mode == "snapshot" else partition,
        )
        with retry_connection_errors(context):
            result = extract_to_lv0(
                entry,
                legacy.engine(),
                datahub.engine(),
                start=start,
                end=end,
                lineage=lineage,
                log=context.log.info,
            )
        return dg.MaterializeResult(metadata={**result.as_metadata(), "partitions": partition})

    return _lv0


def lv0_assets(catalog: Catalog) -> list[dg.AssetsDefinition]:
    return [build_lv0_asset(entry) for entry in catalog.tables]
