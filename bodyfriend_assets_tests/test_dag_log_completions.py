"""dag_log means success: blocking checks, DAGs made of several assets, stand-ins, a lost table.

Real runs on a real Dagster instance (dagster-postgres), the sensor ticked as the daemon does, the
Data Hub a real PostgreSQL. The assets are trivial ones carrying the platform's keys and DAG ids.
"""

from __future__ import annotations

from datetime import date, datetime

import dagster as dg
import pytest
import sqlalchemy as sa

from bodyfriend_assets.compat.completions import blocking_checks_of
from bodyfriend_assets.compat.dag_ids import StandIn
from bodyfriend_assets.compat.dag_log import DagLogTableError, backfill_dag_log, build_dag_log_sensor
from bodyfriend_assets_tests.test_dag_log import dag_log, instance, instance_url, run, tick, utc  # noqa: F401
from bodyfriend_assets_tests.test_dependency_manager import OLD_DAG_IDS

LV0, LV2, HC = dg.AssetKey(["lv0", "r_goods"]), dg.AssetKey(["lv2", "product2"]), dg.AssetKey(["hc", "product2"])
INTRO = dg.AssetKey(["lv0", "r_acq_intro"])
LV1_DAG = "lv1_dag_RENTAL.R_GOODS"


def checked_asset(key, *, passes: bool, deps=(), dag_id=None, fail=False):
    @dg.asset(
        key=key,
        deps=list(deps),
        metadata={"dag_id": dag_id} if dag_id else None,
        check_specs=[dg.AssetCheckSpec("rows_ok", asset=key, blocking=True)],
    )
    def _asset() -> dg.MaterializeResult:
        if fail:
            raise RuntimeError("the upsert into the hc table failed")
        return dg.MaterializeResult(check_results=[dg.AssetCheckResult(passed=passes)])

    return _asset


lv0_ok, lv0_bad = checked_asset(LV0, passes=True), checked_asset(LV0, passes=False)
lv2_ok = checked_asset(LV2, passes=True, deps=[LV0], dag_id=LV1_DAG)
hc_ok = checked_asset(HC, passes=True, deps=[LV2], dag_id=LV1_DAG)
hc_bad = checked_asset(HC, passes=False, deps=[LV2], dag_id=LV1_DAG)
hc_failing = checked_asset(HC, passes=True, deps=[LV2], dag_id=LV1_DAG, fail=True)


@dg.asset(key=INTRO)
def acq_intro() -> None: ...


DAG_IDS = {LV0: "legacy_to_lv0_RENTAL.R_GOODS", LV2: LV1_DAG, HC: LV1_DAG, INTRO: "legacy_to_lv0_RENTAL.R_ACQ_INTRO"}
STAND_INS = {  # as stand_in_dags derives them for a table no lv1 model reads
    "lv0_dag_RENTAL.R_ACQ_INTRO": StandIn(frozenset({INTRO}), frozenset({"legacy_to_lv0_RENTAL.R_ACQ_INTRO"})),
    "lv1_dag_RENTAL.R_ACQ_INTRO": StandIn(frozenset({INTRO}), frozenset({"lv0_dag_RENTAL.R_ACQ_INTRO"})),
}
BLOCKING = blocking_checks_of([lv0_ok, lv2_ok, hc_ok])


def sensor(**kwargs):
    return build_dag_log_sensor(DAG_IDS, stand_ins=STAND_INS, blocking_checks=BLOCKING, **kwargs)


def test_a_table_that_fails_its_blocking_check_gets_no_row(instance, hub):
    mirror = sensor()
    run([lv0_bad], instance, utc(2024, 3, 4, 16, 0), success=False)  # 01:00 KST on 03-05
    cursor, new, message = tick(mirror, instance, None)
    assert new == 1 and "1 failed a blocking check" in message
    assert dag_log(hub) == []
    run([lv0_ok], instance, utc(2024, 3, 4, 17, 0))  # fixed and run again: 02:00 KST
    tick(mirror, instance, cursor)
    assert dag_log(hub) == [("legacy_to_lv0_RENTAL.R_GOODS", date(2024, 3, 5), datetime(2024, 3, 5, 2, 0))]


