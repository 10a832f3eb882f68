"""The lv1 and lv2 models on the demo data: lineage, cleaning rules, increments, backfills, checks.

The ERP stand-in is seeded once for 2024-01-01..05 and lv0 loaded for that range (one run);
every test works on its own copy of both databases (``CREATE DATABASE ... TEMPLATE``).
"""

import re
from decimal import Decimal

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from bodyfriend_assets import lv1, lv2
from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.demo.legacy_schema import CODE_BOOK
from bodyfriend_assets.legacy import legacy_specs
from bodyfriend_assets.lv0 import build_lv0_asset, lv0_assets
from bodyfriend_assets.partitions import daily_partitions
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets.lv1ex import lv1ex_assets
from bodyfriend_assets.transforms import build_model_steps
from bodyfriend_assets_tests.chain import copy_database, lv0_template, range_tags
from bodyfriend_assets_tests.conftest import point_platform_at, rows, scalar

RESOURCES = {"legacy": LegacyDatabase(), "datahub": DataHub()}
CATALOG = load_catalog()
LV0 = lv0_assets(CATALOG)
# lv1 and lv2 as the platform steps them; lv1ex is upstream of lv2 but not run here (no refined address)
SQL_MODELS = build_model_steps([*lv1.models, *lv2.models], upstream=LV0, catalog=CATALOG,
                               lv2_upstream=lv1ex_assets(CATALOG))
REFINED = dg.AssetSelection.groups("lv1", "lv2")
CODE_NAMES = {(m.major_cd, cd): nm for m in CODE_BOOK for cd, nm in m.minors}


def qualified(schema: str, table: str) -> str:
    """``schema.table`` as SQLAlchemy quotes it, for the tests' own SQL."""
    return postgresql.dialect().identifier_preparer.format_table(sa.table(table, schema=schema))


# -- the databases -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template(make_database):
    """The seeded stand-in and a Data Hub with lv0 loaded for 2024-01-01..05: never used directly."""
    return lv0_template(make_database, LV0, RESOURCES, rows=600, days=5, last_day="2024-01-05")


@pytest.fixture
def platform_copy(template, monkeypatch):
    """Factory: fresh copies of the template databases, the platform pointed at them."""

    def copy():
        legacy_url, datahub_url = (copy_database(url) for url in template)
        point_platform_at(monkeypatch, legacy_url, datahub_url)
        return legacy_url, datahub_url

    return copy


@pytest.fixture
def hub(platform_copy):
    return platform_copy()[1]


def refine(partition: str | None = None, *, tags=None, selection=REFINED, extra=(), raise_on_error=True):
    """Materialize lv1/lv2 (or ``selection``) for a partition or a range."""
    return dg.materialize(
        [*LV0, *SQL_MODELS, *extra], partition_key=partition, tags=tags, resources=RESOURCES,
        selection=selection, raise_on_error=raise_on_error,
    )


def changed(result) -> dict[str, int]:
    return {
        e.asset_key.to_user_string(): e.materialization.metadata["rows_changed"].value
        for e in result.get_asset_materialization_events()
    }


# -- the asset graph -----------------------------------------------------------------------------

