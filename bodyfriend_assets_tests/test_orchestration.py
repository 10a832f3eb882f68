"""Running by itself: checks that block a bad load, the large-table pool, retries, the schedule."""

import threading
import time
from datetime import datetime
from itertools import combinations

import dagster as dg
import pytest
import sqlalchemy as sa

from bodyfriend_assets import retries
from bodyfriend_assets.automation import daily_schedule
from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.definitions import defs
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.lv0 import build_lv0_asset, lv0_key
from bodyfriend_assets.lv0.checks import build_lv0_checks
from bodyfriend_assets.partitions import KST, daily_partitions
from bodyfriend_assets.resources import DataHub, LegacyDatabase

PARTITION = "2024-01-03"
RESOURCES = {"legacy": LegacyDatabase(), "datahub": DataHub()}


@pytest.fixture
def seeded(platform_env):
    legacy_url, datahub_url = platform_env
    seed_legacy(legacy_url, rows=600, days=5)
    return legacy_url, datahub_url


def _lv0_with_checks(name):
    entry = load_catalog().by_name(name)
    return entry, build_lv0_asset(entry), build_lv0_checks(entry)


@dg.asset(key=["lv1", "probe"], deps=[lv0_key(load_catalog().by_name("r_order_contract"))],
          partitions_def=daily_partitions)
def downstream_probe():
    """Stands for the layer above lv0: it must not run on a load whose checks failed."""
    return dg.MaterializeResult()


def _check_results(result):
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def _execute(sql, url):
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(sql)
    engine.dispose()


def test_lv0_checks_pass_on_a_good_load_for_every_table(seeded):
    assets = [build_lv0_asset(e) for e in load_catalog().tables]
    checks = [c for e in load_catalog().tables for c in build_lv0_checks(e)]
    result = dg.materialize(assets + checks, partition_key=PARTITION, resources=RESOURCES)
    evaluations = result.get_asset_check_evaluations()
    assert len(evaluations) == 2 * 31
    assert all(e.passed for e in evaluations), [
        (e.asset_key.to_user_string(), e.check_name, e.metadata) for e in evaluations if not e.passed
    ]


def test_a_row_missing_from_lv0_fails_the_count_check_and_blocks_downstream(seeded):
    _, datahub_url = seeded
    entry, asset, checks = _lv0_with_checks("r_order_contract")
    assert dg.materialize([asset, *checks], partition_key=PARTITION, resources=RESOURCES).success
    _execute(
        "DELETE FROM lv0.r_order_contract WHERE order_no = (SELECT min(order_no) FROM lv0.r_order_contract "
        "WHERE updt_dt >= '2024-01-03' AND updt_dt < '2024-01-04')",
        datahub_url,
    )
    result = dg.materialize(
        [asset, *checks, downstream_probe],
        partition_key=PARTITION,
        resources=RESOURCES,
        selection=dg.AssetSelection.checks_for_assets(lv0_key(entry)) | dg.AssetSelection.keys(["lv1", "probe"]),
        raise_on_error=False,
    )
    assert _check_results(result) == {"row_count_matches_source": False, "keys_unique_and_not_null": True}
    assert not result.asset_materializations_for_node("lv1__probe")


def test_a_duplicated_lv0_key_fails_the_key_check(seeded):
    _, datahub_url = seeded
    entry, asset, checks = _lv0_with_checks("r_order_contract")
    assert dg.materialize([asset, *checks], partition_key=PARTITION, resources=RESOURCES).success
    _execute("ALTER TABLE lv0.r_order_contract DROP CONSTRAINT r_order_contract_pkey", datahub_url)
    _execute(
        "INSERT INTO lv0.r_order_contract SELECT * FROM lv0.r_order_contract "
        "WHERE updt_dt >= '2024-01-03' AND updt_dt < '2024-01-04' LIMIT 1",
        datahub_url,
    )
    result = dg.materialize(
        [asset, *checks, downstream_probe], partition_key=PARTITION, resources=RESOURCES,
        selection=dg.AssetSelection.checks_for_assets(lv0_key(entry)) | dg.AssetSelection.keys(["lv1", "probe"]),
        raise_on_error=False,
    )
    checks_by_name = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert checks_by_name["keys_unique_and_not_null"].passed is False
    assert checks_by_name["keys_unique_and_not_null"].metadata["duplicated_keys"].value != "none"
    # one extra row in the window: the count check sees it too
    assert checks_by_name["row_count_matches_source"].passed is False
    assert not result.asset_materializations_for_node("lv1__probe")


