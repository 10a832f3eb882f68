"""What deleting vanished rows costs an incremental model, measured at 2,000,000 rows.

    python -m benchmarks.model_deletes [--rows 2000000] [--days 365]

On the embedded server, in a database of its own (``bench_model_deletes``, recreated), in the
benchmark's home (``.bodyfriend/bench``): a driving table shaped like lv0 (``order_no`` padded as
CHAR keys are, a customer, an amount, ``_partition``) holding ``rows`` rows over ``days`` days,
and an lv1 model of it (``btrim(s.order_no) AS order_no``), built once for every day. Ten driving
rows, old and new, are then deleted, and one day is refreshed three ways in one run:

1. the day's upsert alone (the baseline: what a nightly refresh cost before deletes reached lv1);
2. the same refresh with the delete step as the platform runs it (one anti-join on the key
   expression read from the SQL);
3. the delete step of the fallback, for a model whose SQL does not show its keys' provenance
   (its SELECT over every partition, anti-joined).

Each prints seconds and the ratio to (1). Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path
from unittest import mock

import sqlalchemy as sa

MODEL = """-- Contracts, for the benchmark.
--
-- key: order_no
-- mode: incremental
-- driving: lv0.contracts
-- lookback_days: 1
SELECT
    btrim(s.order_no) AS order_no,
    s.cust_no,
    s.amount,
    s._partition
FROM lv0.contracts AS s
WHERE s._partition BETWEEN :partition_start AND :partition_end
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--days", type=int, default=365)
    args = parser.parse_args(argv)
    os.environ.setdefault("BODYFRIEND_HOME", str(Path(".bodyfriend/bench").resolve()))
    from bodyfriend_assets import embedded
    from bodyfriend_assets.table_metadata import column_types
    from bodyfriend_assets.transforms import deletes, refresh
    from bodyfriend_assets.transforms.models import parse_model

    url = embedded.server_url("bench_model_deletes")
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql("DROP DATABASE IF EXISTS bench_model_deletes")
    admin.dispose()
    embedded.ensure_database(url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA lv0")
        conn.execute(sa.text(
            "CREATE TABLE lv0.contracts AS SELECT rpad('C' || i, 12) AS order_no, 'K' || (i % 50000) AS cust_no, "
            "round((i % 997) * 1.5, 2) AS amount, "
            "to_char(DATE '2024-01-01' + (i % :days), 'YYYY-MM-DD') AS _partition "
            "FROM generate_series(1, :rows) AS i"
        ), {"rows": args.rows, "days": args.days})
        conn.exec_driver_sql("ALTER TABLE lv0.contracts ADD PRIMARY KEY (order_no)")
        conn.exec_driver_sql("CREATE INDEX ON lv0.contracts (_partition)")
        conn.exec_driver_sql("ANALYZE lv0.contracts")
        last = conn.execute(sa.text("SELECT max(_partition) FROM lv0.contracts")).scalar_one()
        days = [conn.execute(sa.text("SELECT min(_partition) FROM lv0.contracts")).scalar_one(), last]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "contracts.sql"
        path.write_text(MODEL, encoding="utf-8")
        model = parse_model(path, "lv1")
    with engine.connect() as conn:
        began = time.monotonic()
        built = refresh.refresh_model(conn, model, refresh.PartitionWindow(days[0], last))
        print(f"lv1.contracts built: {built.rows:,} rows in {time.monotonic() - began:.1f}s")
    with engine.begin() as conn:
        conn.execute(sa.text(
            "DELETE FROM lv0.contracts WHERE order_no IN (SELECT order_no FROM lv0.contracts "
            "ORDER BY _partition, order_no LIMIT 5) OR order_no IN (SELECT order_no FROM lv0.contracts "
            "ORDER BY _partition DESC, order_no LIMIT 5)"
        ))
    day = refresh.PartitionWindow(last, last)

    def refreshed(label: str, **patches) -> float:
        with engine.connect() as conn, mock.patch.multiple(refresh, **patches) if patches else nullcontext():
            began = time.monotonic()
            result = refresh.refresh_model(conn, model, day)
            seconds = time.monotonic() - began
        print(f"{label:<58} {seconds:>7.2f}s  rows_deleted={result.rows_deleted}")
        return seconds

    def delete_step(label: str, fallback: bool) -> float:
        with engine.connect() as conn:
            target = refresh._table(model.name, model.layer, column_types(conn, model.layer, model.name))
            with mock.patch.object(deletes, "provenance", lambda m: None) if fallback else nullcontext():
                began = time.monotonic()
                deleted = refresh._delete_vanished(conn, model, target)
                seconds = time.monotonic() - began
            conn.rollback()
        print(f"{label:<58} {seconds:>7.2f}s  rows it would delete={deleted}")
        return seconds

    print(f"\n{args.rows:,} driving rows over {args.days} days; one day refreshed ({last}):")
    baseline = refreshed("1 the day's upsert alone (before: no delete step)", _delete_vanished=lambda *a: 0)
    anti_join = delete_step("2a the delete step alone, key expression anti-join", fallback=False)
    fallback = delete_step("3  the delete step alone, fallback (SELECT over every day)", fallback=True)
    platform = refreshed("2  the day's refresh as the platform runs it (upsert + delete)")
    print(f"\nratio to (1): refresh with deletes {platform / baseline:.2f}, delete step "
          f"{anti_join / baseline:.2f}, fallback delete step {fallback / baseline:.2f}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
