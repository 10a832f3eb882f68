"""Deletes reach lv1 and lv2, and a model's completeness check tells a lost row from a changed one.

lv0 is loaded from the demo stand-in once per module; each test works on copies. A row deleted
from lv0 (as the lv0 load does for a row deleted at the source) leaves every model built from it
in the next run, whatever day it was filed under.
"""

import dagster as dg
import pytest
import sqlalchemy as sa

from bodyfriend_assets import lv1, lv2
from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.lv0 import lv0_assets
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets.lv1ex import lv1ex_assets
from bodyfriend_assets.transforms import build_model_steps
from bodyfriend_assets.transforms.assets import model_key
from bodyfriend_assets.transforms.checks import COMPLETE_CHECK, evaluate_completeness_check
from bodyfriend_assets.transforms.refresh import PartitionWindow
from bodyfriend_assets_tests.chain import copy_database, lv0_template, range_tags
from bodyfriend_assets_tests.conftest import point_platform_at, rows, scalar

RESOURCES = {"legacy": LegacyDatabase(), "datahub": DataHub()}
CATALOG = load_catalog()
LV0 = lv0_assets(CATALOG)
MODELS = {m.qualified_name: m for m in [*lv1.models, *lv2.models]}
SQL_MODELS = build_model_steps(MODELS.values(), upstream=LV0, catalog=CATALOG, lv2_upstream=lv1ex_assets(CATALOG))
REFINED = dg.AssetSelection.groups("lv1", "lv2")


@pytest.fixture(scope="module")
def template(make_database):
    return lv0_template(make_database, LV0, RESOURCES, rows=600, days=5, last_day="2024-01-05")


@pytest.fixture
def hub(template, monkeypatch):
    """A copy of the Data Hub with lv1 and lv2 built for 2024-01-01..05 (one run)."""
    legacy_url, datahub_url = (copy_database(url) for url in template)
    point_platform_at(monkeypatch, legacy_url, datahub_url)
    assert refine(tags=range_tags("2024-01-01", "2024-01-05")).success
    return datahub_url


def refine(partition=None, *, tags=None):
    return dg.materialize(
        [*LV0, *SQL_MODELS], partition_key=partition, tags=tags, resources=RESOURCES, selection=REFINED
    )


def deleted_counts(result) -> dict[str, int]:
    return {
        e.asset_key.to_user_string(): e.materialization.metadata["rows_deleted"].value
        for e in result.get_asset_materialization_events()
        if "rows_deleted" in e.materialization.metadata
    }


def keys(url, sql: str, **params) -> set:
    return {row[0] for row in rows(url, sql, **params)}


def test_rows_deleted_from_lv0_leave_lv1_and_lv2_in_the_next_run_old_and_new(hub):
    old, new = (
        rows(hub, "SELECT order_no FROM lv1.r_order_contract WHERE _partition = :p "
                  "AND order_no IN (SELECT external_id FROM lv2.opportunity) ORDER BY order_no LIMIT 1", p=day)[0][0]
        for day in ("2024-01-01", "2024-01-05")
    )
    shipping = rows(hub, "SELECT shipping_no FROM lv1.r_shipping_info WHERE _partition = '2024-01-02' LIMIT 1")[0][0]
    before = {t: scalar(hub, f"SELECT count(*) FROM {t}") for t in ("lv1.r_order_contract", "lv2.opportunity", "lv2.shipping_info")}
    rows(hub, "DELETE FROM lv0.r_order_contract WHERE btrim(order_no) IN (:a, :b)", a=old, b=new)
    rows(hub, "DELETE FROM lv0.r_shipping_info WHERE btrim(shipping_no) = :s", s=shipping)

    result = refine("2024-01-05")  # the next night's run, whatever day the rows were filed under
    assert result.success
    assert not {old, new} & keys(hub, "SELECT order_no FROM lv1.r_order_contract")
    assert not {old, new} & keys(hub, "SELECT external_id FROM lv2.opportunity")
    assert shipping not in keys(hub, "SELECT external_id FROM lv2.shipping_info")
    assert shipping not in keys(hub, "SELECT shipping_no FROM lv1.r_shipping_info")
    counts = deleted_counts(result)
    assert counts["lv1/r_order_contract"] == counts["lv2/opportunity"] == 2
    assert counts["lv1/r_shipping_info"] == counts["lv2/shipping_info"] == 1
    assert scalar(hub, "SELECT count(*) FROM lv1.r_order_contract") == before["lv1.r_order_contract"] - 2
    assert scalar(hub, "SELECT count(*) FROM lv2.opportunity") == before["lv2.opportunity"] - 2
    assert scalar(hub, "SELECT count(*) FROM lv2.shipping_info") == before["lv2.shipping_info"] - 1
    # Re-running deletes nothing more.
    assert set(deleted_counts(refine("2024-01-05")).values()) == {0}


