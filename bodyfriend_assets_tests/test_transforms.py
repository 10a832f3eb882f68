"""The SQL-model framework (bodyfriend_assets.transforms) on model files written by the tests.

Loading: headers, the tables a model reads (its upstream assets), and the errors a bad file
raises when definitions load, naming the file. Running (real PostgreSQL, real Dagster): the
blocking key check, a failing model, an incremental table whose shape changed.
"""

import datetime as dt
import textwrap
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.lv0 import build_lv0_asset, lv0_assets
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets.transforms import ModelError, build_sql_assets, load_layer
from bodyfriend_assets.transforms.functions import ensure_functions
from bodyfriend_assets.transforms.models import dependency_order
from bodyfriend_assets_tests.conftest import rows

PARTITION = "2024-01-01"
RESOURCES = {"legacy": LegacyDatabase(), "datahub": DataHub()}

CODES = """
    -- Every code with its name.
    --
    -- key: major_cd, minor_cd
    -- mode: full
    -- source: UNIERP5.B_MINOR
    SELECT btrim(m.major_cd) AS major_cd, btrim(m.minor_cd) AS minor_cd, m.minor_nm
    FROM lv0.b_minor AS m
"""


def write_models(root: Path, files: dict[str, str]) -> list:
    """Write ``{"lv1/name.sql": sql}`` under ``root``; return the models of both layers."""
    for relative, sql in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(sql).strip() + "\n", encoding="utf-8")
    return [*load_layer(root / "lv1", "lv1"), *load_layer(root / "lv2", "lv2")]


def build(models):
    catalog = load_catalog()
    return build_sql_assets(models, upstream=lv0_assets(catalog), catalog=catalog)


# -- loading -----------------------------------------------------------------------------------


def test_a_model_file_declares_its_header_and_its_sql_names_its_upstream_tables(tmp_path):
    (model,) = write_models(tmp_path, {"lv2/contracts.sql": """
        -- Contracts with their customer.
        -- Second line of the description.
        --
        -- key: order_no
        -- mode: incremental
        -- driving: lv0.r_order_contract
        -- lookback_days: 1
        -- index: cust_no
        -- references: cust_no -> lv0.v_customer.cust_no
        WITH recent AS (
            SELECT order_no, cust_no, _partition FROM lv0.r_order_contract
            WHERE _partition BETWEEN :partition_start AND :partition_end
        )
        SELECT r.order_no, r.cust_no, c.cust_nm, r._partition
        FROM recent AS r
        LEFT JOIN lv0.v_customer AS c ON c.cust_no = r.cust_no
        WHERE NOT EXISTS (SELECT 1 FROM lv0.r_contract_cancel_receipt AS x WHERE x.order_no = r.order_no)
    """})
    assert model.qualified_name == "lv2.contracts"
    assert model.description == "Contracts with their customer.\nSecond line of the description."
    assert model.key == ("order_no",) and model.mode == "incremental"
    assert model.driving == ("lv0", "r_order_contract") and model.lookback_days == 1
    assert model.indexes == (("cust_no",),)
    assert model.upstream == {("lv0", "r_order_contract"), ("lv0", "v_customer"), ("lv0", "r_contract_cancel_receipt")}
    (reference,) = model.references
    assert (reference.column, reference.table, reference.target_column) == ("cust_no", ("lv0", "v_customer"), "cust_no")

    asset = build([model])
    spec = next(iter(asset.specs))
    assert spec.key == dg.AssetKey(["lv2", "contracts"]) and spec.group_name == "lv2"
    assert {d.asset_key.to_user_string() for d in spec.deps} == {
        "lv0/r_order_contract", "lv0/v_customer", "lv0/r_contract_cancel_receipt"
    }
    # no catalog table is named 'contracts': the dag_id comes from the driving table
    assert spec.metadata["dag_id"] == "lv1_dag_RENTAL.R_ORDER_CONTRACT"
    assert spec.metadata["table"] == "lv2.contracts"


def test_a_model_reading_a_table_no_asset_produces_fails_at_load_naming_the_file_and_the_table(tmp_path):
    models = write_models(tmp_path, {"lv1/orders.sql": """
        -- key: order_no
        -- mode: full
        SELECT o.order_no FROM lv0.r_order_contract AS o JOIN lv0.r_order_contrakt AS t USING (order_no)
    """})
    with pytest.raises(ModelError) as raised:
        build(models)
    assert "lv1/orders.sql" in str(raised.value)
    assert "lv0.r_order_contrakt" in str(raised.value)


