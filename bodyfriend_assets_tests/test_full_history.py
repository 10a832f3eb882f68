"""``bodyfriend load-history``: every layer over a range of days as one run, with the partition
status the UI shows intact: every asset's every partition materialized after a good run, and the
partitions of an asset that failed marked failed (what per-partition planned events are for).

A real instance on the project's dagster.yaml (PostgreSQL storage, the batched planned events of
``event_batches.py``), a real code server and run worker, real stand-in and Data Hub databases.
"""

from __future__ import annotations

import dagster as dg
from dagster._core.events import DagsterEventType
from dagster._core.storage.partition_status_cache import get_and_update_asset_status_cache_value

from bodyfriend_assets import cli
from bodyfriend_assets.automation import daily_job
from bodyfriend_assets.definitions import defs
from bodyfriend_assets.partitions import daily_partitions
from bodyfriend_assets_tests.conftest import rows
from bodyfriend_assets_tests.test_demo_run import DAYS, platform_instance  # noqa: F401 (a fixture)

RANGE = ["--start", DAYS[0], "--end", DAYS[-1]]


def _layer_keys() -> list[dg.AssetKey]:
    return sorted(daily_job.selection.resolve(defs.resolve_asset_graph()))


def _status(instance, key: dg.AssetKey):
    """The partition status of ``key`` as the UI reads it: materialized, failed, in progress."""
    cached = get_and_update_asset_status_cache_value(instance, key, daily_partitions)
    return (
        set(cached.deserialize_materialized_partition_subsets(daily_partitions).get_partition_keys()),
        set(cached.deserialize_failed_partition_subsets(daily_partitions).get_partition_keys()),
        set(cached.deserialize_in_progress_partition_subsets(daily_partitions).get_partition_keys()),
    )


def test_load_history_materializes_every_asset_of_every_layer_in_every_partition_of_the_range(platform_instance):
    instance = platform_instance
    assert cli.main(["load-history", *RANGE]) == 0

    [run] = instance.get_runs(dg.RunsFilter(job_name=daily_job.name))
    assert run.status == dg.DagsterRunStatus.SUCCESS
    keys = _layer_keys()
    assert {key.path[0] for key in keys} == {"lv0", "lv1", "lv1ex", "lv2", "hc"}
    for key in keys:
        assert _status(instance, key) == (set(DAYS), set(), set()), key.to_user_string()

    # One planned event per asset and partition, stored as the batch it was handed in.
    planned = instance.all_logs(run.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION_PLANNED)
    assert sorted((e.dagster_event.asset_key, e.dagster_event.partition) for e in planned) == sorted(
        (key, day) for key in keys for day in DAYS
    )
    latest = instance.get_latest_planned_materialization_info(dg.AssetKey(["hc", "opportunity"]))
    assert latest.run_id == run.run_id


def test_a_history_load_whose_table_fails_marks_that_asset_failed_in_every_partition_of_the_range(
    platform_instance, platform_env
):
    instance = platform_instance
    legacy_url, _ = platform_env
    rows(legacy_url, "DROP TABLE rental.r_goods")
    assert cli.main(["load-history", *RANGE]) == 1

    [run] = instance.get_runs(dg.RunsFilter(job_name=daily_job.name))
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert _status(instance, dg.AssetKey(["lv0", "r_goods"])) == (set(), set(DAYS), set())
    assert _status(instance, dg.AssetKey(["lv0", "b_minor"])) == (set(DAYS), set(), set())