EXPECTED_DEPS = {
    "lv1/b_item_group": {"lv0/b_item_group"},
    "lv1/b_sale_org": {"lv0/b_sale_org"},
    "lv1/b_sales_grp": {"lv0/b_sales_grp"},
    "lv1/code_master": {"lv0/b_major", "lv0/b_minor"},
    "lv1/r_call_group": {"lv0/r_call_group", "lv1/code_master"},
    "lv1/r_contract_cancel_receipt": {"lv0/r_contract_cancel_receipt", "lv1/code_master"},
    "lv1/r_contract_move_receipt": {"lv0/r_contract_move_receipt", "lv1/code_master"},
    "lv1/r_exhibition_visit_history": {"lv0/r_exhibition_visit_history", "lv1/code_master"},
    "lv1/r_experience_reservation": {"lv0/r_experience_reservation", "lv1/code_master"},
    "lv1/r_goods": {"lv0/r_goods", "lv1/code_master"},
    "lv1/r_install_fee": {"lv0/r_install_fee"},
    "lv1/r_order_contract": {"lv0/r_order_contract", "lv1/code_master"},
    "lv1/r_promotion": {"lv0/r_promotion", "lv1/code_master"},
    "lv1/r_service_evaluation": {"lv0/r_service_evaluation", "lv1/code_master"},
    "lv1/r_service_receipt": {"lv0/r_service_receipt", "lv1/code_master"},
    "lv1/r_shipping_evaluation": {"lv0/r_shipping_evaluation", "lv1/code_master"},
    "lv1/r_shipping_info": {"lv0/r_shipping_info", "lv1/code_master"},
    "lv1/r_trans_homepage": {"lv0/r_trans_homepage", "lv1/code_master"},
    "lv1/svc_type_big": {"lv0/r_prod_symptom_hdr"},
    "lv1/svc_type_mid": {"lv0/r_prod_symptom_dtl"},
    "lv1/svc_type_sml": {"lv0/r_prod_symptom_sml"},
    "lv1/v_customer": {"lv0/v_customer", "lv1/code_master"},
    "lv1/v_erp_user": {"lv0/v_erp_user"},
    "lv1/v_sales_lounge": {"lv0/v_sales_lounge", "lv1/code_master"},
    # the four that carry an address also read lv1.address_master, after the lv1ex asset of their lv1 table
    "lv2/account": {"lv1/v_customer", "lv1ex/v_customer"},
    "lv2/bbs_map": {"lv1/v_sales_lounge", "lv1ex/v_sales_lounge"},
    "lv2/contract_cancel_receipt": {"lv1/r_contract_cancel_receipt"},
    "lv2/contract_move_receipt": {"lv1/r_contract_move_receipt", "lv1/v_erp_user", "lv1ex/r_contract_move_receipt"},
    "lv2/exhibition_visit_customer": {"lv1/r_exhibition_visit_history", "lv1/v_sales_lounge"},
    "lv2/exhibition_visit_history": {"lv1/r_exhibition_visit_history", "lv1/v_erp_user", "lv1/v_sales_lounge"},
    "lv2/experience_reservation_customer": {"lv1/r_experience_reservation", "lv1/v_sales_lounge"},
    "lv2/lead": {"lv1/r_experience_reservation", "lv1/v_sales_lounge"},
    "lv2/opportunity": {
        "lv0/r_order_contract_add", "lv1/code_master", "lv1/r_order_contract", "lv2/account", "lv2/product2"
    },
    "lv2/product2": {"lv1/b_item_group", "lv1/r_goods"},
    "lv2/promotion": {"lv1/r_promotion"},
    "lv2/service_evaluation": {"lv1/r_service_evaluation"},
    "lv2/service_receipt": {
        "lv1/r_service_receipt", "lv1/svc_type_big", "lv1/svc_type_mid", "lv1/svc_type_sml", "lv1/v_erp_user"
    },
    "lv2/shipping_evaluation": {"lv1/r_shipping_evaluation"},
    "lv2/shipping_info": {"lv1/r_shipping_info", "lv1/v_erp_user", "lv1ex/r_shipping_info"},
}

INCREMENTAL = {
    "lv1/r_contract_cancel_receipt", "lv1/r_order_contract", "lv1/r_service_receipt", "lv1/r_shipping_info",
    "lv1/v_customer", "lv2/account", "lv2/contract_cancel_receipt", "lv2/opportunity", "lv2/service_receipt",
    "lv2/shipping_info",
}


def test_the_asset_graph_shows_every_lv1_and_lv2_table_with_the_lineage_its_sql_reads():
    defs = dg.Definitions(assets=[*legacy_specs(CATALOG), *LV0, *SQL_MODELS], resources=RESOURCES)
    graph = defs.resolve_asset_graph()
    refined = {k.to_user_string() for k in graph.get_all_asset_keys() if k.path[0] in ("lv1", "lv2")}
    assert refined == set(EXPECTED_DEPS)
    for name, deps in EXPECTED_DEPS.items():
        node = graph.get(dg.AssetKey.from_user_string(name))
        assert {p.to_user_string() for p in node.parent_keys} == deps, name
        assert node.group_name == name.split("/")[0]
        assert node.partitions_def == daily_partitions
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert node.freshness_policy is not None and node.freshness_policy.timezone == "Asia/Seoul"
        assert node.metadata["table"] == name.replace("/", ".")
        assert node.metadata["mode"] == ("incremental" if name in INCREMENTAL else "full")
        assert node.code_version
    # legacy -> lv0 -> lv1 -> lv2, end to end
    assert {p.to_user_string() for p in graph.get(dg.AssetKey(["lv0", "v_customer"])).parent_keys} == {
        "legacy/rental/v_customer"
    }