def test_lv1_dag_is_written_only_when_lv2_and_hc_both_succeeded_that_day(instance, hub):
    mirror = sensor()
    run([lv0_ok, lv2_ok, hc_failing], instance, utc(2024, 3, 4, 16, 0), success=False)  # hc fails
    cursor, _, _ = tick(mirror, instance, None)
    run([lv2_ok, hc_bad], instance, utc(2024, 3, 4, 17, 0), success=False)  # hc fails its check
    cursor, _, _ = tick(mirror, instance, cursor)
    assert [r[0] for r in dag_log(hub)] == ["legacy_to_lv0_RENTAL.R_GOODS"]

    run([hc_ok], instance, utc(2024, 3, 4, 18, 30))  # hc alone, later that Korean day: done
    cursor, _, _ = tick(mirror, instance, cursor)
    assert dag_log(hub) == [
        ("legacy_to_lv0_RENTAL.R_GOODS", date(2024, 3, 5), datetime(2024, 3, 5, 1, 0)),
        (LV1_DAG, date(2024, 3, 5), datetime(2024, 3, 5, 3, 30)),
    ]
    # The next Korean day, lv2 alone is not the DAG's completion.
    run([lv2_ok], instance, utc(2024, 3, 5, 16, 0))
    tick(mirror, instance, cursor)
    assert [r for r in dag_log(hub) if r[1] == date(2024, 3, 6)] == []
    # The backfill reads the same meaning from the whole history.
    with hub.begin() as conn:
        conn.execute(sa.text("DROP TABLE public.dag_log"))
    backfill_dag_log(instance, hub, DAG_IDS, stand_ins=STAND_INS, blocking_checks=BLOCKING)
    assert dag_log(hub) == [
        ("legacy_to_lv0_RENTAL.R_GOODS", date(2024, 3, 5), datetime(2024, 3, 5, 1, 0)),
        (LV1_DAG, date(2024, 3, 5), datetime(2024, 3, 5, 3, 30)),
    ]


def test_a_step_that_died_before_its_blocking_check_reported_completes_nothing(instance, hub):
    @dg.asset(key=LV0, check_specs=[dg.AssetCheckSpec("rows_ok", asset=LV0, blocking=True)])
    def dies_after_writing():
        yield dg.MaterializeResult()
        raise RuntimeError("the worker died before the check ran")

    run([dies_after_writing], instance, utc(2024, 3, 4, 16, 0), success=False)
    _, new, message = tick(sensor(), instance, None)
    assert new == 1 and "1 failed a blocking check" in message
    assert dag_log(hub) == []


def test_a_table_with_no_lv1_model_completes_its_old_dags_with_its_lv0_load(instance, hub):
    run([acq_intro], instance, utc(2024, 3, 4, 16, 0))
    tick(sensor(), instance, None)
    moment = (date(2024, 3, 5), datetime(2024, 3, 5, 1, 0))
    assert dag_log(hub) == [
        ("legacy_to_lv0_RENTAL.R_ACQ_INTRO", *moment),
        ("lv0_dag_RENTAL.R_ACQ_INTRO", *moment),
        ("lv1_dag_RENTAL.R_ACQ_INTRO", *moment),
    ]


def test_a_dropped_or_emptied_dag_log_is_refilled_by_the_sensor_from_history(instance, hub):
    mirror = sensor(max_records_per_tick=2)
    for hour in (16, 17, 18):
        run([acq_intro], instance, utc(2024, 3, hour - 12, hour, 0))
    cursor, message = None, "more to read"
    while "more to read" in message:
        cursor, _, message = tick(mirror, instance, cursor)
    full = dag_log(hub)
    assert len(full) == 9

    with hub.begin() as conn:
        conn.execute(sa.text("DROP TABLE public.dag_log"))
    cursor, _, message = tick(mirror, instance, cursor)
    assert message.endswith("; public.dag_log was dropped: refilling it from Dagster's history")
    while "more to read" in message:  # in bounded ticks, like a first start
        cursor, _, message = tick(mirror, instance, cursor)
    assert dag_log(hub) == full

    with hub.begin() as conn:
        conn.execute(sa.text("DELETE FROM public.dag_log"))
    cursor, _, message = tick(mirror, instance, cursor)
    assert message.endswith("; public.dag_log was emptied: refilling it from Dagster's history")
    while "more to read" in message:
        cursor, _, message = tick(mirror, instance, cursor)
    assert dag_log(hub) == full
    _, new, message = tick(mirror, instance, cursor)  # and then it rests
    assert new == 0 and "refilling" not in message


