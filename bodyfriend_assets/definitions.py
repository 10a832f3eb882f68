"""The one place that builds the platform's Dagster ``Definitions``.

Loading it validates the catalog (a bad entry fails here, naming it) but touches no database.
"""

from __future__ import annotations

import dagster as dg

from bodyfriend_assets.automation import daily_job, daily_schedule
from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.legacy import legacy_specs
from bodyfriend_assets.lv0 import lv0_assets
from bodyfriend_assets.lv0.checks import build_lv0_checks
from bodyfriend_assets.resources import DataHub, LegacyDatabase

catalog = load_catalog()

defs = dg.Definitions(
    assets=[*legacy_specs(catalog), *lv0_assets(catalog)],
    asset_checks=[check for entry in catalog.tables for check in build_lv0_checks(entry)],
    jobs=[daily_job],
    schedules=[daily_schedule],
    resources={"legacy": LegacyDatabase(), "datahub": DataHub()},
)
