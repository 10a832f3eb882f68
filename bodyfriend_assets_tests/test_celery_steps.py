"""Steps on Celery workers: a real Redis broker, two worker processes started by
``bodyfriend-serve worker``, the daily job run by the ``dagster`` CLI with
``BODYFRIEND_EXECUTOR=celery``, against the same instance (the project's dagster.yaml) and ERP
stand-in as a local run of the same day into a Data Hub of its own."""

import hashlib
import json
import os
import subprocess
import sys

import dagster as dg
import pytest
import sqlalchemy as sa

from bodyfriend_assets.definitions import step_executor
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.lv0 import LARGE_TABLE_POOL, LARGE_TABLES_OP, SMALL_TABLE_STEPS, SMALL_TABLES_OP
from bodyfriend_assets.step_execution import BROKER_URL_VAR, EXECUTOR_VAR, ExecutorSettingsError
from bodyfriend_assets_tests.processes import (
    REPOSITORY, answers, dagster_home, redis_server, running, served, wait_until,
)

PARTITION = "2024-01-03"
# Columns that say which run or transaction wrote a row and when, not what the row holds.
# Columns that say when, by which run, or as which database object a row was written, not what
# the data is: they differ between any two runs.
RUN_COLUMNS = {"_loaded_at", "_run_id", "run_id", "at", "created_at", "updated_at", "txid",
                "loaded_at", "since", "table_oid", "written_at", "refined_at"}
SMALL_STEPS = {f"{SMALL_TABLES_OP}_{n}" for n in range(1, SMALL_TABLE_STEPS + 1)}


def _daily_run(env: dict[str, str], executor: str) -> list[str]:
    tags = json.dumps({"dagster/partition": PARTITION, "test/executor": executor})
    return [sys.executable, "-m", "dagster", "job", "execute", "-m", "bodyfriend_assets.definitions",
            "-j", "daily_data_hub", "--tags", tags]


def _run_of(instance, executor: str):
    records = instance.get_run_records(dg.RunsFilter(tags={"test/executor": executor}))
    return records[0].dagster_run if records else None


def _steps(instance, run_id, event_type) -> dict[str, int]:
    """step key -> pid of the process that logged its event of ``event_type``."""
    return {log.dagster_event.step_key: log.dagster_event.pid
            for log in instance.all_logs(run_id, of_type=event_type)}


def datahub_contents(url) -> dict[str, str]:
    """Per table of the Data Hub, an md5 of its rows in order (without the columns naming the run)."""
    engine = sa.create_engine(url)
    try:
        inspector = sa.inspect(engine)
        contents = {}
        with engine.connect() as conn:
            for schema in inspector.get_schema_names():
                if schema in ("information_schema", "pg_catalog") or schema.startswith("pg_"):
                    continue
                for name in inspector.get_table_names(schema=schema):
                    table = sa.Table(name, sa.MetaData(), schema=schema, autoload_with=conn)
                    columns = [c for c in table.columns if c.name not in RUN_COLUMNS]
                    text = sorted(repr(tuple(row)) for row in conn.execute(sa.select(*columns)))
                    contents[f"{schema}.{name}"] = hashlib.md5("\n".join(text).encode()).hexdigest()
        return contents
    finally:
        engine.dispose()