def test_a_model_decoding_codes_through_lv1_codes_reads_the_code_book(tmp_path):
    models = write_models(tmp_path, {"lv1/orders.sql": """
        -- key: order_no
        -- mode: full
        SELECT o.order_no, st.minor_nm AS status_nm FROM lv0.r_order_contract AS o
        LEFT JOIN lv1.codes('R1001') AS st ON st.minor_cd = btrim(o.order_status_cd)
    """, "lv1/code_master.sql": """
        -- key: major_cd, minor_cd
        -- mode: full
        SELECT btrim(major_cd) AS major_cd, btrim(minor_cd) AS minor_cd, minor_nm FROM lv0.b_minor
    """})
    orders = next(m for m in models if m.name == "orders")
    assert orders.upstream == {("lv0", "r_order_contract"), ("lv1", "code_master")}
    assert [m.name for m in dependency_order(models)] == ["code_master", "orders"]


def test_a_model_reading_a_model_that_does_not_exist_fails_the_same_way(tmp_path):
    models = write_models(tmp_path, {"lv2/things.sql": """
        -- key: goods_cd
        -- mode: full
        -- source: RENTAL.R_GOODS
        SELECT goods_cd FROM lv1.goods
    """})
    with pytest.raises(ModelError, match=r"lv2/things.sql reads lv1.goods, which no asset produces"):
        build(models)


FULL = "-- key: a\n-- mode: full\n-- source: RENTAL.R_GOODS\n"
INCREMENTAL = "-- key: a\n-- mode: incremental\n-- driving: lv0.r_goods\n-- source: RENTAL.R_GOODS\n"
IN_WINDOW = "WHERE _partition BETWEEN :partition_start AND :partition_end"


@pytest.mark.parametrize(
    "sql, message",
    [
        ("-- mode: full\nSELECT a FROM lv0.r_goods", "must declare '-- key:"),
        ("-- key: a\n-- mode: sometimes\nSELECT a FROM lv0.r_goods", "'incremental' or 'full'"),
        ("-- key: a\n-- mode: full\n-- colour: red\nSELECT a FROM lv0.r_goods", "unknown header field 'colour'"),
        ("-- key: a\n-- key: b\n-- mode: full\nSELECT a FROM lv0.r_goods", "'key' is given twice"),
        ("-- key: A b\n-- mode: full\nSELECT a FROM lv0.r_goods", "not a lower-case column"),
        (FULL + "SELECT a FROM r_goods", "'r_goods' is not schema-qualified"),
        (FULL + "SELECT a FROM lv0.r_goods; SELECT 1", "exactly one SELECT"),
        (FULL + "DELETE FROM lv0.r_goods", "exactly one SELECT"),
        (FULL + "SELECT a FROM lv0.r_goods WHERE (", "does not parse"),
        (FULL + f"SELECT a FROM lv0.r_goods {IN_WINDOW}", "must not filter on :partition_start"),
        (FULL + "SELECT a FROM lv0.r_goods WHERE b = :colour", "unknown bound parameters [':colour']"),
        ("-- key: a\n-- mode: incremental\nSELECT a FROM lv0.r_goods", "must declare '-- driving:"),
        (INCREMENTAL + "SELECT a FROM lv0.r_goods", "missing: :partition_start, :partition_end"),
        ("-- key: a\n-- mode: incremental\n-- driving: lv0.r_promotion\n"
         f"SELECT a FROM lv0.r_goods {IN_WINDOW}", "driving table lv0.r_promotion is not read"),
        (INCREMENTAL + f"-- lookback_days: many\nSELECT a FROM lv0.r_goods {IN_WINDOW}", "lookback_days"),
        (FULL + "-- references: a -> lv0.v_customer.cust_no\nSELECT a FROM lv0.r_goods",
         "does not read"),
        (FULL + "SELECT a FROM lv1.x", "reads its own table lv1.x"),
        (FULL + "SELECT b FROM lv0.r_goods", "'-- key' needs the column(s) a, which the SELECT does not return"),
        (INCREMENTAL + f"SELECT a FROM lv0.r_goods {IN_WINDOW}", "'-- mode: incremental' needs the column(s) _partition"),
    ],
)
def test_a_bad_model_file_fails_at_load_naming_the_file(tmp_path, sql, message):
    with pytest.raises(ModelError) as raised:
        write_models(tmp_path, {"lv1/x.sql": sql})
    assert "lv1/x.sql" in str(raised.value)
    assert message in str(raised.value)


