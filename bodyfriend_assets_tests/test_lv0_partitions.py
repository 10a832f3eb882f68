"""lv0 assets through Dagster: re-runs, overlapping windows, a year's backfill, KST day windows.

Assets come from ``build_lv0_asset`` and run with the platform's own resources, which find this
test's two databases through BODYFRIEND_LEGACY_URL / BODYFRIEND_DATAHUB_URL (``platform_env``).
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy import text

from bodyfriend_assets.catalog import LegacyTable
from bodyfriend_assets.lv0 import build_lv0_asset, lv0_key
from bodyfriend_assets.partitions import daily_partitions
from bodyfriend_assets.resources import DataHub, LegacyDatabase

COLUMNS = "order_no, updt_dt, cust_nm, amt"
PREFIXES = ["02", "82", "HI", "K2", "ON"]
RANGE_START = "2024-03-04"
RANGE_END = "2024-03-06"
YEAR_START, YEAR_END = "2024-01-01", "2024-12-30"


def entry(lookback_minutes: int, page_size: int = 500) -> LegacyTable:
    return LegacyTable(
        database="RENTAL",
        table="R_ORDER_CONTRACT_ADD",
        keys=["ORDER_NO"],
        mode="incremental",
        cursor="UPDT_DT",
        page_size=page_size,
        lookback_minutes=lookback_minutes,
    )


# -- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def legacy(platform_env):
    legacy_url, _ = platform_env
    engine = sa.create_engine(legacy_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA rental"))
        conn.execute(
            text(
                """
                CREATE TABLE rental.r_order_contract_add (
                    order_no varchar(20) PRIMARY KEY,
                    updt_dt  timestamp(3) NOT NULL,
                    cust_nm  varchar(50),
                    amt      numeric(12, 2)
                )
                """
            )
        )
    yield engine
    engine.dispose()


@pytest.fixture
def datahub(platform_env):
    _, datahub_url = platform_env
    engine = sa.create_engine(datahub_url)
    yield engine
    engine.dispose()


def seed(legacy, first: datetime, step: timedelta, groups: int, per_group: int, tag: str = "") -> None:
    """``groups`` timestamps ``step`` apart from ``first``, ``per_group`` rows sharing each one."""
    with legacy.begin() as conn:
        conn.execute(
            text(
                f"""
                INSERT INTO rental.r_order_contract_add ({COLUMNS})
                SELECT (CAST(:prefixes AS text[]))[1 + i % 5] || :tag || lpad(i::text, 7, '0'),
                       CAST(:first AS timestamp(3)) + (i / :per_group) * CAST(:step AS interval),
                       '고객 ' || i,
                       round(i * 1.5, 2)
                FROM generate_series(0, :n - 1) AS i
                """
            ),
            {
                "prefixes": PREFIXES,
                "tag": tag,
                "first": first,
                "step": step,
                "per_group": per_group,
                "n": groups * per_group,
            },
        )


def add_rows(legacy, rows: dict[str, datetime]) -> None:
    with legacy.begin() as conn:
        for key, when in rows.items():
            conn.execute(
                text(f"INSERT INTO rental.r_order_contract_add ({COLUMNS}) VALUES (:k, :t, :c, 1)"),
                {"k": key, "t": when, "c": f"경계 {key}"},
            )


def source_window(legacy, start: datetime, end: datetime) -> set[tuple]:
    with legacy.connect() as conn:
        return {
            tuple(r)
            for r in conn.execute(
                text(
                    f"SELECT {COLUMNS} FROM rental.r_order_contract_add "
                    "WHERE updt_dt >= :s AND updt_dt < :e"
                ),
                {"s": start, "e": end},
            )
        }


def lv0_rows(datahub) -> set[tuple]:
    with datahub.connect() as conn:
        rows = conn.execute(text(f"SELECT {COLUMNS} FROM lv0.r_order_contract_add")).all()
    assert len(rows) == len({r[0] for r in rows}), "lv0 holds a key twice"
    return {tuple(r) for r in rows}


def lv0_image(datahub) -> dict[str, str]:
    """key -> the whole lv0 row (lineage included) as PostgreSQL's text of it."""
    with datahub.connect() as conn:
        return dict(conn.execute(text("SELECT order_no, t::text FROM lv0.r_order_contract_add AS t")).all())


