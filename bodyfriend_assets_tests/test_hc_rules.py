"""Salesforce's rules, lookups that resolve, no stale records, and what Salesforce said, through
the hc load on hand-made lv2 tables (real PostgreSQL, the Heroku Connect stand-in).

The hc assets run here as the nightly step runs them (parents first, checks after each
object), over a small mapping of Account and Opportunity on lv2 tables the test writes."""

import json

import dagster as dg
import pytest
import sqlalchemy as sa

from bodyfriend_assets import lv2
from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.hc import HcLoadError, HerokuConnect, build_hc_assets, create_hc_tables, load_object, parse_mapping
from bodyfriend_assets.hc.tables import record_sync_result
from bodyfriend_assets.resources import DataHub
from bodyfriend_assets.transforms.functions import ensure_functions
from bodyfriend_assets.transforms.refresh import PartitionWindow
from bodyfriend_assets_tests.conftest import rows, scalar

CATALOG = load_catalog()
LV2 = {model.name: model for model in lv2.models}
DEV = {"datahub": DataHub(), "heroku_connect": HerokuConnect(mode="development")}
STAGES = ["주문접수", "렌탈중", "주문취소"]

# -- one rule per row ------------------------------------------------------------------------

RULES = parse_mapping({"objects": [{
    "object": "Account", "source": "account",
    "fields": [
        {"column": "name", "field": "Name", "type": "string", "length": 20, "required": True},
        {"column": "email", "field": "Email__c", "type": "email"},
        {"column": "phone", "field": "Phone", "type": "phone"},
        {"column": "website", "field": "Website", "type": "url"},
        {"column": "birthdate", "field": "Birthdate__c", "type": "date"},
        {"column": "erp_updated_at", "field": "ERP_Updated_At__c", "type": "datetime"},
        {"column": "total_rental_amount", "field": "Total_Rental_Amount__c", "type": "currency",
         "precision": 6, "scale": 2},
        {"column": "order_count", "field": "Order_Count__c", "type": "int", "precision": 3},
        {"column": "customer_status", "field": "Customer_Status__c", "type": "picklist", "values": ["정상", "휴면"]},
    ],
}]})

# external id -> (the lv2 change that breaks one rule, the field, the quarantine reason)
BROKEN = {
    "A01": ("email = 'not-an-email'", "Email__c", "not an e-mail address Salesforce accepts in Email__c"),
    "A02": ("email = 'kim@naver'", "Email__c", "not an e-mail address Salesforce accepts in Email__c"),
    "A03": ("phone = 'abc'", "Phone",
            "not a phone number in the org's format (010-1234-5678, 02-123-4567 or 1588-1234) in Phone"),
    "A04": ("phone = '12345'", "Phone",
            "not a phone number in the org's format (010-1234-5678, 02-123-4567 or 1588-1234) in Phone"),
    "A05": ("website = 'http://body friend.co.kr'", "Website", "a URL with spaces or control characters in Website"),
    "A06": ("birthdate = '9999-12-31'", "Birthdate__c",
            "outside Salesforce's range 1700-01-01 to 4000-12-31 for Birthdate__c (date)"),
    # 1700-01-01 00:00 in Seoul is 1699-12-31 15:00 UTC: before Salesforce's first instant
    "A07": ("erp_updated_at = '1700-01-01 00:00'", "ERP_Updated_At__c",
            "outside Salesforce's range 1700-01-01T00:00:00 to 4000-12-31T00:00:00 for ERP_Updated_At__c (datetime)"),
    "A08": ("total_rental_amount = 1.005", "Total_Rental_Amount__c",
            "more than 2 decimal places for Total_Rental_Amount__c (currency(6,2)) (Salesforce would round it)"),
    "A09": ("total_rental_amount = 10000", "Total_Rental_Amount__c",
            "number too large for Total_Rental_Amount__c (currency(6,2))"),
    "A10": ("order_count = 1.5", "Order_Count__c",
            "more than 0 decimal places for Order_Count__c (int(3,0)) (Salesforce would round it)"),
    "A11": ("customer_status = '탈퇴'", "Customer_Status__c", "not a value of the restricted picklist Customer_Status__c"),
    "A12": ("name = NULL", "Name", "required field Name (string(20)) is empty"),
    "A13": ("name = repeat('가', 21)", "Name", "value of 21 characters is too long for Name (string(20))"),
}