def test_lv1_has_a_model_for_every_table_the_legacy_platform_refined():
    refined_by_legacy = {
        "R_CALL_GROUP", "R_CONTRACT_CANCEL_RECEIPT", "R_CONTRACT_MOVE_RECEIPT", "R_EXHIBITION_VISIT_HISTORY",
        "R_EXPERIENCE_RESERVATION", "R_GOODS", "R_INSTALL_FEE", "R_ORDER_CONTRACT", "R_PROD_SYMPTOM_HDR",
        "R_PROD_SYMPTOM_DTL", "R_PROD_SYMPTOM_SML", "R_PROMOTION", "R_SERVICE_EVALUATION", "R_SERVICE_RECEIPT",
        "R_SHIPPING_EVALUATION", "R_SHIPPING_INFO", "R_TRANS_HOMEPAGE", "V_CUSTOMER", "V_ERP_USER",
        "V_SALES_LOUNGE", "B_ITEM_GROUP", "B_MAJOR", "B_SALES_GRP", "B_SALE_ORG",
    }
    dag_ids = {spec.metadata["dag_id"] for step in SQL_MODELS for spec in step.specs if spec.key.path[0] == "lv1"}
    assert {d.removeprefix("lv0_dag_").split(".")[1] for d in dag_ids} == refined_by_legacy


def test_every_model_names_the_dag_of_the_legacy_table_it_derives_from():
    dag_ids = {spec.key.to_user_string(): spec.metadata["dag_id"] for step in SQL_MODELS for spec in step.specs}
    assert dag_ids["lv1/code_master"] == "lv0_dag_UNIERP5.B_MAJOR"
    assert dag_ids["lv1/svc_type_mid"] == "lv0_dag_RENTAL.R_PROD_SYMPTOM_DTL"
    assert dag_ids["lv1/r_order_contract"] == "lv0_dag_RENTAL.R_ORDER_CONTRACT"
    assert dag_ids["lv2/account"] == "lv1_dag_RENTAL.V_CUSTOMER"
    assert dag_ids["lv2/lead"] == "lv1_dag_RENTAL.R_EXPERIENCE_RESERVATION"
    assert dag_ids["lv2/opportunity"] == "lv1_dag_RENTAL.R_ORDER_CONTRACT"
    assert dag_ids["lv2/product2"] == "lv1_dag_RENTAL.R_GOODS"
    for key, dag_id in dag_ids.items():
        layer = key.split("/")[0]
        assert dag_id.startswith({"lv1": "lv0_dag_", "lv2": "lv1_dag_"}[layer]), key
        CATALOG.by_name(dag_id.split("_dag_")[1])  # a table of the catalog


# -- one day, end to end ------------------------------------------------------------------------


