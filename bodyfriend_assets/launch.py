"""Launching a job through the Dagster instance on the project's code location, as the schedule does.

A run launched this way is the same kind of run the nightly schedule or the UI's "Materialize"
creates: its origin is the code location of ``workspace.yaml`` (so "Re-execute" in the UI runs it
again without a warning), it is listed in the job's Runs tab, and it runs in a worker process
with the job's own executor (the lv0 steps side by side). ``bodyfriend demo`` uses it.

The run is created the way ``dagster job launch -w workspace.yaml -j JOB --tags ...`` creates it,
then launched at once rather than queued: the instance's run coordinator is the queued one, whose
queue only the daemon empties, and the demo runs without a daemon.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from pathlib import Path

import dagster as dg
from dagster._cli.job import _create_run
from dagster._cli.workspace.cli_target import WorkspaceOpts, get_workspace_from_cli_opts
from dagster._core.remote_representation.external import RemoteJob
from dagster.version import __version__ as dagster_version

PROJECT_ROOT = Path(__file__).resolve().parent.parent
WORKSPACE_FILE = PROJECT_ROOT / "workspace.yaml"
POLL_SECONDS = 1.0


def partition_tags(first: str, last: str | None = None) -> dict[str, str]:
    """The run tags of one daily partition, or of the range ``first..last`` in one run."""
    if last is None or last == first:
        return {"dagster/partition": first}
    return {"dagster/asset_partition_range_start": first, "dagster/asset_partition_range_end": last}


def launch_and_wait(
    instance: dg.DagsterInstance,
    job_name: str,
    tags: Mapping[str, str],
    *,
    run_config: Mapping[str, object] | None = None,
    workspace_file: Path = WORKSPACE_FILE,
    on_launch: Callable[[dg.DagsterRun], None] = lambda run: None,
) -> dg.DagsterRun:
    """Create a run of ``job_name`` from ``workspace_file``'s code location, launch it, and wait
    until it has finished; returns the finished run (its status says how it ended)."""
    opts = WorkspaceOpts(workspace=(str(workspace_file),))
    with get_workspace_from_cli_opts(instance, version=dagster_version, workspace_opts=opts) as workspace:
        [location_name] = workspace.code_location_names
        location = workspace.get_code_location(location_name)
        [repository] = location.get_repositories().values()
        remote_job: RemoteJob = repository.get_full_job(job_name)
        run = _create_run(
            instance=instance,
            code_location=location,
            remote_repo=repository,
            remote_job=remote_job,
            run_config=dict(run_config or {}),
            tags=dict(tags),
            op_selection=None,
            run_id=None,
        )
        run = instance.launch_run(run.run_id, workspace)
        on_launch(run)
        # The run's worker is a child of the code server this context holds: wait inside it.
        while not (run := instance.get_run_by_id(run.run_id)).is_finished:
            time.sleep(POLL_SECONDS)
    return run
