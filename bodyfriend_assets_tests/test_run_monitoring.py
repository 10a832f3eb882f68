"""A step waiting on its pool says at INFO which run holds it (the pool's advisory lock in the
Data Hub names its holder through ``application_name``)."""

from __future__ import annotations

import logging
import threading

import dagster as dg
import sqlalchemy as sa

from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.lv0 import LARGE_TABLE_POOL, build_lv0_asset
from bodyfriend_assets.pools import APPLICATION_PREFIX
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets_tests.daemon import messages

LARGE = [entry for entry in load_catalog().tables if entry.large]
SEEDED = [entry.qualified_name for entry in LARGE] + ["RENTAL.R_GOODS", "RENTAL.V_SALES_LOUNGE"]
RESOURCES = {"legacy": LegacyDatabase(), "datahub": DataHub()}


def _materialized(instance, run_id: str) -> set[str]:
    return {record.dagster_event.asset_key.path[-1]
            for record in instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)}


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
