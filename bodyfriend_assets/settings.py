"""Where the platform's databases are, and which mode it runs in.

``BODYFRIEND_ENV`` names the mode:

- ``development`` (the default): a connection variable left unset means the embedded PostgreSQL
  server (``embedded``), started on first use; a new embedded legacy database is seeded with the
  demo's synthetic ERP. Right for ``make demo``, ``make dev`` and a first look.
- ``production`` (the container image sets it): ``BODYFRIEND_LEGACY_URL``,
  ``BODYFRIEND_DATAHUB_URL`` and ``DAGSTER_PG_URL`` are all required. A missing one fails at once,
  naming it; nothing embedded is ever started or seeded, so a server that lost a variable cannot
  run a night on synthetic data.

The URLs are read when a connection is made, never at import (a resource may carry one as a
field, ``given`` below, which then stands for the variable), and are only ever shown through
``describe_url`` (driver, port and database: no user, password or host). A password may be written
with its ``@`` unencoded; the URL is split at its last ``@``.
"""

from __future__ import annotations

import os
from urllib.parse import quote, unquote

from sqlalchemy.engine import URL, make_url

from bodyfriend_assets import embedded

ENV_VAR = "BODYFRIEND_ENV"
DEVELOPMENT = "development"
PRODUCTION = "production"
MODES = (DEVELOPMENT, PRODUCTION)

LEGACY_URL_VAR = "BODYFRIEND_LEGACY_URL"
DATAHUB_URL_VAR = "BODYFRIEND_DATAHUB_URL"
DAGSTER_PG_URL_VAR = "DAGSTER_PG_URL"
CONNECTION_VARS = (LEGACY_URL_VAR, DATAHUB_URL_VAR, DAGSTER_PG_URL_VAR)


class SettingsError(ValueError):
    pass


def mode() -> str:
    """``development`` or ``production``, from ``BODYFRIEND_ENV`` (unset: development)."""
    value = os.environ.get(ENV_VAR, "").strip().lower() or DEVELOPMENT
    if value not in MODES:
        raise SettingsError(f"{ENV_VAR} must be one of {', '.join(MODES)} (got {value!r})")
    return value


def check_production_settings() -> None:
    """In production, fail naming the first connection variable that is not set."""
    if mode() == PRODUCTION:
        for var in CONNECTION_VARS:
            _from_env(var)


def parse_url(raw: str, var: str) -> URL:
    """``raw`` as a SQLAlchemy URL, its user and password taken from before the last ``@``."""
    scheme, separator, rest = raw.partition("://")
    if separator:
        location, question, query = rest.partition("?")
        userinfo, at, hostpart = location.rpartition("@")
        if at:
            user, colon, password = userinfo.partition(":")
            userinfo = quote(unquote(user), safe="") + (colon and ":" + quote(unquote(password), safe=""))
            raw = f"{scheme}://{userinfo}@{hostpart}{question}{query}"
    try:
        return make_url(raw)
    except Exception:  # the text may hold a password: never echo it
        raise SettingsError(f"{var} is not a valid SQLAlchemy URL") from None


def _from_env(var: str, given: str | None = None) -> URL | None:
    raw = (os.environ.get(var, "") if given is None else given).strip()
    if raw:
        return parse_url(raw, var)
    if mode() == PRODUCTION:
        raise SettingsError(
            f"{var} is not set: {ENV_VAR}={PRODUCTION} needs {', '.join(CONNECTION_VARS)} "
            "and never starts the embedded server"
        )
    return None


def legacy_url(given: str | None = None) -> URL:
    """``given`` (a resource's field), else ``BODYFRIEND_LEGACY_URL``, else (development) the
    embedded stand-in."""
    url = _from_env(LEGACY_URL_VAR, given)
    if url is None:
        url, created = _embedded_database(embedded.LEGACY_DATABASE)
        if created:
            # A new embedded legacy database starts with demo data, so that every documented
            # command works on a fresh machine.
            from bodyfriend_assets.demo.generator import seed_legacy

            seed_legacy(url)
    return url