def test_one_day_from_lv0_to_lv2_applies_the_cleaning_rules_and_passes_every_check(hub):
    # A few values the demo data does not have: an impossible date, a blank memo.
    order_no = scalar(hub, "SELECT min(order_no) FROM lv0.r_order_contract WHERE _partition = '2024-01-03'")
    rows(hub, "UPDATE lv0.r_order_contract SET first_pay_dt = '20240230', remark = '   ' WHERE order_no = :o", o=order_no)

    result = refine("2024-01-03")
    assert result.success
    materialized = {e.asset_key.to_user_string(): e.materialization for e in result.get_asset_materialization_events()}
    assert set(materialized) == set(EXPECTED_DEPS)
    assert {"rows_changed", "rows", "seconds", "partitions"} <= set(materialized["lv2/opportunity"].metadata)
    evaluations = result.get_asset_check_evaluations()
    # a key check each, a completeness check each incremental model, 6 referential checks
    incremental = [m for m in [*lv1.models, *lv2.models] if m.mode == "incremental"]
    assert incremental
    by_name = {}
    for e in evaluations:
        by_name.setdefault(e.check_name, set()).add(e.asset_key.to_user_string())
    assert by_name.pop("key_unique_and_not_null") == set(EXPECTED_DEPS)
    assert by_name.pop("driving_rows_complete") == {f"{m.layer}/{m.name}" for m in incremental}
    assert sum(len(assets) for assets in by_name.values()) == 6
    assert all(e.passed for e in evaluations), [(e.asset_key, e.check_name) for e in evaluations if not e.passed]

    # row counts: full models hold every row, incremental ones the day and its look-back day
    assert scalar(hub, "SELECT count(*) FROM lv1.r_goods") == scalar(hub, "SELECT count(*) FROM lv0.r_goods") == 150
    assert scalar(hub, "SELECT count(*) FROM lv1.code_master") == sum(len(m.minors) for m in CODE_BOOK)
    in_window = "WHERE _partition BETWEEN '2024-01-02' AND '2024-01-03'"
    for table in ("r_order_contract", "v_customer", "r_service_receipt"):
        expected = scalar(hub, f"SELECT count(*) FROM {qualified('lv0', table)} {in_window}")
        assert expected > 0 and scalar(hub, f"SELECT count(*) FROM {qualified('lv1', table)}") == expected, table
    assert scalar(hub, "SELECT count(*) FROM lv2.account") == scalar(hub, "SELECT count(*) FROM lv1.v_customer")
    # a contract becomes an opportunity once its customer is an account
    with_account = scalar(hub, "SELECT count(*) FROM lv1.r_order_contract c "
                              "WHERE EXISTS (SELECT 1 FROM lv2.account a WHERE a.external_id = c.cust_no)")
    assert with_account > 0 and scalar(hub, "SELECT count(*) FROM lv2.opportunity") == with_account

    # 'Y'/'N' -> boolean
    flags = rows(hub, "SELECT z.sign_yn, l.sign_yn FROM lv0.r_order_contract z JOIN lv1.r_order_contract l USING (order_no)")
    assert {(z, l) for z, l in flags} == {("Y", True), ("N", False)}

    # codes decoded through the code book, in lv1 and on to lv2
    statuses = rows(hub, "SELECT l.order_status_cd, l.order_status_nm, o.stage_name FROM lv1.r_order_contract l "
                         "LEFT JOIN lv2.opportunity o ON o.external_id = l.order_no")
    assert statuses and all(nm == CODE_NAMES[("R1001", cd)] for cd, nm, _ in statuses)
    assert all(stage in (nm, None) for _, nm, stage in statuses)
    genders = rows(hub, "SELECT sex_cd, sex_nm FROM lv1.v_customer WHERE sex_cd IS NOT NULL")
    assert genders and all(nm == CODE_NAMES[("C1001", cd)] for cd, nm in genders)

    # phone numbers: digits kept, written 010-1234-5678 whatever the input's form
    phones = rows(hub, "SELECT z.hand_tel_no, l.hand_tel_no FROM lv0.v_customer z JOIN lv1.v_customer l USING (cust_no) "
                       "WHERE z.hand_tel_no <> ''")
    assert any("-" not in raw for raw, _ in phones), "the demo data has numbers typed without hyphens"
    for raw, clean in phones:
        assert re.fullmatch(r"01[016789]-\d{3,4}-\d{4}", clean) and re.sub(r"\D", "", raw) == clean.replace("-", "")
    # ... and the service receipts' are the decrypted ones, never the ciphertext
    receipts = rows(hub, "SELECT z.hand_tel_no, z.dec_hand_tel_no, l.hand_tel_no FROM lv0.r_service_receipt z "
                         "JOIN lv1.r_service_receipt l USING (receipt_no) WHERE z.dec_hand_tel_no <> ''")
    assert receipts
    for cipher, plain, clean in receipts:
        assert cipher.startswith("ENC1:") and clean.replace("-", "") == re.sub(r"\D", "", plain)
    assert scalar(hub, "SELECT count(*) FROM lv2.service_receipt WHERE contact_mobile_phone LIKE 'ENC1%'") == 0

    # empty string and blank -> NULL; text trimmed
    blank_in_lv0 = scalar(hub, f"SELECT count(*) FROM lv0.r_order_contract {in_window} AND btrim(remark) = ''")
    null_in_lv0 = scalar(hub, f"SELECT count(*) FROM lv0.r_order_contract {in_window} AND remark IS NULL")
    assert blank_in_lv0 > 0
    assert scalar(hub, "SELECT count(*) FROM lv1.r_order_contract WHERE remark IS NULL") == blank_in_lv0 + null_in_lv0
    assert scalar(hub, "SELECT count(*) FROM lv1.r_order_contract WHERE remark = ''") == 0
    padded = scalar(hub, f"SELECT count(*) FROM lv0.v_customer {in_window} AND cust_nm LIKE '% '")
    assert padded > 0 and scalar(hub, "SELECT count(*) FROM lv1.v_customer WHERE cust_nm LIKE '% '") == 0

    # 'YYYYMMDD' -> date; an impossible date -> NULL
    first_pay, remark, cont_dt, raw_cont_dt = rows(
        hub, "SELECT l.first_pay_dt, l.remark, l.cont_dt, z.cont_dt FROM lv1.r_order_contract l "
             "JOIN lv0.r_order_contract z USING (order_no) WHERE order_no = :o", o=order_no)[0]
    assert first_pay is None and remark is None
    assert cont_dt.strftime("%Y%m%d") == raw_cont_dt

    # lv2 shapes: external ids, lookups by external id, Salesforce-like fields
    account = rows(hub, "SELECT a.billing_street, c.addr1, c.addr2, a.name, a.mobile_phone, a.has_opted_out_of_email, "
                        "c.email_agree_yn FROM lv2.account a JOIN lv1.v_customer c ON c.cust_no = a.external_id "
                        "WHERE c.addr2 IS NOT NULL LIMIT 1")[0]
    assert account[0] == f"{account[1]} {account[2]}" and account[5] is (not account[6])
    amount, period, rental, cont_type = rows(
        hub, "SELECT o.amount, c.cont_period_cd, c.rental_amt, c.cont_type_cd FROM lv2.opportunity o "
             "JOIN lv1.r_order_contract c ON c.order_no = o.external_id WHERE c.cont_type_cd <> '02' LIMIT 1")[0]
    assert amount == rental * Decimal(int(period))


