"""Several lv0 loads starting at once on a fresh Data Hub (the UI's default: a process per step)."""

import threading
from datetime import datetime, timezone

import sqlalchemy as sa

from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.extraction.engine import extract_to_lv0
from bodyfriend_assets.extraction.lv0_writer import Lineage

TABLES = ["b_major", "b_minor", "r_goods", "r_call_group", "r_promotion", "v_erp_user"]


def test_first_loads_starting_together_all_succeed(legacy_url, datahub_url):
    seed_legacy(legacy_url, rows=200, tables=[load_catalog().by_name(t).qualified_name for t in TABLES])
    errors = []
    barrier = threading.Barrier(len(TABLES))

    def load(name):
        legacy, hub = sa.create_engine(legacy_url), sa.create_engine(datahub_url)
        try:
            barrier.wait()
            extract_to_lv0(load_catalog().by_name(name), legacy, hub, start=None, end=None,
                           lineage=Lineage(datetime.now(timezone.utc), "r", "2024-01-01"))
        except Exception as err:  # collected and asserted below
            errors.append((name, err))
        finally:
            legacy.dispose()
            hub.dispose()

    threads = [threading.Thread(target=load, args=(t,)) for t in TABLES]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    engine = sa.create_engine(datahub_url)
    with engine.connect() as conn:
        loaded = {r[0] for r in conn.exec_driver_sql("SELECT table_name FROM information_schema.tables WHERE table_schema = 'lv0'")}
    engine.dispose()
    assert loaded == set(TABLES)