@pytest.mark.timeout(1800)  # two daily runs of every layer and four servers: long on a busy machine
def test_a_daily_run_on_two_celery_workers_shares_its_steps_keeps_the_pool_and_ends_as_a_local_run(
    make_database, tmp_path, monkeypatch
):
    legacy = make_database("legacy")
    seed_legacy(legacy, rows=600, days=5)
    local_hub, celery_hub = make_database("hub"), make_database("hub")
    url = lambda u: u.render_as_string(hide_password=False)  # noqa: E731
    env = {**os.environ, "DAGSTER_HOME": str(dagster_home(tmp_path / "dagster_home")),
           "DAGSTER_PG_URL": url(make_database("dagster")), "BODYFRIEND_LEGACY_URL": url(legacy),
           "BODYFRIEND_HC_MODE": "development"}  # the Heroku Connect tables and their trigger log too
    monkeypatch.setenv("DAGSTER_PG_URL", env["DAGSTER_PG_URL"])
    with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
        # The pool's row at its default limit (1), before any run: see test_orchestration.
        instance.event_log_storage.initialize_concurrency_limit_to_default(LARGE_TABLE_POOL)

    local_env = {**env, "BODYFRIEND_DATAHUB_URL": url(local_hub), "BODYFRIEND_EXECUTOR": "local"}
    local = subprocess.run(_daily_run(local_env, "local"), env=local_env, cwd=REPOSITORY, capture_output=True)
    assert local.returncode == 0, local.stderr.decode(errors="replace")[-3000:]

    with redis_server(tmp_path) as broker:
        celery_env = {**env, "BODYFRIEND_DATAHUB_URL": url(celery_hub), "BODYFRIEND_EXECUTOR": "celery",
                      "BODYFRIEND_CELERY_BROKER_URL": broker}
        workers = {name: {**celery_env, "BODYFRIEND_WORKER_NAME": name} for name in ("one", "two")}
        # One step at a time per worker, executed in the worker's own process (its pid in the events).
        with served("worker", workers["one"], tmp_path, "--pool", "solo") as one, \
                served("worker", workers["two"], tmp_path, "--pool", "solo") as two:
            for name, process in (("one", one), ("two", two)):
                wait_until(lambda: answers("worker", workers[name]), f"worker {name} answers a ping", process=process)
            with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
                # Another large extraction holds the pool's one slot: the run's large-table step
                # must wait for it, while its small-table steps go ahead on the workers.
                instance.event_log_storage.claim_concurrency_slot(LARGE_TABLE_POOL, "other-run", LARGE_TABLES_OP)
                with running(_daily_run(celery_env, "celery"), celery_env, tmp_path / "celery_run.log") as run:
                    wait_until(lambda: _run_of(instance, "celery") is not None, "the Celery run starts", process=run)
                    run_id = _run_of(instance, "celery").run_id
                    wait_until(lambda: SMALL_STEPS <= set(_steps(instance, run_id, dg.DagsterEventType.STEP_SUCCESS)),
                               "the small-table steps succeed", process=run)
                    assert LARGE_TABLES_OP not in _steps(instance, run_id, dg.DagsterEventType.STEP_START)
                    instance.event_log_storage.free_concurrency_slot_for_step("other-run", LARGE_TABLES_OP)
                    assert run.wait(timeout=900) == 0, (tmp_path / "celery_run.log").read_text()[-3000:]
                started = _steps(instance, run_id, dg.DagsterEventType.STEP_START)
                assert instance.get_run_by_id(run_id).is_success

    lv1ex = {"lv1ex__v_customer", "lv1ex__r_shipping_info", "lv1ex__r_contract_move_receipt", "lv1ex__v_sales_lounge"}
    assert set(started) == {*SMALL_STEPS, LARGE_TABLES_OP, "lv1_models", *lv1ex, "lv2_models", "hc_objects"}
    # Every step ran in a worker, and each worker ran some.
    assert set(started.values()) == {one.pid, two.pid}, started
    local_contents, celery_contents = datahub_contents(local_hub), datahub_contents(celery_hub)
    assert len(local_contents) > 31 * 2  # lv0, lv1, lv2, hc and their bookkeeping
    assert celery_contents == local_contents


@dg.op
def where_am_i() -> int:
    return os.getpid()


@dg.job(executor_def=step_executor)
def one_step():
    where_am_i()


def _run_one_step() -> bool:
    with dg.instance_for_test() as instance:
        return dg.execute_job(dg.reconstructable(one_step), instance=instance).success


@pytest.mark.parametrize("choice", [None, "local"])
def test_the_local_executor_runs_steps_when_the_environment_names_it_or_nothing(monkeypatch, choice):
    if choice is None:
        monkeypatch.delenv(EXECUTOR_VAR, raising=False)
    else:
        monkeypatch.setenv(EXECUTOR_VAR, choice)
    assert _run_one_step()


@pytest.mark.parametrize(
    "choice, message",
    [
        ("celery", BROKER_URL_VAR),  # Celery without a broker: the run does not start, naming what is missing
        ("sometimes", f"{EXECUTOR_VAR} must be 'local' or 'celery'"),
    ],
)
def test_a_run_refuses_an_executor_choice_it_cannot_carry_out(monkeypatch, choice, message):
    monkeypatch.delenv(BROKER_URL_VAR, raising=False)
    monkeypatch.setenv(EXECUTOR_VAR, choice)
    with pytest.raises(ExecutorSettingsError, match=message):
        _run_one_step()
