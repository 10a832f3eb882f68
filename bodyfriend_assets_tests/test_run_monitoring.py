"""No stuck runs, no leaked pool slots: a run whose worker is killed is failed by the run monitor
and relaunched, its ``large_tables`` slot is freed, and the next night's large tables load; a
step waiting on its pool says at INFO which run holds it.

The daemon runs on a test-only copy of the project's dagster.yaml whose run-monitoring intervals
are shortened (``poll_interval_seconds``, ``free_slots_after_run_end_seconds``: 2 s instead of 60),
since dagster.yaml takes no environment variables for them; everything else is the project's.
"""

from __future__ import annotations

import logging
import signal
import threading

import dagster as dg
import psutil
import pytest
import sqlalchemy as sa

from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.lv0 import LARGE_TABLE_POOL, LARGE_TABLES_OP, build_lv0_asset
from bodyfriend_assets.pools import APPLICATION_PREFIX
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets.run_launcher import run_worker
from bodyfriend_assets_tests.conftest import rows
from bodyfriend_assets_tests.daemon import messages, run_group, running_daemon, write_dagster_home

LARGE = [entry for entry in load_catalog().tables if entry.large]
SEEDED = [entry.qualified_name for entry in LARGE] + ["RENTAL.R_GOODS", "RENTAL.V_SALES_LOUNGE"]
RESOURCES = {"legacy": LegacyDatabase(), "datahub": DataHub()}
POOL_HOLDER = """
    SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted
      AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext(:name)::bigint
"""


def _url(url) -> str:
    return url.render_as_string(hide_password=False)


def _pool_holders(datahub_url) -> list[str]:
    return [name for (name,) in rows(datahub_url, POOL_HOLDER, name=f"pool {LARGE_TABLE_POOL}")]


def _kill_process_tree(pid: int) -> list[int]:
    """SIGKILL the run worker and every process under it (its step processes), as an OOM kill or
    a lost container would: no handler runs, nothing is reported."""
    worker = psutil.Process(pid)
    processes = [worker, *worker.children(recursive=True)]
    for process in processes:
        process.send_signal(signal.SIGKILL)
    psutil.wait_procs(processes, timeout=30)
    return [p.pid for p in processes]


def _materialized(instance, run_id: str) -> set[str]:
    return {record.dagster_event.asset_key.path[-1]
            for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}


@pytest.mark.timeout(1800)  # three runs through the daemon: slow on a busy machine
def test_a_killed_run_is_failed_relaunched_and_the_next_night_loads_its_large_tables(
    platform_env, make_database, tmp_path
):
    legacy_url, datahub_url = platform_env
    seed_legacy(legacy_url, rows=60_000, days=2, tables=SEEDED)
    dagster_home = write_dagster_home(
        tmp_path / "dagster_home",
        run_monitoring={"poll_interval_seconds": 2, "free_slots_after_run_end_seconds": 2},
    )
    with running_daemon(
        dagster_home, tmp_path,
        BODYFRIEND_LEGACY_URL=_url(legacy_url), BODYFRIEND_DATAHUB_URL=_url(datahub_url),
        DAGSTER_PG_URL=_url(make_database("dagster")),
    ) as daemon:
        first = daemon.launch("2024-01-01", LARGE_TABLES_OP)
        # Mid-load: the large-table step holds its pool, under its run's name, in the Data Hub.
        daemon.wait_until("the large-table step to hold its pool",
                          lambda _: _pool_holders(datahub_url) == [APPLICATION_PREFIX + first])
        with daemon.instance() as instance:
            pid, _ = run_worker(instance, first)
        killed = _kill_process_tree(pid)
        assert len(killed) >= 2  # the worker and at least its step process

        failed = daemon.wait_for_end(first)
        assert failed.status == dg.DagsterRunStatus.FAILURE
        # Said by whichever notices first: the code server that started the worker (it sees its
        # child exit), or the run monitor's health check (which also covers a code server that
        # died with it).
        with daemon.instance() as instance:
            said = [(r.dagster_event.message if r.dagster_event else r.user_message) or ""
                    for r in instance.all_logs(first)]  # an engine event, or the run's failure
        assert any(f"run worker process {pid} is gone" in m or
                   f"Run execution process for {first} was terminated by signal 9" in m for m in said), said
        relaunch = daemon.wait_until(
            "a relaunch of the killed run to succeed",
            lambda i: [r for r in run_group(i, first) if r.status == dg.DagsterRunStatus.SUCCESS],
        )[0]
        assert relaunch.parent_run_id == first and relaunch.tags["dagster/retry_number"] == "1"
        daemon.wait_until(
            "the killed run's pool slot to be freed",
            lambda i: first not in {s.run_id for s in i.event_log_storage.get_concurrency_info(LARGE_TABLE_POOL).claimed_slots},
        )

        second = daemon.launch("2024-01-02", LARGE_TABLES_OP)
        assert daemon.wait_for_end(second).status == dg.DagsterRunStatus.SUCCESS
        with daemon.instance() as instance:
            assert _materialized(instance, relaunch.run_id) == {e.name for e in LARGE}
            assert _materialized(instance, second) == {e.name for e in LARGE}
            assert not instance.event_log_storage.get_concurrency_info(LARGE_TABLE_POOL).claimed_slots
    assert not _pool_holders(datahub_url)


def test_a_step_waiting_for_its_pool_says_at_info_which_run_holds_it(platform_env):
    legacy_url, datahub_url = platform_env
    seed_legacy(legacy_url, rows=300, days=1, tables=SEEDED)
    entry = next(e for e in LARGE if e.name == "r_order_contract")
    other_run = "0f0e0d0c-other-run-holding-the-pool"
    holder = sa.create_engine(datahub_url)
    try:
        with holder.connect() as conn, dg.instance_for_test() as instance:
            conn.execute(sa.select(sa.func.set_config("application_name", APPLICATION_PREFIX + other_run, False)))
            conn.execute(sa.select(sa.func.pg_advisory_lock(sa.func.hashtext(f"pool {LARGE_TABLE_POOL}"))))
            conn.commit()
            outcome = {}
            runner = threading.Thread(target=lambda: outcome.update(result=dg.materialize(
                [build_lv0_asset(entry)], partition_key="2024-01-01", resources=RESOURCES, instance=instance)))
            runner.start()
            waiting = f"waiting for the {LARGE_TABLE_POOL} pool: held by run {other_run}"

            def said_so():
                runs = instance.get_runs(limit=1)
                return runs and [r for r in instance.all_logs(runs[0].run_id)
                                 if waiting in r.user_message and r.level == logging.INFO]

            while not said_so():
                assert runner.is_alive(), "the step ended without waiting for the pool"
                runner.join(0.2)
            run_id = instance.get_runs(limit=1)[0].run_id
            assert not _materialized(instance, run_id)  # nothing loaded while the pool is held
            conn.execute(sa.select(sa.func.pg_advisory_unlock(sa.func.hashtext(f"pool {LARGE_TABLE_POOL}"))))
            conn.commit()
            runner.join()
            assert outcome["result"].success
            assert _materialized(instance, run_id) == {entry.name}
            assert f"the {LARGE_TABLE_POOL} pool is free: going on" in messages(instance, run_id)
    finally:
        holder.dispose()
