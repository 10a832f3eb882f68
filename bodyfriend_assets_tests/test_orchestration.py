"""Running by itself: checks that block a bad load, the large-table pool, retries, the schedule."""

import os
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from bodyfriend_assets import retries
from bodyfriend_assets.automation import daily_schedule
from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.definitions import defs
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.lv0 import checks as lv0_checks
from bodyfriend_assets.lv0 import LARGE_TABLE_POOL, LARGE_TABLES_OP, build_lv0_asset, lv0_assets, lv0_key
from bodyfriend_assets.partitions import KST, daily_partitions
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets_tests.conftest import rows

PARTITION = "2024-01-03"
REPOSITORY = Path(__file__).resolve().parents[1]
RESOURCES = {"legacy": LegacyDatabase(), "datahub": DataHub()}


@pytest.fixture
def seeded(platform_env):
    legacy_url, datahub_url = platform_env
    seed_legacy(legacy_url, rows=600, days=5)
    return legacy_url, datahub_url


def _lv0_with_checks(name):
    """The table's lv0 asset, whose step also evaluates its checks."""
    entry = load_catalog().by_name(name)
    return entry, build_lv0_asset(entry)


@dg.asset(key=["lv1", "probe"], deps=[lv0_key(load_catalog().by_name("r_order_contract"))],
          partitions_def=daily_partitions)
def downstream_probe():
    """Stands for the layer above lv0: it must not run on a load whose checks failed."""
    return dg.MaterializeResult()


def _check_results(result):
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_lv0_checks_pass_on_a_good_load_for_every_table(seeded):
    result = dg.materialize(lv0_assets(load_catalog()), partition_key=PARTITION, resources=RESOURCES)
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 2 * 31
    assert all(e.passed for e in evaluations), [
        (e.asset_key.to_user_string(), e.check_name, e.metadata) for e in evaluations if not e.passed
    ]


def test_rows_missing_from_lv0_beyond_what_the_check_reads_again_fail_it_and_block_downstream(seeded, monkeypatch):
    _, datahub_url = seeded
    entry, asset = _lv0_with_checks("r_order_contract")
    assert dg.materialize([asset], partition_key=PARTITION, resources=RESOURCES).success
    rows(
        datahub_url,
        "DELETE FROM lv0.r_order_contract WHERE order_no IN (SELECT order_no FROM lv0.r_order_contract "
        "WHERE updt_dt >= '2024-01-03' AND updt_dt < '2024-01-04' ORDER BY order_no LIMIT 2)",
    )
    monkeypatch.setattr(lv0_checks, "REREAD_LIMIT", 1)  # two missing rows: more than a load explains
    result = dg.materialize(
        [asset, downstream_probe],
        partition_key=PARTITION,
        resources=RESOURCES,
        selection=dg.AssetSelection.checks_for_assets(lv0_key(entry)) | dg.AssetSelection.assets(["lv1", "probe"]),
        raise_on_error=False,
    )
    assert _check_results(result) == {"row_count_matches_source": False, "keys_unique_and_not_null": True}
    assert not result.asset_materializations_for_node("lv1__probe")


def test_a_duplicated_lv0_key_fails_the_key_check(seeded):
    _, datahub_url = seeded
    entry, asset = _lv0_with_checks("r_order_contract")
    assert dg.materialize([asset], partition_key=PARTITION, resources=RESOURCES).success
    rows(datahub_url, "ALTER TABLE lv0.r_order_contract DROP CONSTRAINT r_order_contract_pkey")
    rows(
        datahub_url,
        "INSERT INTO lv0.r_order_contract SELECT * FROM lv0.r_order_contract "
        "WHERE updt_dt >= '2024-01-03' AND updt_dt < '2024-01-04' LIMIT 1",
    )
    result = dg.materialize(
        [asset, downstream_probe], partition_key=PARTITION, resources=RESOURCES,
        selection=dg.AssetSelection.checks_for_assets(lv0_key(entry)) | dg.AssetSelection.assets(["lv1", "probe"]),
        raise_on_error=False,
    )
    checks_by_name = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks_by_name["keys_unique_and_not_null"].passed is False
    assert checks_by_name["keys_unique_and_not_null"].metadata["duplicated_keys"].value != "none"
    # one extra row in the window: the count check sees it in the partition's counts
    counts = checks_by_name["row_count_matches_source"].metadata
    assert counts["lv0_rows_in_partitions"].value == counts["source_rows_in_partitions"].value + 1
    assert not result.asset_materializations_for_node("lv1__probe")


@dg.asset(key=["lv1", "probe_small"], deps=[lv0_key(load_catalog().by_name("r_acq_intro"))],
          partitions_def=daily_partitions)
def small_table_probe():
    """Reads a small table that loads fine, in the same step as one that fails; a plain asset,
    not a platform step, so Dagster's own rule applies to it."""
    return dg.MaterializeResult()


