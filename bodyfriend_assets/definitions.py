"""The one place that builds the platform's Dagster ``Definitions``.

Loading it validates the catalog (a bad entry fails here, naming it) but touches no database.
"""

from __future__ import annotations

import dagster as dg

from bodyfriend_assets import lv1, lv2
from bodyfriend_assets.alerts import build_alert_sensors
from bodyfriend_assets.automation import compat_job, compat_schedule, daily_job, daily_schedule
from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.compat.completions import blocking_checks_of
from bodyfriend_assets.compat.dag_ids import dag_ids_of, stand_in_dags
from bodyfriend_assets.compat.dag_log import build_dag_log_sensor
from bodyfriend_assets.compat.dependency_manager import (
    build_dependency_manager_asset,
    build_dependency_manager_check,
    expected_dependencies,
    stand_in_dependencies,
)
from bodyfriend_assets.event_batch_size import store_events_in_batches
from bodyfriend_assets.hc import HerokuConnect, build_hc_assets
from bodyfriend_assets.legacy import legacy_specs
from bodyfriend_assets.long_lived import keep_for_life
from bodyfriend_assets.lv0 import lv0_assets
from bodyfriend_assets.lv1ex import lv1ex_assets
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets.step_execution import STEPS_AT_ONCE, executor_from_environment
from bodyfriend_assets.step_server import STEP_PRELOAD
from bodyfriend_assets.storage.io_manager import DATAHUB_IO, DataHubIOManager
from bodyfriend_assets.transforms import build_model_steps

# A run created or stepped in a process that loaded these definitions (the documented
# `dagster asset materialize --partition-range`, a run worker, its steps) stores its planned events
# and a range output's materializations in batches (event_batches.py): before, a 7-day lv0 range
# spent 1-3 s writing 217 planned events one by one before its first step.
store_events_in_batches()

catalog = load_catalog()

# Every asset of the chain; the old system's tables are derived from it: dag_log mirrors their
# materializations and dependency_manager is their lineage.
lv0_layer = lv0_assets(catalog)
# lv1ex: the lv1 tables' new addresses refined by Kakao's address search into lv1.address_master
lv1ex_layer = lv1ex_assets(catalog)
platform_assets = [
    *legacy_specs(catalog),
    *lv0_layer,
    # lv1, then lv2 (which reads lv1ex's refined addresses): one .sql file per table, run inside
    # PostgreSQL, one step per layer
    *build_model_steps([*lv1.models, *lv2.models], upstream=lv0_layer, catalog=catalog, lv2_upstream=lv1ex_layer),
    *lv1ex_layer,
    # hc: lv2 upserted into the Heroku Connect tables, parents before children
    build_hc_assets(catalog),
]
dag_ids = dag_ids_of(platform_assets, catalog)
stand_ins = stand_in_dags(platform_assets, catalog, dag_ids)  # old DAGs without an asset of their own
blocking_checks = blocking_checks_of(platform_assets)  # a materialization that fails one completes no DAG
dependencies = expected_dependencies(platform_assets, dag_ids) | stand_in_dependencies(stand_ins)

# Every job's steps run in processes forked from one that has already imported the platform, so
# a step starts in a fraction of a second rather than the ~2 s a fresh interpreter takes to import
# Dagster and these definitions (README, "Performance"). The fork server is started by the run's
# process, when it builds the instance (step_server.py), and keeps that process's environment;
# every run has a process of its own, so the steps of a run see the environment the run was
# launched with. BODYFRIEND_EXECUTOR=celery sends the steps to Celery workers instead
# (step_execution.py, README "Deployment"). The fork server also imports what a step needs to
# build the run's instance (step_preload.py).
step_executor = executor_from_environment(local=dg.multiprocess_executor.configured({
    "start_method": {"forkserver": {"preload_modules": list(STEP_PRELOAD)}},
    "max_concurrent": STEPS_AT_ONCE,
}))

# The URLs as dg.EnvVar where the variables are set: the UI shows which variable each reads.
datahub = DataHub.from_environment()
defs = dg.Definitions(
    assets=[*platform_assets, build_dependency_manager_asset(dependencies)],
    asset_checks=[
        build_dependency_manager_check(dependencies),
    ],
    jobs=[daily_job, compat_job],
    schedules=[daily_schedule, compat_schedule],
    sensors=[
        build_dag_log_sensor(dag_ids, stand_ins=stand_ins, blocking_checks=blocking_checks),
        # e-mails: a failed run, a failed blocking check, a table not fresh at 07:00 KST
        *build_alert_sensors(watched=dag_ids, blocking_checks=blocking_checks),
    ],
    resources={
        "legacy": LegacyDatabase.from_environment(),
        "datahub": datahub,
        # Python assets' tables (io_manager_key=DATAHUB_IO): read in bounded chunks, written by COPY
        DATAHUB_IO: DataHubIOManager(datahub=datahub),
        "heroku_connect": HerokuConnect(),
    },
    executor=step_executor,
)

# Dagster and these definitions live as long as the process: the collector need not walk them
# again (long_lived.py).
keep_for_life()
