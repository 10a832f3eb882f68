"""The image's processes, started by the one command the image, the Procfile and CI use
(``bodyfriend-serve``), on loopback, with configuration from the environment only."""

import json
import os
import subprocess
import sys
import urllib.request

import dagster as dg
import pytest

from bodyfriend_assets.serve import ServeError, command
from bodyfriend_assets_tests.processes import answers, dagster_home, free_port, served, wait_until


def _production_env(make_database, tmp_path) -> dict[str, str]:
    """The environment the image runs with: every connection variable set, production mode."""
    url = lambda prefix: make_database(prefix).render_as_string(hide_password=False)  # noqa: E731
    return {
        **os.environ,
        "DAGSTER_HOME": str(dagster_home(tmp_path / "dagster_home")),
        "DAGSTER_PG_URL": url("dagster"),
        "BODYFRIEND_LEGACY_URL": url("legacy"),
        "BODYFRIEND_DATAHUB_URL": url("hub"),
        "BODYFRIEND_ENV": "production",
        "BODYFRIEND_BIND_HOST": "127.0.0.1",
        "PORT": str(free_port()),
        "BODYFRIEND_CODE_SERVER_PORT": str(free_port()),
    }


def _job_names(port: str) -> set[str]:
    query = "{ repositoriesOrError { ... on RepositoryConnection { nodes { jobs { name } } } } }"
    request = urllib.request.Request(f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        nodes = json.load(response)["data"]["repositoriesOrError"]["nodes"]
    return {job["name"] for node in nodes for job in node["jobs"]}


@pytest.mark.timeout(1800)  # three servers, each loading the definitions: long on a busy machine
def test_code_server_webserver_and_daemon_start_from_the_serve_command_and_answer(make_database, tmp_path, monkeypatch):
    env = _production_env(make_database, tmp_path)
    client = {**env, "BODYFRIEND_CODE_SERVER_HOST": "127.0.0.1"}  # webserver and daemon use the code server
    assert not answers("webserver", env) and not answers("code-server", env)
    with served("code-server", env, tmp_path) as code_server:
        wait_until(lambda: answers("code-server", env), "the code server answers a gRPC health check",
                   process=code_server)
        with served("webserver", client, tmp_path) as webserver, served("daemon", client, tmp_path) as daemon:
            wait_until(lambda: answers("webserver", env), "the webserver answers /server_info", process=webserver)
            assert {"daily_data_hub", "compat_tables"} <= _job_names(env["PORT"])
            wait_until(lambda: answers("daemon", env), "the daemon's heartbeats are in the instance", process=daemon)
            monkeypatch.setenv("DAGSTER_PG_URL", env["DAGSTER_PG_URL"])
            with dg.DagsterInstance.from_config(env["DAGSTER_HOME"]) as instance:
                beating = set(instance.get_daemon_heartbeats())
            # The nightly schedule, the dag_log mirror (a sensor) and the run queue live in the daemon.
            assert {"SCHEDULER", "SENSOR", "QUEUED_RUN_COORDINATOR"} <= beating
    assert not answers("webserver", env) and not answers("code-server", env)


def test_serve_refuses_a_missing_dagster_home_and_arguments_that_are_not_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    with pytest.raises(ServeError, match="DAGSTER_HOME"):
        command("webserver")
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home(tmp_path)))
    with pytest.raises(ServeError, match="no arguments"):
        command("webserver", ["--port", "1"])
    with pytest.raises(ServeError, match="unknown process 'scheduler'"):
        command("scheduler")


@pytest.mark.parametrize("process", ["webserver", "daemon"])
def test_the_processes_that_create_runs_are_served_storing_event_batches(process, tmp_path):
    # os.execv replaced by a print of what the served process would start with
    script = ("import os, sys; from bodyfriend_assets import serve; "
              "os.execv = lambda path, argv: print(os.environ.get('DAGSTER_EVENT_BATCH_SIZE')); "
              "sys.exit(serve.main([sys.argv[1]]))")
    env = {name: value for name, value in os.environ.items() if name != "DAGSTER_EVENT_BATCH_SIZE"}
    env["DAGSTER_HOME"] = str(dagster_home(tmp_path))
    done = subprocess.run([sys.executable, "-c", script, process], env=env, capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, "1000"), done.stderr
