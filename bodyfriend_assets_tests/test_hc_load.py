"""The hc layer end to end on the demo data: legacy stand-in -> lv0 -> lv1 -> lv2 -> hc, with the
Heroku Connect stand-in recording every write in ``salesforce._trigger_log``.

The ERP stand-in is seeded once and lv0 loaded for 2024-01-01..03 (one run); every test works on
its own copy of both databases (``CREATE DATABASE ... TEMPLATE``).
"""

import datetime as dt

import dagster as dg
import pytest
import sqlalchemy as sa

from bodyfriend_assets import lv1, lv2
from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.hc import HerokuConnect, build_hc_assets, load_mapping
from bodyfriend_assets.hc.tables import record_salesforce_change
from bodyfriend_assets.lv0 import build_lv0_asset, lv0_assets
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets.lv1ex import lv1ex_assets
from bodyfriend_assets.transforms import build_model_steps
from bodyfriend_assets_tests.chain import copy_database, lv0_template, range_tags
from bodyfriend_assets_tests.conftest import point_platform_at, rows, scalar

CATALOG = load_catalog()
LV0 = lv0_assets(CATALOG)
SQL_MODELS = build_model_steps([*lv1.models, *lv2.models], upstream=LV0, catalog=CATALOG,
                               lv2_upstream=lv1ex_assets(CATALOG))
HC = build_hc_assets(CATALOG)
DEV = {"legacy": LegacyDatabase(), "datahub": DataHub(), "heroku_connect": HerokuConnect(mode="development")}
CHAIN = dg.AssetSelection.groups("lv0", "lv1", "lv2", "hc")
DAY = "2024-01-03"


@pytest.fixture(scope="module")
def template(make_database):
    """The seeded stand-in and a Data Hub with lv0 loaded for 2024-01-01..03: never used directly."""
    return lv0_template(make_database, LV0, DEV, rows=400, days=3, last_day=DAY)


@pytest.fixture
def platform(template, monkeypatch):
    legacy_url, datahub_url = (copy_database(url) for url in template)
    point_platform_at(monkeypatch, legacy_url, datahub_url)
    return legacy_url, datahub_url


def chain(partition: str = DAY, selection=CHAIN, resources=DEV, raise_on_error=True):
    return dg.materialize(
        [*LV0, *SQL_MODELS, HC], partition_key=partition, resources=resources, selection=selection,
        raise_on_error=raise_on_error,
    )


