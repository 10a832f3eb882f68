"""Real processes for the deployment tests: the platform's own (``bodyfriend-serve``), a Redis
server, and a Dagster instance of the project's dagster.yaml for them to share. Every process is
started in a process group of its own and killed with it when the test ends, whatever happened."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]
SERVE = [sys.executable, "-m", "bodyfriend_assets.serve"]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def dagster_home(folder: Path) -> Path:
    """A DAGSTER_HOME as the image has it: a folder holding the project's dagster.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPOSITORY / "dagster.yaml", folder / "dagster.yaml")
    return folder


def wait_until(condition: Callable[[], bool], what: str, *, limit: float = 900, process=None) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` if ``process`` exits first or the
    limit (a bound for a hung process, not a speed requirement) passes."""
    deadline = time.monotonic() + limit
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"{what}: the process exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not after {limit:.0f} s")
        time.sleep(0.5)


@contextmanager
def running(argv: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen]:
    """``argv`` running until the block ends (its output in ``log``)."""
    with open(log, "wb") as out:
        process = subprocess.Popen(argv, env=env, cwd=REPOSITORY, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        else:  # its children (a code server, a worker's pool) go with it
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def served(process: str, env: dict[str, str], log_dir: Path, *args: str):
    """``bodyfriend-serve PROCESS``, as the image and the Procfile start it."""
    return running([*SERVE, process, *args], env, log_dir / f"{process}-{env.get('BODYFRIEND_WORKER_NAME', '')}.log")


def answers(process: str, env: dict[str, str]) -> bool:
    """``bodyfriend-serve check PROCESS``: the image's health check."""
    return subprocess.run([*SERVE, "check", process], env=env, cwd=REPOSITORY,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode == 0


@contextmanager
def redis_server(log_dir: Path) -> Iterator[str]:
    """A Redis server on loopback, nothing saved to disk; yields its URL."""
    port = free_port()
    argv = [shutil.which("redis-server") or "redis-server", "--bind", "127.0.0.1", "--port", str(port),
            "--save", "", "--appendonly", "no", "--dir", str(log_dir)]
    with running(argv, dict(os.environ), log_dir / "redis.log") as redis:
        def pong() -> bool:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=2) as conn:
                    conn.sendall(b"PING\r\n")
                    return conn.recv(16).startswith(b"+PONG")
            except OSError:
                return False

        wait_until(pong, "redis-server answers PING", limit=60, process=redis)
        yield f"redis://127.0.0.1:{port}/0"
