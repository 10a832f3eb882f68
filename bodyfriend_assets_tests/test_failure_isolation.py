"""One failure stops only its own chain: the nightly job with a source table gone, and a run with a
failing blocking check, on the project's own executor (forked step processes) and a real instance.

Every asset not downstream of the failure is materialized in the same run; the failed asset and
its dependents are not; the run ends failed, naming them.
"""

import logging
import os
import shutil
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest

from bodyfriend_assets.automation import LAYERS
from bodyfriend_assets.lv1ex import lv1ex_assets
from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.definitions import defs, step_executor
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.lv0 import lv0_assets
from bodyfriend_assets.resources import DataHub, LegacyDatabase
from bodyfriend_assets.transforms import build_sql_assets, load_layer
from bodyfriend_assets_tests.conftest import rows

PARTITION = "2024-01-03"
REPOSITORY = Path(__file__).resolve().parents[1]
MODELS_DIR_VAR = "BODYFRIEND_TEST_MODELS_DIR"


@pytest.fixture
def seeded(platform_env, monkeypatch, make_database, tmp_path):
    """A seeded stand-in and a Data Hub, and a Dagster instance configured by the project's
    dagster.yaml (PostgreSQL storage) for the runs, each run in a process of its own as in
    production (the step processes fork from a server that keeps its first run's environment)."""
    legacy_url, datahub_url = platform_env
    monkeypatch.setenv("BODYFRIEND_HC_MODE", "development")  # the test hub gets the hc stand-in
    monkeypatch.setenv("DAGSTER_PG_URL", make_database("dagster").render_as_string(hide_password=False))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    shutil.copy(REPOSITORY / "dagster.yaml", tmp_path / "dagster.yaml")
    seed_legacy(legacy_url, rows=600, days=5)
    return legacy_url, datahub_url


def daily_job():
    """The nightly job exactly as the schedule launches it."""
    return defs.resolve_job_def("daily_data_hub")


def execute(job_fn_name: str) -> None:
    """One run of the job ``job_fn_name`` returns, for PARTITION, on the instance at DAGSTER_HOME."""
    with dg.DagsterInstance.get() as instance:
        dg.execute_job(dg.reconstructable(globals()[job_fn_name]), instance=instance,
                       tags={"dagster/partition": PARTITION})


@dataclass
class Run:
    success: bool
    events: list  # the run's stored events (EventLogEntry)

    def of_type(self, event_type) -> list:
        return [e.dagster_event for e in self.events if e.dagster_event and e.dagster_event.event_type == event_type]

    def materialized(self) -> set[str]:
        return {e.asset_key.to_user_string() for e in self.of_type(dg.DagsterEventType.ASSET_MATERIALIZATION)}

    def checks(self) -> dict[tuple[str, str], bool]:
        return {(e.event_specific_data.asset_key.to_user_string(), e.event_specific_data.check_name):
                e.event_specific_data.passed for e in self.of_type(dg.DagsterEventType.ASSET_CHECK_EVALUATION)}

    def steps(self, event_type) -> set[str]:
        return {e.step_key for e in self.of_type(event_type)}

    def errors(self) -> list[str]:
        return [e.user_message for e in self.events if e.level == logging.ERROR]


def run(job_fn) -> Run:
    code = ("import sys; from bodyfriend_assets_tests.test_failure_isolation import execute; "
            "execute(sys.argv[1])")
    subprocess.run([sys.executable, "-c", code, job_fn.__name__], check=True)
    with dg.DagsterInstance.get() as instance:
        (record,) = instance.get_run_records()
        return Run(record.dagster_run.is_success, list(instance.all_logs(record.dagster_run.run_id)))


def downstream_of(key: str) -> set[str]:
    graph = defs.resolve_asset_graph()
    found, todo = {key}, [dg.AssetKey.from_user_string(key)]
    while todo:
        for child in graph.get(todo.pop()).child_keys:
            if child.to_user_string() not in found:
                found.add(child.to_user_string())
                todo.append(child)
    return found


def _lv0_steps(*tables: str) -> set[str]:
    """The lv0 steps of the nightly job (those loading ``tables``, if named)."""
    return {assets.op.name for assets in lv0_assets(load_catalog())
            if not tables or any(key.path[-1] in tables for key in assets.keys)}