# -- the large-table pool ---------------------------------------------------------------------

LARGE = ["r_order_contract", "r_order_contract_add", "r_service_receipt", "v_customer"]
SMALL = ["r_goods", "b_minor", "r_crm_info", "v_home_care", "r_install_fee", "r_acq_intro"]


def pool_job():
    """The four large tables and some small ones, as one multiprocess run."""
    catalog = load_catalog()
    assets = [build_lv0_asset(catalog.by_name(n)) for n in LARGE + SMALL]
    job = dg.define_asset_job("pool_probe", selection=dg.AssetSelection.all(),
                              executor_def=dg.multiprocess_executor.configured({"max_concurrent": 4}))
    return dg.Definitions(assets=assets, jobs=[job], resources=RESOURCES).resolve_job_def("pool_probe")


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


def test_large_extractions_never_overlap_while_small_ones_run_beside_them(platform_env, tmp_path):
    legacy_url, _ = platform_env
    # Large enough that the four serialized large loads take several seconds, so the small
    # steps, started beside them, overlap them even on a busy machine.
    names = [load_catalog().by_name(n).qualified_name for n in LARGE + SMALL]
    seed_legacy(legacy_url, rows=120_000, days=1, tables=names + ["RENTAL.R_GOODS", "RENTAL.V_SALES_LOUNGE"])
    overrides = {"concurrency": {"pools": {"default_limit": 1}}}
    with dg.instance_for_test(overrides=overrides, temp_dir=str(tmp_path)) as instance:
        with dg.execute_job(dg.reconstructable(pool_job), instance=instance,
                            tags={"dagster/partition": "2024-01-01"}) as result:
            assert result.success
            intervals = _step_intervals(instance, result.run_id)
    large = [intervals[f"lv0__{n}"] for n in LARGE]
    for (a_start, a_end), (b_start, b_end) in combinations(large, 2):
        assert a_end <= b_start or b_end <= a_start, "two large extractions overlapped"
    small = [intervals[f"lv0__{n}"] for n in SMALL]
    assert any(s_start < l_end and l_start < s_end for s_start, s_end in small for l_start, l_end in large), \
        "no small table ran beside a large one"


# -- retries ---------------------------------------------------------------------------------


def test_a_lost_datahub_connection_is_retried_and_then_succeeds(seeded, monkeypatch, make_database):
    """The Data Hub is unreachable at first (its database does not exist yet); the step is retried
    with backoff and succeeds once the database is there."""
    late = make_database("late")
    admin = sa.create_engine(late.set(database="postgres"), isolation_level="AUTOCOMMIT")
    quoted = admin.dialect.identifier_preparer.quote(late.database)
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE {quoted}")
    monkeypatch.setenv("BODYFRIEND_DATAHUB_URL", late.render_as_string(hide_password=False))
    monkeypatch.setattr(retries, "FIRST_DELAY_SECONDS", 1.0)

    def create_later():
        time.sleep(1.5)
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {quoted}")

    creator = threading.Thread(target=create_later)
    creator.start()
    asset = build_lv0_asset(load_catalog().by_name("b_major"))
    result = dg.materialize([asset], partition_key=PARTITION, resources=RESOURCES, raise_on_error=False)
    creator.join()
    admin.dispose()
    assert result.success
    retried = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert 1 <= len(retried) <= retries.MAX_RETRIES


def test_an_error_in_the_data_is_not_retried(seeded, monkeypatch):
    legacy_url, _ = seeded
    monkeypatch.setattr(retries, "FIRST_DELAY_SECONDS", 0.1)
    asset = build_lv0_asset(load_catalog().by_name("r_order_cust_info"))
    assert dg.materialize([asset], partition_key=PARTITION, resources=RESOURCES).success
    _execute("ALTER TABLE rental.r_order_cust_info ADD COLUMN recommender_nm varchar(50)", legacy_url)
    # the source changed shape: lv0 is not adapted silently, and the failure is not retried
    result = dg.materialize([asset], partition_key=PARTITION, resources=RESOURCES, raise_on_error=False)
    assert not result.success
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    failure = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE][0]
    assert "recommender_nm" in str(failure.event_specific_data.error)


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
