"""lv0 on an ERP that deletes rows, stamps them oddly and loses tables: deletes at the source leave
lv0, rows outside every partition load and stay current, NULL keys are refused without their
values, and a dropped or emptied lv0 table gets its older partitions back.

Real PostgreSQL for both databases, lv0 assets through ``dg.materialize`` on a real instance.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta, timezone

import dagster as dg
import pytest
from dagster._serdes import serialize_value
from sqlalchemy import text

from bodyfriend_assets.extraction.copy_text import RowEncoder
from bodyfriend_assets.extraction.engine import open_source
from bodyfriend_assets.extraction.lv0_writer import FloatingRows, Lineage, Lv0Load, Lv0WriteError
from bodyfriend_assets.lv0 import build_lv0_asset
from bodyfriend_assets.partitions import daily_partitions
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets_tests.test_lv0_partitions import (  # noqa: F401 (fixtures)
    COLUMNS,
    add_rows,
    datahub,
    entry,
    legacy,
    lv0_lineage,
    lv0_rows,
    materialize,
    metadata,
    seed,
)

CUSTOMER = "홍길동 010-7731-4406 hong.gildong@example.kr"  # a value that must never reach a log


def source_keys(legacy) -> set[str]:
    with legacy.connect() as conn:
        return set(conn.execute(text("SELECT order_no FROM rental.r_order_contract_add")).scalars())


def lv0_keys(datahub) -> set[str]:
    return {r[0] for r in lv0_rows(datahub)}


def execute(legacy, sql: str, **params) -> None:
    with legacy.begin() as conn:
        conn.execute(text(sql), params)


def run_range(asset, instance, first: str, last: str) -> dg.ExecuteInProcessResult:
    return materialize(
        asset, instance,
        tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
    )


def messages(instance, run_id: str) -> list[str]:
    return [e.user_message for e in instance.all_logs(run_id)]


def nullable_cursor_and_key(legacy) -> None:
    """The ERP table without the constraints the stand-in gave it."""
    execute(legacy, "ALTER TABLE rental.r_order_contract_add DROP CONSTRAINT r_order_contract_add_pkey")
    execute(legacy, "ALTER TABLE rental.r_order_contract_add ALTER order_no DROP NOT NULL")
    execute(legacy, "ALTER TABLE rental.r_order_contract_add ALTER updt_dt DROP NOT NULL")


# -- deletes -------------------------------------------------------------------------------


def test_rows_deleted_at_the_source_leave_lv0_in_the_next_run_however_old(legacy, datahub):
    seed(legacy, datetime(2024, 3, 4, 12, 0, 0, 3000), timedelta(minutes=20), 200, 3)
    add_rows(legacy, {"02OLD00001": datetime(2019, 5, 3, 10, 0), "82OLD00002": datetime(2024, 1, 15, 9, 30)})
    asset = build_lv0_asset(entry(lookback_minutes=180, page_size=40))  # key pages of 400 keys
    with dg.instance_for_test() as instance:
        materialize(asset, instance, partition_key="2024-01-01")  # the 2019 row: the first partition
        materialize(asset, instance, partition_key="2024-01-15")
        run_range(asset, instance, "2024-03-04", "2024-03-05")
        assert {"02OLD00001", "82OLD00002"} <= lv0_keys(datahub)
        loaded_before = lv0_keys(datahub)

        in_lv0 = sorted(k for k in loaded_before if k.startswith("HI"))[:3]
        gone = ["02OLD00001", "82OLD00002", *in_lv0]
        execute(legacy, "DELETE FROM rental.r_order_contract_add WHERE order_no = ANY(:keys)", keys=gone)
        result = materialize(asset, instance, partition_key="2024-03-06")  # another day's run
        log = messages(instance, result.run_id)
        again = materialize(asset, instance, partition_key="2024-03-06")

    assert not set(gone) & lv0_keys(datahub)
    assert loaded_before - set(gone) <= lv0_keys(datahub) <= source_keys(legacy)
    meta = metadata(result)
    assert meta["rows_deleted"] == 5
    assert meta["source_keys"] == len(source_keys(legacy)) > 400  # more than one key page
    deleted = next(m for m in log if "deleted" in m and "no longer in" in m)
    assert "5 row(s)" in deleted and "02OLD00001" in deleted and "ORDER_NO" in deleted
    assert "고객" not in deleted  # keys only, never other values
    assert metadata(again)["rows_deleted"] == 0


def test_a_row_inserted_after_the_window_was_read_is_not_deleted(legacy, datahub):
    """The key scan starts after the window pass: a row the window read is in the scan too."""
    seed(legacy, datetime(2024, 3, 5, 1, 0), timedelta(minutes=5), 100, 2)
    add_rows(legacy, {"ONLATE0001": datetime(2024, 3, 5, 12, 0)})
    asset = build_lv0_asset(entry(lookback_minutes=0))
    with dg.instance_for_test() as instance:
        result = materialize(asset, instance, partition_key="2024-03-05")
    assert "ONLATE0001" in lv0_keys(datahub)
    assert metadata(result)["rows_deleted"] == 0
    assert lv0_keys(datahub) == source_keys(legacy)


# -- rows outside every partition ------------------------------------------------------------


def test_rows_before_the_first_partition_with_a_null_or_a_future_cursor_load_and_stay_current(legacy, datahub):
    nullable_cursor_and_key(legacy)
    seed(legacy, datetime(2024, 3, 5, 1, 0), timedelta(hours=1), 10, 2)
    add_rows(legacy, {"02PRE00001": datetime(2019, 5, 3, 10, 0), "82FUT00002": datetime(9999, 12, 31)})
    execute(legacy, f"INSERT INTO rental.r_order_contract_add ({COLUMNS}) VALUES ('HINUL00003', NULL, '무', 1)")
    asset = build_lv0_asset(entry(lookback_minutes=0, page_size=4))
    with dg.instance_for_test() as instance:
        materialize(asset, instance, partition_key="2024-03-05")
        lineage = lv0_lineage(datahub)
        # Floating rows (NULL or future cursor) are read by every load, placed in its partition.
        assert lineage["82FUT00002"][2] == lineage["HINUL00003"][2] == "2024-03-05"
        assert "02PRE00001" not in lineage

        materialize(asset, instance, partition_key="2024-01-01")
        assert lv0_lineage(datahub)["02PRE00001"][2] == "2024-01-01"  # the first partition holds it
        assert lv0_keys(datahub) == source_keys(legacy)

        execute(legacy, "UPDATE rental.r_order_contract_add SET cust_nm = '바뀜' "
                        "WHERE order_no IN ('82FUT00002', 'HINUL00003')")
        execute(legacy, "UPDATE rental.r_order_contract_add SET amt = 7, updt_dt = '2024-03-06 10:00' "
                        "WHERE order_no = '02PRE00001'")
        materialize(asset, instance, partition_key="2024-03-06")

    with datahub.connect() as conn:
        now = dict(conn.execute(text(
            "SELECT order_no, (cust_nm, amt, updt_dt, _partition)::text FROM lv0.r_order_contract_add"
        )).all())
    with legacy.connect() as conn:
        source = dict(conn.execute(text(
            "SELECT order_no, (cust_nm, amt, updt_dt)::text FROM rental.r_order_contract_add"
        )).all())
    for key in ("82FUT00002", "HINUL00003", "02PRE00001"):
        assert now[key].startswith(source[key][:-1]), key
        assert now[key].endswith(",2024-03-06)"), key


def test_a_full_backfill_leaves_lv0_with_exactly_the_source_keys(legacy, datahub):
    nullable_cursor_and_key(legacy)
    seed(legacy, datetime(2023, 11, 20, 7, 0), timedelta(days=3, hours=5), 300, 2)  # 2023-11 .. 2026
    add_rows(legacy, {"82FUT00002": datetime(9999, 12, 31), "K2FUT00003": datetime(2099, 1, 1)})
    execute(legacy, f"INSERT INTO rental.r_order_contract_add ({COLUMNS}) VALUES ('HINUL00001', NULL, 'n', 1)")
    # Nothing stamped today: today's rows belong to tomorrow night's partition.
    today = datetime.now(timezone(timedelta(hours=9))).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    execute(legacy, "DELETE FROM rental.r_order_contract_add WHERE updt_dt >= :t AND updt_dt < :u",
            t=today, u=today + timedelta(days=1))
    asset = build_lv0_asset(entry(lookback_minutes=180, page_size=50))
    with dg.instance_for_test() as instance:
        materialize(asset, instance, partition_key="2024-05-01")
        execute(legacy, "DELETE FROM rental.r_order_contract_add WHERE updt_dt >= '2024-05-01' AND updt_dt < '2024-05-02'")
        last = daily_partitions.get_last_partition_key()
        result = run_range(asset, instance, "2024-01-01", last)
    assert lv0_keys(datahub) == source_keys(legacy)
    assert metadata(result)["rows_deleted"] > 0


# -- NULL keys -----------------------------------------------------------------------------


def instance_text(instance, run_id: str) -> bytes:
    """Everything the run left in the instance: its stored events and every file under the
    instance's directory (event and run storage, compute logs)."""
    parts = [serialize_value(record).encode("utf-8") for record in instance.all_logs(run_id)]
    for folder, _, files in os.walk(instance.root_directory):
        for name in files:
            with open(os.path.join(folder, name), "rb") as handle:
                parts.append(handle.read())
    return b"\n".join(parts)


