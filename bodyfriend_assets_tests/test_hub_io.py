"""The Data Hub IO manager: Python assets read their upstream table as bounded chunks of
DataFrames and write their own table by COPY, one partition window at a time, atomically.

Real PostgreSQL (the suite's server), real Dagster runs (``dg.materialize``), real lv0 loads."""


import itertools
import json
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal

import dagster as dg
import pandas as pd
import pytest

from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.lv0 import build_lv0_asset, lv0_key
from bodyfriend_assets.partitions import daily_partitions
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets.storage.io_manager import DATAHUB_IO, DataFrameChunks, DataHubIOManager, datahub_in, hub_table
from bodyfriend_assets_tests.chain import range_tags
from bodyfriend_assets_tests.conftest import rows, scalar

CUSTOMERS = load_catalog().by_name("r_order_cust_info")
SAMPLE_SCHEMA = dg.TableSchema(columns=[
    dg.TableColumn("id", "bigint", constraints=dg.TableColumnConstraints(nullable=False)),
    dg.TableColumn("name", "text"),
    dg.TableColumn("amount", "numeric(12,2)"),
])


def resources(**io) -> dict:
    datahub = DataHub()
    return {"legacy": LegacyDatabase(), "datahub": datahub, DATAHUB_IO: DataHubIOManager(datahub=datahub, **io)}


def sample_asset(frames_of_partition, key=("lv1ex", "sample"), partitioned=True) -> dg.AssetsDefinition:
    """A Python asset writing ``frames_of_partition(partition_key)`` through the IO manager."""

    @dg.asset(key=list(key), io_manager_key=DATAHUB_IO, partitions_def=daily_partitions if partitioned else None,
              metadata={"dagster/column_schema": SAMPLE_SCHEMA})
    def sample(context: dg.AssetExecutionContext) -> Iterator:
        return iter(frames_of_partition(context.partition_key if partitioned else None))

    return sample


def materialized(result: dg.ExecuteInProcessResult, key: str) -> dict:
    """The metadata of the run's materialization of ``key``."""
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == key]
    return event.materialization.metadata


def frame(ids, name: str, partition: str | None = None) -> pd.DataFrame:
    data = {"id": list(ids), "name": [f"{name} {i}" for i in ids], "amount": [Decimal(i) / 4 for i in ids]}
    if partition:
        data["_partition"] = partition
    return pd.DataFrame(data)


def test_a_python_asset_reads_an_lv0_table_in_chunks_and_writes_a_derived_table(platform_env):
    legacy_url, datahub_url = platform_env
    seed_legacy(legacy_url, rows=2_000, days=3, tables=[CUSTOMERS.name])
    chunks: list[pd.DataFrame] = []

    @dg.asset(key=["lv1ex", "customer_addresses"], io_manager_key=DATAHUB_IO, partitions_def=daily_partitions,
              ins={"customers": datahub_in(lv0_key(CUSTOMERS))},
              metadata={"dagster/column_schema": dg.TableSchema(columns=[
                  dg.TableColumn("order_no", "text"), dg.TableColumn("address", "text"),
              ])})
    def customer_addresses(customers: DataFrameChunks) -> DataFrameChunks:
        def refine(chunk: pd.DataFrame) -> pd.DataFrame:
            chunks.append(chunk)
            address = chunk["addr1"].str.strip() + " " + chunk["addr2"].fillna("").str.strip()
            return pd.DataFrame({"order_no": chunk["order_no"], "address": address, "_partition": chunk["_partition"]})
        return map(refine, customers)

    lv0 = build_lv0_asset(CUSTOMERS)
    assert dg.materialize([lv0], resources=resources(), tags=range_tags("2024-01-01", "2024-01-03")).success

    result = dg.materialize(
        [lv0, customer_addresses], partition_key="2024-01-02", resources=resources(chunk_bytes=50_000),
        selection=[customer_addresses.key],
    )

    assert result.success
    in_partition = rows(datahub_url, "SELECT order_no, addr1, addr2 FROM lv0.r_order_cust_info WHERE _partition = '2024-01-02'")
    assert 0 < len(in_partition) < scalar(datahub_url, "SELECT count(*) FROM lv0.r_order_cust_info")
    # Several chunks, each a bounded part of the partition's rows, together exactly those rows.
    assert len(chunks) > 1
    # about chunk_bytes each, once the first chunk has shown the rows' size
    assert max(c.memory_usage(deep=True, index=False).sum() for c in chunks[1:]) <= 2 * 50_000
    assert sum(len(c) for c in chunks) == len(in_partition)
    assert {o for c in chunks for o in c["order_no"]} == {r.order_no for r in in_partition}
    assert all(set(c["_partition"]) == {"2024-01-02"} for c in chunks)
    written = rows(datahub_url, "SELECT order_no, address, _partition, _run_id FROM lv1ex.customer_addresses")
    expected = {r.order_no: f"{r.addr1.strip()} {(r.addr2 or '').strip()}" for r in in_partition}
    assert {w.order_no: w.address for w in written} == expected
    assert {(w._partition, w._run_id) for w in written} == {("2024-01-02", result.run_id)}
    metadata = materialized(result, "lv1ex/customer_addresses")
    assert metadata["rows_written"].value == len(in_partition)
    assert metadata["pages"].value == len(chunks)
    assert metadata["dagster/row_count"].value == len(in_partition)
    assert {"copy_text_bytes", "rows_per_second", "peak_rss_mb", "seconds"} <= set(metadata)