@pytest.fixture
def hub(platform_env):
    return platform_env[1]


def create_tables(hub, mapping) -> None:
    engine = sa.create_engine(hub)
    try:
        create_hc_tables(engine, "salesforce", mapping=mapping, stand_in=True)
    finally:
        engine.dispose()


def _load(hub, mapping, obj_name: str, run_id: str, day: str = "2024-01-03"):
    obj = mapping.by_object(obj_name)
    engine = sa.create_engine(hub)
    try:
        with engine.connect() as conn:
            return load_object(conn, obj, LV2[obj.source], mapping, schema="salesforce", run_id=run_id,
                               window=PartitionWindow(day, day))
    finally:
        engine.dispose()


def test_each_salesforce_rule_quarantines_its_row_with_the_reason_and_the_record_keeps_its_values(hub):
    rows(hub, "CREATE SCHEMA lv2")
    rows(hub, "CREATE TABLE lv2.account (external_id text, name text, email text, phone text, website text, "
              "birthdate date, erp_updated_at timestamp, total_rental_amount numeric, order_count numeric, "
              "customer_status text, _partition date)")
    rows(hub, "INSERT INTO lv2.account SELECT 'A' || lpad(i::text, 2, '0'), '고객' || i, 'kim' || i || '@naver.com', "
              "'010-1234-5678', 'https://www.bodyfriend.co.kr', '1980-01-01', '2024-01-03 09:00', 100.5, 3, '정상', "
              "'2024-01-03' FROM generate_series(1, 15) AS i")
    # representative numbers and area codes are phones; 1900-01-01 00:00 KST is 1899-12-31 15:00 UTC
    rows(hub, "UPDATE lv2.account SET phone = '1588-1234', erp_updated_at = '1900-01-01 00:00' WHERE external_id = 'A14'")
    rows(hub, "UPDATE lv2.account SET phone = '02-123-4567', email = 'o''neil.k+1@mail.bodyfriend.co.kr' "
              "WHERE external_id = 'A15'")
    create_tables(hub, RULES)
    first = _load(hub, RULES, "Account", "run-1")
    assert (first.rows_inserted, first.rows_quarantined) == (15, 0)
    assert rows(hub, "SELECT erp_updated_at__c::text, phone FROM salesforce.account WHERE bf_external_id__c = 'A14'") == [
        ("1899-12-31 15:00:00", "1588-1234")]

    for external_id, (change, _, _) in BROKEN.items():
        rows(hub, f"UPDATE lv2.account SET {change} WHERE external_id = :e", e=external_id)
    before = rows(hub, "SELECT * FROM salesforce.account ORDER BY id")
    second = _load(hub, RULES, "Account", "run-2")

    assert (second.rows_quarantined, second.rows_written) == (len(BROKEN), 0)
    recorded = rows(hub, "SELECT external_id, field, reason FROM hc_meta.quarantine WHERE run_id = 'run-2' ORDER BY 1")
    assert recorded == [(e, field, reason) for e, (_, field, reason) in sorted(BROKEN.items())]
    # not written: every record keeps its previous values; a phone 'abc' never clears the phone
    assert rows(hub, "SELECT * FROM salesforce.account ORDER BY id") == before
    assert rows(hub, "SELECT phone FROM salesforce.account WHERE bf_external_id__c = 'A03'") == [("010-1234-5678",)]
    assert scalar(hub, "SELECT count(*) FROM salesforce._trigger_log WHERE action <> 'INSERT'") == 0
    assert scalar(hub, "SELECT count(*) FROM hc_meta.held") == len(BROKEN)

    # fixed in lv2 without a new _partition (outside a later run's window): the held rows are
    # considered again, and the fixed ones pass
    rows(hub, "UPDATE lv2.account SET email = 'kim@naver.com' WHERE external_id IN ('A01', 'A02')")
    third = _load(hub, RULES, "Account", "run-3", day="2024-01-10")
    assert third.rows_updated == 2 and third.rows_quarantined == len(BROKEN) - 2
    assert scalar(hub, "SELECT count(*) FROM hc_meta.held WHERE external_id IN ('A01', 'A02')") == 0


