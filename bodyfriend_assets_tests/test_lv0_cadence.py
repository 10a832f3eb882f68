"""A table loaded on some days only (the catalog's ``load_days``), as R_CRM_INFO was.

The real catalog entry of R_CRM_INFO (days 1, 8, 15, 22, 29), its lv0 asset run through Dagster
on a real PostgreSQL stand-in ERP and Data Hub; dag_log and the freshness alert read a real
dagster-postgres instance. The nightly run of Korean day N (00:10) is for partition N-1, so the
partitions loaded are those of the days before 1, 8, 15, ...: 2024-03-07 is loaded (its run is on
the 8th), 2024-03-06 and 2024-03-08 are off days.
"""

from __future__ import annotations

from datetime import date, datetime

import dagster as dg
import pytest
import sqlalchemy as sa
from dagster._core.test_utils import freeze_time

from bodyfriend_assets import settings
from bodyfriend_assets.alerts import mail
from bodyfriend_assets.alerts.sensors import build_stale_tables_alert
from bodyfriend_assets.catalog import CatalogError, load_catalog, parse_catalog
from bodyfriend_assets.compat.completions import KST
from bodyfriend_assets.compat.dag_log import backfill_dag_log, build_dag_log_sensor
from bodyfriend_assets.lv0 import build_lv0_asset, lv0_key
from bodyfriend_assets.lv0.checks import KEYS, ROW_COUNT
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets_tests.test_dag_log import dag_log, instance, instance_url, tick  # noqa: F401

CRM = load_catalog().by_name("R_CRM_INFO")
KEY = lv0_key(CRM)
OFF_DAY = "not a load day (load_days 1, 8, 15, 22, 29: lv0 keeps the last load)"


@pytest.fixture
def source(platform_env):
    legacy_url, _ = platform_env
    engine = sa.create_engine(legacy_url)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE SCHEMA rental"))
        conn.execute(sa.text("CREATE TABLE rental.r_crm_info (zip_seq integer PRIMARY KEY, addr varchar(80))"))
        conn.execute(sa.text(
            "INSERT INTO rental.r_crm_info SELECT i, '서울시 ' || i FROM generate_series(1, 300) AS i"))
    yield engine
    engine.dispose()


def materialize(instance, **kwargs) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [build_lv0_asset(CRM)], instance=instance,
        resources={"legacy": LegacyDatabase(), "datahub": DataHub()}, **kwargs,
    )
    assert result.success
    return result


def by_partition(result) -> dict[str, dict]:
    return {
        e.materialization.partition: {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
    }


def checks_by_partition(result) -> dict[tuple[str, str | None], tuple[bool, dict]]:
    """(check, partition) -> (passed, metadata without the check's timing)."""
    return {
        (e.check_name, e.partition): (e.passed, {k: v.value for k, v in e.metadata.items() if k != "seconds"})
        for e in result.get_asset_check_evaluations()
    }


def lv0_rows(hub) -> list[tuple]:
    with hub.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT zip_seq, addr, _run_id, _partition FROM lv0.r_crm_info ORDER BY zip_seq"))]


def test_r_crm_info_is_loaded_by_the_runs_of_days_1_8_15_22_29_only():
    assert CRM.mode == "snapshot" and CRM.load_days == (1, 8, 15, 22, 29)
    loaded = [f"2024-03-{d:02}" for d in range(1, 32) if CRM.loads_partition(f"2024-03-{d:02}")]
    assert loaded == ["2024-03-07", "2024-03-14", "2024-03-21", "2024-03-28", "2024-03-31"]  # run on 1 April
    assert CRM.loads_partition("2024-02-28") and not CRM.loads_partition("2024-02-27")  # runs on 29, 28 Feb
    assert all(entry.loads_partition("2024-03-08") for entry in load_catalog().tables if entry.load_days is None)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ([0, 8], "0 is not a day of the month"),
        ([1, 32], "32 is not a day of the month"),
        ("monday", "must be a non-empty list of days of the month"),
        ([], "must be a non-empty list of days of the month"),
        ([1, 8, 1], "days repeat"),
        (["1"], "'1' is not a day of the month"),
    ],
)
def test_a_bad_load_days_value_fails_naming_the_table_and_the_field(value, problem):
    document = {"tables": [
        {"database": "RENTAL", "table": "R_GOODS", "keys": ["GOODS_CD"], "mode": "snapshot"},
        {"database": "RENTAL", "table": "R_CRM_INFO", "keys": ["ZIP_SEQ"], "mode": "snapshot", "load_days": value},
    ]}
    with pytest.raises(CatalogError) as raised:
        parse_catalog(document)
    assert str(raised.value).startswith("catalog entry #2 (RENTAL.R_CRM_INFO): load_days")
    assert problem in str(raised.value)


def test_an_incremental_table_cannot_skip_days():
    document = {"tables": [{
        "database": "RENTAL", "table": "R_ORDER_CONTRACT", "keys": ["ORDER_NO"], "mode": "incremental",
        "cursor": "UPDT_DT", "load_days": [1, 15],
    }]}
    with pytest.raises(CatalogError, match=r"RENTAL\.R_ORDER_CONTRACT\): entry: Value error, load_days: only a snapshot"):
        parse_catalog(document)


