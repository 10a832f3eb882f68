"""The platform's long-running processes, one command each: what the image, the Procfile and CI
start, so that what a deployment runs is what the tests run.

    bodyfriend-serve webserver        the Dagster UI and GraphQL, on $PORT (default 3000)
    bodyfriend-serve daemon           schedules, sensors (the dag_log mirror), run queue and retries
    bodyfriend-serve code-server      the definitions over gRPC, on $BODYFRIEND_CODE_SERVER_PORT (4000)
    bodyfriend-serve worker [ARGS]    a Celery worker executing steps (BODYFRIEND_EXECUTOR=celery);
                                      ARGS go to ``celery worker`` (e.g. --concurrency 2)
    bodyfriend-serve check PROCESS    exit 0 if that process answers here (a health check)

Configuration is the environment only: ``DAGSTER_HOME`` (a folder holding the project's
dagster.yaml), the platform's connection variables (README, "Deployment"), and
``BODYFRIEND_BIND_HOST`` (default 0.0.0.0). The webserver and the daemon load the definitions
themselves, or, with ``BODYFRIEND_CODE_SERVER_HOST`` set, from the code server there.

Each command replaces this process with the Dagster or Celery command it starts (exec), so the
container's stop signal reaches that command directly.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Sequence

from bodyfriend_assets.event_batch_size import store_events_in_batches

DEFINITIONS = "bodyfriend_assets.definitions"
WORKER_APP = "bodyfriend_assets.celery_worker"
PROCESSES = ("webserver", "daemon", "code-server", "worker")


class ServeError(Exception):
    pass


def _env(name: str, default: str) -> str:
    return os.environ.get(name, "").strip() or default


def _port(name: str, default: str) -> str:
    value = _env(name, default)
    if not value.isdigit():
        raise ServeError(f"{name} must be a port number")
    return value


def _dagster_home() -> str:
    home = os.environ.get("DAGSTER_HOME", "").strip()
    if not home or not os.path.isfile(os.path.join(home, "dagster.yaml")):
        raise ServeError("DAGSTER_HOME must name a folder holding the project's dagster.yaml")
    return home


def _webserver_port() -> str:
    return _port("PORT", "3000")  # PORT: the name Heroku gives a web dyno's port


def _code_server_port() -> str:
    return _port("BODYFRIEND_CODE_SERVER_PORT", "4000")


def _worker_name() -> str:
    return f"{_env('BODYFRIEND_WORKER_NAME', 'steps')}@{socket.gethostname()}"


def _definitions() -> list[str]:
    """Where the webserver and the daemon find the definitions."""
    host = os.environ.get("BODYFRIEND_CODE_SERVER_HOST", "").strip()
    if host:
        return ["--grpc-host", host, "--grpc-port", _code_server_port()]
    return ["-m", DEFINITIONS]


def command(process: str, extra: Sequence[str] = ()) -> list[str]:
    """The command line that runs ``process``."""
    python = sys.executable
    bind = _env("BODYFRIEND_BIND_HOST", "0.0.0.0")
    if process not in PROCESSES:
        raise ServeError(f"unknown process {process!r}: one of {', '.join(PROCESSES)}")
    if extra and process != "worker":
        raise ServeError(f"{process} takes no arguments (configuration is the environment)")
    _dagster_home()
    if process == "webserver":
        return [python, "-m", "dagster_webserver", "-h", bind, "-p", _webserver_port(), *_definitions()]
    if process == "daemon":
        return [python, "-m", "dagster._daemon", "run", *_definitions()]
    if process == "code-server":
        return [python, "-m", "dagster", "code-server", "start", "-h", bind, "-p", _code_server_port(),
                "-m", DEFINITIONS]
    return [python, "-m", "celery", "-A", WORKER_APP, "worker", "--prefetch-multiplier=1",
            "-n", _worker_name(), "-l", "INFO", *extra]


def answers(process: str) -> bool:
    """Whether ``process``, started on this machine by this command, answers."""
    python = sys.executable
    if process == "webserver":
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{_webserver_port()}/server_info", timeout=10) as response:
                return response.status == 200
        except OSError:
            return False
    if process == "code-server":
        check = [python, "-m", "dagster", "api", "grpc-health-check", "-h", "127.0.0.1", "-p", _code_server_port()]
    elif process == "daemon":  # its heartbeats in the instance are recent
        check = [python, "-m", "dagster._daemon", "liveness-check"]
    elif process == "worker":
        check = [python, "-m", "celery", "-A", WORKER_APP, "inspect", "ping", "-t", "5", "-d", _worker_name()]
    else:
        raise ServeError(f"unknown process {process!r}: one of {', '.join(PROCESSES)}")
    _dagster_home()
    return subprocess.run(check, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=60).returncode == 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        if len(args) == 2 and args[0] == "check":
            return 0 if answers(args[1]) else 1
        if not args:
            raise ServeError(f"usage: bodyfriend-serve {'|'.join(PROCESSES)} | check PROCESS")
        argv_ = command(args[0], args[1:])
    except ServeError as err:
        print(f"bodyfriend-serve: {err}", file=sys.stderr)
        return 2
    # The webserver and the daemon create the runs of the UI, schedules and sensors: their planned
    # events are stored in batches, as in every process that loads the definitions.
    store_events_in_batches()
    os.execv(argv_[0], argv_)
    return 0  # not reached: exec replaced this process


if __name__ == "__main__":
    sys.exit(main())
