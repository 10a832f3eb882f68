"""The hc tables' shape, the Heroku Connect stand-in, the production check, the mapping's
validation and the load's rules, on fresh PostgreSQL databases (no ERP data needed)."""

import dagster as dg
import pytest
import sqlalchemy as sa

from bodyfriend_assets import lv2
from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.hc import (
    HcMappingError,
    HcSchemaError,
    HerokuConnect,
    build_hc_assets,
    create_hc_tables,
    load_mapping,
    load_object,
    parse_mapping,
    verify_hc_tables,
)
from bodyfriend_assets.hc.mapping import check_against_models
from bodyfriend_assets.resources import DataHub
from bodyfriend_assets.table_metadata import column_types, regclass
from bodyfriend_assets.transforms.refresh import PartitionWindow

CATALOG = load_catalog()
LV2 = {model.name: model for model in lv2.models}


def fetch(engine, sql: str, **params) -> list:
    with engine.begin() as conn:
        result = conn.execute(sa.text(sql), params)
        return result.all() if result.returns_rows else []


def log(engine, schema: str = "salesforce") -> list:
    table = sa.table("_trigger_log", sa.column("id"), sa.column("action"), sa.column("state"),
                     sa.column("table_name"), sa.column("values"), schema=schema)
    with engine.connect() as conn:
        return conn.execute(
            sa.select(table.c.action, table.c.state, table.c.table_name, table.c["values"]).order_by(table.c.id)
        ).all()


def failure_message(result) -> str:
    failures = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failures
    return failures[0].step_failure_data.error.to_string()


# -- shape and stand-in --------------------------------------------------------------------------