def test_a_dag_log_recreated_without_its_unique_key_is_repaired_and_refilled(instance, hub):
    mirror = sensor()
    run([acq_intro], instance, utc(2024, 3, 4, 16, 0))
    cursor, _, _ = tick(mirror, instance, None)
    with hub.begin() as conn:  # recreated by hand, without the key, with a duplicate of one day
        conn.execute(sa.text("DROP TABLE public.dag_log"))
        conn.execute(sa.text(
            "CREATE TABLE public.dag_log (dag_id varchar(250), completion_date date, completion_datetime timestamp)"))
        conn.execute(sa.text(
            "INSERT INTO public.dag_log VALUES ('lv0_dag_RENTAL.R_GOODS', '2024-01-01', '2024-01-01 01:00'), "
            "('lv0_dag_RENTAL.R_GOODS', '2024-01-01', '2024-01-01 03:00')"))
    _, _, message = tick(mirror, instance, cursor)
    assert message.endswith("public.dag_log was recreated: refilling it from Dagster's history")
    assert dag_log(hub) == [
        ("legacy_to_lv0_RENTAL.R_ACQ_INTRO", date(2024, 3, 5), datetime(2024, 3, 5, 1, 0)),
        ("lv0_dag_RENTAL.R_ACQ_INTRO", date(2024, 3, 5), datetime(2024, 3, 5, 1, 0)),
        ("lv0_dag_RENTAL.R_GOODS", date(2024, 1, 1), datetime(2024, 1, 1, 3, 0)),  # the latest kept
        ("lv1_dag_RENTAL.R_ACQ_INTRO", date(2024, 3, 5), datetime(2024, 3, 5, 1, 0)),
    ]
    with hub.connect() as conn:
        constraints = conn.execute(sa.text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'public.dag_log'::regclass AND contype = 'u'")).scalars().all()
    assert constraints == ["UNIQUE (dag_id, completion_date)"]


def test_a_dag_log_missing_a_column_is_named_in_the_error(instance, hub):
    run([acq_intro], instance, utc(2024, 3, 4, 16, 0))
    with hub.begin() as conn:
        conn.execute(sa.text("CREATE TABLE public.dag_log (dag_id varchar(250), completion_date date)"))
    with pytest.raises(DagLogTableError, match="public.dag_log has no column 'completion_datetime'"):
        tick(sensor(), instance, None)


def test_a_good_night_of_the_platform_writes_every_old_dag_id_and_no_table_is_stale(instance, hub, platform_env):
    """The platform's own chain (lv0 -> lv1 -> lv1ex, lv2 -> hc) on the seeded stand-in, its own
    sensor; lv1ex refines the addresses through the embedded geocoding stand-in."""
    from dagster._core.test_utils import freeze_time

    from bodyfriend_assets import definitions, lv1, lv2
    from bodyfriend_assets.alerts.sensors import build_stale_tables_alert
    from bodyfriend_assets.compat.completions import KST
    from bodyfriend_assets.demo.generator import seed_legacy
    from bodyfriend_assets.hc import HerokuConnect, build_hc_assets
    from bodyfriend_assets.lv0 import lv0_assets
    from bodyfriend_assets.lv1ex import lv1ex_assets
    from bodyfriend_assets.resources import DataHub, LegacyDatabase
    from bodyfriend_assets.storage.io_manager import DATAHUB_IO, DataHubIOManager
    from bodyfriend_assets.transforms import build_model_steps

    legacy_url, _ = platform_env
    seed_legacy(legacy_url, rows=200, days=1)
    lv0 = lv0_assets(definitions.catalog)
    lv1ex = lv1ex_assets(definitions.catalog)
    chain = [*lv0, *build_model_steps([*lv1.models, *lv2.models], upstream=lv0, catalog=definitions.catalog,
                                      lv2_upstream=lv1ex),
             build_hc_assets(definitions.catalog), *lv1ex]
    with freeze_time(datetime(2024, 1, 2, 0, 30, tzinfo=KST)):
        result = dg.materialize(
            chain, partition_key="2024-01-01", instance=instance,
            resources={"legacy": LegacyDatabase(), "datahub": DataHub(), "heroku_connect": HerokuConnect(mode="development"),
                       DATAHUB_IO: DataHubIOManager(datahub=DataHub())},
        )
    assert result.success
    mirror = build_dag_log_sensor(definitions.dag_ids, stand_ins=definitions.stand_ins,
                                  blocking_checks=definitions.blocking_checks)
    cursor, message = None, "more to read"
    while "more to read" in message:
        cursor, _, message = tick(mirror, instance, cursor)
    old_ids = OLD_DAG_IDS
    written = {row[0] for row in dag_log(hub)}
    assert {row[1] for row in dag_log(hub)} == {date(2024, 1, 2)}
    # 89 of 92: R_CRM_INFO is loaded by the runs of days 1, 8, 15, 22, 29 only.
    off_day = {f"{step}_RENTAL.R_CRM_INFO" for step in ("legacy_to_lv0", "lv0_dag", "lv1_dag")}
    assert written == old_ids - off_day  # lv1ex_dag_ among them
    assert "lv0_dag_UNIERP5.B_MINOR" in written

    stale = build_stale_tables_alert(definitions.dag_ids, definitions.blocking_checks,
                                     clock=lambda: datetime(2024, 1, 2, 7, 1, tzinfo=KST).timestamp())
    data = stale.evaluate_tick(dg.build_sensor_context(instance=instance))
    assert data.skip_message == f"2024-01-02: 0 of {len(definitions.dag_ids)} tables not fresh at 07:00 KST"
