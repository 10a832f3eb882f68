"""The UI path, as an operator takes it: the Dagster webserver on workspace.yaml, its GraphQL API,
the daemon dequeuing the run, and the PostgreSQL instance storage recording it.

Real processes (``dagster-webserver``, ``dagster-daemon``), real databases, nothing mocked.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets_tests.conftest import scalar

PROJECT_ROOT = Path(__file__).resolve().parent.parent
PARTITION = "2024-01-03"
SNAPSHOT_TABLE = "b_major"
INCREMENTAL_TABLE = "r_order_contract_add"
STARTUP_TIMEOUT = 60
RUN_TIMEOUT = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except FileNotFoundError:
        return "<no output>"


class _Process:
    """A command in its own process group, output in a log file; stopped with SIGINT, then SIGKILL."""

    def __init__(self, name: str, args: list[str], env: dict, logs: Path):
        self.name = name
        self.log = logs / f"{name}.log"
        self._out = self.log.open("wb")
        self.popen = subprocess.Popen(
            args, cwd=PROJECT_ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )

    def output(self) -> str:
        return f"--- {self.name} (exit code {self.popen.poll()}) ---\n{_tail(self.log)}"

    def stop(self) -> None:
        try:
            if self.popen.poll() is None:
                os.killpg(self.popen.pid, signal.SIGINT)
                try:
                    self.popen.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
            # The group also holds the code servers and run workers the process started.
            try:
                os.killpg(self.popen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.popen.wait(timeout=10)
        finally:
            self._out.close()


class _Platform:
    def __init__(self, url: str, processes: list[_Process]):
        self.url = url
        self.processes = processes

    def output(self) -> str:
        return "\n".join(p.output() for p in self.processes)

    def graphql(self, query: str, **variables) -> dict:
        response = requests.post(f"{self.url}/graphql", json={"query": query, "variables": variables}, timeout=30)
        assert response.status_code == 200, f"{response.status_code}: {response.text[:2000]}"
        body = response.json()
        assert not body.get("errors"), body["errors"]
        return body["data"]


@pytest.fixture
def instance_url(make_database):
    return make_database("dagster")


@pytest.fixture
def platform(platform_env, instance_url, tmp_path):
    """Seeded stand-in legacy database, an empty Data Hub, an instance database; the webserver and
    the daemon running on workspace.yaml from the repository root, with DAGSTER_HOME holding a copy
    of the project's dagster.yaml."""
    legacy_url, _ = platform_env
    seed_legacy(legacy_url, rows=300)

    dagster_home = tmp_path / "dagster_home"
    dagster_home.mkdir()
    shutil.copyfile(PROJECT_ROOT / "dagster.yaml", dagster_home / "dagster.yaml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env.update(
        DAGSTER_HOME=str(dagster_home),
        DAGSTER_PG_URL=instance_url.render_as_string(hide_password=False),
        PYTHONUNBUFFERED="1",
    )
    port = _free_port()
    processes = []
    try:
        processes.append(_Process(
            "webserver",
            [sys.executable, "-m", "dagster_webserver", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            env, tmp_path,
        ))
        processes.append(_Process(
            "daemon", [sys.executable, "-m", "dagster._daemon", "run", "-w", "workspace.yaml"], env, tmp_path,
        ))
        platform = _Platform(f"http://127.0.0.1:{port}", processes)
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while True:
            exited = [p for p in processes if p.popen.poll() is not None]
            assert not exited, f"{exited[0].name} exited during startup\n{platform.output()}"
            try:
                if requests.get(f"{platform.url}/server_info", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, (
                f"the webserver did not answer /server_info within {STARTUP_TIMEOUT}s\n{platform.output()}"
            )
            time.sleep(0.5)
        yield platform
    finally:
        for process in reversed(processes):
            try:
                process.stop()
            except Exception as error:  # stop the others regardless
                print(f"stopping {process.name}: {error!r}", file=sys.stderr)


ASSET_GRAPH = """
{
  assetNodes {
    assetKey { path }
    groupName
    dependencyKeys { path }
    jobNames
    isPartitioned
    repository { name location { name } }
  }
}
"""

LAUNCH_RUN = """
mutation Launch($params: ExecutionParams!) {
  launchRun(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on PythonError { message stack }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on Error { message }
  }
}
"""

RUN = """
query Run($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run {
      status
      tags { key value }
      eventConnection(limit: 1000) {
        events {
          __typename
          ... on MessageEvent { message }
          ... on ErrorEvent { error { message stack } }
        }
      }
    }
    ... on Error { message }
  }
}
"""


def _launch(platform: _Platform, node: dict, keys: list[list[str]], partition: str) -> str:
    (job,) = [name for name in node["jobNames"] if name.startswith("__ASSET_JOB")]
    params = {
        "selector": {
            "repositoryLocationName": node["repository"]["location"]["name"],
            "repositoryName": node["repository"]["name"],
            "pipelineName": job,
            "assetSelection": [{"path": key} for key in keys],
            "assetCheckSelection": [],
        },
        "runConfigData": {},
        "mode": "default",
        "executionMetadata": {"tags": [{"key": "dagster/partition", "value": partition}]},
    }
    launched = platform.graphql(LAUNCH_RUN, params=params)["launchRun"]
    assert launched["__typename"] == "LaunchRunSuccess", launched
    # The queued run coordinator: the webserver only enqueues; the daemon starts the run.
    assert launched["run"]["status"] == "QUEUED", launched
    return launched["run"]["runId"]


def _wait_for_run(platform: _Platform, run_id: str) -> dict:
    deadline = time.monotonic() + RUN_TIMEOUT
    while True:
        run = platform.graphql(RUN, runId=run_id)["runOrError"]
        assert run["__typename"] == "Run", run
        if run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            break
        assert time.monotonic() < deadline, (
            f"run {run_id} still {run['status']} after {RUN_TIMEOUT}s\n{platform.output()}"
        )
        time.sleep(1)
    events = run["eventConnection"]["events"]
    log = "\n".join(
        f"{e['__typename']}: {e.get('message')}"
        + (f"\n{e['error']['message']}{''.join(e['error']['stack'])}" if e.get("error") else "")
        for e in events
    )
    assert run["status"] == "SUCCESS", f"run {run_id} ended {run['status']}:\n{log}\n{platform.output()}"
    return run


def test_the_webserver_shows_every_layer_and_a_partition_launched_from_graphql_is_run_by_the_daemon_into_postgres(
    platform, platform_env, instance_url
):
    legacy_url, datahub_url = platform_env
    catalog = load_catalog()

    # The asset graph, as the UI reads it.
    nodes = {tuple(n["assetKey"]["path"]): n for n in platform.graphql(ASSET_GRAPH)["assetNodes"]}
    for entry in catalog.tables:
        legacy = ("legacy", entry.database.lower(), entry.name)
        lv0 = ("lv0", entry.name)
        assert legacy in nodes, f"{'/'.join(legacy)} missing from the asset graph"
        assert lv0 in nodes, f"{'/'.join(lv0)} missing from the asset graph"
        assert list(legacy) in [d["path"] for d in nodes[lv0]["dependencyKeys"]], (
            f"{'/'.join(lv0)} does not depend on {'/'.join(legacy)}"
        )
        assert nodes[lv0]["isPartitioned"]
    # Whatever layers exist, each is a group named by its key prefix.
    misgrouped = {"/".join(k): n["groupName"] for k, n in nodes.items() if n["groupName"] != k[0]}
    assert not misgrouped, f"assets whose group is not their layer: {misgrouped}"
    assert {"legacy", "lv0"} <= {n["groupName"] for n in nodes.values()}

    # Materialize one partition of a snapshot and an incremental table, as the UI's button does.
    keys = [["lv0", SNAPSHOT_TABLE], ["lv0", INCREMENTAL_TABLE]]
    run_id = _launch(platform, nodes[("lv0", INCREMENTAL_TABLE)], keys, PARTITION)
    run = _wait_for_run(platform, run_id)
    kinds = [e["__typename"] for e in run["eventConnection"]["events"]]
    # Enqueued by the webserver, then started by the daemon's queued-run coordinator.
    assert "RunEnqueuedEvent" in kinds and "RunStartingEvent" in kinds, kinds
    assert kinds.index("RunEnqueuedEvent") < kinds.index("RunStartingEvent"), kinds
    assert {"key": "dagster/partition", "value": PARTITION} in run["tags"]
    materialized = [e for e in run["eventConnection"]["events"] if e["__typename"] == "MaterializationEvent"]
    assert len(materialized) == 2, kinds

    # The run is recorded in the PostgreSQL instance storage (dagster-postgres' runs table).
    engine = sa.create_engine(instance_url)
    try:
        with engine.connect() as conn:
            stored = conn.execute(
                sa.text("SELECT status, partition FROM runs WHERE run_id = :run_id"), {"run_id": run_id}
            ).one_or_none()
    finally:
        engine.dispose()
    assert stored is not None, f"run {run_id} is not in the instance database's runs table"
    assert tuple(stored) == ("SUCCESS", PARTITION)

    # And the data landed: the whole snapshot table, the incremental table's rows of the day.
    source_rows = scalar(legacy_url, f"SELECT count(*) FROM unierp5.{SNAPSHOT_TABLE}")
    assert source_rows > 0
    assert scalar(datahub_url, f"SELECT count(*) FROM lv0.{SNAPSHOT_TABLE}") == source_rows
    in_window = scalar(
        legacy_url,
        f"SELECT count(*) FROM rental.{INCREMENTAL_TABLE} WHERE updt_dt >= :start AND updt_dt < :end",
        start="2024-01-03", end="2024-01-04",
    )
    assert in_window > 0
    assert scalar(
        datahub_url, f"SELECT count(*) FROM lv0.{INCREMENTAL_TABLE} WHERE _partition = :p", p=PARTITION
    ) == in_window
    assert scalar(
        datahub_url, f"SELECT count(DISTINCT _run_id) FROM lv0.{INCREMENTAL_TABLE} WHERE _run_id <> :r", r=run_id
    ) == 0
