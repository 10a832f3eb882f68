"""The lv0 asset key of a catalog table: ``lv0/<table>``."""

import dagster as dg

from bodyfriend_assets.catalog import LegacyTable


def lv0_key(entry: LegacyTable) -> dg.AssetKey:
    return dg.AssetKey(["lv0", entry.name])
