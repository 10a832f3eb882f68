"""Benchmark (not a test): what a whole-table reload costs readers and the write-ahead log.

    python -m benchmarks.reloads                  # 2,000,000 rows
    python -m benchmarks.reloads --rows 200000    # a quick look

On the embedded server in a home of its own (``.bodyfriend/bench_reloads``): the stand-in's
RENTAL.R_ORDER_CONTRACT (83 columns) seeded with ``--rows`` rows, loaded into lv0 as a snapshot
table. Then, with a reader running ``SELECT count(*)`` on the lv0 table over and over:

1. three ways of making lv0 hold staged new contents where 1% of the rows changed, each from the
   same kind of staging table inside the Data Hub (so only the write differs):
   ``swap`` (the old way: build ``<table>__incoming``, drop the table, rename), ``truncate``
   (TRUNCATE + INSERT in one transaction) and ``merge`` (``reload_in_place.merge_staged``, the
   platform's way): seconds, rows written, WAL bytes (``pg_current_wal_lsn()`` difference), and
   the reader's longest wait;
2. the platform's real snapshot reload of the table from the stand-in (``extract_to_lv0``),
   1% of the source rows changed, with the same reader.

A reader's wait is how much longer its longest ``count(*)`` took than its median before the
reload. Prints the numbers; asserts nothing about time (the machine is shared).
"""

from __future__ import annotations

import argparse
import os
import statistics
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import sqlalchemy as sa

TABLE = "r_order_contract"
CHANGED_SHARE = "hashtext(order_no) % 100 = 0"  # 1% of the rows, the same ones every time


class Reader(threading.Thread):
    """``SELECT count(*)`` on the table, over and over, timing each."""

    def __init__(self, url):
        super().__init__(daemon=True)
        self.engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        self.timings: list[float] = []
        self.errors: list[str] = []
        self.stop = threading.Event()

    def run(self):
        with self.engine.connect() as conn:
            while not self.stop.is_set():
                began = time.monotonic()
                try:
                    conn.execute(sa.text(f"SELECT count(*) FROM lv0.{TABLE}")).scalar()
                except sa.exc.DBAPIError as err:
                    self.errors.append(type(err.orig).__name__)
                self.timings.append(time.monotonic() - began)

    def watch(self, work):
        """Run ``work()`` while reading; returns its result, and the reader's median before it
        and longest query during it."""
        self.start()
        began_at = time.monotonic()
        while len(self.timings) < 3 or time.monotonic() - began_at < 3:  # a baseline, however slow
            time.sleep(0.1)
        before = list(self.timings)
        began = len(self.timings)
        result = work()
        time.sleep(0.5)
        self.stop.set()
        self.join()
        self.engine.dispose()
        during = self.timings[began:]
        return result, statistics.median(before), max(during), len(during)


def wal_bytes(conn, since: str) -> int:
    return int(conn.execute(sa.text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), :lsn)"), {"lsn": since}).scalar())


def wal_position(conn) -> str:
    return conn.execute(sa.text("SELECT pg_current_wal_lsn()::text")).scalar()


def staged_copy(conn, round_: int) -> sa.Table:
    """A temporary copy of lv0's table with 1% of its rows changed (keyed, as the loader's)."""
    conn.execute(sa.text("DROP TABLE IF EXISTS pg_temp.staged"))
    conn.execute(sa.text(f"CREATE TEMPORARY TABLE staged (LIKE lv0.{TABLE} INCLUDING DEFAULTS)"))
    conn.execute(sa.text(f"INSERT INTO staged SELECT * FROM lv0.{TABLE}"))
    conn.execute(sa.text(f"UPDATE staged SET remark = coalesce(remark, '') || :mark WHERE {CHANGED_SHARE}"),
                 {"mark": f" r{round_}"})
    conn.execute(sa.text("ALTER TABLE staged ADD PRIMARY KEY (order_no)"))
    conn.commit()
    lv0 = sa.Table(TABLE, sa.MetaData(), autoload_with=conn, schema="lv0")
    return sa.Table("staged", sa.MetaData(), *(sa.Column(c.name, c.type) for c in lv0.columns), schema="pg_temp")


def swap(conn, staged: sa.Table) -> int:
    conn.execute(sa.text(f"CREATE TABLE lv0.{TABLE}__incoming (LIKE lv0.{TABLE} INCLUDING ALL)"))
    written = conn.execute(sa.text(f"INSERT INTO lv0.{TABLE}__incoming SELECT * FROM pg_temp.staged")).rowcount
    conn.execute(sa.text(f"DROP TABLE lv0.{TABLE}"))
    conn.execute(sa.text(f"ALTER TABLE lv0.{TABLE}__incoming RENAME TO {TABLE}"))
    conn.execute(sa.text(f"SELECT count(*) FROM lv0.{TABLE}"))  # the old code counted the new table here
    return written


def truncate(conn, staged: sa.Table) -> int:
    conn.execute(sa.text(f"TRUNCATE lv0.{TABLE}"))
    return conn.execute(sa.text(f"INSERT INTO lv0.{TABLE} SELECT * FROM pg_temp.staged")).rowcount


