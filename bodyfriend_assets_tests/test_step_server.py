"""The steps' fork server is started by a run's process as it builds the Dagster instance, before
the definitions are imported, and by no other process (step_server.py). Real processes: a run's
process is spawned as Dagster's code server spawns one, and its children are looked at."""

from __future__ import annotations

import gc
import json
import multiprocessing
import os
import subprocess
import sys

import dagster as dg
import psutil
import pytest

from bodyfriend_assets import step_server
from bodyfriend_assets.step_execution import EXECUTOR_VAR
from bodyfriend_assets_tests.processes import REPOSITORY, dagster_home

ANSWER_SECONDS = 600  # a bound for a hung process, not a speed requirement


def _fork_servers() -> list[str]:
    """The command lines of this process's children that are multiprocessing fork servers."""
    found = []
    for child in psutil.Process().children():
        try:
            command = " ".join(child.cmdline())
        except psutil.NoSuchProcess:
            continue
        if "multiprocessing.forkserver" in command:
            found.append(command)
    return found


def _build_instance(home: str) -> dict:
    before = "bodyfriend_assets.definitions" in sys.modules
    with dg.DagsterInstance.from_config(home):
        return {"definitions_imported": before or "bodyfriend_assets.definitions" in sys.modules,
                "fork_servers": _fork_servers(), "set_aside": gc.get_freeze_count()}


def _as_a_run_process(home: str, also_a_step: bool) -> dict:
    """What a run's process does first: build the instance. With ``also_a_step``, a step forked
    from the fork server then builds its own, as every step does."""
    answer = _build_instance(home)
    if also_a_step:
        step_answers = multiprocessing.get_context("forkserver").SimpleQueue()
        step = multiprocessing.get_context("forkserver").Process(target=_step, args=(home, step_answers))
        step.start()
        answer["step"] = step_answers.get()
        step.join()
    return answer


def _run_process(home: str, answers, also_a_step: bool) -> None:
    answers.put(_as_a_run_process(home, also_a_step))


def _step(home: str, answers) -> None:
    answers.put(_build_instance(home))


@pytest.fixture
def instance_home(tmp_path, monkeypatch, make_database):
    monkeypatch.setenv("DAGSTER_PG_URL", make_database("dagster").render_as_string(hide_password=False))
    monkeypatch.delenv(EXECUTOR_VAR, raising=False)
    return str(dagster_home(tmp_path / "dagster_home"))


def _spawned_run_process(home: str, also_a_step: bool = False) -> dict:
    spawn = multiprocessing.get_context("spawn")
    answers = spawn.Queue()
    process = spawn.Process(target=_run_process, args=(home, answers, also_a_step))
    process.start()
    try:
        return answers.get(timeout=ANSWER_SECONDS)
    finally:
        process.join(ANSWER_SECONDS)


def test_a_spawned_run_process_starts_the_steps_fork_server_as_it_builds_the_instance(instance_home):
    answer = _spawned_run_process(instance_home, also_a_step=True)
    # Running before the definitions were imported: the two imports go side by side.
    assert not answer["definitions_imported"]
    [server] = answer["fork_servers"]
    assert all(repr(module) in server for module in step_server.PRELOAD), server
    # A step builds the instance too, and starts no fork server of its own.
    assert answer["step"]["fork_servers"] == []
    # Dagster, imported by then, is set aside from the collector (long_lived.py); a step inherits
    # the fork server's heap set aside, the definitions with it, before the step builds anything.
    assert answer["set_aside"] > 50_000
    assert answer["step"]["set_aside"] > answer["set_aside"]


def test_a_dagster_materialize_command_starts_the_fork_server_and_its_steps_start_none(instance_home, tmp_path):
    """``python -m dagster asset materialize`` runs its run in its own process; a step forked from
    its fork server inherits its ``sys.argv`` and must not take itself for the run's process."""
    program = tmp_path / "dagster" / "__main__.py"  # the path python -m dagster runs
    program.parent.mkdir()
    program.write_text(
        "import json, sys; sys.path.insert(0, sys.argv[-1]); "
        "from bodyfriend_assets_tests.test_step_server import _as_a_run_process\n"
        "if __name__ == '__main__':\n"
        "    print(json.dumps(_as_a_run_process(sys.argv[-2], also_a_step=True)))\n",
        encoding="utf-8",
    )
    shown = subprocess.run(
        [sys.executable, str(program), "asset", "materialize", instance_home, str(REPOSITORY)],
        check=True, capture_output=True, text=True, env=os.environ.copy(), timeout=ANSWER_SECONDS,
    )
    answer = json.loads(shown.stdout.strip().splitlines()[-1])
    assert not answer["definitions_imported"]
    assert len(answer["fork_servers"]) == 1
    assert answer["step"]["fork_servers"] == []


def test_a_run_process_whose_steps_go_to_celery_starts_no_fork_server(instance_home, monkeypatch):
    monkeypatch.setenv(EXECUTOR_VAR, "celery")
    assert _spawned_run_process(instance_home)["fork_servers"] == []


def test_any_other_process_that_builds_the_instance_starts_no_fork_server(instance_home):
    """A main process (the webserver, the daemon, the code server, a script) is no run's process."""
    script = (
        "import json, sys; sys.path.insert(0, sys.argv[1]); "
        "from bodyfriend_assets_tests.test_step_server import _build_instance; "
        "print(json.dumps(_build_instance(sys.argv[2])))"
    )
    shown = subprocess.run([sys.executable, "-c", script, str(REPOSITORY), instance_home],
                           check=True, capture_output=True, text=True, env=os.environ.copy())
    assert json.loads(shown.stdout.strip().splitlines()[-1])["fork_servers"] == []


@pytest.mark.parametrize("argv, runs", [
    (["/srv/venv/bin/dagster", "asset", "materialize", "--select", "group:lv0"], True),
    (["dagster", "job", "execute", "-j", "daily_data_hub"], True),
    (["/srv/venv/lib/python3.11/site-packages/dagster/__main__.py", "asset", "materialize"], True),
    (["/srv/venv/lib/python3.11/site-packages/other/__main__.py", "asset", "materialize"], False),
    (["/srv/venv/bin/dagster", "dev"], False),
    (["/srv/venv/bin/dagster", "asset", "list"], False),
    (["/srv/venv/bin/dagster-webserver", "asset", "materialize"], False),
    (["-c"], False),
])
def test_the_dagster_commands_that_run_a_run_in_their_own_process_are_run_processes(argv, runs, monkeypatch):
    monkeypatch.delenv(EXECUTOR_VAR, raising=False)
    assert step_server.is_run_process(argv) is runs
    monkeypatch.setenv(EXECUTOR_VAR, "celery")
    assert step_server.is_run_process(argv) is False