def test_a_model_whose_legacy_table_cannot_be_told_fails_at_load(tmp_path):
    models = write_models(tmp_path, {"lv1/mystery.sql": "-- key: a\n-- mode: full\nSELECT a FROM lv0.r_goods"})
    with pytest.raises(ModelError, match=r"lv1/mystery.sql: cannot tell which legacy table"):
        build(models)
    models = write_models(tmp_path, {"lv1/mystery.sql": FULL.replace("R_GOODS", "R_NOTHING") + "SELECT a FROM lv0.r_goods"})
    with pytest.raises(ModelError, match=r"'-- source: RENTAL.R_NOTHING' is not a table of the catalog"):
        build(models)


def test_models_run_after_the_models_they_read_and_a_cycle_is_refused(tmp_path):
    models = write_models(tmp_path, {
        "lv2/c.sql": FULL + "SELECT a FROM lv2.b",
        "lv2/b.sql": FULL + "SELECT a FROM lv1.a",
        "lv1/a.sql": FULL + "SELECT a FROM lv0.r_goods",
    })
    assert [m.qualified_name for m in dependency_order(models)] == ["lv1.a", "lv2.b", "lv2.c"]
    models = write_models(tmp_path, {"lv1/a.sql": FULL + "SELECT a FROM lv2.c"})
    with pytest.raises(ModelError, match="cycle"):
        build(models)


# -- running -----------------------------------------------------------------------------------


@pytest.fixture
def code_book(platform_env):
    """lv0.b_major and lv0.b_minor loaded for PARTITION."""
    legacy_url, datahub_url = platform_env
    seed_legacy(legacy_url, rows=50, days=2, tables=["b_major", "b_minor"])
    catalog = load_catalog()
    lv0 = [build_lv0_asset(catalog.by_name(n)) for n in ("b_major", "b_minor")]
    assert dg.materialize(lv0, partition_key=PARTITION, resources=RESOURCES).success
    return datahub_url


def _materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def test_a_repeated_key_fails_the_blocking_check_and_stops_what_reads_it(tmp_path, code_book):
    models = write_models(tmp_path, {
        "lv1/codes.sql": CODES,
        # a major has many minors: major_cd alone is not a key
        "lv1/majors.sql": """
            -- key: major_cd
            -- mode: full
            -- source: UNIERP5.B_MAJOR
            SELECT btrim(m.major_cd) AS major_cd, m.minor_nm FROM lv0.b_minor AS m
        """,
        "lv2/major_names.sql": """
            -- key: major_cd
            -- mode: full
            -- source: UNIERP5.B_MAJOR
            SELECT major_cd, min(minor_nm) AS first_name FROM lv1.majors GROUP BY major_cd
        """,
        "lv2/code_count.sql": """
            -- key: major_cd
            -- mode: full
            -- source: UNIERP5.B_MINOR
            SELECT major_cd, count(*) AS codes FROM lv1.codes GROUP BY major_cd
        """,
    })
    sql_models = build(models)

    @dg.asset(key=["hc", "probe"], deps=[dg.AssetKey(["lv2", "code_count"])], partitions_def=sql_models.partitions_def)
    def hc_probe():
        """Stands for the hc layer: it must not run after a failed blocking check below it."""
        return dg.MaterializeResult()

    result = dg.materialize([sql_models, hc_probe], partition_key=PARTITION, resources=RESOURCES, raise_on_error=False)
    assert not result.success
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert checks[("lv1/majors", "key_unique_and_not_null")].passed is False
    assert checks[("lv1/majors", "key_unique_and_not_null")].metadata["repeated_keys"].value != "none"
    assert checks[("lv1/codes", "key_unique_and_not_null")].passed
    assert checks[("lv2/code_count", "key_unique_and_not_null")].passed
    # lv2.major_names reads the bad table: skipped in the step; the model beside it ran
    assert _materialized(result) == {"lv1/codes", "lv1/majors", "lv2/code_count"}
    assert ("lv2/major_names", "key_unique_and_not_null") not in checks
    # and the step failed, so nothing downstream of it ran
    assert "hc/probe" not in _materialized(result)


