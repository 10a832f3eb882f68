"""lv0: a raw copy of every legacy table, one asset per catalog entry (``lv0/<table>``).

Each asset is daily-partitioned in Korean time and backfills a range of days in one run and one
keyset pass. Incremental tables load the rows whose cursor falls in the partition window (plus
the entry's look-back) and upsert them by key; snapshot tables copy the whole table and swap it in.

The assets are computed by two subsettable multi-assets, so a daily run starts two processes for
lv0, not one per table and check (process start-up cost more than loading a small table):

- ``lv0_tables``: the small tables, loaded one after the other;
- ``lv0_large_tables``: the tables marked ``large``, one after the other, in the ``large_tables``
  pool, so large extractions never overlap each other (in one run or across runs) while the
  small tables load beside them.

Each table is still its own asset, with its own materialization and checks (``lv0.checks``),
evaluated right after its load. A table whose load fails is reported and the others still load;
the step then fails, so nothing downstream runs on a day with a missing table.
"""

import warnings
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import datetime, timezone

import dagster as dg
import sqlalchemy as sa

from bodyfriend_assets.catalog import Catalog, LegacyTable
from bodyfriend_assets.check_timing import timed_check
from bodyfriend_assets.extraction.engine import extract_to_lv0
from bodyfriend_assets.extraction.lv0_writer import Lineage
from bodyfriend_assets.legacy import legacy_key
from bodyfriend_assets.lv0.checks import evaluate_lv0_check, lv0_check_specs
from bodyfriend_assets.lv0.keys import lv0_key
from bodyfriend_assets.partitions import daily_freshness, daily_partitions, naive_window
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets.retries import CONNECTION_ERRORS, retry_connection_errors

# Single-run backfills are what make a year of partitions one keyset pass; the API is stable
# in practice but still labelled beta.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

GROUP = "lv0"
LARGE_TABLE_POOL = "large_tables"
SMALL_TABLES_OP = "lv0_tables"
LARGE_TABLES_OP = "lv0_large_tables"

__all__ = ["build_lv0_asset", "build_lv0_assets", "lv0_assets", "lv0_key", "lv0_spec"]


def lv0_spec(entry: LegacyTable) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=lv0_key(entry),
        deps=[legacy_key(entry)],
        group_name=GROUP,
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
        # A table whose load failed yields nothing; the step fails after loading the others.
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
        description=(
            f"Raw copies of {len(entries)} legacy table(s), loaded one after the other"
            + (f" in the {pool} pool." if pool else ".")
        ),
    )
    def _lv0(context: dg.AssetExecutionContext, legacy: LegacyDatabase, datahub: DataHub):
        with retry_connection_errors(context), _exclusive(datahub.engine(), pool):
            yield from _load_selected(context, entries, legacy, datahub)

    return _lv0


def build_lv0_asset(entry: LegacyTable) -> dg.AssetsDefinition:
    """One table on its own (its own step), e.g. to materialize or test it alone."""
    return build_lv0_assets([entry], name=f"lv0_{entry.name}", pool=LARGE_TABLE_POOL if entry.large else None)


def lv0_assets(catalog: Catalog) -> list[dg.AssetsDefinition]:
    """The platform's lv0 layer: the small tables in one step, the large ones in another."""
    small = [entry for entry in catalog.tables if not entry.large]
    large = [entry for entry in catalog.tables if entry.large]
    assets = []
    if small:
        assets.append(build_lv0_assets(small, name=SMALL_TABLES_OP))
    if large:
        assets.append(build_lv0_assets(large, name=LARGE_TABLES_OP, pool=LARGE_TABLE_POOL))
    return assets


@contextmanager
def _exclusive(engine: sa.Engine, pool: str | None):
    """Hold the pool's advisory lock in the Data Hub for the step (nothing without a pool).

    Dagster's pool already keeps a second step of the pool waiting, but two runs whose steps claim
    the pool's slot within the same instant can both get it; the lock makes the steps of the pool
    take turns whatever the timing. It is a session lock, released when the step ends (or its
    connection closes, if the process dies)."""
    if pool is None:
        yield
        return
    key = sa.func.hashtext(f"pool {pool}")
    with engine.connect() as conn:
        conn.execute(sa.select(sa.func.pg_advisory_lock(key)))
        conn.commit()
        try:
            yield
        finally:
            try:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                conn.commit()
            except CONNECTION_ERRORS:
                conn.invalidate()  # the session, and its lock, are gone with the connection


def _load_selected(context: dg.AssetExecutionContext, entries, legacy: LegacyDatabase, datahub: DataHub):
    selected = context.selected_asset_keys
    selected_checks = context.selected_asset_check_keys
    keys = context.partition_key_range
    partition = keys.start if keys.start == keys.end else f"{keys.start}...{keys.end}"
    start, end = naive_window(context.partition_time_window)
    failures: list[str] = []
    for entry in entries:
        key = lv0_key(entry)
        checks = [spec for spec in lv0_check_specs(entry) if spec.key in selected_checks]
        load = {}  # what the checks know of this step's load of the table
        if key in selected:
            lineage = Lineage(
                loaded_at=datetime.now(timezone.utc),
                run_id=context.run.run_id,
                partition=keys.end if entry.mode == "snapshot" else partition,
            )
            try:
                result = extract_to_lv0(
                    entry, legacy.engine(), datahub.engine(), start=start, end=end,
                    lineage=lineage, log=context.log.info,
                )
            except CONNECTION_ERRORS:
                raise  # the whole step is retried (the loads are idempotent)
            except Exception as err:  # this table's own error: the others still load
                context.log.error(f"lv0.{entry.name} failed: {err}")
                failures.append(f"{entry.qualified_name}: {err}")
                continue
            yield dg.MaterializeResult(
                asset_key=key, metadata={**result.as_metadata(), "partitions": partition}
            )
            load = {"load_started": result.load_started, "lineage": lineage}
        for spec in checks:
            yield timed_check(lambda: evaluate_lv0_check(
                entry, spec.name, legacy.engine(), datahub.engine(), context.partition_time_window, **load
            ))
    if failures:
        raise dg.Failure(
            description=f"{len(failures)} lv0 table(s) failed:\n" + "\n".join(failures),
            allow_retries=False,
        )
