"""Reloads keep what others built on the tables: a snapshot lv0 table and a full lv1 model keep
their GRANTs, the views on them and their comments over reloads, and show the new data; a row
deleted at the source disappears; a lock held on the table fails the load within its lock timeout,
naming the table and who holds the lock.
"""

import textwrap
from datetime import datetime, timezone

import dagster as dg
import psycopg2
import pytest
import sqlalchemy as sa

from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.extraction.engine import extract_to_lv0
from bodyfriend_assets.extraction.lv0_writer import Lineage
from bodyfriend_assets.lv0 import build_lv0_asset, lv0_assets
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets.table_locks import LockTimeout
from bodyfriend_assets.transforms import build_sql_assets, load_layer
from bodyfriend_assets_tests.conftest import rows, scalar

PARTITION = "2024-01-01"
CODES = """
    -- key: major_cd, minor_cd
    -- mode: full
    -- source: UNIERP5.B_MINOR
    SELECT btrim(m.major_cd) AS major_cd, btrim(m.minor_cd) AS minor_cd, m.minor_nm FROM lv0.b_minor AS m
"""


@pytest.fixture
def code_book(platform_env, tmp_path):
    """b_major and b_minor seeded at the source, loaded into lv0, and lv1.codes (a full model)."""
    legacy_url, datahub_url = platform_env
    catalog = load_catalog()
    seed_legacy(legacy_url, rows=600, days=1, tables=["UNIERP5.B_MAJOR", "UNIERP5.B_MINOR"])
    (tmp_path / "lv1").mkdir()
    (tmp_path / "lv1" / "codes.sql").write_text(textwrap.dedent(CODES).strip() + "\n", encoding="utf-8")
    models = build_sql_assets(load_layer(tmp_path / "lv1", "lv1"), upstream=lv0_assets(catalog), catalog=catalog)
    assets = [build_lv0_asset(catalog.by_name(n)) for n in ("b_major", "b_minor")] + [models]
    reload_all(assets)
    return legacy_url, datahub_url, assets


def reload_all(assets):
    result = dg.materialize(assets, partition_key=PARTITION, resources={"legacy": LegacyDatabase(), "datahub": DataHub()})
    assert result.success
    return result


def test_grants_views_and_comments_survive_reloads_and_show_the_new_data(code_book):
    legacy_url, datahub_url, assets = code_book
    rows(datahub_url, "CREATE ROLE reporter_{0} NOLOGIN".format(datahub_url.database))
    reporter = f"reporter_{datahub_url.database}"
    for table in ("lv0.b_minor", "lv1.codes"):
        name = table.replace(".", "_")
        rows(datahub_url, f"GRANT USAGE ON SCHEMA {table.split('.')[0]} TO {reporter}")
        rows(datahub_url, f"GRANT SELECT ON {table} TO {reporter}")
        rows(datahub_url, f"COMMENT ON TABLE {table} IS 'read by the reporting team'")
        rows(datahub_url, f"CREATE VIEW public.{name}_names AS SELECT minor_cd, minor_nm FROM {table}")
    gone = rows(legacy_url, "SELECT major_cd, minor_cd FROM unierp5.b_minor ORDER BY 1, 2 LIMIT 1")[0]

    for round_ in (1, 2):
        rows(legacy_url, "UPDATE unierp5.b_minor SET minor_nm = :n WHERE minor_cd IN "
                         "(SELECT minor_cd FROM unierp5.b_minor ORDER BY minor_cd LIMIT 3)", n=f"이름 {round_}")
        if round_ == 1:
            rows(legacy_url, "DELETE FROM unierp5.b_minor WHERE major_cd = :a AND minor_cd = :b", a=gone[0], b=gone[1])
        reload_all(assets)
        source = rows(legacy_url, "SELECT btrim(minor_cd), minor_nm FROM unierp5.b_minor ORDER BY 1, 2")
        for table in ("lv0.b_minor", "lv1.codes"):
            name = table.replace(".", "_")
            shown = rows(datahub_url, f"SELECT btrim(minor_cd), minor_nm FROM public.{name}_names ORDER BY 1, 2")
            assert shown == source, table  # the view reads the new data
            assert scalar(datahub_url, "SELECT has_table_privilege(:r, :t, 'SELECT')", r=reporter, t=table)
            assert scalar(datahub_url, "SELECT obj_description(to_regclass(:t), 'pg_class')", t=table) == \
                "read by the reporting team"
            assert scalar(datahub_url, f"SELECT count(*) FROM {table} WHERE minor_nm = :n", n=f"이름 {round_}") > 0
    # the row deleted at the source is gone from the snapshot table and the model
    assert not rows(datahub_url, "SELECT 1 FROM lv0.b_minor WHERE major_cd = :a AND minor_cd = :b", a=gone[0], b=gone[1])
    assert not rows(datahub_url, "SELECT 1 FROM lv1.codes WHERE major_cd = btrim(:a) AND minor_cd = btrim(:b)",
                    a=gone[0], b=gone[1])


