"""The Dagster daemon on a copy of the project's dagster.yaml, for tests of what only the daemon
does (run retries, run monitoring): real processes, PostgreSQL instance storage, runs launched
with ``dagster job launch`` through the queued run coordinator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pytest
import yaml

from bodyfriend_assets_tests.test_ui_path import PROJECT_ROOT, _Process

DAILY_JOB = "daily_data_hub"
RUN_TIMEOUT = 600


def write_dagster_home(path: Path, **overrides) -> Path:
    """``path`` holding the project's dagster.yaml, with top-level sections updated by ``overrides``
    (e.g. shorter run-monitoring intervals)."""
    config = yaml.safe_load((PROJECT_ROOT / "dagster.yaml").read_text())
    for section, values in overrides.items():
        config[section] = {**config.get(section, {}), **values}
    path.mkdir(parents=True, exist_ok=True)
    (path / "dagster.yaml").write_text(yaml.safe_dump(config))
    return path


class Daemon:
    def __init__(self, dagster_home: Path, env: dict, logs: Path):
        self.dagster_home = dagster_home
        self.env = env
        self.process = _Process(
            "daemon", [sys.executable, "-m", "dagster._daemon", "run", "-w", "workspace.yaml"], env, logs
        )

    def output(self) -> str:
        return self.process.output()

    def launch(self, partition: str, op: str) -> str:
        """Enqueue a run of ``op`` of the daily job for ``partition``; the daemon starts it."""
        run_id = str(uuid.uuid4())
        result = subprocess.run(
            [sys.executable, "-m", "dagster", "job", "launch", "-w", "workspace.yaml", "-j", DAILY_JOB,
             "-o", op, "--tags", json.dumps({"dagster/partition": partition}), "--run-id", run_id],
            cwd=PROJECT_ROOT, env=self.env, capture_output=True, text=True, timeout=300,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return run_id

    @contextmanager
    def instance(self):
        """The daemon's instance (its DAGSTER_PG_URL), seen from the test."""
        with pytest.MonkeyPatch.context() as patch:
            patch.setenv("DAGSTER_PG_URL", self.env["DAGSTER_PG_URL"])
            with dg.DagsterInstance.from_config(str(self.dagster_home)) as instance:
                yield instance

    def wait_until(self, what: str, condition, timeout: float = RUN_TIMEOUT):
        """Poll ``condition(instance)`` until it returns something truthy, and return that."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.popen.poll() is None, f"the daemon exited\n{self.output()}"
            with self.instance() as instance:
                found = condition(instance)
            if found:
                return found
            assert time.monotonic() < deadline, f"{what}: not within {timeout}s\n{self.output()}"
            time.sleep(1)

    def wait_for_end(self, run_id: str) -> dg.DagsterRun:
        def ended(instance):
            run = instance.get_run_by_id(run_id)
            return run if run.is_finished else None

        return self.wait_until(f"run {run_id} to end", ended)

    def stop(self):
        self.process.stop()


@contextmanager
def running_daemon(dagster_home: Path, logs: Path, **variables):
    """The daemon on workspace.yaml, with DAGSTER_HOME and the given environment variables."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    # A busy machine makes the code server answer slowly: Dagster's default gRPC timeout (60 s)
    # would fail the daemon's dequeue of a run.
    env.update(DAGSTER_HOME=str(dagster_home), DAGSTER_GRPC_TIMEOUT_SECONDS="600", PYTHONUNBUFFERED="1",
               **variables)
    daemon = Daemon(dagster_home, env, logs)
    try:
        yield daemon
    finally:
        daemon.stop()


def run_group(instance, run_id: str) -> list[dg.DagsterRun]:
    """The run and every relaunch of it, oldest first."""
    group = instance.get_run_group(run_id)
    runs = list(group[1]) if group else [instance.get_run_by_id(run_id)]
    return sorted(runs, key=lambda run: int(run.tags.get("dagster/retry_number", 0)))


def step_retries(instance, run_id: str) -> int:
    return len(instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_UP_FOR_RETRY))


def messages(instance, run_id: str) -> list[str]:
    return [record.user_message for record in instance.all_logs(run_id)]
