"""Processes that start together on an empty Dagster instance database take turns creating its
tables (instance_storage.tables_lock): real processes, a real PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from bodyfriend_assets import instance_storage
from bodyfriend_assets.instance_storage import TABLES_LOCK
from bodyfriend_assets_tests.processes import REPOSITORY, dagster_home

WAIT_SECONDS = 300  # a bound for a hung process, not a speed requirement

# Imports first, then waits for the start file (if any), then builds the instance.
BUILD = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
import dagster as dg
import bodyfriend_assets.instance_storage
start = sys.argv[3]
while start and not os.path.exists(start):
    time.sleep(0.001)
with dg.DagsterInstance.from_config(sys.argv[2]) as instance:
    assert instance.get_runs() == []
print("built")
"""


@pytest.fixture
def empty_instance(tmp_path, monkeypatch, make_database):
    url = make_database("dagster")
    monkeypatch.setenv("DAGSTER_PG_URL", url.render_as_string(hide_password=False))
    return url, str(dagster_home(tmp_path / "dagster_home"))


def _build(home: str, start: Path | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", BUILD, str(REPOSITORY), home, str(start or "")],
        env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _tables(url) -> set[str]:
    engine = sa.create_engine(url)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_a_process_waits_for_the_tables_lock_before_it_creates_the_instance_tables(empty_instance):
    url, home = empty_instance
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    key = sa.func.hashtext(TABLES_LOCK)
    try:
        with engine.connect() as holder:
            holder.execute(sa.select(sa.func.pg_advisory_lock(key)))  # another process, creating them
            process = _build(home)
            waiting = sa.select(sa.func.count()).select_from(sa.text("pg_locks")).where(
                sa.text("locktype = 'advisory' AND NOT granted")
            )
            deadline = time.monotonic() + WAIT_SECONDS
            while not holder.execute(waiting).scalar_one():
                assert process.poll() is None, f"built without waiting for the lock: {process.communicate()}"
                assert time.monotonic() < deadline, "the process never asked for the tables lock"
                time.sleep(0.05)
            assert "runs" not in _tables(url)
            holder.execute(sa.select(sa.func.pg_advisory_unlock(key)))
            out, err = process.communicate(timeout=WAIT_SECONDS)
    finally:
        engine.dispose()
    assert process.returncode == 0, err
    assert {"runs", "event_logs", "instance_info", "secondary_indexes"} <= _tables(url)


def test_processes_started_together_on_an_empty_instance_database_all_start(tmp_path, make_database, monkeypatch):
    """The daemon, the webserver and the code server of a first deployment, or commands run at
    once: six processes build the instance at the same moment, twice, each on an empty database.
    Without the lock, some of them exited on a table or type another had just created."""
    for round_ in range(2):
        url = make_database("dagster")
        monkeypatch.setenv("DAGSTER_PG_URL", url.render_as_string(hide_password=False))
        home = str(dagster_home(tmp_path / f"dagster_home_{round_}"))
        start = tmp_path / f"start_{round_}"
        processes = [_build(home, start) for _ in range(6)]
        time.sleep(3)  # each has imported what it needs by now; the start file releases them at once
        start.touch()
        results = [(p, *p.communicate(timeout=WAIT_SECONDS)) for p in processes]
        failed = [err.strip().splitlines()[-1] for p, out, err in results if p.returncode != 0]
        assert failed == []


def test_a_process_that_waits_too_long_for_the_tables_lock_fails_naming_the_instance_database(
    empty_instance, monkeypatch
):
    url, _ = empty_instance
    monkeypatch.setattr(instance_storage, "TABLES_LOCK_TIMEOUT_SECONDS", 1)
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as holder:
            holder.execute(sa.select(sa.func.pg_advisory_lock(sa.func.hashtext(TABLES_LOCK))))
            with pytest.raises(instance_storage.InstanceTablesLockTimeout) as raised:
                with instance_storage.tables_lock(url.render_as_string(hide_password=False)):
                    pass
    finally:
        engine.dispose()
    assert "DAGSTER_PG_URL" in str(raised.value) and "1 s" in str(raised.value)
    assert not url.password or url.password not in str(raised.value)


def test_a_process_stores_events_and_reads_runs_on_the_connections_it_keeps(empty_instance):
    """dagster-postgres opens a connection for each event it stores and each read of a run (a few
    ms each, on both ends); the platform's storage keeps one for each, and asks once whether a
    table exists (instance_storage, event_batches)."""
    _, home = empty_instance
    opened, table_lookups = [], []

    def count(dbapi_connection, record):
        opened.append(1)

    def lookups(conn, cursor, statement, parameters, context, executemany):
        if "pg_catalog.pg_class" in statement:  # SQLAlchemy's has_table
            table_lookups.append(parameters)

    times = 20
    with dg.DagsterInstance.from_config(home) as instance:
        # The pools' first connections, and the first look at each table
        instance.get_runs()
        instance.report_runless_asset_event(dg.AssetMaterialization("warm_up", partition="2024-01-01"))
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=dg.AssetKey("warm_up"), check_name="rows_match_source", passed=True, partition="2024-01-01",
        ))
        sa.event.listen(sa.pool.Pool, "connect", count)
        sa.event.listen(sa.engine.Engine, "before_cursor_execute", lookups)
        try:
            for n in range(times):
                day = f"2024-01-{n + 1:02d}"
                instance.report_runless_asset_event(dg.AssetMaterialization("lv0_table", partition=day))
                instance.report_runless_asset_event(dg.AssetCheckEvaluation(
                    asset_key=dg.AssetKey("lv0_table"), check_name="rows_match_source", passed=True, partition=day,
                ))
                instance.get_runs(limit=1)
            stored = instance.fetch_materializations(dg.AssetKey("lv0_table"), limit=times + 1).records
        finally:
            sa.event.remove(sa.pool.Pool, "connect", count)
            sa.event.remove(sa.engine.Engine, "before_cursor_execute", lookups)
    assert len(stored) == times
    assert len(opened) <= 2, f"{len(opened)} connections opened for {times} rounds"
    assert table_lookups == []


def test_a_kept_connection_the_server_dropped_is_replaced_when_next_taken(empty_instance):
    """A step may be quiet for minutes while it copies a large table: long enough for the server
    to restart or a network device to drop the idle connection it keeps (kept_connections.py)."""
    url, home = empty_instance
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    end_the_others = sa.text(
        "SELECT count(pg_terminate_backend(pid, 10000)) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    try:
        with dg.DagsterInstance.from_config(home) as instance:
            instance.get_runs()
            instance.report_runless_asset_event(dg.AssetMaterialization("lv0_table", partition="2024-01-01"))
            with admin.connect() as conn:
                ended = conn.execute(end_the_others).scalar_one()
            assert ended >= 2  # the events' connection and the runs'
            instance.report_runless_asset_event(dg.AssetMaterialization("lv0_table", partition="2024-01-02"))
            assert instance.get_runs() == []
            stored = instance.fetch_materializations(dg.AssetKey("lv0_table"), limit=5).records
    finally:
        admin.dispose()
    assert sorted(record.partition_key for record in stored) == ["2024-01-01", "2024-01-02"]