def hc_metadata(result, layers=("hc",)) -> dict[str, dict]:
    return {
        e.asset_key.to_user_string(): {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
        if e.asset_key.path[0] in layers
    }


def checks(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}


def reload_lv0(table: str, partition: str = DAY) -> None:
    assert dg.materialize([build_lv0_asset(CATALOG.by_name(table))], partition_key=partition, resources=DEV).success


# -- the chain ---------------------------------------------------------------------------------


def test_the_chain_loads_every_object_parents_first_and_a_rerun_writes_nothing(platform):
    _, hub = platform
    first = chain()
    assert first.success
    loaded = hc_metadata(first)
    assert set(loaded) == {f"hc/{obj.source}" for obj in load_mapping().objects}
    for key, metadata in loaded.items():
        source = key.split("/")[1]
        table = load_mapping().by_source(source).table
        # three days of demo data: some children name parents from older days, not loaded;
        # they wait in quarantine (parent_missing), every other row is written
        assert {k for k in metadata if k.startswith("quarantined_")} <= {
            "quarantined_values", "quarantined_parent_missing", "quarantined_parent_quarantined"}
        waiting = metadata["quarantine_count"]
        assert metadata["rows_inserted"] + waiting == scalar(hub, f"SELECT count(*) FROM lv2.{source}"), key
        assert metadata["rows_inserted"] > 0, key
        assert scalar(hub, f"SELECT count(*) FROM salesforce.{table}") == metadata["rows_inserted"], key
    assert loaded["hc/account"]["quarantine_count"] == 0
    assert scalar(hub, "SELECT count(DISTINCT (object, external_id)) FROM hc_meta.held") == sum(
        m["quarantine_count"] for m in loaded.values())
    assert all(e.passed for e in first.get_asset_check_evaluations() if e.check_name != "quarantine_count")
    log_rows = scalar(hub, "SELECT count(*) FROM salesforce._trigger_log")
    assert log_rows == sum(m["rows_inserted"] for m in loaded.values())
    assert scalar(hub, "SELECT count(*) FROM salesforce._trigger_log WHERE action <> 'INSERT' OR state <> 'NEW'") == 0

    # parents before children: every account was inserted before any opportunity, and each
    # opportunity names its account through the relationship external-ID column
    last_account, first_opportunity = rows(
        hub, "SELECT (SELECT max(id) FROM salesforce._trigger_log WHERE table_name = 'account'), "
             "(SELECT min(id) FROM salesforce._trigger_log WHERE table_name = 'opportunity')")[0]
    assert last_account < first_opportunity
    lookups = rows(hub, "SELECT o.account__r__bf_external_id__c, l.account_external_id, "
                        "EXISTS (SELECT 1 FROM salesforce.account a WHERE a.bf_external_id__c = o.account__r__bf_external_id__c) "
                        "FROM salesforce.opportunity o JOIN lv2.opportunity l ON l.external_id = o.bf_external_id__c")
    assert lookups and all(hc == lv and exists for hc, lv, exists in lookups)
    # the system columns are Heroku Connect's: never written by the load
    assert scalar(hub, "SELECT count(*) FROM salesforce.account WHERE sfid IS NOT NULL OR _hc_lastop IS NOT NULL "
                      "OR _hc_err IS NOT NULL") == 0

    # inserted in external-id order, whatever the staged rows' order: the serial ids (and the
    # trigger log) come out the same on every machine and executor
    for obj in load_mapping().objects:
        misplaced = scalar(hub, f"SELECT count(*) FROM (SELECT row_number() OVER (ORDER BY id) AS by_id, "
                                f"row_number() OVER (ORDER BY bf_external_id__c) AS by_key "
                                f"FROM salesforce.{obj.table}) AS t WHERE by_id <> by_key")
        assert misplaced == 0, obj.table
    assert scalar(hub, "SELECT count(*) FROM (SELECT row_number() OVER (PARTITION BY object, run_id ORDER BY id) AS by_id, "
                       "row_number() OVER (PARTITION BY object, run_id ORDER BY external_id, field, reason) AS by_key "
                       "FROM hc_meta.quarantine) AS t WHERE by_id <> by_key") == 0

    # the whole chain again, sources unchanged: nothing written, nothing logged
    again = chain()
    assert again.success
    assert {k: m["rows_written"] for k, m in hc_metadata(again).items()} == {k: 0 for k in loaded}
    assert scalar(hub, "SELECT count(*) FROM salesforce._trigger_log") == log_rows


def test_a_changed_source_row_reaches_hc_as_one_update_of_exactly_the_changed_fields(platform):
    legacy_url, hub = platform
    assert chain().success
    order_no = scalar(hub, "SELECT min(bf_external_id__c) FROM salesforce.opportunity WHERE stagename <> '주문취소'")
    before = scalar(hub, "SELECT max(id) FROM salesforce._trigger_log")
    rows(legacy_url, "UPDATE rental.r_order_contract SET order_status_cd = '90', updt_dt = '2024-01-03 12:00:00' "
                     "WHERE order_no = :o", o=order_no)

    result = chain()
    assert result.success
    assert {k: m["rows_written"] for k, m in hc_metadata(result).items() if m["rows_written"]} == {"hc/opportunity": 1}
    log = rows(hub, 'SELECT action, state, table_name, "values", old FROM salesforce._trigger_log WHERE id > :b', b=before)
    assert len(log) == 1
    action, state, table, values, old = log[0]
    assert (action, state, table) == ("UPDATE", "NEW", "opportunity")
    # the stage, and the ERP's change time, in UTC: 12:00 in Seoul is 03:00 UTC
    assert values == {"stagename": "주문취소", "erp_updated_at__c": "2024-01-03T03:00:00"}
    assert set(old) == set(values) and old["stagename"] != "주문취소"


def test_timestamps_reach_hc_in_utc(platform):
    _, hub = platform
    assert chain().success
    pairs = rows(hub, "SELECT l.erp_updated_at, h.erp_updated_at__c, l.received_at, h.received_at__c "
                      "FROM lv2.service_receipt l JOIN salesforce.service_receipt__c h ON h.bf_external_id__c = l.external_id")
    assert pairs
    for local, utc, received_local, received_utc in pairs:
        assert (local - utc).total_seconds() == 9 * 3600
        assert received_local is None or (received_local - received_utc).total_seconds() == 9 * 3600


def test_a_value_salesforce_would_refuse_is_quarantined_and_the_rest_of_the_batch_loads(platform):
    legacy_url, hub = platform
    cust_no = scalar(legacy_url, "SELECT min(cust_no) FROM rental.v_customer WHERE updt_dt >= '2024-01-03'")
    rows(legacy_url, "UPDATE rental.v_customer SET addr1 = repeat('가', 200), addr2 = repeat('나', 100), "
                     "updt_dt = '2024-01-03 10:00:00' WHERE cust_no = :c", c=cust_no)
    result = chain()
    assert result.success  # a warning, not a failure

    account = hc_metadata(result)["hc/account"]
    assert account["quarantine_count"] == 1 and account["quarantined_too_long"] == 1
    assert account["rows_inserted"] == scalar(hub, "SELECT count(*) FROM lv2.account") - 1
    evaluation = checks(result)[("hc/account", "quarantine_count")]
    assert evaluation.passed is False and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert evaluation.metadata["quarantine_count"].value == 1
    assert all(e.passed for (key, name), e in checks(result).items() if name != "quarantine_count")

    (obj, external_id, field, reason, excerpt, run_id), = rows(
        hub, "SELECT object, external_id, field, reason, value_excerpt, run_id FROM hc_meta.quarantine "
             "WHERE object = 'Account'")
    assert (obj, external_id, field, run_id) == ("Account", cust_no, "BillingStreet", result.run_id)
    assert reason == "value of 301 characters is too long for BillingStreet (textarea(255))"
    assert excerpt == "가" * 100
    # not written, not cut: the row is simply not in hc
    assert scalar(hub, "SELECT count(*) FROM salesforce.account WHERE bf_external_id__c = :c", c=cust_no) == 0
    assert scalar(hub, "SELECT count(*) FROM salesforce._trigger_log WHERE table_name = 'account'") == account["rows_inserted"]


def test_lounges_visit_customers_and_reservation_customers_reach_heroku_connect_tables_of_their_own(platform):
    _, hub = platform
    result = chain()
    assert result.success
    loaded = hc_metadata(result)
    tables = {"hc/bbs_map": "bbs_map__c", "hc/exhibition_visit_customer": "exhibition_visit_customer__c",
              "hc/experience_reservation_customer": "experience_reservation_customer__c"}
    for key, table in tables.items():
        source = key.split("/")[1]
        written = scalar(hub, f"SELECT count(*) FROM salesforce.{table}")
        assert written == loaded[key]["rows_inserted"] > 0, key
        assert written + loaded[key]["quarantine_count"] == scalar(hub, f"SELECT count(*) FROM lv2.{source}"), key
    assert loaded["hc/bbs_map"]["quarantine_count"] == 0
    assert all(e.passed for (key, name), e in checks(result).items() if key in tables and name != "quarantine_count")

    # the lounge map: every lounge, its position as lv2 rounded it, its hours, its date in UTC
    lounges = rows(hub, "SELECT l.name, h.name, l.latitude, h.latitude__c, l.opening_time, h.opening_time__c, "
                        "l.erp_updated_at, h.erp_updated_at__c FROM lv2.bbs_map l "
                        "JOIN salesforce.bbs_map__c h ON h.bf_external_id__c = l.external_id")
    assert len(lounges) == loaded["hc/bbs_map"]["rows_inserted"]
    for name, hc_name, latitude, hc_latitude, opening, hc_opening, local, utc in lounges:
        assert (hc_name, hc_latitude, hc_opening) == (name, float(latitude), opening)
        assert (local - utc).total_seconds() == 9 * 3600

    # a visit customer names its visit, its lounge, and its Account and Lead when it has them,
    # each through the relationship external-ID column, and each a record of the parent's table
    visitors = rows(hub, "SELECT h.exhibition_visit__r__bf_external_id__c, l.exhibition_visit_external_id, "
                         "h.lounge__r__bf_external_id__c, l.lounge_external_id, h.account__r__bf_external_id__c, "
                         "l.account_external_id, h.lead__r__bf_external_id__c, l.lead_external_id "
                         "FROM salesforce.exhibition_visit_customer__c h "
                         "JOIN lv2.exhibition_visit_customer l ON l.external_id = h.bf_external_id__c")
    assert visitors and all(hc == lv for row in visitors for hc, lv in zip(row[::2], row[1::2]))
    assert any(row[4] for row in visitors) and any(row[6] for row in visitors)
    assert scalar(hub, "SELECT count(*) FROM salesforce.exhibition_visit_customer__c c WHERE NOT EXISTS ("
                       "SELECT 1 FROM salesforce.exhibition_visit__c v "
                       "WHERE v.bf_external_id__c = c.exhibition_visit__r__bf_external_id__c)") == 0
    # a reservation customer is the person its Lead is made of, at the lounge it reserved
    people = rows(hub, "SELECT c.customer_name__c, c.mobile_phone__c, c.marketing_consent__c, l.lastname, "
                       "l.mobilephone, l.hasoptedoutofemail, c.lounge__r__bf_external_id__c, l.lounge_code__c "
                       "FROM salesforce.experience_reservation_customer__c c "
                       "JOIN salesforce.lead l ON l.bf_external_id__c = c.lead__r__bf_external_id__c")
    assert len(people) == loaded["hc/experience_reservation_customer"]["rows_inserted"]
    assert all((name, mobile, consent, lounge) == (last_name, lead_mobile, not opted_out, lead_lounge)
               for name, mobile, consent, last_name, lead_mobile, opted_out, lounge, lead_lounge in people)


def test_the_hc_assets_carry_their_legacy_dag_and_table():
    specs = {spec.key.to_user_string(): spec for spec in HC.specs if spec.key.path[0] == "hc"}
    # the step's one other asset: the Product2 edits made in Salesforce, back into lv1
    (sync_back,) = [spec for spec in HC.specs if spec.key.path[0] != "hc"]
    assert (sync_back.key.to_user_string(), sync_back.group_name) == ("lv1/product2_salesforce_edits", "lv1")
    assert {dep.asset_key.to_user_string() for dep in sync_back.deps} == {"hc/product2"}
    assert specs["hc/account"].metadata["dag_id"] == "lv1_dag_RENTAL.V_CUSTOMER"
    assert specs["hc/opportunity"].metadata["dag_id"] == "lv1_dag_RENTAL.R_ORDER_CONTRACT"
    assert specs["hc/product2"].metadata["dag_id"] == "lv1_dag_RENTAL.R_GOODS"
    assert specs["hc/service_receipt"].metadata["table"] == "salesforce.service_receipt__c"
    sql_specs = {spec.key.to_user_string(): spec for step in SQL_MODELS for spec in step.specs}
    for key, spec in specs.items():
        assert spec.group_name == "hc"
        lv2_key = key.replace("hc/", "lv2/")
        assert dg.AssetKey.from_user_string(lv2_key) in {dep.asset_key for dep in spec.deps}
        assert spec.metadata["dag_id"] == sql_specs[lv2_key].metadata["dag_id"]
    assert {dep.asset_key.to_user_string() for dep in specs["hc/opportunity"].deps} == {
        "lv2/opportunity", "hc/account", "hc/product2", "hc/promotion"
    }
    assert {(c.asset_key.to_user_string(), c.name, c.blocking) for c in HC.check_specs} >= {
        ("hc/account", "external_id_unique", True), ("hc/account", "quarantine_count", False)
    }
    defs = dg.Definitions(assets=[*LV0, *SQL_MODELS, HC], resources=DEV)
    node = defs.resolve_asset_graph().get(dg.AssetKey(["hc", "account"]))
    assert node.partitions_def is not None and node.backfill_policy == dg.BackfillPolicy.single_run()


def test_a_range_is_one_step_and_a_subset_loads_only_what_was_selected(platform):
    _, hub = platform
    tags = range_tags("2024-01-01", DAY)
    result = dg.materialize([*LV0, *SQL_MODELS, HC], tags=tags, resources=DEV,
                            selection=dg.AssetSelection.groups("lv1", "lv2", "hc"))
    assert result.success
    steps = {e.step_key for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_START}
    assert steps == {"lv1_models", "lv2_models", "hc_objects"}
    account = hc_metadata(result)["hc/account"]
    assert account["partitions"] == "2024-01-01...2024-01-03"
    assert account["partitions_read"] == "2023-12-31...2024-01-03"  # lv2.account's look-back day
    assert scalar(hub, "SELECT count(*) FROM salesforce.account") == scalar(hub, "SELECT count(*) FROM lv2.account")

    rows(hub, "UPDATE lv2.product2 SET name = name || '*'")  # every product changed in lv2
    only = dg.AssetSelection.assets(["hc", "opportunity"])
    subset = dg.materialize([*LV0, *SQL_MODELS, HC], partition_key=DAY, resources=DEV, selection=only)
    assert set(hc_metadata(subset)) == {"hc/opportunity"}
    assert hc_metadata(subset)["hc/opportunity"]["rows_written"] == 0
    assert scalar(hub, "SELECT count(*) FROM salesforce.product2 WHERE name LIKE '%*'") == 0


# -- Product2 edited in Salesforce, back into lv1 -------------------------------------------------
# The edit arrives in the hc table through Heroku Connect, is brought back into lv1 by the next
# run, and is not overwritten by the next lv2 -> hc loads until the ERP changes the same field
# (the old hc.func_hc_to_lv1_product).

EDITS = "lv1/product2_salesforce_edits"


def nightly_run() -> dict[str, dict]:
    result = chain()
    assert result.success
    return hc_metadata(result, layers=("hc", "lv1"))


def edits(hub) -> set[tuple]:
    return set(rows(hub, "SELECT external_id, field, column_name, sfid, salesforce_value, erp_value, "
                         "salesforce_modified_at FROM lv1.product2_salesforce_edits"))


def product2_log(hub, after: int) -> list[tuple]:
    return rows(hub, 'SELECT action, "values" FROM salesforce._trigger_log WHERE table_name = \'product2\' '
                     "AND id > :after ORDER BY id", after=after)


def last_log_id(hub) -> int:
    return scalar(hub, "SELECT coalesce(max(id), 0) FROM salesforce._trigger_log")


def test_the_product2_sync_back_is_downstream_of_hc_product2_and_the_graph_has_no_loop():
    defs = dg.Definitions(assets=[*LV0, *SQL_MODELS, HC], resources=DEV)
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey.from_user_string(EDITS))
    assert {p.to_user_string() for p in node.parent_keys} == {"hc/product2"}
    assert node.group_name == "lv1" and not node.child_keys
    assert graph.toposorted_asset_keys.index(node.key) > graph.toposorted_asset_keys.index(
        dg.AssetKey(["hc", "product2"]))


