"""The legacy ERP tables as external (source) assets: ``legacy/<db>/<table>``.

Nothing materializes them; they anchor the lineage that starts every chain in the asset graph.
"""

from __future__ import annotations

import dagster as dg

from bodyfriend_assets.catalog import Catalog, LegacyTable

GROUP = "legacy"


def legacy_key(entry: LegacyTable) -> dg.AssetKey:
    return dg.AssetKey(["legacy", entry.database.lower(), entry.name])


def legacy_specs(catalog: Catalog) -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            key=legacy_key(entry),
            group_name=GROUP,
            description=f"`{entry.qualified_name}` on the legacy ERP (SQL Server).",
            kinds={"mssql"},
            metadata={
                "source_table": f"{entry.database}.{entry.schema_}.{entry.table}",
                "keys": ", ".join(entry.keys),
                "mode": entry.mode,
            },
        )
        for entry in catalog.tables
    ]
