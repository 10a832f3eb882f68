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

The old DAGs without an asset of their own
-------------------------------------------
The old chain had ``legacy_to_lv0_`` and ``lv0_dag_`` for every table and ``lv1_dag_`` for every
table but the five in :data:`NO_LV1_DAG`. Where the platform has no asset carrying such an id, the
DAG still completes, as a *stand-in* (:func:`stand_in_dags`), when the work it stood for is done:

- ``lv0_dag_<T>`` with no lv1 model of its own: the lv1 models built from ``lv0/<t>`` (B_MINOR:
  ``lv1/code_master``, built from B_MAJOR and B_MINOR as the old ``func_daily_code_master`` was);
  it waits for what they wait for, e.g. ``('legacy_to_lv0_UNIERP5.B_MAJOR',
  'lv0_dag_UNIERP5.B_MINOR')``. When no lv1 model reads the table, its lv0 -> lv1 work is the
  lv0 load itself: it completes with ``legacy_to_lv0_<T>`` and waits for it.
- ``lv1_dag_<T>`` with no lv2/hc model of its own: it completes with ``lv0_dag_<T>`` (its table
  reached lv1; there is no lv2/hc work of its own) and waits for it.

No other id is ever made up: ``lv1ex_dag_`` ids appear only once assets carry them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
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

# Tables whose old chain ended at lv1: no ``lv1_dag_`` DAG was ever written for them.
NO_LV1_DAG = frozenset({
    "RENTAL.R_INSTALL_FEE",
    "RENTAL.R_PROD_SYMPTOM_DTL",
    "RENTAL.R_PROD_SYMPTOM_HDR",
    "RENTAL.R_PROD_SYMPTOM_SML",
    "RENTAL.V_ERP_USER",
})

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


@dataclass(frozen=True)
class StandIn:
    """An old DAG with no asset of its own: the assets whose success completes it, and the DAGs
    it waits for in ``dependency_manager``."""

    work: frozenset[dg.AssetKey]
    waits_for: frozenset[str]


def work_of(dag_ids: Mapping[dg.AssetKey, str]) -> dict[str, frozenset[dg.AssetKey]]:
    """DAG id -> the assets carrying it."""
    work: dict[str, set[dg.AssetKey]] = {}
    for key, dag_id in dag_ids.items():
        work.setdefault(dag_id, set()).add(key)
    return {dag_id: frozenset(keys) for dag_id, keys in work.items()}


def stand_in_dags(assets: Any, catalog: Catalog, dag_ids: Mapping[dg.AssetKey, str]) -> dict[str, StandIn]:
    """The old DAGs of the catalog's tables that no asset carries (see the module docstring).

    Only tables whose lv0 asset is among ``assets`` are considered.
    """
    nodes = lineage_nodes(assets)
    own = work_of(dag_ids)
    stand_ins: dict[str, StandIn] = {}
    for table in catalog.tables:
        lv0 = dg.AssetKey(["lv0", table.name])
        if lv0 not in dag_ids:
            continue
        load = dag_ids[lv0]
        lv0_dag = LAYER_DAG_PREFIX["lv1"] + table.qualified_name
        if lv0_dag not in own:
            readers = frozenset(
                key for key, node in nodes.items()
                if key.path[0] == "lv1" and lv0 in node.parents and key in dag_ids
            )
            if readers:
                waits = {dag_ids[p] for r in readers for p in nodes[r].parents if p in dag_ids}
                stand_ins[lv0_dag] = StandIn(readers, frozenset(waits - {lv0_dag}))
            else:
                stand_ins[lv0_dag] = StandIn(frozenset({lv0}), frozenset({load}))
        lv1_dag = LAYER_DAG_PREFIX["lv2"] + table.qualified_name
        if table.qualified_name in NO_LV1_DAG or lv1_dag in own:
            continue
        before = stand_ins[lv0_dag].work if lv0_dag in stand_ins else own[lv0_dag]
        stand_ins[lv1_dag] = StandIn(before, frozenset({lv0_dag}))
    return stand_ins


def dag_work(dag_ids: Mapping[dg.AssetKey, str], stand_ins: Mapping[str, StandIn] | None = None) -> dict[str, frozenset[dg.AssetKey]]:
    """Every DAG id the platform can write -> the assets whose success on a Korean day completes
    it that day: the assets carrying it, or a stand-in's work."""
    work = work_of(dag_ids)
    for dag_id, stand_in in (stand_ins or {}).items():
        work[dag_id] = stand_in.work
    return work