def test_the_lv1_phone_rule_keeps_what_is_not_a_phone_so_hc_refuses_it(datahub_url):
    engine = sa.create_engine(datahub_url)
    try:
        with engine.begin() as conn:
            ensure_functions(conn)
            values = conn.execute(sa.text(
                "SELECT lv1.phone_number(v) FROM unnest(ARRAY['abc', '010 1234 5678', '15881234', '12345', NULL]) AS v"
            )).scalars().all()
    finally:
        engine.dispose()
    assert values == ["abc", "010-1234-5678", "1588-1234", "12345", None]


# -- lookups, moves and deletes through the hc step ------------------------------------------------

SMALL = parse_mapping({"objects": [
    {"object": "Account", "source": "account", "fields": [
        {"column": "name", "field": "Name", "type": "string", "length": 80, "required": True},
        {"column": "email", "field": "Email__c", "type": "email"},
    ]},
    {"object": "Opportunity", "source": "opportunity", "fields": [
        {"column": "name", "field": "Name", "type": "string", "length": 120, "required": True},
        {"column": "stage_name", "field": "StageName", "type": "picklist", "required": True, "values": STAGES},
    ], "lookups": [{"column": "account_external_id", "field": "AccountId", "object": "Account"}]},
]})
HC = build_hc_assets(CATALOG, mapping=SMALL)


@pytest.fixture
def small(hub):
    rows(hub, "CREATE SCHEMA lv2")
    rows(hub, "CREATE TABLE lv2.account (external_id text PRIMARY KEY, name text, email text, _partition date)")
    rows(hub, "CREATE TABLE lv2.opportunity (external_id text PRIMARY KEY, name text, stage_name text, "
              "account_external_id text, _partition date)")
    return hub


def run_hc(day: str):
    result = dg.materialize([HC], partition_key=day, resources=DEV, raise_on_error=False)
    assert result.success
    loaded = {e.asset_key.path[1]: {k: v.value for k, v in e.materialization.metadata.items()}
              for e in result.get_asset_materialization_events()}
    checks = {(e.asset_key.path[1], e.check_name): e for e in result.get_asset_check_evaluations()}
    return loaded, checks


def accounts(hub, *values):
    for external_id, email, day in values:
        rows(hub, "INSERT INTO lv2.account VALUES (:e, '고객 ' || :e, :m, :d) ON CONFLICT (external_id) DO UPDATE "
                  "SET email = excluded.email, _partition = excluded._partition", e=external_id, m=email, d=day)


def opportunity(hub, external_id, account, day):
    rows(hub, "INSERT INTO lv2.opportunity VALUES (:e, '계약 ' || :e, '렌탈중', :a, :d) ON CONFLICT (external_id) "
              "DO UPDATE SET account_external_id = excluded.account_external_id, _partition = excluded._partition",
         e=external_id, a=account, d=day)


def hc_opportunities(hub) -> dict:
    return dict(rows(hub, "SELECT bf_external_id__c, account__r__bf_external_id__c FROM salesforce.opportunity"))


def reasons(hub, object_name: str) -> dict:
    return {e: r for e, r in rows(hub, "SELECT external_id, reason FROM hc_meta.quarantine WHERE object = :o "
                                       "ORDER BY id", o=object_name)}


