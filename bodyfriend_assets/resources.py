"""Dagster resources for the two databases.

The URLs are resolved when a run first connects (``settings``), so loading definitions never
connects or starts a server, and no URL ever becomes run config shown in the UI. When a step
sets a resource up, the run log says which mode runs (``BODYFRIEND_ENV``) and which database it
reads (``settings.describe_url``: driver, port and database only).

Every connection has a connect (SQL Server: login) timeout and a statement timeout
(``settings.connect_timeout`` / ``statement_timeout``), so a server that accepts a connection and
never answers fails the try in seconds instead of holding it for minutes.
"""

from __future__ import annotations

import threading

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from bodyfriend_assets import settings
from bodyfriend_assets.table_locks import DEFAULT_LOCK_TIMEOUT_SECONDS

# In production, definitions that cannot connect fail to load, naming the missing variable, so
# the code location shows the error in the UI at start-up instead of at the night's first step.
# (Only the environment is read: nothing connects or starts.)
settings.check_production_settings()


def timeout_connect_args(url: URL, connect_seconds: int, statement_seconds: int) -> dict:
    """The driver's own connect and statement timeout arguments for ``url``."""
    if url.get_driver_name() == "psycopg2":
        return {"connect_timeout": connect_seconds, "options": f"-c statement_timeout={statement_seconds * 1000}"}
    if url.get_driver_name() == "pymssql":
        return {"login_timeout": connect_seconds, "timeout": statement_seconds}
    return {}


_engines: dict[tuple[URL, int, int], Engine] = {}
_engines_lock = threading.Lock()


def engine_for(url: URL) -> Engine:
    """The process's engine for ``url``, with the configured timeouts (one per process, pooled)."""
    key = (url, settings.connect_timeout(), settings.statement_timeout())
    with _engines_lock:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = sa.create_engine(
                url, pool_pre_ping=True, pool_size=2, max_overflow=4,
                connect_args=timeout_connect_args(url, *key[1:]),
            )
        return engine


def dispose_engines() -> None:
    """Close the pooled connections this process holds and forget its engines.

    A run worker exits after its run; a process that runs many in-process runs against ever new
    databases (a test session) calls this between them, or it keeps idle connections to every
    database it touched until the server refuses new clients. A connection in use at this
    moment is closed when it is returned."""
    with _engines_lock:
        engines = list(_engines.values())
        _engines.clear()
    for engine in engines:
        engine.dispose()


def _log_mode(context: dg.InitResourceContext, what: str, url: URL) -> None:
    if context.log is not None:
        context.log.info(
            f"{settings.ENV_VAR}={settings.mode()}: {what} at {settings.describe_url(url)}"
        )


class LegacyDatabase(dg.ConfigurableResource):
    """The legacy ERP (SQL Server in production): ``BODYFRIEND_LEGACY_URL``; in development mode,
    when unset, the embedded stand-in. ``BODYFRIEND_ENV=production`` requires the variable."""

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        _log_mode(context, "legacy ERP", settings.legacy_url())

    def engine(self) -> Engine:
        return engine_for(settings.legacy_url())


class DataHub(dg.ConfigurableResource):
    """The Data Hub PostgreSQL: ``BODYFRIEND_DATAHUB_URL``; in development mode, when unset, the
    embedded server. ``BODYFRIEND_ENV=production`` requires the variable.

    ``lock_timeout_seconds``: how long a load waits for a lock on its table before failing with
    the table and the lock's holders named (``table_locks``)."""

    lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        _log_mode(context, "Data Hub", settings.datahub_url())

    def engine(self) -> Engine:
        return engine_for(settings.datahub_url())