def test_a_failing_table_leaves_the_others_loaded_and_its_step_names_it(seeded):
    legacy_url, _ = seeded
    rows(legacy_url, "DROP TABLE rental.r_goods")
    catalog = load_catalog()
    step_of = {key.path[-1]: assets.op.name for assets in lv0_assets(catalog) for key in assets.keys}
    assert step_of["r_acq_intro"] == step_of["r_goods"]  # the probe reads a table of the failing step
    result = dg.materialize([*lv0_assets(catalog), small_table_probe], partition_key=PARTITION,
                            resources=RESOURCES, raise_on_error=False)
    assert not result.success
    loaded = {e.asset_key.path[-1] for e in result.get_asset_materialization_events()}
    assert loaded == {e.name for e in catalog.tables} - {"r_goods"}
    checked = {e.asset_key.path[-1] for e in result.get_asset_check_evaluations()}
    assert checked == loaded
    # no platform step reads lv0 after it: the step itself ends failed, naming the table (in the
    # nightly job the last step does: test_failure_isolation)
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert [e.step_key for e in failures] == [step_of["r_goods"]]
    assert "failed: lv0/r_goods: legacy table RENTAL.R_GOODS not found" in str(failures[0].event_specific_data.error)
    assert not result.asset_materializations_for_node("lv1__probe_small")


# -- the large-table pool ---------------------------------------------------------------------

LARGE = ["r_order_contract", "r_order_contract_add", "r_service_receipt", "v_customer"]
SMALL = ["r_goods", "b_minor", "r_crm_info", "v_home_care", "r_install_fee", "r_acq_intro"]


def pool_job():
    """The platform's own lv0 steps, subset to the four large tables and some small ones."""
    keys = [lv0_key(load_catalog().by_name(n)) for n in LARGE + SMALL]
    job = dg.define_asset_job("pool_probe", selection=dg.AssetSelection.assets(*keys))
    return dg.Definitions(assets=lv0_assets(load_catalog()), jobs=[job], resources=RESOURCES).resolve_job_def("pool_probe")


def run_pool_job(partition: str) -> None:
    """One run of ``pool_job`` on the instance at DAGSTER_HOME (a process of its own)."""
    with dg.DagsterInstance.get() as instance:
        with dg.execute_job(dg.reconstructable(pool_job), instance=instance,
                            tags={"dagster/partition": partition}) as result:
            assert result.success


def _step_intervals(instance, run_id):
    starts, ends = {}, {}
    for record in instance.all_logs(run_id):
        event = record.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_START:
            starts[event.step_key] = record.timestamp
        elif event.event_type in (dg.DagsterEventType.STEP_SUCCESS, dg.DagsterEventType.STEP_FAILURE):
            ends[event.step_key] = record.timestamp
    return {key: (starts[key], ends[key]) for key in starts}


def _pool_holdings(instance, run_id):
    """The windows in which the run's large-table step held the pool (pools.py says when): its
    extraction runs inside them. Its step's start and end do not tell: a step Dagster let in
    beside another run's may start and then wait for the pool."""
    holdings, held_since = [], None
    for record in instance.all_logs(run_id):
        if record.user_message == f"holding the {LARGE_TABLE_POOL} pool":
            held_since = record.timestamp
        elif record.user_message == f"releasing the {LARGE_TABLE_POOL} pool":
            holdings.append((held_since, record.timestamp))
    return holdings


def _overlap(a, b) -> bool:
    return a[0] < b[1] and b[0] < a[1]