def test_a_deleted_customer_takes_its_account_and_opportunities_out_of_lv2_but_not_its_contracts(hub):
    (customer,) = rows(
        hub, "SELECT account_external_id FROM lv2.opportunity GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1"
    )[0]
    contracts = keys(hub, "SELECT order_no FROM lv1.r_order_contract WHERE cust_no = :c", c=customer)
    opportunities = keys(hub, "SELECT external_id FROM lv2.opportunity WHERE account_external_id = :c", c=customer)
    assert opportunities and opportunities <= contracts
    rows(hub, "DELETE FROM lv0.v_customer WHERE btrim(cust_no) = :c", c=customer)

    result = refine("2024-01-05")
    assert result.success
    assert customer not in keys(hub, "SELECT cust_no FROM lv1.v_customer")
    assert customer not in keys(hub, "SELECT external_id FROM lv2.account")
    assert not opportunities & keys(hub, "SELECT external_id FROM lv2.opportunity")
    assert contracts <= keys(hub, "SELECT order_no FROM lv1.r_order_contract")  # still in the ERP
    counts = deleted_counts(result)
    assert counts["lv2/account"] == 1
    assert counts["lv2/opportunity"] == len(opportunities)
    checks = {(e.asset_key.to_user_string(), e.check_name): e for e in result.get_asset_check_evaluations()}
    assert checks[("lv2/opportunity", "account_external_id_references_account")].passed
    # The contracts of the deleted customer are the model's filter at work, reported, not lost.
    complete = checks[("lv2/opportunity", COMPLETE_CHECK)]
    assert complete.passed
    assert complete.metadata["rows_missing"].value == 0


def test_a_row_lost_in_a_model_fails_its_completeness_check_naming_its_key(hub):
    model = MODELS["lv1.r_order_contract"]
    (lost,) = rows(hub, "SELECT order_no FROM lv1.r_order_contract WHERE _partition = '2024-01-05' ORDER BY 1 LIMIT 1")[0]
    rows(hub, "DELETE FROM lv1.r_order_contract WHERE order_no = :k", k=lost)
    engine = sa.create_engine(hub)
    with engine.connect() as conn:
        result = evaluate_completeness_check(conn, model, model_key(model), PartitionWindow("2024-01-05", "2024-01-05"))
    engine.dispose()
    assert not result.passed
    assert result.metadata["rows_missing"].value == 1
    assert result.metadata["rows_missing_keys"].value == f"('{lost}',)"


def test_a_row_written_upstream_after_the_refresh_is_reported_not_failed(hub):
    model = MODELS["lv1.r_order_contract"]
    window = PartitionWindow("2024-01-05", "2024-01-05")
    engine = sa.create_engine(hub)
    with engine.connect() as conn:
        refreshed = conn.execute(sa.text("SELECT pg_current_snapshot()::text")).scalar_one()
        conn.rollback()
    # After the model's refresh took its snapshot, a load below commits a new contract of the day.
    rows(hub, """
        INSERT INTO lv0.r_order_contract
        SELECT (jsonb_populate_record(NULL::lv0.r_order_contract, to_jsonb(t) || '{"order_no": "ZZLATE0001"}')).*
        FROM lv0.r_order_contract AS t WHERE _partition = '2024-01-05' LIMIT 1
    """)
    with engine.connect() as conn:
        reported = evaluate_completeness_check(conn, model, model_key(model), window, refreshed)
        alone = evaluate_completeness_check(conn, model, model_key(model), window)
    engine.dispose()
    assert reported.passed
    assert reported.metadata["rows_changed_upstream_after_refresh"].value == 1
    assert reported.metadata["rows_changed_upstream_after_refresh_keys"].value == "('ZZLATE0001',)"
    assert reported.metadata["rows_missing"].value == 0
    # Run alone, without the refresh's snapshot, the check cannot tell: the key counts as lost.
    assert not alone.passed and alone.metadata["rows_missing_keys"].value == "('ZZLATE0001',)"


def test_the_completeness_check_passes_on_every_model_of_a_nightly_run(hub):
    result = refine("2024-01-05")
    evaluations = [e for e in result.get_asset_check_evaluations() if e.check_name == COMPLETE_CHECK]
    assert {e.asset_key.to_user_string() for e in evaluations} == {
        f"{m.layer}/{m.name}" for m in MODELS.values() if m.mode == "incremental"
    }
    assert all(e.passed for e in evaluations)
    opportunity = next(e for e in evaluations if e.asset_key.to_user_string() == "lv2/opportunity")
    without_account = scalar(
        hub,
        "SELECT count(*) FROM lv1.r_order_contract AS c WHERE c._partition BETWEEN '2024-01-04' AND '2024-01-05' "
        "AND NOT EXISTS (SELECT FROM lv2.account AS a WHERE a.external_id = c.cust_no)",
    )
    assert opportunity.metadata["driving_rows_excluded_by_model"].value == without_account