def test_rerunning_a_day_changes_no_row(hub):
    assert refine("2024-01-03").success
    again = changed(refine("2024-01-03"))
    assert set(again) == set(EXPECTED_DEPS)
    assert set(again.values()) == {0}


def test_lounges_their_visitors_and_those_who_reserve_are_lv2_tables_of_their_own(hub):
    """lv2.bbs_map, lv2.exhibition_visit_customer, lv2.experience_reservation_customer: the objects
    the old func_lv2_to_hc_bbs_map / _exhibition_visit_customer / _experience_reservation_customer
    fed, from the demo's lounges, visits and reservations."""
    assert refine("2024-01-03").success

    # every lounge is on the map, with its type decoded, hours as HH:MM and a rounded position
    assert scalar(hub, "SELECT count(*) FROM lv2.bbs_map") == scalar(hub, "SELECT count(*) FROM lv0.v_sales_lounge") > 0
    lounges = rows(hub, "SELECT m.name, m.lounge_type, m.opening_time, m.latitude, m.is_active, l.lounge_nm, "
                        "l.lounge_type_cd, l.open_time, l.latitude, l.use_yn, l.close_yn "
                        "FROM lv2.bbs_map m JOIN lv1.v_sales_lounge l ON l.lounge_cd = m.external_id")
    assert any(kind for _, kind, *_ in lounges) and any(active for *_, active, _, _, _, _, _, _ in lounges)
    for name, kind, opening, latitude, active, lv1_name, type_cd, open_time, lv1_latitude, use_yn, close_yn in lounges:
        assert name == lv1_name
        assert kind == CODE_NAMES.get(("R7001", type_cd))
        assert opening == f"{open_time[:2]}:{open_time[2:]}"
        assert latitude == round(Decimal(str(lv1_latitude)), 6) and latitude.as_tuple().exponent == -6
        assert active is (bool(use_yn) and not close_yn)

    # one visit customer per visit whose visitor is known, pointing at the visit it came from
    known = scalar(hub, "SELECT count(*) FROM lv1.r_exhibition_visit_history "
                        "WHERE visitor_nm IS NOT NULL OR visitor_hand_tel_no IS NOT NULL OR cust_no IS NOT NULL")
    assert 0 < known < scalar(hub, "SELECT count(*) FROM lv1.r_exhibition_visit_history")
    assert scalar(hub, "SELECT count(*) FROM lv2.exhibition_visit_customer") == known
    assert scalar(hub, "SELECT count(*) FROM lv2.exhibition_visit_customer c JOIN lv2.exhibition_visit_history v "
                       "ON v.external_id = c.exhibition_visit_external_id AND v.visitor_name IS NOT DISTINCT FROM "
                       "c.visitor_name AND v.account_external_id IS NOT DISTINCT FROM c.account_external_id") == known
    assert scalar(hub, "SELECT count(*) FROM lv2.exhibition_visit_customer "
                       "WHERE is_existing_customer <> (account_external_id IS NOT NULL)") == 0

    # one reservation customer per reservation, the person the Lead is made of
    assert scalar(hub, "SELECT count(*) FROM lv2.experience_reservation_customer") == scalar(
        hub, "SELECT count(*) FROM lv1.r_experience_reservation") > 0
    people = rows(hub, "SELECT c.customer_name, c.mobile_phone, c.email, c.marketing_consent, l.last_name, "
                       "l.mobile_phone, l.email, l.has_opted_out_of_email FROM lv2.experience_reservation_customer c "
                       "JOIN lv2.lead l ON l.external_id = c.lead_external_id")
    assert len(people) == scalar(hub, "SELECT count(*) FROM lv2.lead")
    assert all(c[:3] == l[:3] and c[3] is (not l[3]) for c, l in ((p[:4], p[4:]) for p in people))


