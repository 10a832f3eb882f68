"""What an lv2 model's join on ``lv1.refined_addresses()`` costs, at production's number of addresses.

    python -m benchmarks.refined_addresses [--addresses 2000000] [--rows 1000] [--repeat 3]

On the embedded server, in a database of its own (``bench_refined_addresses``, recreated), in the
benchmark's home (``.bodyfriend/bench``): an ``lv1.address_master`` of ``addresses`` rows (a third
of them not trusted: ``not_found``, or ``found_shortened`` without a building), and a day's
``rows`` lv1 rows, most of whose addresses are in it. The day's rows are joined to the refined
addresses as the lv2 models join them, two ways:

1. the PL/pgSQL function the platform used before (the baseline): it returns every trusted row
   to the join, which hashes them all;
2. the platform's function (``transforms.functions``), which PostgreSQL inlines, so each row is
   looked up by the table's unique index.

Both must return the same rows. Prints the best of ``repeat`` timings of each and the ratio.
Not part of the tests.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import sqlalchemy as sa

DATABASE = "bench_refined_addresses"
# The function as it was, for the baseline only: the same rows, returned by PL/pgSQL.
PLPGSQL = (
    "CREATE FUNCTION lv1.refined_addresses_plpgsql() "
    "RETURNS TABLE (legacy_address text, street text, postal_code text) LANGUAGE plpgsql STABLE "
    "AS $$ BEGIN "
    "IF to_regclass('lv1.address_master') IS NULL THEN RETURN; END IF; "
    "RETURN QUERY {rows}; "
    "END $$"
)
JOIN = (
    "SELECT d.n, r.street, r.postal_code FROM lv1.day AS d "
    "LEFT JOIN lv1.{function}() AS r ON r.legacy_address = lv1.legacy_address(d.addr1, d.addr2) ORDER BY d.n"
)


def _seed(conn, addresses: int, rows: int) -> None:
    conn.exec_driver_sql(
        "CREATE TABLE lv1.address_master (legacy_address text PRIMARY KEY, status text NOT NULL, "
        "address_name text, building_name text, building_dong text, building_ho text, zone_no text)"
    )
    conn.exec_driver_sql(
        "INSERT INTO lv1.address_master SELECT '서울특별시 강남구 테헤란로 ' || g || ' ' || (g %% 97) || '층', "
        "CASE g %% 3 WHEN 0 THEN 'not_found' WHEN 1 THEN 'found' ELSE 'found_shortened' END, "
        "CASE WHEN g %% 3 <> 0 THEN '서울 강남구 테헤란로 ' || g END, "
        "CASE WHEN g %% 2 = 0 THEN '타워' || (g %% 50) END, NULL, NULL, lpad((g %% 99999)::text, 5, '0') "
        "FROM generate_series(1, %(addresses)s) AS g",
        {"addresses": addresses},
    )
    conn.exec_driver_sql(
        "CREATE TABLE lv1.day AS SELECT n, '서울특별시 강남구 테헤란로 ' || (1 + (n * 7919) %% %(addresses)s) AS addr1, "
        "((1 + (n * 7919) %% %(addresses)s) %% 97) || '층' AS addr2 FROM generate_series(1, %(rows)s) AS n",
        {"addresses": addresses, "rows": rows},
    )
    conn.exec_driver_sql("ANALYZE lv1.address_master")
    conn.exec_driver_sql("ANALYZE lv1.day")


def _best(conn, sql: str, repeat: int) -> tuple[float, list]:
    times, result = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        result = conn.exec_driver_sql(sql).all()
        times.append(time.perf_counter() - started)
    return min(times), result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--addresses", type=int, default=2_000_000)
    parser.add_argument("--rows", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    os.environ.setdefault("BODYFRIEND_HOME", str(Path(".bodyfriend/bench").resolve()))
    from bodyfriend_assets import embedded
    from bodyfriend_assets.transforms.functions import TRUSTED_ADDRESSES, ensure_functions

    url = embedded.server_url(DATABASE)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {DATABASE} WITH (FORCE)")
    admin.dispose()
    embedded.ensure_database(url)
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql("CREATE SCHEMA lv1")
            started = time.perf_counter()
            _seed(conn, args.addresses, args.rows)
            print(f"seeded {args.addresses:,} addresses and {args.rows:,} rows in {time.perf_counter() - started:.1f} s")
            ensure_functions(conn)  # the table exists: the platform's function reads it
            conn.exec_driver_sql(PLPGSQL.format(rows=TRUSTED_ADDRESSES))
        with engine.connect() as conn:
            before, before_rows = _best(conn, JOIN.format(function="refined_addresses_plpgsql"), args.repeat)
            after, after_rows = _best(conn, JOIN.format(function="refined_addresses"), args.repeat)
        if before_rows != after_rows:
            print("the two functions returned different rows")
            return 1
        refined = sum(1 for row in after_rows if row[1] is not None)
        print(f"{args.rows:,} rows joined, {refined:,} refined, best of {args.repeat}:")
        print(f"  PL/pgSQL function (before):  {before:8.3f} s")
        print(f"  inlined SQL function (now):  {after:8.3f} s   ratio {after / before:.4f}")
    finally:
        engine.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