def test_a_dropped_source_table_stops_only_its_own_chain_and_the_night_completes_the_rest(seeded):
    legacy_url, _ = seeded
    rows(legacy_url, "DROP TABLE rental.r_goods")

    result = run(daily_job)

    night = {key.to_user_string() for key in defs.resolve_asset_graph().get_all_asset_keys()
             if key.path[0] in LAYERS}
    stopped = downstream_of("lv0/r_goods")
    assert {"lv1/r_goods", "lv2/product2", "hc/product2", "hc/opportunity"} <= stopped
    # every other asset of every layer was materialized in this same run
    assert result.materialized() == night - stopped
    for layer in ("lv0", "lv1", "lv2", "hc"):
        assert any(key.startswith(f"{layer}/") for key in night - stopped), layer
    # no step was skipped or abandoned: the failure stayed with the assets it concerns
    assert not result.of_type(dg.DagsterEventType.STEP_SKIPPED)
    lv1ex = {assets.op.name for assets in lv1ex_assets(load_catalog())}  # addresses: after lv1, before lv2
    assert result.steps(dg.DagsterEventType.STEP_SUCCESS) == _lv0_steps() | {"lv1_models", *lv1ex, "lv2_models"}
    # the run ended failed, naming the table and what it stopped
    assert not result.success
    (failure,) = result.of_type(dg.DagsterEventType.STEP_FAILURE)
    assert failure.step_key == "hc_objects"
    message = str(failure.event_specific_data.error)
    assert "failed: lv0/r_goods" in message
    assert "hc/opportunity" in message and "lv1/r_goods" in message
    assert any("lv0.r_goods failed: legacy table RENTAL.R_GOODS not found" in m for m in result.errors())


# -- a failing blocking check across steps ----------------------------------------------------

CODES = """
    -- key: major_cd, minor_cd
    -- mode: full
    -- source: UNIERP5.B_MINOR
    SELECT btrim(m.major_cd) AS major_cd, btrim(m.minor_cd) AS minor_cd, m.minor_nm FROM lv0.b_minor AS m
"""
# a major has many minors: major_cd alone is not a key, and the key check (blocking) fails
MAJORS = """
    -- key: major_cd
    -- mode: full
    -- source: UNIERP5.B_MAJOR
    SELECT btrim(m.major_cd) AS major_cd, m.minor_nm FROM lv0.b_minor AS m
"""
MAJOR_NAMES = """
    -- key: major_cd
    -- mode: full
    -- source: UNIERP5.B_MAJOR
    SELECT major_cd, min(minor_nm) AS first_name FROM lv1.majors GROUP BY major_cd
"""
CODE_COUNT = """
    -- key: major_cd
    -- mode: full
    -- source: UNIERP5.B_MINOR
    SELECT major_cd, count(*) AS codes FROM lv1.codes GROUP BY major_cd
"""


def blocking_check_job():
    """The platform's lv0 step for two tables, then lv1 and lv2 as two steps of their own (so
    the failing check and what it blocks are in different steps), on the project's executor."""
    root = Path(os.environ[MODELS_DIR_VAR])
    catalog = load_catalog()
    lv0 = lv0_assets(catalog)
    lv1 = build_sql_assets(load_layer(root / "lv1", "lv1"), upstream=lv0, catalog=catalog, name="lv1_models")
    lv2 = build_sql_assets(load_layer(root / "lv2", "lv2"), upstream=[*lv0, lv1], catalog=catalog, name="lv2_models")
    selection = (dg.AssetSelection.assets(["lv0", "b_major"], ["lv0", "b_minor"])
                 | dg.AssetSelection.groups("lv1", "lv2"))
    job = dg.define_asset_job("blocking_check_probe", selection=selection)
    return dg.Definitions(
        assets=[*lv0, lv1, lv2], jobs=[job], executor=step_executor,
        resources={"legacy": LegacyDatabase(), "datahub": DataHub()},
    ).resolve_job_def("blocking_check_probe")


def test_a_failing_blocking_check_stops_only_what_reads_the_table_in_the_later_steps(seeded, tmp_path, monkeypatch):
    for relative, sql in {"lv1/codes.sql": CODES, "lv1/majors.sql": MAJORS,
                          "lv2/major_names.sql": MAJOR_NAMES, "lv2/code_count.sql": CODE_COUNT}.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(textwrap.dedent(sql).strip() + "\n", encoding="utf-8")
    monkeypatch.setenv(MODELS_DIR_VAR, str(tmp_path))

    result = run(blocking_check_job)

    checks = result.checks()
    assert checks[("lv1/majors", "key_unique_and_not_null")] is False
    assert checks[("lv1/codes", "key_unique_and_not_null")] is True
    # the step holding the failed check succeeded, so the next step ran: it skipped the model
    # reading the blocked table and refreshed the one beside it
    assert result.steps(dg.DagsterEventType.STEP_SUCCESS) == _lv0_steps("b_major", "b_minor") | {"lv1_models"}
    assert result.materialized() == {"lv0/b_major", "lv0/b_minor", "lv1/codes", "lv1/majors", "lv2/code_count"}
    assert ("lv2/major_names", "key_unique_and_not_null") not in checks
    assert not result.success
    (failure,) = result.of_type(dg.DagsterEventType.STEP_FAILURE)
    assert failure.step_key == "lv2_models"
    message = str(failure.event_specific_data.error)
    assert "blocking check failed: lv1/majors: key_unique_and_not_null" in message
    assert "skipped: lv2/major_names" in message
