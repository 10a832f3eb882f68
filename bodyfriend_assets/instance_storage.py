"""Dagster instance storage in PostgreSQL: ``DAGSTER_PG_URL``, or the embedded server when unset.

dagster.yaml names this class so that one file serves production (where ``DAGSTER_PG_URL`` names
the instance database) and every local command, ``dagster`` CLI included, on the embedded default.
With ``BODYFRIEND_ENV=production`` an unset ``DAGSTER_PG_URL`` fails the instance's start, naming
the variable (``settings``): production never falls back to the embedded server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from dagster._core.storage.base_storage import DagsterStorage
from dagster._serdes import ConfigurableClassData
from dagster_postgres import DagsterPostgresStorage
from dagster_postgres.run_storage import PostgresRunStorage
from dagster_postgres.schedule_storage import PostgresScheduleStorage
from dagster_postgres.utils import retry_pg_connection_fn

from bodyfriend_assets import settings, step_server
from bodyfriend_assets.event_batches import BatchedEventLogStorage
from bodyfriend_assets.kept_connections import KeptConnections
from bodyfriend_assets.long_lived import keep_for_life

DAGSTER_PG_URL_VAR = settings.DAGSTER_PG_URL_VAR
TABLES_LOCK = "bodyfriend: the Dagster instance's tables"
TABLES_LOCK_TIMEOUT_SECONDS = 600  # a bound for a hung process, not the time creation takes
LOCK_NOT_AVAILABLE = "55P03"  # PostgreSQL's error code when lock_timeout ends a wait


def instance_storage_url() -> str:
    return settings.instance_storage_url().render_as_string(hide_password=False)


class DataHubInstanceStorage(DagsterPostgresStorage):
    """dagster-postgres storage (runs, event log, schedules) at :func:`instance_storage_url`, its
    event log the platform's (``event_batches``: a range run's planned events in a few statements)."""

    def __init__(self, postgres_url: str, inst_data: ConfigurableClassData | None = None):
        # DagsterPostgresStorage's own construction, with the platform's event log built in place
        # of dagster-postgres's (which would open a connection to check its tables, to be dropped).
        self.postgres_url = postgres_url
        self.should_autocreate_tables = True
        self._inst_data = inst_data
        self._run_storage = KeptRunStorage(postgres_url)
        self._event_log_storage = BatchedEventLogStorage(postgres_url)
        self._schedule_storage = PostgresScheduleStorage(postgres_url)
        DagsterStorage.__init__(self)

    @classmethod
    def config_type(cls):
        return {}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        url = instance_storage_url()
        # A run's process builds its instance first: its steps' fork server starts importing now,
        # beside the definitions' import and the run's planning (step_server.py). Dagster, all
        # imported by now, stays for the process's life (long_lived.py).
        if step_server.start_if_run_process():
            keep_for_life()
        with tables_lock(url):
            storage = cls(postgres_url=url, inst_data=inst_data)
        # One connection kept for the events and one for the runs, checked when taken
        # (kept_connections.py), rather than one opened for each.
        storage.event_log_storage.keep_connections()
        storage.run_storage.keep_connections()
        return storage


class KeptRunStorage(KeptConnections, PostgresRunStorage):
    """dagster-postgres's run storage, its connection kept (kept_connections.py)."""


class InstanceTablesLockTimeout(RuntimeError):
    pass


@contextmanager
def tables_lock(url: str) -> Iterator[None]:
    """Build the storage while holding the instance database's tables lock (an advisory lock).

    Processes started together on an empty instance database (the daemon, the webserver, the code
    server, a ``dagster`` command: a first deployment) each create Dagster's tables and run its
    migrations. dagster-postgres retries some of the collisions this causes but not others (a
    table's row type, ``instance_info``), and then the process that lost exits; one that found
    the tables half made could also read them before the migrations ran. So the builders take
    turns: a few milliseconds when the tables exist."""
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool, isolation_level="AUTOCOMMIT")
    key = sa.func.hashtext(TABLES_LOCK)
    try:
        # Connecting is retried as dagster-postgres retries its own connections.
        with retry_pg_connection_fn(engine.connect) as conn:
            conn.execute(sa.select(sa.func.set_config("lock_timeout", f"{TABLES_LOCK_TIMEOUT_SECONDS}s", False)))
            try:
                conn.execute(sa.select(sa.func.pg_advisory_lock(key)))
            except sa.exc.OperationalError as err:
                if getattr(err.orig, "pgcode", None) != LOCK_NOT_AVAILABLE:
                    raise
                raise InstanceTablesLockTimeout(
                    f"the Dagster instance database ({DAGSTER_PG_URL_VAR}): another process kept its "
                    f"tables lock for {TABLES_LOCK_TIMEOUT_SECONDS} s while creating its tables"
                ) from None
            try:
                yield
            finally:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
    finally:
        engine.dispose()
