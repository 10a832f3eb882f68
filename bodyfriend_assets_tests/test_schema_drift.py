"""A source table's columns change between two loads: one policy for snapshot and incremental tables.

Added columns appear in lv0, dropped ones stay (NULL in the rows written from then on), a safe
widening is applied to lv0, each reported; a retype lv0 cannot take fails naming the table, the
column and both types, and leaves lv0 as it was.
"""

from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.extraction.engine import extract_to_lv0
from bodyfriend_assets.extraction.lv0_writer import Lineage
from bodyfriend_assets.extraction.schema_drift import SchemaDriftError
from bodyfriend_assets_tests.conftest import rows

WINDOW = (datetime(2024, 1, 3), datetime(2024, 1, 4))
# table, key, a column the source drops, a column it widens (old lv0 type -> new), one it retypes
# into something lv0 cannot take
CASES = {
    "snapshot": ("r_goods", "goods_cd", "goods_desc", ("warranty_month", "smallint", "integer"), "color_nm"),
    "incremental": ("r_order_contract_add", "order_no", "gift_nm", ("point_amt", "numeric(15,2)", "numeric(18,2)"),
                    "coupon_no"),
}


def load(entry, legacy_url, datahub_url, run_id: str):
    warnings: list[str] = []
    legacy, datahub = sa.create_engine(legacy_url), sa.create_engine(datahub_url)
    try:
        start, end = WINDOW if entry.mode == "incremental" else (None, None)
        result = extract_to_lv0(
            entry, legacy, datahub, start=start, end=end, warn=warnings.append,
            lineage=Lineage(loaded_at=datetime.now(timezone.utc), run_id=run_id, partition="2024-01-03"),
        )
    finally:
        legacy.dispose()
        datahub.dispose()
    return result, warnings


def lv0_types(datahub_url, table: str) -> dict[str, str]:
    return dict(rows(datahub_url, "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                                  "WHERE attrelid = to_regclass(:t) AND attnum > 0 AND NOT attisdropped",
                     t=f"lv0.{table}"))


@pytest.mark.parametrize("mode", ["snapshot", "incremental"])
def test_added_dropped_and_widened_source_columns_are_followed_and_reported(platform_env, mode):
    legacy_url, datahub_url = platform_env
    table, key, dropped, (widened, old_type, new_type), _ = CASES[mode]
    entry = load_catalog().by_name(table)
    seed_legacy(legacy_url, rows=600, days=5, tables=[entry.qualified_name])
    load(entry, legacy_url, datahub_url, "first")
    assert lv0_types(datahub_url, table)[widened] == old_type
    window = "TRUE" if mode == "snapshot" else "updt_dt >= '2024-01-03' AND updt_dt < '2024-01-04'"
    changed_key = rows(legacy_url, f"SELECT min({key}) FROM rental.{table} WHERE {dropped} IS NOT NULL AND {window}")[0][0]
    unchanged_key = rows(legacy_url, f"SELECT max({key}) FROM rental.{table} WHERE {dropped} IS NOT NULL AND {window}")[0][0]
    kept_value = rows(datahub_url, f"SELECT {dropped} FROM lv0.{table} WHERE {key} = :k", k=unchanged_key)[0][0]

    rows(legacy_url, f"ALTER TABLE rental.{table} ADD COLUMN note varchar(20)")
    rows(legacy_url, f"ALTER TABLE rental.{table} DROP COLUMN {dropped}")
    rows(legacy_url, f"ALTER TABLE rental.{table} ALTER COLUMN {widened} TYPE {new_type}")
    rows(legacy_url, f"UPDATE rental.{table} SET note = '새 메모' WHERE {key} = :k", k=changed_key)
    result, warnings = load(entry, legacy_url, datahub_url, "second")

    types = lv0_types(datahub_url, table)
    assert types["note"] == "text"
    assert types[widened] == new_type
    assert dropped in types  # kept, and its comment says why
    comment = rows(datahub_url, "SELECT col_description(to_regclass(:t), attnum) FROM pg_attribute "
                                "WHERE attrelid = to_regclass(:t) AND attname = :c", t=f"lv0.{table}", c=dropped)
    assert comment == [(f"gone from the source {entry.qualified_name} since 2024-01-03",)]
    changed = rows(datahub_url, f"SELECT note, {dropped} FROM lv0.{table} WHERE {key} = :k", k=changed_key)
    assert changed == [("새 메모", None)]  # the new column loaded; the dropped one NULL in the updated row
    unchanged = rows(datahub_url, f"SELECT note, {dropped} FROM lv0.{table} WHERE {key} = :k", k=unchanged_key)
    assert unchanged == [(None, kept_value)]  # a row the load did not write keeps its value
    report = result.as_metadata()["schema_changes"]
    assert f"lv0.{table}.note added" in report
    assert f"lv0.{table}.{dropped} gone from the source" in report
    assert f"lv0.{table}.{widened} widened" in report
    assert len(warnings) == 3 and all(entry.qualified_name in w for w in warnings)
    # and the next load, with nothing new, reports nothing (the kept column was reported once)
    again, warnings = load(entry, legacy_url, datahub_url, "third")
    assert "schema_changes" not in again.as_metadata() and not warnings


@pytest.mark.parametrize("mode", ["snapshot", "incremental"])
def test_a_retype_lv0_cannot_take_fails_naming_table_column_and_both_types(platform_env, mode):
    legacy_url, datahub_url = platform_env
    table, key, _, _, retyped = CASES[mode]
    entry = load_catalog().by_name(table)
    seed_legacy(legacy_url, rows=600, days=5, tables=[entry.qualified_name])
    load(entry, legacy_url, datahub_url, "first")
    before = rows(datahub_url, f"SELECT * FROM lv0.{table} ORDER BY {key}")

    rows(legacy_url, f"ALTER TABLE rental.{table} ALTER COLUMN {retyped} TYPE integer USING length({retyped})")
    with pytest.raises(SchemaDriftError) as raised:
        load(entry, legacy_url, datahub_url, "second")
    message = str(raised.value)
    assert f"lv0.{table}: column {retyped} changed type in {entry.qualified_name} from TEXT to INTEGER" in message
    assert rows(datahub_url, f"SELECT * FROM lv0.{table} ORDER BY {key}") == before
    assert lv0_types(datahub_url, table)[retyped] == "text"