@pytest.mark.parametrize(
    "dagster_slots",
    [
        pytest.param(None, id="dagster_pool_at_the_projects_limit"),
        # what a race of two claims of dagster-postgres's one slot does (pools.py), every time
        pytest.param(2, id="dagster_pool_letting_both_steps_in"),
    ],
)
def test_large_extractions_never_overlap_while_small_ones_run_beside_them(
    platform_env, make_database, monkeypatch, tmp_path, dagster_slots
):
    """Two daily runs at once (two partitions), each with the large-table step and the small one,
    on an instance configured by the project's dagster.yaml (PostgreSQL storage, the pools): one
    large-table extraction runs at a time, across runs, while small tables load beside it; so too
    when Dagster's pool lets both large-table steps start."""
    legacy_url, _ = platform_env
    # Large enough that the large loads take several seconds, so the steps started beside them
    # overlap them even on a busy machine.
    names = [load_catalog().by_name(n).qualified_name for n in LARGE + SMALL]
    seed_legacy(legacy_url, rows=60_000, days=2, tables=names + ["RENTAL.R_GOODS", "RENTAL.V_SALES_LOUNGE"])
    shutil.copy(REPOSITORY / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_URL", make_database("dagster").render_as_string(hide_password=False))
    # The storage's tables, and the pool's row at its default limit, made before the two runs
    # start: both would make them on first use, and Dagster's insert of the pool row is not
    # safe against a concurrent one (the other run then fails on a unique key).
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        instance.event_log_storage.initialize_concurrency_limit_to_default(LARGE_TABLE_POOL)
        if dagster_slots is not None:
            instance.event_log_storage.set_concurrency_slots(LARGE_TABLE_POOL, dagster_slots)
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    code = "import sys; from bodyfriend_assets_tests.test_orchestration import run_pool_job; run_pool_job(sys.argv[1])"
    runs = [subprocess.Popen([sys.executable, "-c", code, partition], env=env, stderr=subprocess.PIPE)
            for partition in ("2024-01-01", "2024-01-02")]
    try:
        for run in runs:
            _, stderr = run.communicate(timeout=600)
            assert run.returncode == 0, stderr.decode(errors="replace")[-3000:]
    finally:
        for run in runs:  # a failed or stuck run must not outlive the test
            if run.poll() is None:
                run.kill()
                run.wait()
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        records = instance.get_run_records()
        assert len(records) == 2 and all(r.dagster_run.is_success for r in records)
        holdings = [_pool_holdings(instance, r.dagster_run.run_id) for r in records]
        intervals = [_step_intervals(instance, r.dagster_run.run_id) for r in records]
        small = [interval for steps in intervals for step, interval in steps.items() if step != LARGE_TABLES_OP]
        materialized = {
            (r.dagster_run.tags["dagster/partition"], log.dagster_event.asset_key.path[-1])
            for r in records
            for log in instance.all_logs(r.dagster_run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        }
    assert materialized == {(p, n) for p in ("2024-01-01", "2024-01-02") for n in LARGE + SMALL}
    assert [len(h) for h in holdings] == [1, 1], "each run's large-table step held the pool once"
    large = [h[0] for h in holdings]
    assert not _overlap(*large), "the large-table extractions of two runs overlapped"
    assert any(_overlap(s, l) for s in small for l in large), "no small table loaded beside a large one"


# -- retries ---------------------------------------------------------------------------------


def test_a_lost_datahub_connection_is_retried_and_then_succeeds(seeded, monkeypatch, make_database, tmp_path):
    """The Data Hub is unreachable at first (its database does not exist yet); the step is retried
    with backoff and succeeds once the database is there (created when the first retry is
    recorded, however long the run took to get there)."""
    late = make_database("late")
    admin = sa.create_engine(late.set(database="postgres"), isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote(late.database)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {quoted}")
    monkeypatch.setenv("BODYFRIEND_DATAHUB_URL", late.render_as_string(hide_password=False))
    monkeypatch.setattr(retries, "FIRST_DELAY_SECONDS", 1.0)

    instance = dg.DagsterInstance.local_temp(str(tmp_path))

    def create_after_the_first_retry():
        deadline = time.monotonic() + 600  # a bound on a hang, not a speed requirement
        while time.monotonic() < deadline:
            runs = instance.get_runs()
            if runs and instance.all_logs(runs[0].run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY):
                break
            time.sleep(0.2)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {quoted}")

    creator = threading.Thread(target=create_after_the_first_retry)
    creator.start()
    asset = build_lv0_asset(load_catalog().by_name("b_major"))
    result = dg.materialize([asset], partition_key=PARTITION, resources=RESOURCES, raise_on_error=False,
                            instance=instance)
    creator.join()
    admin.dispose()
    assert result.success
    retried = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert 1 <= len(retried) <= len(retries.retry_delays())


def test_an_error_in_the_data_is_not_retried(seeded, monkeypatch):
    legacy_url, _ = seeded
    monkeypatch.setattr(retries, "FIRST_DELAY_SECONDS", 0.1)
    asset = build_lv0_asset(load_catalog().by_name("r_order_cust_info"))
    assert dg.materialize([asset], partition_key=PARTITION, resources=RESOURCES).success
    rows(legacy_url, "ALTER TABLE rental.r_order_cust_info ALTER COLUMN birth_dt TYPE date "
                     "USING to_date(NULLIF(birth_dt, ''), 'YYYYMMDD')")
    # a column retyped in a way lv0 cannot take: the load fails at once, and is not retried
    result = dg.materialize([asset], partition_key=PARTITION, resources=RESOURCES, raise_on_error=False)
    assert not result.success
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    failure = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE][0]
    assert "birth_dt" in str(failure.event_specific_data.error)


# -- the schedule ----------------------------------------------------------------------------


def test_the_nightly_schedule_runs_every_layer_for_the_finished_korean_day():
    schedule = defs.resolve_schedule_def(daily_schedule.name)
    assert schedule.default_status == dg.DefaultScheduleStatus.RUNNING
    assert schedule.execution_timezone == "Asia/Seoul"
    assert schedule.cron_schedule == "10 0 * * *"
    context = dg.build_schedule_context(
        scheduled_execution_time=datetime(2024, 3, 6, 0, 10, tzinfo=KST),
        repository_def=defs.get_repository_def(),
    )
    requests = schedule.evaluate_tick(context).run_requests
    assert [r.partition_key for r in requests] == ["2024-03-05"]
    job = defs.resolve_job_def("daily_data_hub")
    lv0_keys = {lv0_key(e) for e in load_catalog().tables}
    assert lv0_keys <= set(job.asset_layer.asset_graph.get_all_asset_keys())


def test_every_asset_has_a_korean_daily_freshness_policy():
    graph = defs.resolve_asset_graph()
    for key in graph.materializable_asset_keys:
        policy = graph.get(key).freshness_policy
        assert policy is not None and policy.timezone == "Asia/Seoul", key