def test_create_hc_tables_gives_the_heroku_connect_shape_in_the_chosen_schema(hub):
    created = create_hc_tables(hub, "sf_dev")
    assert "sf_dev.account" in created and "sf_dev.service_receipt__c" in created
    assert create_hc_tables(hub, "sf_dev") == []  # idempotent
    columns = dict(fetch(hub, "SELECT column_name, format_type(a.atttypid, a.atttypmod) FROM information_schema.columns c "
                              "JOIN pg_attribute a ON a.attrelid = 'sf_dev.account'::regclass AND a.attname = c.column_name "
                              "WHERE table_schema = 'sf_dev' AND table_name = 'account'"))
    assert {k: columns[k] for k in ("id", "sfid", "systemmodstamp", "createddate", "isdeleted", "_hc_lastop", "_hc_err")} == {
        "id": "integer", "sfid": "character varying(18)", "systemmodstamp": "timestamp without time zone",
        "createddate": "timestamp without time zone", "isdeleted": "boolean",
        "_hc_lastop": "character varying(32)", "_hc_err": "text",
    }
    assert columns["name"] == "character varying(255)" and columns["billingstreet"] == "character varying(255)"
    assert columns["bf_external_id__c"] == "character varying(255)"
    assert columns["total_rental_amount__c"] == "double precision"
    assert columns["erp_updated_at__c"] == "timestamp without time zone"
    assert "nextval" in fetch(hub, "SELECT column_default FROM information_schema.columns WHERE table_schema = 'sf_dev' "
                                   "AND table_name = 'account' AND column_name = 'id'")[0][0]
    opportunity = {c for (c,) in fetch(hub, "SELECT column_name FROM information_schema.columns "
                                            "WHERE table_schema = 'sf_dev' AND table_name = 'opportunity'")}
    assert {"accountid", "account__r__bf_external_id__c", "product__r__bf_external_id__c"} <= opportunity
    unique = {name for (name,) in fetch(hub, "SELECT indexname FROM pg_indexes WHERE schemaname = 'sf_dev' "
                                             "AND tablename = 'account' AND indexdef LIKE 'CREATE UNIQUE%'")}
    assert unique >= {"hcu_idx_account_bf_external_id__c", "hcu_idx_account_sfid"}
    # no stand-in unless asked for
    assert fetch(hub, "SELECT to_regclass('sf_dev._trigger_log')") == [(None,)]
    assert fetch(hub, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'sf_dev.account'::regclass") == [(0,)]


def test_the_stand_in_logs_like_heroku_connect(hub):
    create_hc_tables(hub, "salesforce", stand_in=True)
    fetch(hub, "INSERT INTO salesforce.product2 (bf_external_id__c, name, isactive) VALUES ('G1', 'A', true)")
    fetch(hub, "UPDATE salesforce.product2 SET name = 'A'")  # no real change
    fetch(hub, "UPDATE salesforce.product2 SET name = 'B', _hc_lastop = 'SYNCED'")
    fetch(hub, "TRUNCATE salesforce.product2")  # not captured, as in Heroku Connect
    fetch(hub, "INSERT INTO salesforce.product2 (bf_external_id__c, name) VALUES ('G2', 'C')")
    fetch(hub, "DELETE FROM salesforce.product2")
    entries = log(hub)
    assert [(a, s, t) for a, s, t, _ in entries] == [
        ("INSERT", "NEW", "product2"), ("UPDATE", "IGNORE", "product2"), ("UPDATE", "NEW", "product2"),
        ("INSERT", "NEW", "product2"), ("DELETE", "NEW", "product2"),
    ]
    assert entries[0][3]["bf_external_id__c"] == "G1" and entries[0][3]["name"] == "A" and "id" in entries[0][3]
    assert entries[1][3] == {} and entries[2][3] == {"name": "B"}


# -- production ---------------------------------------------------------------------------------


def test_production_mode_never_creates_tables_and_fails_naming_object_and_column(hub):
    hc = build_hc_assets(CATALOG)
    resources = {"datahub": DataHub(), "heroku_connect": HerokuConnect()}  # auto: a configured Data Hub
    assert HerokuConnect().resolved_mode(DataHub()) == "production"
    only = dg.AssetSelection.assets(["hc", "account"])
    result = dg.materialize([hc], partition_key="2024-01-03", resources=resources, selection=only, raise_on_error=False)
    assert not result.success
    assert "Account: table salesforce.account does not exist" in failure_message(result)
    assert fetch(hub, "SELECT to_regnamespace('salesforce')") == [(None,)]

    # Heroku Connect's tables, one field not mapped there
    create_hc_tables(hub, "salesforce")
    fetch(hub, "ALTER TABLE salesforce.account DROP COLUMN billingstreet")
    fetch(hub, "DROP INDEX salesforce.hcu_idx_opportunity_bf_external_id__c")
    result = dg.materialize([hc], partition_key="2024-01-03", resources=resources, selection=only, raise_on_error=False)
    message = failure_message(result)
    assert "Account: column salesforce.account.billingstreet does not exist" in message
    assert "opportunity" not in message  # only the selected objects are checked
    assert fetch(hub, "SELECT to_regclass('salesforce._trigger_log')") == [(None,)]
    assert fetch(hub, "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'salesforce.account'::regclass") == [(0,)]

    mapping = load_mapping()
    with hub.connect() as conn, pytest.raises(HcSchemaError) as raised:
        verify_hc_tables(conn, "salesforce", list(mapping.objects), mapping)
    assert "Opportunity: external-ID column salesforce.opportunity.bf_external_id__c has no unique index" in str(raised.value)
    assert "billingstreet" in str(raised.value)


def test_a_data_hub_given_by_url_alone_is_production_and_its_hc_tables_are_never_created(hub, monkeypatch):
    """``DataHub(url=...)`` in a deployment's code, with no BODYFRIEND_DATAHUB_URL: auto mode must
    not take it for the embedded development hub and create Heroku Connect's tables in it."""
    url = hub.url.render_as_string(hide_password=False)
    monkeypatch.delenv("BODYFRIEND_DATAHUB_URL")
    monkeypatch.delenv("BODYFRIEND_HC_MODE", raising=False)
    assert HerokuConnect().resolved_mode(DataHub()) == "development"  # the embedded hub
    assert HerokuConnect().resolved_mode(DataHub(url=url)) == "production"
    resources = {"datahub": DataHub(url=url), "heroku_connect": HerokuConnect()}
    only = dg.AssetSelection.assets(["hc", "account"])
    result = dg.materialize([build_hc_assets(CATALOG)], partition_key="2024-01-03", resources=resources,
                            selection=only, raise_on_error=False)
    assert not result.success
    assert "Account: table salesforce.account does not exist" in failure_message(result)
    assert fetch(hub, "SELECT to_regnamespace('salesforce')") == [(None,)]


# -- the load's rules, on a hand-made lv2 table ----------------------------------------------------

SMALL = {
    "objects": [{
        "object": "Product2", "source": "product2", "delete_column": "_delete",
        "fields": [
            {"column": "name", "field": "Name", "type": "string", "length": 10, "required": True},
            {"column": "family", "field": "Family", "type": "picklist", "values": ["안마의자", "정수기"]},
            {"column": "list_price", "field": "List_Price__c", "type": "currency", "precision": 5, "scale": 2},
            {"column": "is_active", "field": "IsActive", "type": "boolean"},
            {"column": "erp_updated_at", "field": "ERP_Updated_At__c", "type": "datetime"},
        ],
    }],
}


def test_required_picklist_and_number_rules_quarantine_and_an_explicit_delete_deletes(hub):
    mapping = parse_mapping(SMALL)
    (obj,) = mapping.objects
    fetch(hub, "CREATE SCHEMA lv2")
    fetch(hub, "CREATE TABLE lv2.product2 (external_id text, name text, family text, list_price numeric(15,2), "
               "is_active boolean, erp_updated_at timestamp, _delete boolean)")
    fetch(hub, "INSERT INTO lv2.product2 VALUES "
               "('G1', '좋은의자', '안마의자', 100, NULL, '2024-01-03 09:00', false), "
               "('G2', '정수기', '정수기', 999.99, true, NULL, NULL), "
               "('G3', NULL, '안마의자', 1, true, NULL, false), "  # required Name empty
               "('G4', '의자', '침대', 1, true, NULL, false), "  # not in the restricted picklist
               "('G5', '의자', NULL, 1000, true, NULL, false)")  # too large for currency(5,2)
    create_hc_tables(hub, "salesforce", mapping=mapping, stand_in=True)

    def load(run_id):
        with hub.connect() as conn:
            return load_object(conn, obj, LV2["product2"], mapping, schema="salesforce", run_id=run_id,
                               window=PartitionWindow("2024-01-03", "2024-01-03"))

    first = load("run-1")
    assert (first.rows_read, first.rows_inserted, first.rows_quarantined) == (5, 2, 3)
    assert first.violations == {"required": 1, "not_in_picklist": 1, "number_too_large": 1}
    assert fetch(hub, "SELECT external_id, field, reason FROM hc_meta.quarantine ORDER BY external_id") == [
        ("G3", "Name", "required field Name (string(10)) is empty"),
        ("G4", "Family", "not a value of the restricted picklist Family"),
        ("G5", "List_Price__c", "number too large for List_Price__c (currency(5,2))"),
    ]
    assert fetch(hub, "SELECT bf_external_id__c, isactive, erp_updated_at__c::text FROM salesforce.product2 "
                      "ORDER BY 1") == [("G1", False, "2024-01-03 00:00:00"), ("G2", True, None)]

    fetch(hub, "UPDATE lv2.product2 SET _delete = true WHERE external_id = 'G2'")
    second = load("run-2")
    assert (second.rows_inserted, second.rows_updated, second.rows_deleted) == (0, 0, 1)
    assert [r[0] for r in fetch(hub, "SELECT bf_external_id__c FROM salesforce.product2")] == ["G1"]
    assert [(a, s) for a, s, _, _ in log(hub)] == [("INSERT", "NEW"), ("INSERT", "NEW"), ("DELETE", "NEW")]


# -- the mapping ---------------------------------------------------------------------------------


def test_every_lv2_model_is_mapped_and_every_mapped_column_exists():
    mapping = load_mapping()
    assert {obj.source for obj in mapping.objects} == set(LV2)
    assert set(check_against_models(mapping, lv2.models)) == {obj.object for obj in mapping.objects}
    order = [obj.object for obj in mapping.ordered()]
    for obj in mapping.objects:
        for parent in obj.parents:
            assert order.index(parent) < order.index(obj.object)
    account = mapping.by_object("Account")
    assert account.table == "account" and account.external_id_column == "bf_external_id__c"
    assert {f.hc_column for f in account.fields} >= {"name", "phone", "billingstreet"}


@pytest.mark.parametrize(
    "change, expected",
    [
        ({"type": "string", "length": None}, "hc object #1 (Product2): fields[0] (Name): Name: a string field needs a length"),
        ({"type": "text"}, "hc object #1 (Product2): fields[0] (Name).type: Input should be"),
        ({"values": ["a"]}, "fields[0] (Name): Name: only a picklist has values"),
        ({"field": "Bad Name"}, "fields[0] (Bad Name).field: 'Bad Name' is not a Salesforce API name"),
    ],
)
def test_a_bad_mapping_entry_fails_naming_object_and_field(change, expected):
    document = {"objects": [{"object": "Product2", "source": "product2", "fields": [
        {"column": "name", "field": "Name", "type": "string", "length": 255, **change},
    ]}]}
    document["objects"][0]["fields"][0] = {k: v for k, v in document["objects"][0]["fields"][0].items() if v is not None}
    with pytest.raises(HcMappingError) as raised:
        parse_mapping(document)
    assert expected in str(raised.value)


def test_a_mapping_naming_an_unknown_lv2_column_or_object_fails():
    document = {"objects": [{"object": "Product2", "source": "product2", "fields": [
        {"column": "nmae", "field": "Name", "type": "string", "length": 255}]}]}
    with pytest.raises(HcMappingError, match=r"hc object Product2: lv2.product2 \(lv2/product2.sql\) returns no column nmae"):
        check_against_models(parse_mapping(document), lv2.models)
    document["objects"][0]["lookups"] = [{"column": "account_external_id", "field": "Account__c", "object": "Account"}]
    with pytest.raises(HcMappingError, match="Product2.Account__c: looks up Account, which is not mapped"):
        parse_mapping(document)


def test_the_column_lookup_quotes_the_table_name_and_finds_no_columns_of_a_missing_table(hub):
    with hub.begin() as conn:
        conn.exec_driver_sql('CREATE SCHEMA "Odd Schema"')
        conn.exec_driver_sql('CREATE TABLE "Odd Schema"."Account.Name" (id integer, "Name" varchar(20))')
        conn.exec_driver_sql('CREATE TABLE "Odd Schema".account (other text)')  # what a lower-cased name finds
        assert column_types(conn, "Odd Schema", "Account.Name") == {"id": "integer", "Name": "character varying(20)"}
        assert column_types(conn, "Odd Schema", "missing") == {}
        assert conn.execute(sa.select(regclass(conn, "Odd Schema", "missing"))).scalar() is None