def test_rerunning_a_partition_replaces_its_rows_and_leaves_other_partitions_alone(datahub_url, monkeypatch):
    monkeypatch.setenv("BODYFRIEND_DATAHUB_URL", datahub_url.render_as_string(hide_password=False))
    version = {"2024-01-01": "first", "2024-01-02": "first"}
    asset = sample_asset(lambda key: [frame(range(day_ids(key), day_ids(key) + 3), version[key]),
                                      frame(range(day_ids(key) + 3, day_ids(key) + 5), version[key])])
    for key in version:
        assert dg.materialize([asset], partition_key=key, resources=resources()).success
    version["2024-01-01"] = "second"

    result = dg.materialize([asset], partition_key="2024-01-01", resources=resources())

    assert result.success
    by_partition = rows(datahub_url, "SELECT _partition, count(*), count(DISTINCT id), min(name), max(name) "
                                     "FROM lv1ex.sample GROUP BY 1 ORDER BY 1")
    assert [tuple(r) for r in by_partition] == [
        ("2024-01-01", 5, 5, "second 100", "second 104"),
        ("2024-01-02", 5, 5, "first 200", "first 204"),
    ]
    metadata = materialized(result, "lv1ex/sample")
    assert (metadata["rows_replaced"].value, metadata["rows_written"].value) == (5, 5)


def day_ids(partition_key: str) -> int:
    return 100 * int(partition_key[-2:])


def test_a_range_run_replaces_the_range_with_the_rows_the_asset_places_in_it(datahub_url, monkeypatch):
    monkeypatch.setenv("BODYFRIEND_DATAHUB_URL", datahub_url.render_as_string(hide_password=False))

    @dg.asset(key=["lv1ex", "sample"], io_manager_key=DATAHUB_IO, partitions_def=daily_partitions,
              backfill_policy=dg.BackfillPolicy.single_run(), metadata={"dagster/column_schema": SAMPLE_SCHEMA})
    def sample(context: dg.AssetExecutionContext) -> Iterator:
        return iter([frame([day_ids(k) + n for n in range(2)], "range", k) for k in context.partition_keys])

    assert dg.materialize([sample], resources=resources(), tags=range_tags("2024-01-01", "2024-01-03")).success
    assert dg.materialize([sample], resources=resources(), tags=range_tags("2024-01-02", "2024-01-03")).success

    assert [tuple(r) for r in rows(datahub_url, "SELECT _partition, count(*) FROM lv1ex.sample GROUP BY 1 ORDER BY 1")] == [
        ("2024-01-01", 2), ("2024-01-02", 2), ("2024-01-03", 2),
    ]


