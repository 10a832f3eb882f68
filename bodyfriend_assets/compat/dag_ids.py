"""The old Airflow DAG id of every asset, the key of ``dag_log`` and ``dependency_manager``.

Every legacy table had three DAGs (see the legacy catalog): ``legacy_to_lv0_<DB>.<TABLE>`` loaded
lv0, ``lv0_dag_<DB>.<TABLE>`` built lv1 from it, ``lv1_dag_<DB>.<TABLE>`` built lv2 and the hc
tables. An asset's DAG id is, in order:

1. its metadata ``dag_id``, when present: the lv1/lv2/hc factories set it, and any asset may
   override its derived id this way (an empty value or ``None`` means "no DAG": not mirrored);
2. for ``lv0/<table>``, ``lv1/<table>``, ``lv2/<table>`` and ``hc/<table>``, derived from the
   catalog entry of ``<table>``: ``legacy_to_lv0_`` (lv0), ``lv0_dag_`` (lv1) or ``lv1_dag_``
   (lv2, hc) followed by ``<DB>.<TABLE>`` as the catalog spells it;
3. ``None`` for every other asset: the ``legacy/...`` sources (nothing materializes them),
   ``compat/...``, anything outside the four layers.

An lv0/lv1/lv2/hc asset whose id can be neither read nor derived is a definition error
(:class:`DagIdError`), raised when definitions load, so a model can never silently drop out of
``dag_log``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

import dagster as dg

from bodyfriend_assets.catalog import Catalog

DAG_ID_METADATA_KEY = "dag_id"

# The layer (first part of the asset key) -> the prefix of the Airflow DAG that produced it.
LAYER_DAG_PREFIX: Mapping[str, str] = {
    "lv0": "legacy_to_lv0_",
    "lv1": "lv0_dag_",
    "lv2": "lv1_dag_",
    "hc": "lv1_dag_",
}

# Airflow's own limit on a dag_id (and the width of dag_log.dag_id).
MAX_DAG_ID_LENGTH = 250


class DagIdError(ValueError):
    """An asset of a DAG layer has no usable DAG id; the message names the asset."""


def _metadata_value(value: Any) -> Any:
    # Definitions normalize metadata to MetadataValue objects (TextMetadataValue, NullMetadataValue);
    # plain dicts given by hand hold the raw value.
    return value.value if isinstance(value, dg.MetadataValue) else value


def dag_id_for(
    asset_key: dg.AssetKey, asset_metadata: Mapping[str, Any] | None, catalog: Catalog
) -> str | None:
    """The old DAG id of an asset, or None when the asset stands for no DAG (legacy sources)."""
    label = asset_key.to_user_string()
    metadata = asset_metadata or {}
    if DAG_ID_METADATA_KEY in metadata:
        explicit = _metadata_value(metadata[DAG_ID_METADATA_KEY])
        if explicit is None or explicit == "":
            return None
        if not isinstance(explicit, str) or explicit != explicit.strip() or len(explicit) > MAX_DAG_ID_LENGTH:
            raise DagIdError(
                f"asset {label}: metadata {DAG_ID_METADATA_KEY!r} must be a DAG id "
                f"(a string of at most {MAX_DAG_ID_LENGTH} characters, no surrounding spaces), "
                f"got {explicit!r}"
            )
        return explicit
    prefix = LAYER_DAG_PREFIX.get(asset_key.path[0])
    if prefix is None:
        return None
    try:
        entry = catalog.by_name(asset_key.path[-1])
    except KeyError:
        raise DagIdError(
            f"asset {label} belongs to layer {asset_key.path[0]!r} but has no "
            f"{DAG_ID_METADATA_KEY!r} metadata and no catalog table is named "
            f"{asset_key.path[-1]!r}: set metadata {{'{DAG_ID_METADATA_KEY}': "
            f"'{prefix}<DB>.<TABLE>'}} on the asset"
        ) from None
    return prefix + entry.qualified_name


class LineageNode(NamedTuple):
    key: dg.AssetKey
    metadata: Mapping[str, Any]
    parents: frozenset[dg.AssetKey]


def lineage_nodes(assets: Any) -> dict[dg.AssetKey, LineageNode]:
    """Every asset's key, metadata and upstream keys, from an asset graph
    (``Definitions.resolve_asset_graph()``) or from a list of asset definitions and specs (which
    needs no resources, unlike resolving a graph)."""
    nodes: dict[dg.AssetKey, LineageNode] = {}
    if hasattr(assets, "asset_nodes"):
        for node in assets.asset_nodes:
            nodes[node.key] = LineageNode(node.key, node.metadata, frozenset(node.parent_keys))
        return nodes
    for item in assets:
        if isinstance(item, dg.AssetsDefinition):
            specs = list(item.specs)
        elif isinstance(item, dg.AssetSpec):
            specs = [item]
        elif isinstance(item, dg.SourceAsset):
            nodes[item.key] = LineageNode(item.key, item.metadata, frozenset())
            continue
        else:  # asset checks, jobs, ...: no DAG, no lineage
            continue
        for spec in specs:
            parents = frozenset(dep.asset_key for dep in spec.deps)
            nodes[spec.key] = LineageNode(spec.key, spec.metadata, parents)
    return nodes


def dag_ids_of(assets: Any, catalog: Catalog) -> dict[dg.AssetKey, str]:
    """asset key -> DAG id of every asset that has one.

    ``assets`` is an asset graph (``Definitions.resolve_asset_graph()``) or a list of asset
    definitions and specs. Raises :class:`DagIdError` naming the first asset at fault.
    """
    result: dict[dg.AssetKey, str] = {}
    for key, node in lineage_nodes(assets).items():
        dag_id = dag_id_for(key, node.metadata, catalog)
        if dag_id is not None:
            result[key] = dag_id
    return result
