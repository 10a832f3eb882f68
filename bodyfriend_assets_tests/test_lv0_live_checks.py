"""lv0's ``row_count_matches_source`` on a source that is written while the platform reads it.

The check compares keys, not counts: a row lost before the load fails it, naming the key; a row
committed late is read again and loaded; rows changed, added or deleted while the load ran are
reported, not failed. Real loads through Dagster, real writes to the stand-in between them.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy import text

from bodyfriend_assets.catalog import LegacyTable
from bodyfriend_assets.lv0 import build_lv0_asset
from bodyfriend_assets.lv0.checks import ROW_COUNT, evaluate_lv0_check
from bodyfriend_assets.partitions import daily_partitions
from bodyfriend_assets.resources import DataHub, LegacyDatabase

DAY = "2024-03-05"
WINDOW = daily_partitions.time_window_for_partition_key(DAY)
INCREMENTAL = LegacyTable(
    database="RENTAL", table="R_ORDER_CONTRACT_ADD", keys=["ORDER_NO"], mode="incremental",
    cursor="UPDT_DT", page_size=100, lookback_minutes=0,
)
SNAPSHOT = LegacyTable(database="RENTAL", table="R_GOODS", keys=["GOODS_CD"], mode="snapshot", page_size=100)
# After every stamp of the day: what the load records as its start.
LOAD_STARTED = datetime(2024, 3, 6, 0, 10)


@pytest.fixture
def legacy(platform_env):
    engine = sa.create_engine(platform_env[0])
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA rental"))
        conn.execute(text(
            "CREATE TABLE rental.r_order_contract_add (order_no varchar(20), "
            "updt_dt timestamp(3) NOT NULL, amt numeric(12, 2))"
        ))
        conn.execute(text("CREATE TABLE rental.r_goods (goods_cd varchar(10) PRIMARY KEY, goods_nm text)"))
        conn.execute(text(
            "INSERT INTO rental.r_order_contract_add "
            "SELECT 'O' || lpad(i::text, 6, '0'), TIMESTAMP '2024-03-05 00:00' + i * INTERVAL '1 minute', i "
            "FROM generate_series(0, 999) AS i"
        ))
        conn.execute(text(
            "INSERT INTO rental.r_goods SELECT 'G' || lpad(i::text, 4, '0'), '상품 ' || i "
            "FROM generate_series(1, 300) AS i"
        ))
    yield engine
    engine.dispose()


@pytest.fixture
def datahub(platform_env):
    engine = sa.create_engine(platform_env[1])
    yield engine
    engine.dispose()


def load(entry: LegacyTable, partition: str = DAY) -> dg.ExecuteInProcessResult:
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [build_lv0_asset(entry)], partition_key=partition, instance=instance,
            resources={"legacy": LegacyDatabase(), "datahub": DataHub()},
        )
    assert result.success
    return result


def check(entry, legacy, datahub, **kwargs) -> tuple[bool, dict]:
    result = evaluate_lv0_check(entry, ROW_COUNT, legacy, datahub, WINDOW, **kwargs)
    return result.passed, {k: v.value for k, v in result.metadata.items()}


def run_sql(engine, sql: str, **params) -> None:
    with engine.begin() as conn:
        conn.execute(text(sql), params)


def lv0_keys(datahub, table: str = "r_order_contract_add", key: str = "order_no") -> set[str]:
    with datahub.connect() as conn:
        return set(conn.execute(text(f"SELECT {key} FROM lv0.{table}")).scalars())


def test_a_quiet_source_passes_with_each_partitions_own_counts(legacy, datahub):
    result = load(INCREMENTAL)
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == ROW_COUNT]
    assert evaluation.passed
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    assert meta["source_rows_in_partitions"] == meta["lv0_rows_in_partitions"] == 1000
    assert meta["rows_per_partition"] == {DAY: {"source": 1000, "lv0": 1000}}
    assert meta["rows_loaded_late"] == meta["rows_changed_during_load"] == meta["lv0_rows_gone_from_source"] == 0
    (materialization,) = result.get_asset_materialization_events()
    assert materialization.materialization.metadata["rows_read"].value == 1000
    assert "load_started_kst" in materialization.materialization.metadata


def test_a_row_lost_before_the_load_fails_the_check_naming_its_key_only(legacy, datahub):
    load(INCREMENTAL)
    run_sql(datahub, "DELETE FROM lv0.r_order_contract_add WHERE order_no IN ('O000007', 'O000500')")
    passed, meta = check(INCREMENTAL, legacy, datahub, load_started=LOAD_STARTED, reread_limit=0)
    assert not passed
    assert meta["missing_rows"] == 2
    assert meta["missing_keys"] == "('O000007',), ('O000500',)"
    assert meta["source_rows_in_partitions"] - meta["lv0_rows_in_partitions"] == 2


def test_a_row_committed_late_inside_the_window_is_read_again_and_loaded(legacy, datahub):
    load(INCREMENTAL)
    # Committed after the reader passed its place, stamped inside the window before the load
    # began; and a row whose newer version (same stamp era) arrived the same way.
    run_sql(legacy, "INSERT INTO rental.r_order_contract_add VALUES ('LATE01', '2024-03-05 03:00', 42)")
    run_sql(legacy, "UPDATE rental.r_order_contract_add SET amt = 7, updt_dt = '2024-03-05 23:59' WHERE order_no = 'O000001'")
    passed, meta = check(INCREMENTAL, legacy, datahub, load_started=LOAD_STARTED)
    assert passed, meta
    assert meta["rows_loaded_late"] == 2
    assert meta["rows_loaded_late_keys"] == "('LATE01',), ('O000001',)"
    with datahub.connect() as conn:
        assert conn.execute(text(
            "SELECT order_no, amt, _partition FROM lv0.r_order_contract_add "
            "WHERE order_no IN ('LATE01', 'O000001') ORDER BY 1"
        )).all() == [("LATE01", 42, DAY), ("O000001", 7, DAY)]
    assert meta["lv0_rows_in_partitions"] == meta["source_rows_in_partitions"] == 1001


def test_rows_changed_or_deleted_during_the_load_are_reported_not_failed(legacy, datahub):
    load(INCREMENTAL)
    started = datetime(2024, 3, 5, 12, 0)  # as if the load had begun at noon of the day it reads
    # A back-dated correction moves a row out of the window (a later stamp would be a future one,
    # which the check reads whatever the partition: see the test below).
    run_sql(legacy, "UPDATE rental.r_order_contract_add SET updt_dt = '2024-03-04 09:00' WHERE order_no = 'O000010'")
    run_sql(legacy, "DELETE FROM rental.r_order_contract_add WHERE order_no = 'O000011'")
    run_sql(legacy, "INSERT INTO rental.r_order_contract_add VALUES ('NEW001', '2024-03-05 13:00', 1)")
    run_sql(legacy, "UPDATE rental.r_order_contract_add SET updt_dt = '2024-03-05 12:30' WHERE order_no = 'O000012'")
    passed, meta = check(INCREMENTAL, legacy, datahub, load_started=started)
    assert passed, meta
    assert meta["rows_changed_during_load"] == 2
    assert meta["rows_changed_during_load_keys"] == "('NEW001',), ('O000012',)"
    assert meta["lv0_rows_gone_from_source"] == 2
    assert meta["lv0_rows_gone_from_source_keys"] == "('O000010',), ('O000011',)"
    assert meta["rows_loaded_late"] == 0
    assert "NEW001" not in lv0_keys(datahub)  # reported; the next run loads it


def test_rows_in_no_partition_that_lv0_lacks_are_read_again_into_the_loads_last_partition(legacy, datahub):
    load(INCREMENTAL)
    # A placeholder stamp far in the future and no stamp at all: every load reads such rows, so the
    # check of any partition compares them, and their stamps say nothing of when they were written.
    run_sql(legacy, "INSERT INTO rental.r_order_contract_add VALUES ('FUTURE1', '9999-12-31', 1)")
    run_sql(
        legacy, "ALTER TABLE rental.r_order_contract_add ALTER COLUMN updt_dt DROP NOT NULL; "
        "INSERT INTO rental.r_order_contract_add VALUES ('NOSTAMP', NULL, 2)",
    )
    passed, meta = check(INCREMENTAL, legacy, datahub, load_started=LOAD_STARTED)
    assert passed, meta
    assert meta["rows_loaded_late"] == 2
    assert meta["rows_changed_during_load"] == 0
    assert meta["rows_per_partition"] == {DAY: {"source": 1000, "lv0": 1000}, "floating": {"source": 2, "lv0": 2}}
    with datahub.connect() as conn:
        assert conn.execute(text(
            "SELECT order_no, _partition FROM lv0.r_order_contract_add "
            "WHERE order_no IN ('FUTURE1', 'NOSTAMP') ORDER BY 1"
        )).all() == [("FUTURE1", DAY), ("NOSTAMP", DAY)]


def test_a_source_row_with_a_null_key_fails_the_check_with_the_count(legacy, datahub):
    load(INCREMENTAL)
    run_sql(legacy, "INSERT INTO rental.r_order_contract_add VALUES (NULL, '2024-03-05 05:00', 1)")
    passed, meta = check(INCREMENTAL, legacy, datahub, load_started=LOAD_STARTED)
    assert not passed
    assert meta["source_rows_with_null_key"] == 1
    assert meta["rows_loaded_late"] == 0


def test_snapshot_rows_added_or_deleted_after_its_read_are_reported_not_failed(legacy, datahub):
    load(SNAPSHOT)
    run_sql(legacy, "INSERT INTO rental.r_goods VALUES ('G9999', '새 상품')")
    run_sql(legacy, "DELETE FROM rental.r_goods WHERE goods_cd = 'G0003'")
    passed, meta = check(SNAPSHOT, legacy, datahub, load_started=LOAD_STARTED)
    assert passed, meta
    assert (meta["rows_added_during_load"], meta["rows_added_during_load_keys"]) == (1, "('G9999',)")
    assert (meta["lv0_rows_gone_from_source"], meta["lv0_rows_gone_from_source_keys"]) == (1, "('G0003',)")
    assert meta["source_rows_in_table"] == meta["lv0_rows_in_table"] == 300


def test_a_snapshot_missing_more_rows_than_a_load_can_explain_fails(legacy, datahub):
    load(SNAPSHOT)
    run_sql(datahub, "DELETE FROM lv0.r_goods WHERE goods_cd <= 'G0010'")
    passed, meta = check(SNAPSHOT, legacy, datahub, load_started=LOAD_STARTED, reread_limit=5)
    assert not passed
    assert meta["missing_rows"] == 10
    assert meta["missing_keys"].startswith("('G0001',), ('G0002',)")


def test_a_range_run_records_each_partitions_own_counts(legacy, datahub):
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [build_lv0_asset(INCREMENTAL.model_copy(update={"lookback_minutes": 180}))], instance=instance,
            tags={"dagster/asset_partition_range_start": "2024-03-04",
                  "dagster/asset_partition_range_end": "2024-03-06"},
            resources={"legacy": LegacyDatabase(), "datahub": DataHub()},
        )
    assert result.success
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == ROW_COUNT]
    meta = {k: v.value for k, v in evaluation.metadata.items()}
    # 1,000 rows one minute apart from 2024-03-05 00:00: 1,000 on the 5th, none on the others.
    assert meta["rows_per_partition"] == {DAY: {"source": 1000, "lv0": 1000}}
    assert meta["source_rows_in_partitions"] == 1000
    for event in result.get_asset_materialization_events():
        assert event.materialization.metadata["rows_read"].value == 1000
        assert event.materialization.metadata["read_window_start_kst"].value == "2024-03-03 21:00:00"
