"""A dagster-postgres storage (the run storage, the event log) that keeps its process's connection.

dagster-postgres opens a new connection for every event it stores and every read or write of a
run: about 4.5 ms each on the embedded server, most of it the server starting a backend, and a
daily run stores hundreds of events. Dagster's webserver keeps one connection per storage
instead; so does every process here (``instance_storage``), with one difference: the connection
is checked (a ``SELECT 1``, about 0.1 ms) each time it is taken. A step can go quiet for many
minutes while it copies a large table, long enough for the server to restart or a network device
to drop an idle connection; the check finds such a connection dead and opens a new one, where the
webserver's pool would fail the step's next event.
"""

from __future__ import annotations

from dagster_postgres.utils import create_pg_engine

RECYCLE_SECONDS = 3600  # a connection older than this is replaced when next taken
MAX_OVERFLOW = 4  # connections beyond the one kept, for threads storing events at once


class KeptConnections:
    """Mixed into a dagster-postgres storage class: :meth:`keep_connections` replaces its engine
    (a new connection for each use) with one that keeps and checks one connection."""

    def keep_connections(self) -> None:
        self._engine = create_pg_engine(
            self.postgres_url, self._token_provider, isolation_level="AUTOCOMMIT",
            pool_size=1, max_overflow=MAX_OVERFLOW, pool_recycle=RECYCLE_SECONDS, pool_pre_ping=True,
        )
