"""Databases for the tests of the layers above lv0 (lv1, lv2, hc): a seeded ERP stand-in and a
Data Hub with lv0 loaded, made once per module as templates and copied for each test with
``CREATE DATABASE ... TEMPLATE`` (a copy takes a fraction of a second; seeding and loading take
many)."""

import uuid

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy.engine import URL

from bodyfriend_assets.catalog import IDENTIFIER
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets_tests.conftest import point_platform_at


def range_tags(start: str, end: str) -> dict[str, str]:
    """The tags of a single-run backfill of the partitions ``start``..``end``."""
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def lv0_template(make_database, lv0_assets, resources, *, rows: int, days: int, last_day: str) -> tuple[URL, URL]:
    """A stand-in seeded with ``rows`` over ``days`` days from 2024-01-01, and a Data Hub with lv0
    loaded for 2024-01-01..``last_day`` in one run. Templates: copy them, never use them."""
    legacy_url, datahub_url = make_database("legacy"), make_database("hub")
    seed_legacy(legacy_url, rows=rows, days=days)
    with pytest.MonkeyPatch.context() as monkeypatch:
        point_platform_at(monkeypatch, legacy_url, datahub_url)
        result = dg.materialize(lv0_assets, resources=resources, tags=range_tags("2024-01-01", last_day))
        assert result.success
        # A template database must have no open connection when it is copied.
        DataHub().engine().dispose()
        LegacyDatabase().engine().dispose()
    return legacy_url, datahub_url


def copy_database(template: URL) -> URL:
    copy = template.set(database=f"{template.database.split('_')[0]}_{uuid.uuid4().hex[:10]}")
    assert IDENTIFIER.match(copy.database)
    admin = sa.create_engine(template.set(database="postgres"), isolation_level="AUTOCOMMIT")
    quote = admin.dialect.identifier_preparer.quote
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {quote(copy.database)} TEMPLATE {quote(template.database)}")
    finally:
        admin.dispose()
    return copy