def datahub_is_configured(given: str | None = None) -> bool:
    """Whether ``given`` (a resource's field), else ``BODYFRIEND_DATAHUB_URL``, names the Data Hub,
    by the resolution ``datahub_url`` follows; False means the embedded development one."""
    return _from_env(DATAHUB_URL_VAR, given) is not None


def datahub_url(given: str | None = None) -> URL:
    """``given`` (a resource's field), else ``BODYFRIEND_DATAHUB_URL``, else (development) the
    embedded server."""
    return _postgres_setting(DATAHUB_URL_VAR, embedded.DATAHUB_DATABASE, given)


def instance_storage_url() -> URL:
    """Dagster's own instance database: ``DAGSTER_PG_URL``, or the embedded server's."""
    return _postgres_setting(DAGSTER_PG_URL_VAR, embedded.DAGSTER_DATABASE)


def _postgres_setting(var: str, embedded_database: str, given: str | None = None) -> URL:
    url = _from_env(var, given)
    if url is None:
        return _embedded_database(embedded_database)[0]
    if url.get_backend_name() != "postgresql" or url.get_driver_name() != "psycopg2":
        raise SettingsError(f"{var} must be a postgresql+psycopg2:// URL (got a {url.drivername} URL)")
    return url


# The embedded server's databases this process has created or found: a URL resolved again (every
# DataHub.engine() call resolves it) does not open an admin connection to ask again.
_ensured: set[str] = set()


def _embedded_database(database: str) -> tuple[URL, bool]:
    """The embedded server's ``database``, created if missing; True if this call created it."""
    url = embedded.server_url(database)
    known = url.render_as_string()  # the server's socket and the database, the password hidden
    if known in _ensured:
        return url, False
    created = embedded.ensure_database(url)
    _ensured.add(known)
    return url, created


def is_sql_server(url: URL) -> bool:
    return url.get_backend_name() == "mssql"


def describe_url(url: URL) -> str:
    """A URL fit for logs, metadata and the UI: driver, port and database; never user, password
    or host (the ERP's host names are not to be published either)."""
    host = "local socket" if not url.host else "***"
    return f"{url.drivername}://{host}{':' + str(url.port) if url.port else ''}/{url.database or ''}"


def describe_setting(var: str) -> str:
    """What ``var`` points at, for descriptions shown before any connection: never starts a server."""
    url = _from_env(var)
    return describe_url(url) if url is not None else "the embedded PostgreSQL server"


CONNECT_TIMEOUT_VAR = "BODYFRIEND_CONNECT_TIMEOUT_SECONDS"
STATEMENT_TIMEOUT_VAR = "BODYFRIEND_STATEMENT_TIMEOUT_SECONDS"
DEFAULT_CONNECT_TIMEOUT_SECONDS = 30
DEFAULT_STATEMENT_TIMEOUT_SECONDS = 3600


def seconds_setting(var: str, default: float) -> float:
    """A positive number of seconds from ``var``, or ``default`` when unset."""
    return positive_setting(var, default, "number of seconds")


def positive_setting(var: str, default: float, what: str = "number") -> float:
    """A positive number (``what``, for the error) from ``var``, or ``default`` when unset."""
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = 0
    if value <= 0:
        raise SettingsError(f"{var} must be a positive {what} (got {raw!r})")
    return value


def connect_timeout() -> int:
    """Seconds a connection (and a SQL Server login) may take before it fails as a timeout."""
    return max(1, round(seconds_setting(CONNECT_TIMEOUT_VAR, DEFAULT_CONNECT_TIMEOUT_SECONDS)))


def statement_timeout() -> int:
    """Seconds one statement may run, on either database, before it is cancelled."""
    return max(1, round(seconds_setting(STATEMENT_TIMEOUT_VAR, DEFAULT_STATEMENT_TIMEOUT_SECONDS)))