@pytest.mark.parametrize("page_size", [500, 3], ids=["one page", "many pages"])
def test_a_null_key_is_refused_naming_the_table_the_key_and_the_count_never_the_row(legacy, datahub, page_size):
    nullable_cursor_and_key(legacy)
    seed(legacy, datetime(2024, 3, 5, 1, 0), timedelta(minutes=30), 20, 1)
    asset = build_lv0_asset(entry(lookback_minutes=0, page_size=page_size))
    with dg.instance_for_test() as instance:
        materialize(asset, instance, partition_key="2024-03-05")
        before = lv0_rows(datahub)
        for when in ("2024-03-05 09:00", "2024-03-05 23:00"):
            execute(legacy, f"INSERT INTO rental.r_order_contract_add ({COLUMNS}) VALUES (NULL, :t, :c, 3)",
                    t=when, c=CUSTOMER)
        execute(legacy, "UPDATE rental.r_order_contract_add SET amt = 99")
        result = dg.materialize(
            [asset], partition_key="2024-03-05", instance=instance, raise_on_error=False,
            resources={"legacy": LegacyDatabase(), "datahub": DataHub()},
        )
        assert not result.success
        failure = next(m for m in messages(instance, result.run_id) if "NULL key" in m)
        stored = instance_text(instance, result.run_id)
    assert "RENTAL.R_ORDER_CONTRACT_ADD" in failure and "ORDER_NO" in failure and "2 source row(s)" in failure
    assert lv0_rows(datahub) == before  # nothing written, not even the updates of other rows
    assert CUSTOMER.encode("utf-8") not in stored
    assert "010-7731".encode() not in stored


