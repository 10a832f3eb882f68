"""Dagster instance storage in PostgreSQL: ``DAGSTER_PG_URL``, or the embedded server when unset.

dagster.yaml names this class so that one file serves production (where ``DAGSTER_PG_URL`` names
the instance database) and every local command, ``dagster`` CLI included, on the embedded default.
"""

from __future__ import annotations

import os

from dagster_postgres import DagsterPostgresStorage

from bodyfriend_assets import embedded

DAGSTER_PG_URL_VAR = "DAGSTER_PG_URL"


def instance_storage_url() -> str:
    url = os.environ.get(DAGSTER_PG_URL_VAR, "").strip()
    if url:
        return url
    default = embedded.server_url(embedded.DAGSTER_DATABASE)
    embedded.ensure_database(default)
    return default.render_as_string(hide_password=False)


class DataHubInstanceStorage(DagsterPostgresStorage):
    """dagster-postgres storage (runs, event log, schedules) at :func:`instance_storage_url`."""

    @classmethod
    def config_type(cls):
        return {}

    @classmethod
    def from_config_value(cls, inst_data, config_value):
        return cls(postgres_url=instance_storage_url(), inst_data=inst_data)
