"""Dagster's default run launcher, made able to tell that a run's worker process died.

Run monitoring (dagster.yaml) marks a run whose worker died as failed, so that run retries
relaunch it and its pool slots are freed, but only with a launcher that can check a worker's
health, and Dagster's default launcher cannot. This one can: the default launcher starts each run
worker as a process on the daemon's machine (the daemon's code server starts it), and the worker
records its process id in the run's first engine event. A run whose recorded process is gone
(killed, out of memory) is reported FAILED; the monitor then fails the run.
"""

from __future__ import annotations

import psutil
from dagster import DagsterEventType
from dagster._core.launcher import DefaultRunLauncher
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus

STARTED_PROCESS_MESSAGE = "Started process for run (pid:"
# A process started after the event that names it is another process that reused the id.
CLOCK_SLACK_SECONDS = 2.0


def run_worker(instance, run_id: str) -> tuple[int, float] | None:
    """The process id of the run's worker, and when it was recorded (None before it started)."""
    started = [
        record for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT)
        if record.dagster_event and (record.dagster_event.message or "").startswith(STARTED_PROCESS_MESSAGE)
    ]
    if not started:
        return None
    record = started[-1]
    return int(record.dagster_event.engine_event_data.metadata["pid"].value), record.timestamp


class MonitoredRunLauncher(DefaultRunLauncher):
    """Launches runs like ``DefaultRunLauncher``; a run's worker is healthy while its process lives."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run) -> CheckRunHealthResult:
        worker = run_worker(self._instance, run.run_id)
        if worker is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker not started yet")
        pid, recorded = worker
        try:
            process = psutil.Process(pid)
            alive = (
                process.status() != psutil.STATUS_ZOMBIE
                and process.create_time() <= recorded + CLOCK_SLACK_SECONDS
            )
        except psutil.NoSuchProcess:
            alive = False
        if alive:
            return CheckRunHealthResult(WorkerStatus.RUNNING, run_worker_id=str(pid))
        return CheckRunHealthResult(
            WorkerStatus.FAILED, f"run worker process {pid} is gone", run_worker_id=str(pid)
        )