def test_a_changed_source_row_reaches_lv1_and_lv2_as_exactly_that_change(platform_copy):
    legacy_url, hub = platform_copy()
    assert refine(tags=range_tags("2024-01-01", "2024-01-05")).success
    order_no = scalar(
        hub, "SELECT min(external_id) FROM lv2.opportunity o WHERE stage_name <> '주문취소' AND _partition < '2024-01-05'"
    )
    rows(legacy_url, "UPDATE rental.r_order_contract SET order_status_cd = '90', updt_dt = '2024-01-05 12:00:00' "
                     "WHERE order_no = :o", o=order_no)

    lv0_contracts = build_lv0_asset(CATALOG.by_name("r_order_contract"))
    reloaded = dg.materialize([lv0_contracts], partition_key="2024-01-05", resources=RESOURCES)
    assert reloaded.get_asset_materialization_events()[0].materialization.metadata["rows_changed"].value == 1

    result = refine("2024-01-05")
    assert {k: v for k, v in changed(result).items() if v} == {"lv1/r_order_contract": 1, "lv2/opportunity": 1}
    assert rows(hub, "SELECT order_status_nm, _partition FROM lv1.r_order_contract WHERE order_no = :o", o=order_no) == [
        ("주문취소", "2024-01-05")
    ]
    assert rows(hub, "SELECT stage_name, _partition FROM lv2.opportunity WHERE external_id = :o", o=order_no) == [
        ("주문취소", "2024-01-05")
    ]