def test_a_null_key_reaching_the_merge_is_refused_without_its_values(legacy, datahub, platform_env):
    """A row given a NULL key after the load counted its rows still never passes, nor shows."""
    add_rows(legacy, {"02ROW00001": datetime(2024, 3, 5, 1, 0)})
    table = entry(lookback_minutes=0)
    source, _, _ = open_source(table, legacy, datetime(2024, 3, 5), datetime(2024, 3, 6))
    page = RowEncoder([c.lv0_type for c in source.columns]).encode_rows(
        [(None, datetime(2024, 3, 5, 2, 0), CUSTOMER, 5)]
    ).encode("utf-8")
    with datahub.connect() as conn:
        load = Lv0Load(conn, source, Lineage(datetime.now(timezone.utc), "r", "2024-03-05"),
                       FloatingRows(datetime(2030, 1, 1), "2024-03-05"))
        with pytest.raises(Lv0WriteError) as refused:
            load.write_page(page)
    message = str(refused.value)
    assert "RENTAL.R_ORDER_CONTRACT_ADD" in message and "order_no" in message
    assert CUSTOMER not in message and "010" not in message
    assert refused.value.__cause__ is None and refused.value.__suppress_context__


# -- lost history --------------------------------------------------------------------------


@pytest.mark.parametrize("loss", ["DROP TABLE", "TRUNCATE"])
def test_a_dropped_or_emptied_lv0_table_gets_its_older_partitions_back(legacy, datahub, loss):
    add_rows(legacy, {"02PRE00001": datetime(2019, 5, 3, 10, 0)})
    seed(legacy, datetime(2024, 3, 3, 12, 0), timedelta(minutes=30), 200, 2)  # to 2024-03-07 16:00
    asset = build_lv0_asset(entry(lookback_minutes=180))
    with dg.instance_for_test() as instance:
        materialize(asset, instance, partition_key="2024-03-04")
        materialize(asset, instance, partition_key="2024-03-05")
        with datahub.begin() as conn:
            conn.execute(text(f"{loss} lv0.r_order_contract_add"))
        result = materialize(asset, instance, partition_key="2024-03-06")
        warned = [m for m in messages(instance, result.run_id) if "lost 2 partition(s)" in m]
        later = materialize(asset, instance, partition_key="2024-03-07")

    with legacy.connect() as conn:
        expected = {tuple(r) for r in conn.execute(text(
            f"SELECT {COLUMNS} FROM rental.r_order_contract_add WHERE updt_dt < '2024-03-08'"
        ))}
    assert lv0_rows(datahub) == expected  # the older partitions (and what came before) are back
    assert warned and "2024-03-04 ... 2024-03-05" in warned[0]
    assert metadata(result)["partitions_restored"] == 2
    assert metadata(result)["window_start_kst"] == "open (the first partition)"
    assert metadata(later)["partitions_restored"] == 0
    assert metadata(later)["window_start_kst"] == "2024-03-06 21:00:00"