def test_a_product_edited_in_salesforce_reaches_lv1_and_survives_the_next_loads_until_the_erp_changes_it(platform):
    legacy_url, hub = platform
    first = nightly_run()
    assert first[EDITS]["dagster/row_count"] == 0
    assert first["hc/product2"]["rows_inserted"] == scalar(hub, "SELECT count(*) FROM lv2.product2") > 0
    assert first[EDITS]["salesforce_edits"] == 0 and edits(hub) == set()

    # In Salesforce, someone rewrites a product's description and deactivates it; Heroku Connect
    # writes the change into the hc table (new values, systemmodstamp, SYNCED, no _trigger_log).
    goods_cd, description = rows(
        hub, "SELECT external_id, description FROM lv2.product2 WHERE is_active "
             "AND description IS NOT NULL ORDER BY external_id LIMIT 1")[0]
    edited_at = dt.datetime(2024, 1, 3, 20, 30)  # UTC: 05:30 on 2024-01-04 in Seoul
    before = last_log_id(hub)
    engine = sa.create_engine(hub)
    with engine.begin() as conn:
        mapping = load_mapping()
        record_salesforce_change(conn, mapping.by_object("Product2"), mapping, "salesforce", goods_cd,
                                 {"sfid": "01t5g00000AbCdEAAV", "description": "세일즈포스에서 고친 설명",
                                  "isactive": False}, modified_at=edited_at)
    engine.dispose()
    assert product2_log(hub, before) == []

    # the next night: nothing written back to Salesforce, the edit is in lv1
    second = nightly_run()
    assert second["hc/product2"]["rows_written"] == 0
    assert product2_log(hub, before) == []
    assert rows(hub, "SELECT description, isactive FROM salesforce.product2 WHERE bf_external_id__c = :g",
                g=goods_cd) == [("세일즈포스에서 고친 설명", False)]
    kst = edited_at + dt.timedelta(hours=9)
    assert edits(hub) == {
        (goods_cd, "Description", "description", "01t5g00000AbCdEAAV", "세일즈포스에서 고친 설명", description, kst),
        (goods_cd, "IsActive", "is_active", "01t5g00000AbCdEAAV", "false", "true", kst),
    }
    assert second[EDITS]["salesforce_edits"] == 2 and second[EDITS]["records_edited_in_salesforce"] == 1
    # ... and the night after: still Salesforce's values, nothing written
    third = nightly_run()
    assert third["hc/product2"]["rows_written"] == 0 and third[EDITS]["rows_changed"] == 0
    assert product2_log(hub, before) == [] and len(edits(hub)) == 2

    # The ERP changes the description: the newer change wins that field, Salesforce keeps IsActive.
    rows(legacy_url, "UPDATE rental.r_goods SET goods_desc = '신형 모델 설명', updt_dt = '2024-01-03 23:00:00' "
                     "WHERE goods_cd = :g", g=goods_cd)
    reload_lv0("R_GOODS")
    fourth = nightly_run()
    assert fourth["hc/product2"]["rows_written"] == 1
    (action, values), = product2_log(hub, before)
    assert action == "UPDATE" and set(values) == {"description", "erp_updated_at__c"}
    assert values["description"] == "신형 모델 설명"
    assert rows(hub, "SELECT description, isactive FROM salesforce.product2 WHERE bf_external_id__c = :g",
                g=goods_cd) == [("신형 모델 설명", False)]
    assert {(e[1], e[4], e[5]) for e in edits(hub)} == {("IsActive", "false", "true")}