def test_an_off_day_reads_nothing_keeps_the_last_load_and_its_checks_say_so(source, hub):
    with dg.instance_for_test() as instance:
        load = materialize(instance, partition_key="2024-03-07")
        assert by_partition(load)["2024-03-07"]["rows_read"] == 300
        before = lv0_rows(hub)
        assert len(before) == 300 and {r[3] for r in before} == {"2024-03-07"}
        # The source is gone: any read of it on the off day would fail the run.
        with source.begin() as conn:
            conn.execute(sa.text("ALTER TABLE rental.r_crm_info RENAME TO r_crm_info_away"))
        off = materialize(instance, partition_key="2024-03-08")

    meta = by_partition(off)["2024-03-08"]
    assert meta == {"skipped": OFF_DAY, "rows_read": 0, "rows_changed": 0, "partitions": "2024-03-08"}
    assert lv0_rows(hub) == before  # untouched: lineage included
    checks = checks_by_partition(off)
    assert checks == {
        (ROW_COUNT, "2024-03-08"): (True, {"skipped": OFF_DAY}),  # compared nothing
        (KEYS, "2024-03-08"): (True, {"skipped": OFF_DAY}),
    }


def test_a_range_of_load_and_off_days_loads_once_and_each_partition_says_which_it_was(source, hub):
    with dg.instance_for_test() as instance:
        result = materialize(instance, tags={
            "dagster/asset_partition_range_start": "2024-03-06",
            "dagster/asset_partition_range_end": "2024-03-09",
        })
        assert instance.get_materialized_partitions(KEY) == {"2024-03-06", "2024-03-07", "2024-03-08", "2024-03-09"}

    partitions = by_partition(result)
    assert sorted(partitions) == ["2024-03-06", "2024-03-07", "2024-03-08", "2024-03-09"]
    assert partitions["2024-03-07"]["rows_read"] == 300 and "skipped" not in partitions["2024-03-07"]
    for day in ("2024-03-06", "2024-03-08", "2024-03-09"):
        assert partitions[day] == {"skipped": OFF_DAY, "rows_read": 0, "rows_changed": 0,
                                   "partitions": "2024-03-06...2024-03-09"}
    rows = lv0_rows(hub)
    assert len(rows) == 300 and {(r[2], r[3]) for r in rows} == {(result.run_id, "2024-03-07")}
    checks = checks_by_partition(result)
    for day in ("2024-03-06", "2024-03-08", "2024-03-09"):
        assert checks[(ROW_COUNT, day)] == (True, {"skipped": OFF_DAY})
        assert checks[(KEYS, day)] == (True, {"skipped": OFF_DAY})
    # The load's own checks compared the source (the range run's evaluation).
    [(passed, compared)] = [v for (name, day), v in checks.items() if name == ROW_COUNT and day is None]
    assert passed and compared["source_rows_in_table"] == compared["lv0_rows_in_table"] == 300


def test_dag_log_has_rows_for_load_days_only_and_the_freshness_alert_never_lists_an_off_day(
    source, instance, hub, monkeypatch, capfd,
):
    """Three nights, as the schedule runs them: 00:30 KST the day after each partition."""
    from bodyfriend_assets import definitions

    for partition, night in (("2024-03-06", 7), ("2024-03-07", 8), ("2024-03-08", 9)):
        with freeze_time(datetime(2024, 3, night, 0, 30, tzinfo=KST)):
            materialize(instance, partition_key=partition)
    mirror = build_dag_log_sensor(definitions.dag_ids, stand_ins=definitions.stand_ins,
                                  blocking_checks=definitions.blocking_checks)
    cursor, message = None, "more to read"
    while "more to read" in message:
        cursor, _, message = tick(mirror, instance, cursor)
    written = dag_log(hub)
    assert {row[1] for row in written} == {date(2024, 3, 8)}  # the old DAG ran on the 8th only
    assert {row[0] for row in written} >= {"legacy_to_lv0_RENTAL.R_CRM_INFO", "lv0_dag_RENTAL.R_CRM_INFO"}
    # Rebuilt from the whole history (``bodyfriend dag-log-backfill``): the same rows, none more.
    with hub.begin() as conn:
        conn.execute(sa.text("DELETE FROM public.dag_log"))
    backfill_dag_log(instance, hub, definitions.dag_ids, stand_ins=definitions.stand_ins,
                     blocking_checks=definitions.blocking_checks)
    assert dag_log(hub) == written

    monkeypatch.delenv(mail.HOST_VAR, raising=False)
    monkeypatch.setenv(settings.ENV_VAR, settings.DEVELOPMENT)

    def stale_at(day: int) -> str:
        alert = build_stale_tables_alert([KEY], definitions.blocking_checks,
                                         clock=lambda: datetime(2024, 3, day, 7, 1, tzinfo=KST).timestamp())
        return alert.evaluate_tick(dg.build_sensor_context(instance=instance)).skip_message

    assert stale_at(7) == "2024-03-07: 0 of 1 tables not fresh at 07:00 KST"  # off day
    assert stale_at(8) == "2024-03-08: 0 of 1 tables not fresh at 07:00 KST"  # load day
    assert stale_at(9) == "2024-03-09: 0 of 1 tables not fresh at 07:00 KST"  # off day
    # A night that did not run at all is still stale, off day or not.
    assert stale_at(10) == "2024-03-10: 1 of 1 tables not fresh at 07:00 KST"
    assert "alert not sent" in capfd.readouterr().err
