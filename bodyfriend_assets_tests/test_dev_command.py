"""``bodyfriend dev`` (``make dev``) as a user runs it: a real process, stopped with Ctrl-C."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie is gone for our purpose; the postmaster is not our child, so this is rare
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_until(condition, seconds: float, what: str) -> None:
    """Wait for ``condition`` (a bound on a hang, not a speed requirement)."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.5)


def test_ctrl_c_on_dev_stops_the_ui_and_the_embedded_server_it_started(tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BODYFRIEND_", "DAGSTER_"))}
    env["BODYFRIEND_HOME"] = str(home)
    port = _free_port()
    output = (tmp_path / "dev.log").open("w")
    dev = subprocess.Popen(
        [str(BIN / "bodyfriend"), "dev", "--port", str(port)],
        env=env, start_new_session=True,  # its own process group, as a terminal gives it
        # and Ctrl-C's default action, as a terminal gives it (a test session started in the
        # background of a shell inherits SIGINT ignored)
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        stdout=output, stderr=subprocess.STDOUT,
    )
    postmaster = None
    try:
        def ui_answers() -> bool:
            assert dev.poll() is None, f"bodyfriend dev exited with {dev.returncode}"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/server_info", timeout=5) as r:
                    return r.status == 200
            except OSError:
                return False

        _wait_until(ui_answers, 600, "the UI's /server_info")
        postmaster = int((home / "pgdata" / "postmaster.pid").read_text().split()[0])
        assert _alive(postmaster)

        os.killpg(dev.pid, signal.SIGINT)  # Ctrl-C: the terminal signals the whole group
        assert dev.wait(timeout=300) == 0
        _wait_until(lambda: not _alive(postmaster), 120, "the postmaster to exit")
        assert not (home / "pgdata" / "postmaster.pid").exists()
        # and nothing of the group is left: webserver, daemon, code server (each exits on its
        # own after the interrupt; a bound on a hang, not a speed requirement)
        def group_gone() -> bool:
            try:
                os.killpg(dev.pid, 0)
                return False
            except ProcessLookupError:
                return True

        _wait_until(group_gone, 120, "every process of the dev command's group to exit")
        log = (tmp_path / "dev.log").read_text()
        assert "stopping the embedded PostgreSQL server" in log
        # DAGSTER_HOME holds the project's dagster.yaml: no warning that it "will not be used"
        assert "will not be used" not in log
    finally:
        output.close()
        if dev.poll() is None:
            os.killpg(dev.pid, signal.SIGKILL)
            dev.wait()
        if postmaster is not None and _alive(postmaster):
            os.kill(postmaster, signal.SIGINT)
