"""The fork server a run's steps are forked from, started by the run's process as early as it can.

The local executor (``definitions.step_executor``) forks every step of a run from one fork server
that has imported the platform (``PRELOAD``; ``step_preload.py`` says what and why). Dagster
starts it when the run's first step is launched, and it is a fresh interpreter importing Dagster
and the definitions (about 1.7 s on an idle 2-core machine), so the first steps waited that long.

A run's process can start it sooner: when it builds the Dagster instance, which it does before it
imports the definitions and plans (and, for the CLI, creates) the run. The fork server then
imports beside that work, on the other core, and the first steps find it ready. Which processes
do so (``is_run_process``):

- a process started by multiprocessing's *spawn* method: Dagster's code server starts the process
  of every run launched through the instance (the UI, a schedule, a backfill, ``bodyfriend demo``,
  ``bodyfriend load-history``) that way, and it builds the instance first;
- ``dagster asset materialize`` and ``dagster job execute`` (or ``python -m dagster ...``), which
  run the run in the command's own process.

Every other process that builds the instance (the webserver, the daemon, the code server, the
steps, whose ``sys.argv`` is the run's process's, the fork server itself, the tests) starts
nothing, and with ``BODYFRIEND_EXECUTOR=celery`` (steps on Celery workers) no run needs one. The
fork server is the one Dagster would start: the same preload, so Dagster finds it running and
uses it. It keeps the environment of the process at its start, as it did before (the run's own),
and exits with that process.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.forkserver
import sys
from pathlib import Path

from bodyfriend_assets.step_execution import LOCAL, chosen_executor

# Imported by the fork server before its first fork: what a step needs to build the run's instance,
# then the definitions (step_preload.py). Dagster puts its executor module first (multiprocess.py),
# so the list here is the one it sets, and a fork server started early serves the run unchanged.
STEP_PRELOAD = ("bodyfriend_assets.step_preload",)
PRELOAD = ("dagster._core.executor.multiprocess", *STEP_PRELOAD)

RUN_COMMANDS = (("asset", "materialize"), ("job", "execute"))


def is_run_process(argv: list[str] | None = None) -> bool:
    """Whether this process executes a run with its steps forked locally (see the module)."""
    if chosen_executor() != LOCAL:
        return False
    if isinstance(multiprocessing.current_process(), multiprocessing.context.SpawnProcess):
        return True
    if multiprocessing.parent_process() is not None:
        return False  # a step, forked from the fork server: its sys.argv is the run's process's
    argv = sys.argv if argv is None else argv
    if not argv or tuple(argv[1:3]) not in RUN_COMMANDS:
        return False
    program = Path(argv[0])
    return program.name == "dagster" or program.parts[-2:] == ("dagster", "__main__.py")  # or python -m dagster


def start_if_run_process() -> bool:
    """Start the fork server now if this is a run's process; True if it is running after."""
    if not is_run_process():
        return False
    multiprocessing.get_context("forkserver").set_forkserver_preload(list(PRELOAD))
    multiprocessing.forkserver.ensure_running()  # returns at once: the server imports on its own
    return True