def lv0_lineage(datahub) -> dict[str, tuple]:
    with datahub.connect() as conn:
        return {
            r[0]: tuple(r[1:])
            for r in conn.execute(
                text("SELECT order_no, _loaded_at, _run_id, _partition FROM lv0.r_order_contract_add")
            )
        }


def materialize(asset, instance, **kwargs) -> dg.ExecuteInProcessResult:
    result = dg.materialize(
        [asset],
        resources={"legacy": LegacyDatabase(), "datahub": DataHub()},
        instance=instance,
        **kwargs,
    )
    assert result.success
    return result


def materializations(result) -> list[dg.AssetMaterialization]:
    return [e.materialization for e in result.get_asset_materialization_events()]


def metadata(result) -> dict:
    """The metadata of the run's materializations (identical on every partition of the run)."""
    values = [{k: v.value for k, v in m.metadata.items()} for m in materializations(result)]
    assert values and all(v == values[0] for v in values)
    return values[0]


# -- tests ----------------------------------------------------------------------------------


def test_rerunning_a_partition_changes_nothing(legacy, datahub):
    seed(legacy, datetime(2024, 3, 4, 12, 0, 0, 5000), timedelta(minutes=20), 200, 6)
    asset = build_lv0_asset(entry(lookback_minutes=180))
    with dg.instance_for_test() as instance:
        first = materialize(asset, instance, partition_key="2024-03-05")
        image = lv0_image(datahub)
        expected = source_window(legacy, datetime(2024, 3, 4, 21), datetime(2024, 3, 6))
        assert lv0_rows(datahub) == expected
        assert metadata(first)["rows_changed"] == len(expected) > 0

        second = materialize(asset, instance, partition_key="2024-03-05")
        assert second.run_id != first.run_id

    assert lv0_image(datahub) == image  # _loaded_at and _run_id included: nothing rewritten
    assert {v[1] for v in lv0_lineage(datahub).values()} == {first.run_id}
    meta = metadata(second)
    assert meta["rows_changed"] == 0
    assert meta["rows_read"] == len(expected)
    assert meta["partitions"] == "2024-03-05"


def test_overlapping_partitions_change_nothing(legacy, datahub):
    seed(legacy, datetime(2024, 3, 3, 12, 0, 0, 250000), timedelta(minutes=10), 620, 4)
    asset = build_lv0_asset(entry(lookback_minutes=180))
    with dg.instance_for_test() as instance:
        first = materialize(asset, instance, partition_key="2024-03-05")
        after_first = lv0_lineage(datahub)
        first_window = source_window(legacy, datetime(2024, 3, 4, 21), datetime(2024, 3, 6))
        assert lv0_rows(datahub) == first_window

        second = materialize(
            asset,
            instance,
            tags={
                "dagster/asset_partition_range_start": RANGE_START,
                "dagster/asset_partition_range_end": RANGE_END,
            },
        )
        partitions = {m.partition for m in materializations(second)}
        assert partitions == {"2024-03-04", "2024-03-05", "2024-03-06"}

    expected = source_window(legacy, datetime(2024, 3, 3, 21), datetime(2024, 3, 7))
    assert lv0_rows(datahub) == expected  # the window and nothing else, each key once
    assert len(expected) > len(first_window)
    lineage = lv0_lineage(datahub)
    # Rows the first run wrote (2024-03-05 and its look-back) were read again and left alone.
    assert {k: lineage[k] for k in after_first} == after_first
    assert {lineage[k][1] for k in after_first} == {first.run_id}
    assert {v[1] for k, v in lineage.items() if k not in after_first} == {second.run_id}
    meta = metadata(second)
    assert meta["rows_read"] == len(expected)
    assert meta["rows_changed"] == len(expected) - len(after_first)
    assert meta["partitions"] == f"{RANGE_START}...{RANGE_END}"