def test_an_unpartitioned_output_replaces_the_whole_table(datahub_url, monkeypatch):
    monkeypatch.setenv("BODYFRIEND_DATAHUB_URL", datahub_url.render_as_string(hide_password=False))
    assert dg.materialize([sample_asset(lambda _: [frame(range(10), "old")], partitioned=False)], resources=resources()).success
    assert dg.materialize([sample_asset(lambda _: [frame(range(5, 8), "new")], partitioned=False)], resources=resources()).success
    assert [tuple(r) for r in rows(datahub_url, "SELECT id, name FROM lv1ex.sample ORDER BY id")] == [
        (5, "new 5"), (6, "new 6"), (7, "new 7"),
    ]


def _failing_run(datahub_url, frames) -> str:
    """Write partition 2024-01-01 once (five good rows), then again with ``frames``; returns the
    failed run's error, after checking that the table was left as it was."""
    good = sample_asset(lambda key: [frame(range(5), "kept")])
    assert dg.materialize([good], partition_key="2024-01-01", resources=resources()).success
    before = rows(datahub_url, "SELECT * FROM lv1ex.sample ORDER BY id")
    bad = sample_asset(lambda key: frames)
    result = dg.materialize([bad], partition_key="2024-01-01", resources=resources(), raise_on_error=False)
    assert not result.success
    assert rows(datahub_url, "SELECT * FROM lv1ex.sample ORDER BY id") == before
    (failure,) = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    return str(failure.step_failure_data.error.to_string())


@pytest.mark.parametrize("column, value", [
    ("amount", "secret-value"),  # refused by PostgreSQL: not a number
    ("name", {"secret-value": 1}),  # refused before the COPY: no text form
])
def test_a_value_its_column_cannot_hold_fails_naming_table_and_column_and_writes_nothing(
    column, value, datahub_url, monkeypatch
):
    monkeypatch.setenv("BODYFRIEND_DATAHUB_URL", datahub_url.render_as_string(hide_password=False))
    bad = frame(range(100, 103), "bad")
    bad[column] = bad[column].astype(object)
    bad.at[1, column] = value

    error = _failing_run(datahub_url, [frame(range(10, 20), "written first"), bad])

    assert f"lv1ex.sample: column {column} cannot hold a value of the output" in error
    assert "secret-value" not in error


def test_an_asset_failing_in_the_middle_of_its_output_leaves_the_table_as_it_was(datahub_url, monkeypatch):
    monkeypatch.setenv("BODYFRIEND_DATAHUB_URL", datahub_url.render_as_string(hide_password=False))

    def frames():
        yield frame(range(10, 20), "written first")
        raise RuntimeError("the refinement broke on chunk 2")

    error = _failing_run(datahub_url, itertools.chain(frames()))

    assert "the refinement broke on chunk 2" in error


def test_a_column_the_table_lacks_fails_naming_it(datahub_url, monkeypatch):
    monkeypatch.setenv("BODYFRIEND_DATAHUB_URL", datahub_url.render_as_string(hide_password=False))
    extra = frame(range(3), "extra").assign(colour="red")

    error = _failing_run(datahub_url, [extra])

    assert "lv1ex.sample has no column colour" in error


def test_a_row_outside_the_runs_partitions_fails_naming_the_column(datahub_url, monkeypatch):
    monkeypatch.setenv("BODYFRIEND_DATAHUB_URL", datahub_url.render_as_string(hide_password=False))

    error = _failing_run(datahub_url, [frame(range(3), "elsewhere", partition="2024-01-05")])

    assert "lv1ex.sample: 3 output row(s) have column _partition outside the run's partitions 2024-01-01...2024-01-01" in error


