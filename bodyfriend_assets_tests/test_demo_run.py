"""The demo's run is a real run of the nightly job: launched through the platform's instance on
the workspace's code location, listed under its job, with the catalog's table metadata.

A real Dagster instance configured by the project's dagster.yaml (PostgreSQL storage in a fresh
database, the queued run coordinator), a real code server started from workspace.yaml, a real
run worker with the job's multiprocess executor, real stand-in and Data Hub databases.
"""

from __future__ import annotations

import re
import shutil
from datetime import date, timedelta
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml
from dagster._core.events import DagsterEventType

from bodyfriend_assets.automation import daily_job
from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.launch import WORKSPACE_FILE, launch_and_wait, partition_tags
from bodyfriend_assets.lv0 import build_lv0_asset
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets_tests.conftest import rows, scalar

PROJECT_ROOT = Path(__file__).resolve().parent.parent
FIRST = date(2024, 2, 5)
DAYS = ["2024-02-05", "2024-02-06", "2024-02-07"]


@pytest.fixture
def platform_instance(platform_env, make_database, tmp_path, monkeypatch):
    """The platform's instance: DAGSTER_HOME holding the project's dagster.yaml, storage in a
    fresh database (DAGSTER_PG_URL). The code server and run worker inherit the environment."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    storage = make_database("dagster").render_as_string(hide_password=False)
    monkeypatch.setenv("DAGSTER_PG_URL", storage)
    monkeypatch.setenv("BODYFRIEND_HC_MODE", "development")  # the hc tables and their stand-in
    legacy_url, _ = platform_env
    seed_legacy(legacy_url, rows=600, start=FIRST, days=len(DAYS))
    with dg.DagsterInstance.get() as instance:
        yield instance


def _materializations(instance, run_id) -> list[dg.AssetMaterialization]:
    return [
        entry.asset_materialization
        for entry in instance.all_logs(run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION)
    ]


def _columns(url, schema: str, table: str) -> list[str]:
    return [
        r[0]
        for r in rows(
            url,
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = :s AND table_name = :t ORDER BY ordinal_position",
            s=schema, t=table,
        )
    ]


def _count(url, schema: str, table: str) -> int:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(sa.table(table, schema=schema))).scalar()
    finally:
        engine.dispose()


def test_a_range_run_of_the_nightly_job_is_listed_under_its_job_from_the_workspace_location(
    platform_instance, platform_env
):
    instance = platform_instance
    _, datahub_url = platform_env
    run = launch_and_wait(instance, daily_job.name, partition_tags(DAYS[0], DAYS[-1]))
    assert run.status == dg.DagsterRunStatus.SUCCESS

    # The job's Runs tab lists it, and its origin is the workspace's own code location.
    listed = instance.get_runs(dg.RunsFilter(job_name="daily_data_hub"))
    assert [r.run_id for r in listed] == [run.run_id]
    [entry] = yaml.safe_load(WORKSPACE_FILE.read_text())["load_from"]
    location = run.remote_job_origin.repository_origin.code_location_origin.location_name
    module = entry["python_module"]
    assert location == f"{module['module_name']}:{module['attribute']}"  # as `dagster dev` names it
    assert run.job_code_origin is not None

    # The job's own executor: each step in a process of its own, not the launcher's.
    step_pids = {
        e.step_key: e.dagster_event.pid for e in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)
    }
    assert {"lv0_tables_1", "lv0_large_tables", "lv1_models", "lv2_models", "hc_objects"} <= step_pids.keys()
    assert step_pids["lv0_tables_1"] != step_pids["lv0_large_tables"]
    # One step more than the machine's cores at once (step_execution.STEPS_AT_ONCE): even on 2
    # cores, the three lv0 steps run side by side, each started before any of them ended.
    lv0_steps = {"lv0_tables_1", "lv0_tables_2", "lv0_large_tables"}
    started = [e.timestamp for e in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_START)
               if e.step_key in lv0_steps]
    ended = [e.timestamp for e in instance.all_logs(run.run_id, of_type=DagsterEventType.STEP_SUCCESS)
             if e.step_key in lv0_steps]
    assert len(started) == len(ended) == 3
    assert max(started) < min(ended)

    # One materialization per asset and partition of the range.
    materializations = _materializations(instance, run.run_id)
    by_key: dict[dg.AssetKey, dict[str, dg.AssetMaterialization]] = {}
    for m in materializations:
        by_key.setdefault(m.asset_key, {})[m.partition] = m
    for key in (["lv0", "r_order_contract"], ["lv0", "b_major"], ["lv1", "r_order_contract"],
                ["lv2", "opportunity"], ["hc", "opportunity"]):
        assert sorted(by_key[dg.AssetKey(key)]) == DAYS, key

    # The catalog's table metadata: the table's columns and types, its rows, the range's rows.
    lv0 = by_key[dg.AssetKey(["lv0", "r_order_contract"])][DAYS[-1]].metadata
    schema = lv0["dagster/column_schema"].value
    assert [c.name for c in schema.columns] == _columns(datahub_url, "lv0", "r_order_contract")
    types = {c.name: c.type for c in schema.columns}
    assert types["_partition"] == "text" and types["updt_dt"].startswith("timestamp")
    assert lv0["dagster/table_name"].value == "lv0.r_order_contract"
    assert lv0["dagster/row_count"].value == scalar(datahub_url, "SELECT count(*) FROM lv0.r_order_contract")
    assert lv0["dagster/partition_row_count"].value == scalar(
        datahub_url,
        "SELECT count(*) FROM lv0.r_order_contract WHERE _partition BETWEEN :a AND :b",
        a=DAYS[0], b=DAYS[-1],
    ) > 0
    assert re.fullmatch(r"\d+(\.\d)? (bytes|kB|MB)", lv0["copy_text"].value)
    assert lv0["copy_text_bytes"].value > 0
    snapshot = by_key[dg.AssetKey(["lv0", "b_major"])][DAYS[-1]].metadata
    assert "dagster/partition_row_count" not in snapshot  # a snapshot is the whole table
    assert snapshot["dagster/row_count"].value == scalar(datahub_url, "SELECT count(*) FROM lv0.b_major")
    for key, schema_name, table in (
        (["lv1", "r_order_contract"], "lv1", "r_order_contract"),
        (["lv2", "opportunity"], "lv2", "opportunity"),
        (["hc", "opportunity"], "salesforce", "opportunity"),
    ):
        meta = by_key[dg.AssetKey(key)][DAYS[0]].metadata
        assert [c.name for c in meta["dagster/column_schema"].value.columns] == _columns(
            datahub_url, schema_name, table
        ), key
        assert meta["dagster/row_count"].value == _count(datahub_url, schema_name, table) > 0, key


def test_a_day_the_source_has_nothing_for_says_so_in_metadata_and_log(platform_env):
    legacy_url, _ = platform_env
    seed_legacy(legacy_url, rows=300, start=FIRST, days=len(DAYS), tables=["r_order_contract"])
    quiet_day = (FIRST + timedelta(days=len(DAYS) + 3)).isoformat()  # after the seeded days
    asset = build_lv0_asset(load_catalog().by_name("r_order_contract"))
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [asset], instance=instance, partition_key=quiet_day,
            resources={"legacy": LegacyDatabase(), "datahub": DataHub()},
        )
        messages = [e.user_message for e in instance.all_logs(result.run_id)]
    assert result.success
    [event] = result.get_asset_materialization_events()
    meta = event.materialization.metadata
    assert meta["dagster/partition_row_count"].value == 0
    assert meta["dagster/row_count"].value == 0
    assert meta["note"].value == f"no source rows changed on {quiet_day} (KST)"
    assert f"RENTAL.R_ORDER_CONTRACT: no source rows changed on {quiet_day} (KST)" in messages

    # A day with rows has no such note.
    busy = dg.materialize(
        [asset], instance=dg.DagsterInstance.ephemeral(), partition_key=DAYS[1],
        resources={"legacy": LegacyDatabase(), "datahub": DataHub()},
    )
    [event] = busy.get_asset_materialization_events()
    assert event.materialization.metadata["dagster/partition_row_count"].value > 0
    assert "note" not in event.materialization.metadata
