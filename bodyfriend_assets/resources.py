"""Dagster resources for the two databases.

Each carries its URL as a field, ``url``. The platform's definitions (``from_environment``) set it
to ``dg.EnvVar("BODYFRIEND_..._URL")`` when the variable is set, so the UI's resource page names
the variable a deployment reads, never its value, and Dagster reads the value when a run starts.
Left ``None`` (the variable unset when definitions loaded), the environment is read when a run
first connects (``settings``): in development an unset variable is the embedded server, in
production it fails naming the variable. Tests pass a URL instead of patching the environment.
Loading definitions never connects or starts a server. When a step sets a resource up, the run
log says which mode runs (``BODYFRIEND_ENV``) and which database it reads
(``settings.describe_url``: driver, port and database only).

Every connection has a connect (SQL Server: login) timeout and a statement timeout
(``settings.connect_timeout`` / ``statement_timeout``), so a server that accepts a connection and
never answers fails the try in seconds instead of holding it for minutes.
"""

from __future__ import annotations

import os
import threading

import dagster as dg
import sqlalchemy as sa
from pydantic import Field
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


def url_field(var: str) -> str | None:
    """A resource's ``url``: ``dg.EnvVar(var)`` when ``var`` is set, else None (see above)."""
    return dg.EnvVar(var) if os.environ.get(var, "").strip() else None


def _given(url: str | None) -> str | None:
    """The field's value; an ``EnvVar`` not yet resolved by Dagster (a resource used outside a
    run, as the CLI does) is read from the environment now."""
    return url.get_value() if isinstance(url, dg.EnvVar) else url


_URL_DESCRIPTION = (
    "SQLAlchemy URL; set as dg.EnvVar({var}) in deployments, so only the variable's name is shown. "
    "None: {var} is read when a run connects (development: the embedded server when unset)."
)


def _log_mode(context: dg.InitResourceContext, what: str, url: URL) -> None:
    if context.log is not None:
        context.log.info(
            f"{settings.ENV_VAR}={settings.mode()}: {what} at {settings.describe_url(url)}"
        )


class LegacyDatabase(dg.ConfigurableResource):
    """The legacy ERP (SQL Server in production): ``url``, else ``BODYFRIEND_LEGACY_URL``; in
    development mode, when unset, the embedded stand-in. ``BODYFRIEND_ENV=production`` requires it."""

    url: str | None = Field(default=None, description=_URL_DESCRIPTION.format(var=settings.LEGACY_URL_VAR))

    @classmethod
    def from_environment(cls) -> LegacyDatabase:
        return cls(url=url_field(settings.LEGACY_URL_VAR))

    def database_url(self) -> URL:
        return settings.legacy_url(_given(self.url))

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        _log_mode(context, "legacy ERP", self.database_url())

    def engine(self) -> Engine:
        return engine_for(self.database_url())


class DataHub(dg.ConfigurableResource):
    """The Data Hub PostgreSQL: ``url``, else ``BODYFRIEND_DATAHUB_URL``; in development mode,
    when unset, the embedded server. ``BODYFRIEND_ENV=production`` requires it.

    ``lock_timeout_seconds``: how long a load waits for a lock on its table before failing with
    the table and the lock's holders named (``table_locks``)."""

    url: str | None = Field(default=None, description=_URL_DESCRIPTION.format(var=settings.DATAHUB_URL_VAR))
    lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS

    @classmethod
    def from_environment(cls) -> DataHub:
        return cls(url=url_field(settings.DATAHUB_URL_VAR))

    def database_url(self) -> URL:
        return settings.datahub_url(_given(self.url))

    def is_configured(self) -> bool:
        """Whether this is a Data Hub of a deployment (``url`` or ``BODYFRIEND_DATAHUB_URL``), not
        the embedded development one."""
        return settings.datahub_is_configured(_given(self.url))

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        _log_mode(context, "Data Hub", self.database_url())

    def engine(self) -> Engine:
        return engine_for(self.database_url())
