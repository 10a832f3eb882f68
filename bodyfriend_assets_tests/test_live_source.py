"""The nightly run on an ERP that is being written while the platform reads it.

The real ``daily_data_hub`` job runs for one partition, as the schedule launches it, on an
instance configured by the project's dagster.yaml. A writer thread watches the stand-in's
``pg_stat_activity`` (outside any transaction, so every poll sees the present) and, as soon as
the lv0 load of RENTAL.R_ORDER_CONTRACT asks for its second page, writes: a row stamped inside
the window behind the reader (a late commit), a row moved out of the window behind it and one
ahead of it, a delete, an insert and a delete in a snapshot table. (pg_stat_activity shows the
first 1,024 characters of a query, not the page's position: the writer counts the load's page
queries, and the outcomes prove where the reader was: the late row needed the check's re-read,
the row moved behind kept its old version, the row moved ahead is not in lv0.) The run must succeed, every
row that was in the window before the run must be in lv0 exactly once, and lv1 and lv2 must be
exactly what lv0 gives, key by key.
"""

import logging
import re
import shutil
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy import text

from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.lv0 import LARGE_TABLE_POOL
from bodyfriend_assets.partitions import naive_kst
from bodyfriend_assets_tests.conftest import rows

PARTITION = "2024-01-02"
READ_FROM, WINDOW_START, WINDOW_END = "2024-01-01 21:00", "2024-01-02 00:00", "2024-01-03 00:00"
REPOSITORY = Path(__file__).resolve().parents[1]
LATE_KEY = "00LATE0001"  # sorts before every demo order number
NEW_GOODS = "ZZNEW"  # padded to the CHAR key's width below
UNUSED_GOODS = "ZZOLD"
COPY_GOODS = (  # a copy of the product :source under the key :k
    "INSERT INTO rental.r_goods SELECT (jsonb_populate_record(NULL::rental.r_goods, "
    "to_jsonb(g) || jsonb_build_object('goods_cd', CAST(:k AS text)))).* "
    "FROM rental.r_goods AS g WHERE goods_cd = :source"
)
# A page query of the load: COPY of many columns (the check's key-only scan reads two).
LOAD_PAGE = re.compile(r"^COPY \(SELECT (rental\.r_order_contract\.\w+, ){10,}")
# The first page holds about 580 rows (its size comes from the declared column widths), the next
# ones about 14,000: when the third page is asked for, the reader is past the day's first hours,
# and a page and more of the day are still to be read.
WRITE_AT_PAGE = 3


def daily_job():
    """The platform's nightly job, as the schedule runs it."""
    from bodyfriend_assets.definitions import defs

    return defs.resolve_job_def("daily_data_hub")


def run_the_night() -> None:
    """The nightly job for PARTITION on the instance at DAGSTER_HOME."""
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.initialize_concurrency_limit_to_default(LARGE_TABLE_POOL)
        dg.execute_job(dg.reconstructable(daily_job), instance=instance, tags={"dagster/partition": PARTITION})


RUN_THE_NIGHT = "from bodyfriend_assets_tests.test_live_source import run_the_night; run_the_night()"


class Writer(threading.Thread):
    """Writes to the stand-in once the load is past its first page; records what and when."""

    def __init__(self, legacy_url, targets: dict[str, str]):
        super().__init__(name="erp-writer", daemon=True)
        self.engine = sa.create_engine(legacy_url, isolation_level="AUTOCOMMIT")
        self.targets = targets
        self.stop = threading.Event()
        self.pages_seen: set = set()  # the start times of the load's page queries
        self.wrote_at = None  # time.time() after the last write committed
        self.error = None

    def run(self) -> None:
        try:
            with self.engine.connect() as conn:
                while not self.stop.is_set() and len(self.pages_seen) < WRITE_AT_PAGE:
                    for started, query in conn.execute(text(
                        "SELECT query_start, query FROM pg_stat_activity WHERE datname = current_database() "
                        "AND state = 'active' AND pid <> pg_backend_pid()"
                    )):
                        if LOAD_PAGE.match(query or ""):
                            self.pages_seen.add(started)
                if len(self.pages_seen) >= WRITE_AT_PAGE:
                    self._write(conn)
                    self.wrote_at = time.time()
        except Exception as err:  # reported by the test
            self.error = err
        finally:
            self.engine.dispose()

    def _write(self, conn) -> None:
        now = naive_kst(datetime.now(timezone.utc))
        t = self.targets
        conn.execute(text(
            "INSERT INTO rental.r_order_contract SELECT (jsonb_populate_record(NULL::rental.r_order_contract, "
            "to_jsonb(c) || jsonb_build_object('order_no', CAST(:k AS text), 'updt_dt', CAST(:t AS text)))).* "
            "FROM rental.r_order_contract AS c WHERE order_no = :source"
        ), {"k": LATE_KEY, "t": WINDOW_START, "source": t["moved_behind"]})
        for key in (t["moved_behind"], t["moved_ahead"]):
            conn.execute(text("UPDATE rental.r_order_contract SET updt_dt = :now WHERE order_no = :k"),
                         {"now": now, "k": key})
        conn.execute(text("DELETE FROM rental.r_order_contract WHERE order_no = :k"), {"k": t["deleted"]})
        conn.execute(text(COPY_GOODS), {"k": NEW_GOODS, "source": t["goods_deleted"]})
        conn.execute(text("DELETE FROM rental.r_goods WHERE goods_cd = :k"), {"k": t["goods_deleted"]})