def test_a_child_waits_for_a_missing_or_quarantined_parent_and_is_written_on_the_run_that_brings_it(small):
    hub = small
    accounts(hub, ("C1", "kim@naver.com", "2024-01-03"), ("C3", "not-an-email", "2024-01-03"))
    opportunity(hub, "O1", "C1", "2024-01-03")  # parent in the same load: written after it
    opportunity(hub, "O2", "C2", "2024-01-03")  # parent not in lv2 yet
    opportunity(hub, "O3", "C3", "2024-01-03")  # parent quarantined
    loaded, checks = run_hc("2024-01-03")
    assert hc_opportunities(hub) == {"O1": "C1"}
    assert loaded["opportunity"]["quarantined_parent_missing"] == 1
    assert loaded["opportunity"]["quarantined_parent_quarantined"] == 1
    assert reasons(hub, "Opportunity") == {"O2": "parent Account C2 is not in hc",
                                           "O3": "parent Account C3 is quarantined, not in hc yet"}
    assert checks[("opportunity", "lookups_resolve")].passed
    # Salesforce saw no child pointing at nothing: only the account C1 and O1 were logged
    assert rows(hub, "SELECT table_name, action FROM salesforce._trigger_log ORDER BY id") == [
        ("account", "INSERT"), ("opportunity", "INSERT")]

    # a later night brings C2 and a fixed C3; the opportunities themselves did not change (their
    # day is outside this run's window): they are written because they were held back
    accounts(hub, ("C2", None, "2024-01-10"), ("C3", "lee@naver.com", "2024-01-10"))
    loaded, checks = run_hc("2024-01-10")
    assert hc_opportunities(hub) == {"O1": "C1", "O2": "C2", "O3": "C3"}
    assert loaded["opportunity"]["rows_inserted"] == 2 and loaded["opportunity"]["quarantine_count"] == 0
    assert scalar(hub, "SELECT count(*) FROM hc_meta.held") == 0
    assert all(e.passed for e in checks.values())


def test_an_opportunity_moves_to_its_new_account_and_waits_under_the_old_one_for_a_missing_one(small):
    hub = small
    accounts(hub, ("C1", None, "2024-01-03"), ("C2", None, "2024-01-03"))
    opportunity(hub, "O1", "C1", "2024-01-03")
    run_hc("2024-01-03")

    opportunity(hub, "O1", "C2", "2024-01-04")  # the contract moved to another customer
    loaded, _ = run_hc("2024-01-04")
    assert hc_opportunities(hub) == {"O1": "C2"} and loaded["opportunity"]["rows_updated"] == 1
    assert rows(hub, "SELECT action, \"values\"->>'account__r__bf_external_id__c' FROM salesforce._trigger_log "
                     "WHERE table_name = 'opportunity' ORDER BY id") == [("INSERT", "C1"), ("UPDATE", "C2")]

    opportunity(hub, "O1", "C9", "2024-01-05")  # ... to a customer not in hc: kept under C2, quarantined
    loaded, checks = run_hc("2024-01-05")
    assert hc_opportunities(hub) == {"O1": "C2"} and loaded["opportunity"]["rows_written"] == 0
    assert reasons(hub, "Opportunity") == {"O1": "parent Account C9 is not in hc"}
    assert not checks[("opportunity", "quarantine_count")].passed

    accounts(hub, ("C9", None, "2024-01-06"))  # C9 arrives: the opportunity moves on that run
    run_hc("2024-01-06")
    assert hc_opportunities(hub) == {"O1": "C9"}


def test_a_record_whose_lv2_row_disappears_is_deleted_and_a_parent_waits_for_its_children(small):
    hub = small
    accounts(hub, ("C1", None, "2024-01-03"), ("C2", None, "2024-01-03"), ("C3", None, "2024-01-03"))
    opportunity(hub, "O1", "C1", "2024-01-03")
    opportunity(hub, "O2", "C2", "2024-01-03")
    run_hc("2024-01-03")
    # a record created in Salesforce, synced down without an external id: never deleted
    rows(hub, "INSERT INTO salesforce.account (sfid, name) VALUES ('001000000000001AAA', 'Salesforce 고객')")

    rows(hub, "DELETE FROM lv2.account WHERE external_id IN ('C1', 'C2', 'C3')")
    rows(hub, "DELETE FROM lv2.opportunity WHERE external_id = 'O1'")  # O2 stays in the ERP
    loaded, checks = run_hc("2024-01-04")
    # C3 had no children: deleted. C1's child O1 is deleted in the same run (after it), so C1
    # waits one night; C2's child O2 is still in the ERP, so C2 waits until O2 goes or moves.
    assert loaded["account"]["rows_deleted"] == 1 and loaded["account"]["rows_delete_waiting"] == 2
    assert loaded["opportunity"]["rows_deleted"] == 1
    assert rows(hub, "SELECT bf_external_id__c FROM salesforce.account ORDER BY 1 NULLS FIRST") == [
        (None,), ("C1",), ("C2",)]
    assert hc_opportunities(hub) == {"O2": "C2"}
    assert set(reasons(hub, "Account")) == {"C1", "C2"}
    assert "Opportunity records in hc still look it up" in reasons(hub, "Account")["C2"]
    assert not checks[("account", "quarantine_count")].passed
    assert rows(hub, "SELECT old->>'bf_external_id__c' FROM salesforce._trigger_log WHERE action = 'DELETE' "
                     "ORDER BY id") == [("C3",), ("O1",)]

    loaded, _ = run_hc("2024-01-05")  # the next night: C1 has no child left
    assert loaded["account"]["rows_deleted"] == 1 and loaded["account"]["rows_delete_waiting"] == 1
    assert rows(hub, "SELECT bf_external_id__c FROM salesforce.account ORDER BY 1 NULLS FIRST") == [(None,), ("C2",)]


