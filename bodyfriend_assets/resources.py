"""Dagster resources for the two databases.

The URLs are resolved when a run first connects (``settings``), so loading definitions never
reads the environment or starts a server, and no URL ever becomes run config shown in the UI.
"""

from __future__ import annotations

from functools import cache

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import URL, Engine

from bodyfriend_assets import settings
from bodyfriend_assets.table_locks import DEFAULT_LOCK_TIMEOUT_SECONDS


@cache
def _engine(url: URL) -> Engine:
    return sa.create_engine(url, pool_pre_ping=True, pool_size=2, max_overflow=4)


class LegacyDatabase(dg.ConfigurableResource):
    """The legacy ERP (SQL Server in production): ``BODYFRIEND_LEGACY_URL`` or the embedded stand-in."""

    def engine(self) -> Engine:
        return _engine(settings.legacy_url())


class DataHub(dg.ConfigurableResource):
    """The Data Hub PostgreSQL: ``BODYFRIEND_DATAHUB_URL`` or the embedded server.

    ``lock_timeout_seconds``: how long a load waits for a lock on its table before failing with
    the table and the lock's holders named (``table_locks``)."""

    lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS

    def engine(self) -> Engine:
        return _engine(settings.datahub_url())