def window_rows(url, schema: str) -> dict[str, tuple]:
    """order_no -> (updt_dt, cust_no, rental_amt) of the read window's contracts."""
    table = {"rental": "rental.r_order_contract", "lv0": "lv0.r_order_contract"}[schema]
    return {
        r[0]: tuple(r[1:]) for r in rows(
            url, f"SELECT order_no, updt_dt, cust_no, rental_amt FROM {table} WHERE updt_dt >= :s AND updt_dt < :e",
            s=READ_FROM, e=WINDOW_END,
        )
    }


@pytest.fixture
def instance_home(tmp_path, make_database, monkeypatch):
    shutil.copy(REPOSITORY / "dagster.yaml", tmp_path / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_URL", make_database("dagster").render_as_string(hide_password=False))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    monkeypatch.setenv("BODYFRIEND_HC_MODE", "development")  # hc creates its tables on this Data Hub
    return tmp_path


@pytest.mark.timeout(1800)  # seeding and a whole nightly run, on a machine that may be busy
def test_a_nightly_run_while_the_erp_writes_succeeds_with_every_row_loaded_once(platform_env, instance_home):
    legacy_url, hub = platform_env
    # About 42,000 contracts in the day's read window: five pages (see WRITE_AT_PAGE).
    seed_legacy(legacy_url, rows=60_000, days=2)
    before = window_rows(legacy_url, "rental")
    in_window = rows(
        legacy_url,
        "SELECT order_no FROM rental.r_order_contract WHERE updt_dt >= :s AND updt_dt < :e "
        "ORDER BY updt_dt, order_no", s=WINDOW_START, e=WINDOW_END,
    )
    # The snapshot table's row the writer deletes is one no contract refers to (a product deleted
    # under its contracts would rightly fail lv2's reference check).
    rows(legacy_url, COPY_GOODS, k=UNUSED_GOODS, source=rows(legacy_url, "SELECT min(goods_cd) FROM rental.r_goods")[0][0])
    goods = [r[0] for r in rows(legacy_url, "SELECT goods_cd FROM rental.r_goods ORDER BY goods_cd")]
    new_goods = NEW_GOODS.ljust(len(goods[0]))  # a CHAR key keeps its padding, in lv0 too
    targets = {
        "moved_behind": in_window[0][0],  # the first row of the day: read with the first page
        "deleted": in_window[1][0],
        "moved_ahead": in_window[-1][0],  # the last row of the day: not read yet
        "goods_deleted": UNUSED_GOODS.ljust(len(goods[0])),
    }
    writer = Writer(legacy_url, targets)
    writer.start()
    try:
        # In a process of its own, as a run worker: its steps fork from a server started with
        # this test's environment (a fork server started earlier in the test session's process
        # would keep that earlier environment).
        subprocess.run([sys.executable, "-c", RUN_THE_NIGHT], check=True, cwd=REPOSITORY)
    finally:
        writer.stop.set()
        writer.join()
    assert writer.error is None, writer.error
    with dg.DagsterInstance.get() as instance:
        (record,) = instance.get_run_records()
        run_id = record.dagster_run.run_id
        assert record.dagster_run.is_success, [
            e.user_message for e in instance.all_logs(run_id) if e.level == logging.ERROR]
        checks = {
            (e.asset_key.to_user_string(), e.check_name): e for e in (
                r.dagster_event.event_specific_data
                for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION))
        }
        loaded_at = {
            r.dagster_event.asset_key.to_user_string(): r.timestamp
            for r in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
        }

    # The writer wrote while the load read: once the load asked for its third page, and before
    # the load's materialization was recorded.
    assert len(writer.pages_seen) >= WRITE_AT_PAGE and writer.wrote_at is not None
    assert writer.wrote_at < loaded_at["lv0/r_order_contract"]

    # lv0, key by key: every row of the read window that was there before the run, exactly once
    # (the primary key) and as it was; the late row, read again by the check; the row moved ahead
    # of the reader belongs to today's partition now (the next run loads it).
    lv0 = window_rows(hub, "lv0")
    expected = {k: v for k, v in before.items() if k not in (targets["moved_ahead"], targets["deleted"])}
    assert {k: lv0[k] for k in expected if k in lv0} == expected
    assert set(expected) <= set(lv0)
    assert set(lv0) - set(expected) - {targets["deleted"], targets["moved_ahead"]} == {LATE_KEY}
    assert targets["moved_ahead"] not in lv0  # moved out of the window before the reader got there
    lv0_check = checks[("lv0/r_order_contract", "row_count_matches_source")]
    assert lv0_check.passed
    assert lv0_check.metadata["rows_loaded_late"].value == 1
    assert lv0_check.metadata["rows_loaded_late_keys"].value == f"('{LATE_KEY}',)"
    # The row moved behind the reader keeps its old version in lv0 and is reported as gone from
    # the window; the deleted row is either removed by the load's delete pass (when its key scan
    # ran after the delete) or reported as gone.
    gone_keys = lv0_check.metadata["lv0_rows_gone_from_source_keys"].value
    assert f"'{targets['moved_behind']}'" in gone_keys
    assert (targets["deleted"] in lv0) == (f"'{targets['deleted']}'" in gone_keys)
    assert lv0_check.metadata["lv0_rows_gone_from_source"].value == 1 + (targets["deleted"] in lv0)
    # The snapshot table: the new row is in lv0 or reported as added during the load; the
    # deleted one is gone from lv0 or reported as gone from the source.
    goods_check = checks[("lv0/r_goods", "row_count_matches_source")].metadata
    lv0_goods = {r[0] for r in rows(hub, "SELECT goods_cd FROM lv0.r_goods")}
    assert (new_goods in lv0_goods) != (goods_check["rows_added_during_load_keys"].value == f"('{new_goods}',)")
    assert (targets["goods_deleted"] in lv0_goods) == (
        f"('{targets['goods_deleted']}',)" in goods_check["lv0_rows_gone_from_source_keys"].value
    )
    assert set(goods) - {targets["goods_deleted"]} <= lv0_goods

    # lv1 and lv2 are what lv0 gives, key by key.
    assert {r[0] for r in rows(hub, "SELECT order_no FROM lv1.r_order_contract")} == {
        r[0] for r in rows(hub, "SELECT DISTINCT btrim(order_no) FROM lv0.r_order_contract "
                                "WHERE _partition BETWEEN '2024-01-01' AND :p", p=PARTITION)
    }
    assert {r[0] for r in rows(hub, "SELECT external_id FROM lv2.opportunity")} == {
        r[0] for r in rows(hub, "SELECT c.order_no FROM lv1.r_order_contract AS c "
                                "JOIN lv2.account AS a ON a.external_id = c.cust_no")
    }
    assert {r[0] for r in rows(hub, "SELECT external_id FROM lv2.account")} == {
        r[0] for r in rows(hub, "SELECT cust_no FROM lv1.v_customer")
    }
    assert LATE_KEY in {r[0] for r in rows(hub, "SELECT external_id FROM lv2.opportunity")} | {
        LATE_KEY for r in rows(hub, "SELECT 1 FROM lv1.r_order_contract AS c WHERE c.order_no = :k "
                                    "AND NOT EXISTS (SELECT FROM lv2.account AS a WHERE a.external_id = c.cust_no)", k=LATE_KEY)
    }
    # hc, key by key: the Heroku Connect table holds no contract lv2 does not hold, and the
    # deleted one reaches it only while lv0 still has it (reported above; the next run deletes it).
    hc = {r[0] for r in rows(hub, "SELECT bf_external_id__c FROM salesforce.opportunity")}
    lv2 = {r[0] for r in rows(hub, "SELECT external_id FROM lv2.opportunity")}
    assert hc and hc <= lv2
    assert (targets["deleted"] in hc) <= (targets["deleted"] in lv0)
    for (asset, name), evaluation in checks.items():
        if asset.split("/")[0] in ("lv0", "lv1", "lv2"):
            assert evaluation.passed, (asset, name, evaluation.metadata)