def test_a_failing_model_leaves_its_table_as_it_was_and_the_other_models_still_run(tmp_path, code_book):
    numbers = """
        -- key: major_cd, minor_cd
        -- mode: full
        -- source: UNIERP5.B_MINOR
        SELECT btrim(major_cd) AS major_cd, btrim(minor_cd) AS minor_cd, {value} AS value FROM lv0.b_minor
    """
    models = write_models(tmp_path, {"lv1/codes.sql": CODES, "lv1/numbers.sql": numbers.format(value="sort_seq")})
    assert dg.materialize([build(models)], partition_key=PARTITION, resources=RESOURCES).success
    before = rows(code_book, "SELECT * FROM lv1.numbers ORDER BY 1, 2")

    # minor codes such as 'M' and 'VIP' are not numbers: the model fails at run time
    models = write_models(tmp_path, {"lv1/numbers.sql": numbers.format(value="CAST(minor_cd AS integer)")})
    result = dg.materialize([build(models)], partition_key=PARTITION, resources=RESOURCES, raise_on_error=False)
    assert not result.success
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
    assert "lv1/numbers" in str(failure.event_specific_data.error)
    assert _materialized(result) == {"lv1/codes"}
    assert rows(code_book, "SELECT * FROM lv1.numbers ORDER BY 1, 2") == before
    assert not rows(code_book, "SELECT 1 FROM pg_tables WHERE tablename = 'numbers__incoming'")


def test_an_incremental_model_refuses_a_changed_shape_and_repeated_keys_naming_the_file(tmp_path, platform_env):
    legacy_url, datahub_url = platform_env
    seed_legacy(legacy_url, rows=80, days=2, tables=["r_order_cust_info"])
    lv0 = build_lv0_asset(load_catalog().by_name("r_order_cust_info"))
    assert dg.materialize([lv0], partition_key=PARTITION, resources=RESOURCES).success
    model = """
        -- key: {key}
        -- mode: incremental
        -- driving: lv0.r_order_cust_info
        SELECT order_no, cust_no, {extra} _partition FROM lv0.r_order_cust_info
        WHERE _partition BETWEEN :partition_start AND :partition_end
    """
    models = write_models(tmp_path, {"lv1/order_people.sql": model.format(key="order_no", extra="")})
    result = dg.materialize([build(models)], partition_key=PARTITION, resources=RESOURCES)
    (materialization,) = result.get_asset_materialization_events()
    written = materialization.materialization.metadata["rows"].value
    assert written > 0

    models = write_models(tmp_path, {"lv1/order_people.sql": model.format(key="order_no", extra="relation_cd,")})
    result = dg.materialize([build(models)], partition_key=PARTITION, resources=RESOURCES, raise_on_error=False)
    error = str(next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE).event_specific_data.error)
    assert "lv1.order_people no longer matches lv1/order_people.sql" in error and "relation_cd" in error

    models = write_models(tmp_path, {"lv1/order_people.sql": model.format(key="cust_no", extra="")})
    rows(datahub_url, "DROP TABLE lv1.order_people")
    rows(datahub_url, "UPDATE lv0.r_order_cust_info SET cust_no = (SELECT min(cust_no) FROM lv0.r_order_cust_info)")
    result = dg.materialize([build(models)], partition_key=PARTITION, resources=RESOURCES, raise_on_error=False)
    error = str(next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE).event_specific_data.error)
    assert "lv1/order_people.sql: the model returned NULL or repeated keys (cust_no)" in error
    assert not rows(datahub_url, "SELECT 1 FROM pg_tables WHERE schemaname = 'lv1'")


# -- the lv1 rule functions ------------------------------------------------------------------


