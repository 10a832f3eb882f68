"""lv0: a raw copy of every legacy table, one asset per catalog entry (``lv0/<table>``).

Each asset is daily-partitioned in Korean time and backfills a range of days in one run and one
keyset pass. Incremental tables load the rows whose cursor falls in the partition window (plus
the entry's look-back) and upsert them by key; snapshot tables copy the whole table and merge it
in place.

The assets are computed by a few subsettable multi-assets, so a daily run starts a few processes
for lv0, not one per table and check (process start-up cost more than loading a small table):

- ``lv0_tables_1``, ``lv0_tables_2``: the small tables, dealt between the steps in catalog order
  (so two step workers share them), each step loading its tables one after the other;
- ``lv0_large_tables``: the tables marked ``large``, one after the other, in the ``large_tables``
  pool, so large extractions never overlap each other (in one run or across runs) while the
  small tables load beside them.

Each table is still its own asset, with its own materialization and checks (``lv0.checks``),
evaluated right after its load (``materialize_in_order``). A table whose load fails, or fails a
blocking check, is reported and the others still load; the layers above skip only what reads it,
and the run ends failed, naming it.

A table with ``load_days`` in the catalog is not read on its other days (``lv0.cadence``): those
partitions are materialized without a load, saying so.
"""

from collections.abc import Sequence
from datetime import datetime, timezone

import dagster as dg

from bodyfriend_assets.catalog import Catalog, LegacyTable
from bodyfriend_assets.extraction.engine import extract_to_lv0
from bodyfriend_assets.extraction.lv0_writer import Lineage
from bodyfriend_assets.legacy import legacy_key
from bodyfriend_assets.lv0 import history
from bodyfriend_assets.lv0.cadence import load_partitions, off_day_metadata, off_day_reason
from bodyfriend_assets.lv0.checks import evaluate_lv0_check, lv0_check_specs
from bodyfriend_assets.lv0.keys import lv0_key
from bodyfriend_assets.materialize_in_order import StepItem, materialize_in_order
from bodyfriend_assets.partitions import NOT_LOADED, daily_freshness, daily_partitions, naive_window
from bodyfriend_assets.pools import exclusive_pool as _exclusive
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets.retries import retry_connection_errors
from bodyfriend_assets.skips_per_asset import SKIPS_PER_ASSET_TAGS

# Single-run backfills are what make a year of partitions one keyset pass; the API is stable
# in practice but still labelled beta.

GROUP = "lv0"
LARGE_TABLE_POOL = "large_tables"
SMALL_TABLES_OP = "lv0_tables"  # the small tables' steps: lv0_tables_1 .. lv0_tables_<SMALL_TABLE_STEPS>
LARGE_TABLES_OP = "lv0_large_tables"
# Two steps of small tables give two Celery workers lv0 work to share beside the large-table
# step; on one machine the daily run took the same share of the in-process run's time with one
# small-table step and with two (README, "The daily run's own cost").
SMALL_TABLE_STEPS = 2

__all__ = ["build_lv0_asset", "build_lv0_assets", "lv0_assets", "lv0_key", "lv0_spec"]


def lv0_spec(entry: LegacyTable) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=lv0_key(entry),
        deps=[legacy_key(entry)],
        group_name=GROUP,
        kinds={"postgres"},
        freshness_policy=daily_freshness,
        description=(
            f"Raw copy of `{entry.qualified_name}` in `lv0.{entry.name}` "
            f"({'rows changed in the partition, upserted by ' + ', '.join(f'`{k}`' for k in entry.keys) if entry.mode == 'incremental' else 'whole-table snapshot'})."
        ),
        metadata={
            "table": f"lv0.{entry.name}",
            "partition_expr": "_partition",
            "mode": entry.mode,
            "large": entry.large,
        },
        # A table whose load failed yields nothing; the others still load.
        skippable=True,
    )


def build_lv0_assets(entries: Sequence[LegacyTable], *, name: str, pool: str | None = None) -> dg.AssetsDefinition:
    """One multi-asset loading ``entries`` in order, each followed by its checks."""
    entries = list(entries)
    if not entries:
        raise ValueError(f"{name}: no tables")

    @dg.multi_asset(
        name=name,
        specs=[lv0_spec(entry) for entry in entries],
        check_specs=[spec for entry in entries for spec in lv0_check_specs(entry)],
        can_subset=True,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=pool,
        op_tags=SKIPS_PER_ASSET_TAGS,
        description=(
            f"Raw copies of {len(entries)} legacy table(s), loaded one after the other"
            + (f" in the `{pool}` pool." if pool else ".")
        ),
    )
    def _lv0(context: dg.AssetExecutionContext, legacy: LegacyDatabase, datahub: DataHub):
        with retry_connection_errors(context), _exclusive(datahub.engine(), pool):
            yield from _load_selected(context, entries, legacy, datahub)

    return _lv0