def test_tables_reloaded_whole_are_read_whole_and_incremental_ones_by_partition():
    lv0_snapshot = hub_table(dg.AssetKey(["lv0", "b_minor"]), {"mode": "snapshot", "partition_expr": "_partition"}, True)
    lv1_full = hub_table(dg.AssetKey(["lv1", "code_master"]), {"table": "lv1.code_master", "mode": "full"}, True)
    incremental = hub_table(dg.AssetKey(["lv1", "v_customer"]), {"mode": "incremental", "partition_expr": "_partition"}, True)
    unpartitioned = hub_table(dg.AssetKey(["lv1ex", "wide"]), {}, False)

    assert (lv0_snapshot.partition_column, lv1_full.partition_column, unpartitioned.partition_column) == (None, None, None)
    assert (incremental.qualified_name, incremental.partition_column) == ("lv1.v_customer", "_partition")


# -- memory ------------------------------------------------------------------------------------

COPY_BACK = """
import json, sys
import dagster as dg
from bodyfriend_assets_tests.test_hub_io import copy_back_assets, materialized, resources

result = dg.materialize(copy_back_assets(), resources=resources(), selection=["lv1ex/wide_copy"])
metadata = materialized(result, "lv1ex/wide_copy")
print(json.dumps({"rows": metadata["rows_written"].value, "pages": metadata["pages"].value,
                  "peak_rss_mb": metadata["peak_rss_mb"].value}))
"""


def copy_back_assets() -> list:
    """``lv1ex/wide`` (filled by the test's SQL) read through ``load_input`` and written back as
    ``lv1ex/wide_copy``, unchanged."""
    wide = dg.AssetSpec(["lv1ex", "wide"])

    @dg.asset(key=["lv1ex", "wide_copy"], io_manager_key=DATAHUB_IO, ins={"wide": datahub_in(wide.key)},
              metadata={"dagster/column_schema": dg.TableSchema(columns=[
                  dg.TableColumn("id", "bigint"), dg.TableColumn("memo", "text"),
                  dg.TableColumn("amount", "numeric"), dg.TableColumn("stamped", "timestamp without time zone"),
              ])})
    def wide_copy(wide: DataFrameChunks) -> DataFrameChunks:
        return wide

    return [wide, wide_copy]


def copy_back_peak(datahub_url, table_rows: int) -> dict:
    """Fill ``lv1ex.wide`` with ``table_rows`` rows and copy it back in a process of its own; its
    peak RSS (the materialization's ``peak_rss_mb``: the process's ``ru_maxrss``)."""
    rows(datahub_url, "DROP TABLE IF EXISTS lv1ex.wide, lv1ex.wide_copy")
    rows(datahub_url, "CREATE SCHEMA IF NOT EXISTS lv1ex")
    rows(datahub_url, "CREATE TABLE lv1ex.wide AS SELECT g AS id, repeat(md5(g::text), 8) AS memo, "
                      "g * 1.25 AS amount, timestamp '2024-01-01' + g * interval '1 second' AS stamped "
                      "FROM generate_series(1, :n) AS g", n=table_rows)
    env = {"BODYFRIEND_DATAHUB_URL": datahub_url.render_as_string(hide_password=False)}
    import os
    done = subprocess.run([sys.executable, "-c", COPY_BACK], env={**os.environ, **env},
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    measured = json.loads(done.stdout.strip().splitlines()[-1])
    assert measured["rows"] == table_rows == scalar(datahub_url, "SELECT count(*) FROM lv1ex.wide_copy")
    return measured


def test_reading_and_writing_back_200k_rows_takes_no_more_memory_than_20k(datahub_url):
    small = copy_back_peak(datahub_url, 20_000)
    large = copy_back_peak(datahub_url, 200_000)

    print(f"copy back: 20,000 rows {small}, 200,000 rows {large}, "
          f"ratio {large['peak_rss_mb'] / small['peak_rss_mb']:.2f}")
    assert large["pages"] > small["pages"]
    assert large["peak_rss_mb"] <= 1.25 * small["peak_rss_mb"]


def test_the_platform_registers_the_io_manager():
    from bodyfriend_assets.definitions import defs

    assert isinstance(defs.resources[DATAHUB_IO], DataHubIOManager)
