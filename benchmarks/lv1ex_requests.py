"""How many requests lv1ex sends to the address search for one day of demo data, with and without
the client's memory of the texts it already searched (issue 16, goal 4; issue 12, item 1).

    python -m benchmarks.lv1ex_requests [--days 7] [--rows 20000] [--window day|all]

Seeds the four source tables of lv1ex (``bodyfriend seed`` size: 20,000 rows for the large
tables, 7 days) into a database of its own on the embedded PostgreSQL server (in a temporary
``BODYFRIEND_HOME`` unless one is set), takes the addresses of the last day's rows (``--window
all``: every row) as each lv1ex asset builds them (``address_texts``, sorted as it sends them),
and refines them with one client per table, as each asset's run has one, against the local
stand-in, in three passes: as before (no memo, a new connection for each request), with one
kept-open connection but no memo (``BODYFRIEND_KAKAO_MEMO_ENTRIES=0``), and as the assets now do
(the memo and one kept-open connection). Prints, per table and in total, the distinct addresses,
the texts searched, the requests sent and the seconds, and checks that every pass gives the same
``lv1.address_master`` rows (``refined_at`` aside).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from datetime import datetime, timedelta, timezone

import pandas as pd
import sqlalchemy as sa

from benchmarks.extraction import DEMO_ROWS, START
from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.lv1ex import SOURCES, address_row, address_texts
from bodyfriend_assets.lv1ex.kakao import STANDIN_REQUESTS_PER_SECOND, KakaoLocal
from bodyfriend_assets.lv1ex.standin import KakaoStandIn


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lv1ex_requests", description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=7, help="days the seeded data spans (the day is the last)")
    parser.add_argument("--rows", type=int, default=DEMO_ROWS, help="rows of the large tables")
    parser.add_argument("--window", choices=("day", "all"), default="day")
    args = parser.parse_args(argv)
    own_home = "BODYFRIEND_HOME" not in os.environ
    if own_home:
        os.environ["BODYFRIEND_HOME"] = tempfile.mkdtemp(prefix="bench-lv1ex-")
    from bodyfriend_assets import embedded

    try:
        return _measure(args)
    finally:
        if own_home:
            embedded.stop_server()


def _measure(args) -> int:
    from bodyfriend_assets import embedded
    from bodyfriend_assets.demo.generator import seed_legacy

    url = embedded.server_url(f"bench_lv1ex_{args.rows}_{args.days}d")
    catalog = load_catalog()
    names = [catalog.by_name(source.table).qualified_name for source in SOURCES]
    if embedded.ensure_database(url):
        print(f"seeding {', '.join(names)} ({args.rows} rows, {args.days} days) ...", flush=True)
        seed_legacy(url, rows=args.rows, start=START, days=args.days, tables=names)
    day = datetime.combine(START + timedelta(days=args.days - 1), datetime.min.time())
    addresses = {source.table: _addresses(url, catalog.by_name(source.table), source, day, args.window)
                 for source in SOURCES}
    print(f"addresses of {'the day ' + str(day.date()) if args.window == 'day' else 'every day'}:")
    server, refined_at = KakaoStandIn(), datetime.now(timezone.utc)
    try:
        passes = {name: _refine_all(server, addresses, client, refined_at) for name, client in PASSES.items()}
    finally:
        server.stop()
    for name, result in passes.items():
        print(f"{name}:")
        for table in [*addresses, "total"]:
            count = len(addresses[table]) if table in addresses else sum(map(len, addresses.values()))
            searches, requests, seconds, _ = result[table]
            print(f"  {table:<24} {count:>6} addresses, {searches:>6} texts searched, {requests:>6} requests, {seconds:6.1f} s")
    (_, before), *_, (_, after) = passes.items()
    print(f"requests: {before['total'][1]} -> {after['total'][1]} ({before['total'][1] / max(after['total'][1], 1):.1f}x fewer); "
          f"seconds: {before['total'][2]:.1f} -> {after['total'][2]:.1f} ({before['total'][2] / max(after['total'][2], 1e-9):.1f}x)")
    same = all(result[t][3] == before[t][3] for result in passes.values() for t in addresses)
    print(f"the same address_master rows in every pass: {same}")
    return 0 if same else 1


class _NewConnectionEachRequest(KakaoLocal):
    """The client as it was: a new connection for every request."""

    def _exchange(self, target: str):
        try:
            return super()._exchange(target)
        finally:
            self.close()


PASSES = {
    "before: no memo, a new connection each request": lambda **kw: _NewConnectionEachRequest(memo_entries=0, **kw),
    "no memo, one kept connection": lambda **kw: KakaoLocal(memo_entries=0, **kw),
    "after: memo and one kept connection": lambda **kw: KakaoLocal(**kw),
}


def _addresses(url, entry, source, day: datetime, window: str) -> list[str]:
    engine = sa.create_engine(url)
    try:
        table = sa.Table(entry.name, sa.MetaData(), schema=entry.source_schema, autoload_with=engine)
        by_name = {c.name.lower(): c for c in table.columns}
        wanted = [by_name[name] for pair in source.columns for name in pair]
        query = sa.select(*wanted)
        if window == "day" and entry.cursor_column:
            cursor = by_name[entry.cursor_column.lower()]
            query = query.where(cursor >= day, cursor < day + timedelta(days=1))
        with engine.connect() as conn:
            frame = pd.DataFrame(conn.execute(query).all(), columns=[c.name.lower() for c in wanted], dtype=object)
    finally:
        engine.dispose()
    return sorted(address_texts(frame, source))


def _refine_all(server: KakaoStandIn, addresses: dict[str, list[str]], make_client, refined_at: datetime) -> dict:
    results, totals = {}, [0, 0, 0.0, None]
    for table, texts in addresses.items():
        client = make_client(base_url=server.url, key=server.key, requests_per_second=STANDIN_REQUESTS_PER_SECOND)
        began = time.monotonic()
        rows = [address_row(text, client.refine(text), refined_at) for text in texts]
        results[table] = (client.searches, client.requests_sent, time.monotonic() - began, rows)
        client.close()
        for n, value in enumerate(results[table][:3]):
            totals[n] += value
    results["total"] = tuple(totals)
    return results


if __name__ == "__main__":
    raise SystemExit(main())
