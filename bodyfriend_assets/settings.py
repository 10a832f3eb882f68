"""Where the platform's databases are: two environment variables, or the embedded default.

``BODYFRIEND_LEGACY_URL`` names the legacy ERP (``mssql+pymssql://...`` in production, any
SQLAlchemy URL for a stand-in) and ``BODYFRIEND_DATAHUB_URL`` the Data Hub
(``postgresql+psycopg2://...``). Unset, the embedded PostgreSQL serves both. The variables are
read when a connection is made, never at import, and the URLs (which carry passwords) are only
ever shown through ``describe_url``.
"""

from __future__ import annotations

import os

from sqlalchemy.engine import URL, make_url

from bodyfriend_assets import embedded

LEGACY_URL_VAR = "BODYFRIEND_LEGACY_URL"
DATAHUB_URL_VAR = "BODYFRIEND_DATAHUB_URL"


class SettingsError(ValueError):
    pass


def _from_env(var: str) -> URL | None:
    raw = os.environ.get(var, "").strip()
    if not raw:
        return None
    try:
        return make_url(raw)
    except Exception:  # the text may hold a password: never echo it
        raise SettingsError(f"{var} is not a valid SQLAlchemy URL") from None


def legacy_url() -> URL:
    url = _from_env(LEGACY_URL_VAR)
    if url is None:
        url = embedded.server_url(embedded.LEGACY_DATABASE)
        if embedded.ensure_database(url):
            # A new embedded legacy database starts with demo data, so that every documented
            # command works on a fresh machine.
            from bodyfriend_assets.demo.generator import seed_legacy

            seed_legacy(url)
    return url


def datahub_url() -> URL:
    url = _from_env(DATAHUB_URL_VAR)
    if url is None:
        url = embedded.server_url(embedded.DATAHUB_DATABASE)
        embedded.ensure_database(url)
    elif url.get_backend_name() != "postgresql" or url.get_driver_name() != "psycopg2":
        raise SettingsError(
            f"{DATAHUB_URL_VAR} must be a postgresql+psycopg2:// URL "
            f"(got a {url.drivername} URL)"
        )
    return url


def is_sql_server(url: URL) -> bool:
    return url.get_backend_name() == "mssql"


def describe_url(url: URL) -> str:
    """A URL fit for logs and metadata: driver, host and database, never user or password."""
    host = url.host or (url.query.get("host") and "local socket") or "local"
    return f"{url.drivername}://{host}{':' + str(url.port) if url.port else ''}/{url.database or ''}"