def test_a_reload_writes_only_the_rows_that_changed(code_book):
    legacy_url, datahub_url, assets = code_book
    before = dict(rows(datahub_url, "SELECT major_cd || '/' || minor_cd, ctid::text FROM lv0.b_minor"))
    rows(legacy_url, "UPDATE unierp5.b_minor SET minor_nm = minor_nm || '*' WHERE minor_cd IN "
                     "(SELECT minor_cd FROM unierp5.b_minor ORDER BY minor_cd LIMIT 2)")
    result = reload_all(assets)
    after = dict(rows(datahub_url, "SELECT major_cd || '/' || minor_cd, ctid::text FROM lv0.b_minor"))
    rewritten = {key for key in before if after[key] != before[key]}
    changed = rows(legacy_url, "SELECT count(*) FROM unierp5.b_minor WHERE minor_nm LIKE '%*'")[0][0]
    assert len(rewritten) == changed > 0  # the other rows are the very same row versions
    metadata = {e.asset_key.to_user_string(): e.materialization.metadata for e in result.get_asset_materialization_events()}
    assert metadata["lv0/b_minor"]["rows_changed"].value == changed
    assert metadata["lv1/codes"]["rows_changed"].value == changed


def test_a_held_lock_fails_the_load_within_the_lock_timeout_naming_the_table_and_the_holder(code_book):
    legacy_url, datahub_url, assets = code_book
    rows(legacy_url, "UPDATE unierp5.b_minor SET minor_nm = minor_nm || '*'")
    before = rows(datahub_url, "SELECT * FROM lv0.b_minor ORDER BY 1, 2")
    holder = psycopg2.connect(datahub_url.set(drivername="postgresql").render_as_string(hide_password=False),
                              application_name="report_tool")
    try:
        with holder.cursor() as cursor:
            cursor.execute("LOCK TABLE lv0.b_minor, lv1.codes IN ACCESS EXCLUSIVE MODE")
        legacy, datahub = sa.create_engine(legacy_url), sa.create_engine(datahub_url)
        with pytest.raises(LockTimeout) as raised:
            extract_to_lv0(
                load_catalog().by_name("b_minor"), legacy, datahub, start=None, end=None, lock_timeout_seconds=1,
                lineage=Lineage(loaded_at=datetime.now(timezone.utc), run_id="locked", partition=PARTITION),
            )
        legacy.dispose()
        datahub.dispose()
        message = str(raised.value)
        assert message.startswith("lv0.b_minor: could not lock the table within 1s")
        assert f"pid {holder.get_backend_pid()} on lv0.b_minor (application 'report_tool', AccessExclusiveLock, " \
               "query 'LOCK TABLE lv0.b_minor, lv1.codes')" in message

        # the same for a model, through its step (the Data Hub resource's lock timeout)
        result = dg.materialize(assets[2:], partition_key=PARTITION, raise_on_error=False,
                                resources={"legacy": LegacyDatabase(), "datahub": DataHub(lock_timeout_seconds=1)})
        assert not result.success
        failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE)
        assert "lv1.codes: could not lock the table within 1s" in str(failure.event_specific_data.error)
        assert "on lv0.b_minor (application 'report_tool'" in str(failure.event_specific_data.error)
    finally:
        holder.close()
    assert rows(datahub_url, "SELECT * FROM lv0.b_minor ORDER BY 1, 2") == before