def test_a_load_that_would_delete_most_of_the_table_stops_and_deletes_nothing(small):
    hub = small
    rows(hub, "INSERT INTO lv2.account SELECT 'C' || i, '고객', NULL, '2024-01-03' FROM generate_series(1, 150) AS i")
    create_tables(hub, SMALL)
    _load(hub, SMALL, "Account", "run-1")
    rows(hub, "TRUNCATE lv2.account")  # an lv2 model rebuilt empty, not an ERP that lost its customers
    with pytest.raises(HcLoadError, match=r"Account \(salesforce.account\): 150 of 150 records have no lv2.account row"):
        _load(hub, SMALL, "Account", "run-2")
    assert scalar(hub, "SELECT count(*) FROM salesforce.account") == 150
    assert scalar(hub, "SELECT count(*) FROM salesforce._trigger_log WHERE action = 'DELETE'") == 0


# -- what Salesforce said --------------------------------------------------------------------------


def test_a_refusal_heroku_connect_writes_back_is_reported_by_the_check_without_customer_values(small):
    hub = small
    accounts(hub, ("C1", "kim1234@naver.com", "2024-01-03"), ("C2", None, "2024-01-03"))
    opportunity(hub, "O1", "C1", "2024-01-03")
    _, checks = run_hc("2024-01-03")
    assert checks[("account", "salesforce_errors")].passed

    engine = sa.create_engine(hub)
    with engine.begin() as conn:
        record_sync_result(conn, SMALL.by_object("Account"), SMALL, "salesforce", "C2")
        record_sync_result(conn, SMALL.by_object("Account"), SMALL, "salesforce", "C1", operation="INSERT",
                           error="DUPLICATES_DETECTED: Email__c: duplicate of an existing account kim1234@naver.com")
    engine.dispose()
    assert rows(hub, "SELECT bf_external_id__c, _hc_lastop, _hc_err FROM salesforce.account ORDER BY 1")[0][:2] == (
        "C1", "FAILED")
    assert rows(hub, "SELECT state, sf_message IS NOT NULL FROM salesforce._trigger_log WHERE table_name = 'account' "
                     "ORDER BY id") == [("FAILED", True), ("SUCCESS", False)]

    _, checks = run_hc("2024-01-03")
    refused = checks[("account", "salesforce_errors")]
    assert not refused.passed and refused.severity == dg.AssetCheckSeverity.WARN
    assert refused.metadata["refused_by_salesforce"].value == 1
    example = refused.metadata["examples"].value
    assert example == "C1: INSERT Email__c: DUPLICATES_DETECTED: Email__c: duplicate of an existing account <value>"
    assert "kim1234" not in json.dumps({k: str(v.value) for k, v in refused.metadata.items()})
    assert checks[("opportunity", "salesforce_errors")].passed


def test_a_lookup_to_a_record_gone_from_hc_fails_the_blocking_check(small):
    hub = small
    accounts(hub, ("C1", None, "2024-01-03"))
    opportunity(hub, "O1", "C1", "2024-01-03")
    run_hc("2024-01-03")
    rows(hub, "DELETE FROM lv2.account")
    rows(hub, "DELETE FROM salesforce.account")  # removed behind the platform's back
    result = dg.materialize([HC], partition_key="2024-01-03", resources=DEV, raise_on_error=False)
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == "lookups_resolve"]
    assert not evaluation.passed
    assert evaluation.metadata["examples"].value == "O1: AccountId -> C1 (not in hc)"
    spec = next(s for s in HC.check_specs if s.name == "lookups_resolve")
    assert spec.blocking