@pytest.mark.parametrize(
    "call, raw, expected",
    [
        ("yes_no", "Y", True), ("yes_no", " n ", False), ("yes_no", "y", True),
        ("yes_no", "X", None), ("yes_no", "", None), ("yes_no", None, None),
        ("yyyymmdd_date", "20240229", dt.date(2024, 2, 29)), ("yyyymmdd_date", " 20240105 ", dt.date(2024, 1, 5)),
        ("yyyymmdd_date", "20230229", None), ("yyyymmdd_date", "2024015", None),
        ("yyyymmdd_date", "2024-01-05", None), ("yyyymmdd_date", "", None),
        ("phone_number", "01012345678", "010-1234-5678"), ("phone_number", "010 1234 5678", "010-1234-5678"),
        ("phone_number", "02)123-4567", "02-123-4567"), ("phone_number", "031.1234.5678", "031-1234-5678"),
        ("phone_number", "15881234", "1588-1234"), ("phone_number", " abc ", "abc"), ("phone_number", "", None),
        ("phone_number", "12345", "12345"),
        ("clean_text", " 서울 ", "서울"), ("clean_text", " a  b ", "a  b"), ("clean_text", "   ", None),
        ("clean_text", "", None), ("clean_text", None, None),
    ],
)
def test_the_lv1_rule_functions(datahub_url, call, raw, expected):
    engine = sa.create_engine(datahub_url)
    try:
        with engine.begin() as conn:
            ensure_functions(conn)
            ensure_functions(conn)  # re-creating them is harmless
            assert conn.execute(sa.select(getattr(sa.func.lv1, call)(sa.literal(raw, sa.Text)))).scalar() == expected
    finally:
        engine.dispose()


def test_lv1_codes_decodes_a_majors_codes_and_the_planner_inlines_the_rule_functions(datahub_url):
    engine = sa.create_engine(datahub_url)
    try:
        with engine.begin() as conn:
            ensure_functions(conn)  # before lv1.code_master exists, as on a first run
            conn.exec_driver_sql(
                "CREATE TABLE lv1.code_master AS SELECT * FROM (VALUES ('R1001', 'A', '접수'), "
                "('R1001', 'B', '완료'), ('R1002', 'A', '렌탈')) AS c (major_cd, minor_cd, minor_nm)"
            )
            query = (
                "SELECT lv1.clean_text(s.code), st.minor_nm FROM (VALUES (1, ' A '), (2, 'B'), (3, 'C'), (4, '')) "
                "AS s (n, code) LEFT JOIN lv1.codes('R1001') AS st ON st.minor_cd = btrim(s.code) ORDER BY s.n"
            )
            assert conn.exec_driver_sql(query).all() == [("A", "접수"), ("B", "완료"), ("C", None), (None, None)]
            plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN VERBOSE " + query))
            # inlined: the plan scans the code book and spells the rule out, it calls no lv1 function
            assert "lv1.code_master" in plan and "NULLIF(btrim(" in plan
            assert "lv1.codes" not in plan and "clean_text" not in plan and "Function Scan" not in plan
    finally:
        engine.dispose()


def test_lv1_refined_addresses_is_empty_before_lv1ex_and_then_inlined_as_an_index_lookup(datahub_url):
    """A model's join looks a day's addresses up by lv1.address_master's unique index, instead of
    taking every trusted row of the table for each join."""
    engine = sa.create_engine(datahub_url)
    query = (
        "SELECT s.n, r.street, r.postal_code FROM (VALUES (1, '서울 강남구 역삼동 1'), (2, '부산 어딘가')) AS s (n, address) "
        "LEFT JOIN lv1.refined_addresses() AS r ON r.legacy_address = s.address ORDER BY s.n"
    )
    try:
        with engine.begin() as conn:
            ensure_functions(conn)  # a new Data Hub: lv1ex has not written lv1.address_master yet
            assert conn.exec_driver_sql(query).all() == [(1, None, None), (2, None, None)]
            conn.exec_driver_sql(
                "CREATE TABLE lv1.address_master (legacy_address text PRIMARY KEY, status text, address_name text, "
                "building_name text, building_dong text, building_ho text, zone_no text)"
            )
            conn.exec_driver_sql(
                "INSERT INTO lv1.address_master SELECT 'filler ' || g, 'found', 'x', NULL, NULL, NULL, '00000' "
                "FROM generate_series(1, 5000) AS g"
            )
            conn.exec_driver_sql(
                "INSERT INTO lv1.address_master VALUES ('서울 강남구 역삼동 1', 'found', '서울 강남구 테헤란로 1', "
                "'역삼타워', '101', '202', '06234'), ('부산 어딘가', 'not_found', NULL, NULL, NULL, NULL, NULL)"
            )
            conn.exec_driver_sql("ANALYZE lv1.address_master")
            ensure_functions(conn)  # the next model step, after lv1ex wrote the table
            assert conn.exec_driver_sql(query).all() == [
                (1, "서울 강남구 테헤란로 1 역삼타워 101동 202호", "06234"), (2, None, None),
            ]
            plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + query))
            assert "Function Scan" not in plan and "Index Scan" in plan and "address_master" in plan
    finally:
        engine.dispose()