def build_lv0_asset(entry: LegacyTable) -> dg.AssetsDefinition:
    """One table on its own (its own step), e.g. to materialize or test it alone."""
    return build_lv0_assets([entry], name=f"lv0_{entry.name}", pool=LARGE_TABLE_POOL if entry.large else None)


def lv0_assets(catalog: Catalog, small_table_steps: int = SMALL_TABLE_STEPS) -> list[dg.AssetsDefinition]:
    """The platform's lv0 layer: the small tables dealt in catalog order into ``small_table_steps``
    steps (``lv0_tables_1``, ...), the large ones in one step in their pool."""
    small = [entry for entry in catalog.tables if not entry.large]
    large = [entry for entry in catalog.tables if entry.large]
    groups = [small[i::small_table_steps] for i in range(small_table_steps)]
    assets = [
        build_lv0_assets(group, name=f"{SMALL_TABLES_OP}_{number}")
        for number, group in enumerate(groups, start=1)
        if group
    ]
    if large:
        assets.append(build_lv0_assets(large, name=LARGE_TABLES_OP, pool=LARGE_TABLE_POOL))
    return assets


def _load_selected(context: dg.AssetExecutionContext, entries, legacy: LegacyDatabase, datahub: DataHub):
    keys = context.partition_key_range
    partition = keys.start if keys.start == keys.end else f"{keys.start}...{keys.end}"
    start, end = naive_window(context.partition_time_window)
    loaded: dict[str, dict] = {}  # table -> what its checks know of this step's load of it

    def load(item: StepItem) -> dg.MaterializeResult | list[dg.AssetMaterialization]:
        entry = item.subject
        loading = load_partitions(entry, context.partition_keys)
        if not loading:  # not read on these days (cadence): lv0 keeps the last load
            return dg.MaterializeResult(
                asset_key=item.key, metadata={**off_day_metadata(entry), "partitions": partition}
            )
        lineage = Lineage(
            loaded_at=datetime.now(timezone.utc),
            run_id=context.run.run_id,
            partition=loading[-1] if entry.mode == "snapshot" else partition,
        )
        window = history.window_to_load(context, entry, datahub.engine(), start, end)
        result = extract_to_lv0(
            entry, legacy.engine(), datahub.engine(), start=window.start, end=window.end, lineage=lineage,
            log=context.log.info, warn=context.log.warning, lock_timeout_seconds=datahub.lock_timeout_seconds,
        )
        restored = history.record(datahub.engine(), entry, window, context.run.run_id)
        loaded[entry.name] = {"load_started": result.load_started, "lineage": lineage}
        metadata = {**result.as_metadata(), **restored, "partitions": partition}
        if len(loading) == len(context.partition_keys):
            return dg.MaterializeResult(asset_key=item.key, metadata=metadata)
        # A range of load and off days: each partition says which it was.
        return [
            dg.AssetMaterialization(
                asset_key=item.key, partition=key,
                metadata=metadata if key in loading else {**off_day_metadata(entry), "partitions": partition},
            )
            for key in context.partition_keys
        ]

    def evaluate(item: StepItem, spec: dg.AssetCheckSpec) -> dg.AssetCheckResult:
        entry = item.subject
        if 0 < len(load_partitions(entry, context.partition_keys)) < len(context.partition_keys):
            for key in context.partition_keys:  # a range of load and off days: the off days' own
                if not entry.loads_partition(key):
                    context.log_event(dg.AssetCheckEvaluation(
                        asset_key=item.key, check_name=spec.name, passed=True, blocking=spec.blocking,
                        partition=key, metadata={NOT_LOADED: off_day_reason(entry)},
                    ))
        return evaluate_lv0_check(
            item.subject, spec.name, legacy.engine(), datahub.engine(), context.partition_time_window,
            **loaded.get(item.subject.name, {}),
        )

    items = [
        StepItem(entry, lv0_key(entry), f"lv0.{entry.name}", frozenset(), lv0_check_specs(entry))
        for entry in entries
    ]
    yield from materialize_in_order(context, items, materialize=load, evaluate=evaluate)