def merge(conn, staged: sa.Table) -> int:
    from bodyfriend_assets.reload_in_place import merge_staged

    target = sa.Table(TABLE, sa.MetaData(), autoload_with=conn, schema="lv0")
    columns = [c.name for c in staged.columns]
    return merge_staged(conn, target, staged, ["order_no"], columns).rows


def measure_write(hub_url, name: str, write, round_: int) -> dict:
    engine = sa.create_engine(hub_url)
    try:
        with engine.connect() as conn:
            staged = staged_copy(conn, round_)
            conn.execute(sa.text("CHECKPOINT"))
            start_lsn = wal_position(conn)
            conn.commit()

            def work():
                began = time.monotonic()
                written = write(conn, staged)
                conn.commit()
                return written, time.monotonic() - began

            (written, seconds), median, longest, reads = Reader(hub_url).watch(work)
            wal = wal_bytes(conn, start_lsn)
    finally:
        engine.dispose()
    return {"way": name, "seconds": seconds, "rows_written": written, "wal_bytes": wal,
            "reader_median": median, "reader_longest": longest, "reads": reads}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--home", default=".bodyfriend/bench_reloads", help="BODYFRIEND_HOME of the benchmark")
    args = parser.parse_args()
    os.environ["BODYFRIEND_HOME"] = str(Path(args.home).expanduser().resolve())

    from bodyfriend_assets import embedded
    from bodyfriend_assets.catalog import LegacyTable
    from bodyfriend_assets.demo.generator import seed_legacy
    from bodyfriend_assets.extraction.engine import extract_to_lv0
    from bodyfriend_assets.extraction.lv0_writer import Lineage

    legacy_url = embedded.server_url(f"reloads_legacy_{args.rows}")
    hub_url = embedded.server_url("reloads_hub")
    if embedded.ensure_database(legacy_url):
        print(f"seeding {args.rows:,} rows of RENTAL.R_ORDER_CONTRACT ...", flush=True)
        seed_legacy(legacy_url, rows=args.rows, days=7, tables=["RENTAL.R_ORDER_CONTRACT"])
    embedded.ensure_database(hub_url)
    entry = LegacyTable(database="RENTAL", table="R_ORDER_CONTRACT", keys=["ORDER_NO"], mode="snapshot")
    legacy, hub = sa.create_engine(legacy_url), sa.create_engine(hub_url)

    def reload(run_id: str):
        began = time.monotonic()
        result = extract_to_lv0(entry, legacy, hub, start=None, end=None, lineage=Lineage(
            loaded_at=datetime.now(timezone.utc), run_id=run_id, partition="2024-01-07"))
        return result, time.monotonic() - began

    with hub.begin() as conn:
        conn.execute(sa.text(f"DROP TABLE IF EXISTS lv0.{TABLE}"))
    print("first load into lv0 ...", flush=True)
    first, seconds = reload("first")
    print(f"first load: {first.rows:,} rows in {seconds:.1f}s", flush=True)

    results = [measure_write(hub_url, name, write, n)
               for n, (name, write) in enumerate([("swap", swap), ("truncate", truncate), ("merge", merge)])]

    with legacy.begin() as conn:
        changed = conn.execute(sa.text(
            f"UPDATE rental.{TABLE} SET remark = coalesce(remark, '') || ' changed' WHERE {CHANGED_SHARE}")).rowcount
    # The stand-in shares the server (and its WAL): set its pages' hint bits now, not during the
    # measured read (with data checksums on, that would log every page of the source table).
    with legacy.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"VACUUM rental.{TABLE}"))
    with hub.connect() as conn:
        conn.execute(sa.text("CHECKPOINT"))
        start_lsn = wal_position(conn)
        conn.commit()
    (reloaded, seconds), median, longest, reads = Reader(hub_url).watch(lambda: reload("second"))
    with hub.connect() as conn:
        wal = wal_bytes(conn, start_lsn)
    legacy.dispose()
    hub.dispose()

    rows = first.rows
    print()
    print(f"{rows:,}-row snapshot table, {changed:,} source rows changed (1%)")
    print(f"{'way':<40} {'seconds':>8} {'rows written':>13} {'WAL MB':>8} {'reader median s':>16} "
          f"{'reader longest s':>17} {'reader waited s':>16}")
    for r in results:
        print(f"{'Data Hub write only: ' + r['way']:<40} {r['seconds']:>8.1f} {r['rows_written']:>13,} "
              f"{r['wal_bytes'] / 1e6:>8.1f} {r['reader_median']:>16.3f} {r['reader_longest']:>17.3f} "
              f"{max(r['reader_longest'] - r['reader_median'], 0):>16.3f}")
    print(f"{'platform snapshot reload (merge)':<40} {seconds:>8.1f} {reloaded.rows_changed:>13,} "
          f"{wal / 1e6:>8.1f} {median:>16.3f} {longest:>17.3f} {max(longest - median, 0):>16.3f}")
    swap_, merge_ = results[0], results[2]
    print(f"\nmerge / swap: WAL {merge_['wal_bytes'] / swap_['wal_bytes']:.3f}, "
          f"rows written {merge_['rows_written'] / swap_['rows_written']:.3f}, "
          f"seconds {merge_['seconds'] / swap_['seconds']:.2f}")


if __name__ == "__main__":
    main()