def test_a_row_committed_late_into_yesterday_reaches_lv1_and_lv2_with_the_next_run(platform_copy):
    legacy_url, hub = platform_copy()
    assert refine(tags=range_tags("2024-01-01", "2024-01-04")).success
    cust_no = scalar(hub, "SELECT min(external_id) FROM lv2.account WHERE _partition < '2024-01-04' "
                         "AND external_id IN (SELECT account_external_id FROM lv2.opportunity)")
    # changed at 23:30 on the 4th, committed after the 4th's run: lv0 finds it in the 5th's
    # look-back and files it under the 4th, its own day
    rows(legacy_url, "UPDATE rental.v_customer SET cust_nm = '한늦음', updt_dt = '2024-01-04 23:30:00' "
                     "WHERE cust_no = :c", c=cust_no)
    lv0_customers = build_lv0_asset(CATALOG.by_name("v_customer"))
    assert dg.materialize([lv0_customers], partition_key="2024-01-05", resources=RESOURCES).success
    assert scalar(hub, "SELECT _partition FROM lv0.v_customer WHERE cust_no = :c", c=cust_no) == "2024-01-04"

    assert refine("2024-01-05").success
    assert scalar(hub, "SELECT cust_nm FROM lv1.v_customer WHERE cust_no = :c", c=cust_no) == "한늦음"
    assert scalar(hub, "SELECT name FROM lv2.account WHERE external_id = :c", c=cust_no) == "한늦음"
    names = rows(hub, "SELECT name FROM lv2.opportunity WHERE account_external_id = :c", c=cust_no)
    assert names and all(name.startswith("한늦음 / ") for (name,) in names)


# -- backfills and steps -----------------------------------------------------------------------


def _table_digests(url) -> dict[str, str]:
    digests = {}
    for key in EXPECTED_DEPS:
        table = qualified(*key.split("/"))
        digests[key] = scalar(url, f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t")
    return digests


def test_a_three_day_backfill_is_one_run_of_one_step_and_equals_three_daily_runs(platform_copy):
    _, backfilled = platform_copy()
    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [*LV0, *SQL_MODELS], instance=instance, resources=RESOURCES, selection=REFINED,
            tags=range_tags("2024-01-01", "2024-01-03"),
        )
        assert result.success
        assert len(instance.get_runs()) == 1
    steps = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}
    assert steps == {"lv1_models", "lv2_models"}
    partitions = {e.materialization.metadata["partitions"].value for e in result.get_asset_materialization_events()}
    assert partitions == {"2024-01-01...2024-01-03"}
    backfilled_tables = _table_digests(backfilled)

    _, daily = platform_copy()
    for day in ("2024-01-01", "2024-01-02", "2024-01-03"):
        assert refine(day).success
    assert _table_digests(daily) == backfilled_tables
    assert scalar(daily, "SELECT count(*) FROM lv2.opportunity") > 0


def test_a_selected_subset_refreshes_only_the_selected_models(hub):
    assert refine("2024-01-03", selection=dg.AssetSelection.assets(["lv1", "r_goods"], ["lv1", "code_master"])).success
    result = refine("2024-01-03", selection=dg.AssetSelection.assets(["lv1", "r_goods"]))
    assert set(changed(result)) == {"lv1/r_goods"}
    assert {(e.asset_key.to_user_string(), e.check_name) for e in result.get_asset_check_evaluations()} == {
        ("lv1/r_goods", "key_unique_and_not_null")
    }
    assert scalar(hub, "SELECT to_regclass('lv1.v_customer')") is None


# -- checks ----------------------------------------------------------------------------------


def test_a_duplicated_key_fails_the_key_check_and_blocks_what_reads_the_table(hub):
    assert refine("2024-01-03").success
    # an item group twice: every product of that group comes out twice in lv2.product2
    rows(hub, "INSERT INTO lv1.b_item_group SELECT * FROM lv1.b_item_group "
              "WHERE item_group_cd = (SELECT min(item_group_cd) FROM lv1.r_goods)")

    @dg.asset(key=["hc", "account"], deps=[dg.AssetKey(["lv2", "account"])], partitions_def=daily_partitions)
    def hc_probe():
        """Stands for the Heroku Connect load."""
        return dg.MaterializeResult()

    result = refine("2024-01-03", selection=dg.AssetSelection.groups("lv2", "hc"), extra=[hc_probe],
                    raise_on_error=False)
    assert not result.success
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    product_check = checks[("lv2/product2", "key_unique_and_not_null")]
    assert product_check.passed is False and product_check.metadata["repeated_keys"].value != "none"
    materialized = set(changed(result))
    assert "lv2/product2" in materialized and "lv2/account" in materialized
    assert "lv2/opportunity" not in materialized  # reads lv2.product2: skipped in the step
    assert "hc/account" not in materialized  # the step failed: nothing downstream of it runs