def test_a_365_day_backfill_is_one_run_and_one_keyset_pass(legacy, datahub):
    # 3,000 rows over the whole year, three per UPDT_DT, the last ones on 2024-12-31.
    seed(legacy, datetime(2024, 1, 1, 0, 0, 0, 7000), timedelta(hours=8, minutes=47), 1000, 3)
    boundaries = {
        "02EDGE0001": datetime(2023, 12, 31, 23, 59, 59, 997000),  # before: the first partition's
        "82EDGE0002": datetime(2024, 1, 1, 0, 0, 0),  # first KST instant of the range: in
        "HIEDGE0003": datetime(2024, 12, 30, 23, 59, 59, 997000),  # last instant of the range: in
        "K2EDGE0004": datetime(2024, 12, 31, 0, 0, 0),  # the day after the range: out
    }
    add_rows(legacy, boundaries)
    page_size = 250
    asset = build_lv0_asset(entry(lookback_minutes=0, page_size=page_size))
    keys = daily_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(YEAR_START, YEAR_END))
    assert len(keys) == 365

    with dg.instance_for_test() as instance:
        result = materialize(
            asset,
            instance,
            tags={
                "dagster/asset_partition_range_start": YEAR_START,
                "dagster/asset_partition_range_end": YEAR_END,
            },
        )
        runs = instance.get_runs()
        assert [r.run_id for r in runs] == [result.run_id]
        assert runs[0].tags["dagster/asset_partition_range_end"] == YEAR_END
        # What makes a UI/daemon backfill of the range one run, like this one, rather than 365.
        assert asset.backfill_policy == dg.BackfillPolicy.single_run()
        assert asset.key == lv0_key(entry(0)) == dg.AssetKey(["lv0", "r_order_contract_add"])
        assert instance.get_materialized_partitions(asset.key) == set(keys)
        assert sorted(m.partition for m in materializations(result)) == keys

    # The first partition's window is open at its start: it holds the rows stamped before it.
    expected = source_window(legacy, datetime(1900, 1, 1), datetime(2024, 12, 31))
    assert 2500 < len(expected) < 3004
    loaded = lv0_rows(datahub)
    assert loaded == expected
    assert {"02EDGE0001", "82EDGE0002", "HIEDGE0003"} <= {r[0] for r in loaded}
    assert "K2EDGE0004" not in {r[0] for r in loaded}
    meta = metadata(result)
    assert meta["rows_read"] == len(expected)
    # One keyset pass over the whole range, not one per day (that would be 365 pages or more).
    assert meta["pages"] == math.ceil(len(expected) / page_size)
    assert meta["partitions"] == f"{YEAR_START}...{YEAR_END}"
    assert meta["read_window_start_kst"] == "open (the first partition)"
    assert meta["read_window_end_kst"] == "2024-12-31 00:00:00"


def test_a_partition_window_is_the_korean_calendar_day(legacy, datahub):
    add_rows(
        legacy,
        {
            "02KST00001": datetime(2024, 3, 4, 23, 59, 59, 997000),  # previous KST day
            "82KST00002": datetime(2024, 3, 5, 0, 0, 0),  # KST midnight: before 09:00 UTC-day start
            "HIKST00003": datetime(2024, 3, 5, 8, 59, 59, 997000),  # still 2024-03-04 in UTC
            "K2KST00004": datetime(2024, 3, 5, 23, 59, 59, 997000),  # last instant of the day
            "ONKST00005": datetime(2024, 3, 6, 0, 0, 0),  # next KST day, though 03-05 in UTC
            "ONKST00006": datetime(2024, 3, 6, 8, 59, 59, 997000),
        },
    )
    asset = build_lv0_asset(entry(lookback_minutes=0))
    with dg.instance_for_test() as instance:
        result = materialize(asset, instance, partition_key="2024-03-05")
    lineage = lv0_lineage(datahub)
    assert sorted(lineage) == ["82KST00002", "HIKST00003", "K2KST00004"]
    assert {v[2] for v in lineage.values()} == {"2024-03-05"}
    meta = metadata(result)
    assert meta["read_window_start_kst"] == "2024-03-05 00:00:00"
    assert meta["read_window_end_kst"] == "2024-03-06 00:00:00"
