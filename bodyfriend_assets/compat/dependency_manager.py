"""``public.dependency_manager(asis_dag, tobe_dag)`` written from the asset lineage, and checked.

The old system listed, for each DAG (``tobe_dag``), the DAGs it waited for (``asis_dag``). The
asset graph is that list now: for every asset with a DAG id (:mod:`.dag_ids`), each nearest
upstream asset with a DAG id gives a row ``(upstream's DAG id, its DAG id)``, e.g.
``('legacy_to_lv0_UNIERP5.B_MAJOR', 'lv0_dag_UNIERP5.B_MINOR')``.

- Legacy sources have no DAG id and start no row.
- An edge within one DAG (both ends map to the same DAG id, e.g. two hc tables of one
  ``lv1_dag_...``) gives no row.
- An upstream asset without a DAG id that has parents of its own (an intermediate model) is looked
  through: its nearest upstream DAGs become the downstream's. With every asset carrying a DAG id
  this is exactly "one row per edge".
- An old DAG without an asset of its own (:func:`.dag_ids.stand_in_dags`) waits for what its
  stand-in work waits for (:func:`stand_in_dependencies`).

The asset ``compat/dependency_manager`` writes the lineage's rows into the table, in one
transaction, and remembers which rows it derived (``public.dependency_manager_derived``): a row
it derived that the lineage no longer holds is deleted; a row it never derived was entered by hand
(or by the old system) and is kept. Its check ``dependency_manager_matches_lineage`` fails when a
lineage row is missing or a row it derived is stale, and reports the rows entered by hand.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from bodyfriend_assets.compat.dag_ids import LineageNode, StandIn, lineage_nodes
from bodyfriend_assets.compat.dag_log import ensure_table
from bodyfriend_assets.partitions import daily_freshness
from bodyfriend_assets.resources import DataHub

DEPENDENCY_MANAGER_KEY = dg.AssetKey(["compat", "dependency_manager"])
CHECK_NAME = "dependency_manager_matches_lineage"
GROUP = "compat"

Pair = tuple[str, str]

_metadata = sa.MetaData()
DERIVED = sa.Table(  # the rows the asset wrote last: the others were entered by hand
    "dependency_manager_derived",
    _metadata,
    sa.Column("asis_dag", sa.String(250), primary_key=True),
    sa.Column("tobe_dag", sa.String(250), primary_key=True),
    schema="public",
)
DEPENDENCY_MANAGER = sa.Table(
    "dependency_manager",
    _metadata,
    sa.Column("asis_dag", sa.String(250), nullable=False),
    sa.Column("tobe_dag", sa.String(250), nullable=False),
    sa.UniqueConstraint("asis_dag", "tobe_dag", name="dependency_manager_asis_dag_tobe_dag_key"),
    schema="public",
)


# -- the lineage ----------------------------------------------------------------------------


def _nearest_upstream_dags(
    nodes: Mapping[dg.AssetKey, LineageNode], key: dg.AssetKey, dag_ids: Mapping[dg.AssetKey, str]
) -> set[str]:
    found: set[str] = set()
    visited: set[dg.AssetKey] = set()
    frontier = list(nodes[key].parents)
    while frontier:
        parent = frontier.pop()
        if parent in visited:
            continue
        visited.add(parent)
        if parent in dag_ids:
            found.add(dag_ids[parent])
        elif parent in nodes:
            frontier.extend(nodes[parent].parents)
    return found


def expected_dependencies(asset_graph: Any, dag_ids: Mapping[dg.AssetKey, str]) -> set[Pair]:
    """The rows dependency_manager must hold: ``{(asis_dag, tobe_dag), ...}``.

    ``asset_graph`` is ``Definitions.resolve_asset_graph()`` or the list of asset definitions and
    specs; ``dag_ids`` maps asset keys to DAG ids (``dag_ids_of``).
    """
    nodes = lineage_nodes(asset_graph)
    pairs: set[Pair] = set()
    for key in nodes:
        downstream = dag_ids.get(key)
        if downstream is None:
            continue
        for upstream in _nearest_upstream_dags(nodes, key, dag_ids):
            if upstream != downstream:
                pairs.add((upstream, downstream))
    return pairs


def stand_in_dependencies(stand_ins: Mapping[str, StandIn]) -> set[Pair]:
    """The rows of the old DAGs without an asset of their own: each waits for its stand-in's."""
    return {(upstream, dag_id) for dag_id, stand_in in stand_ins.items() for upstream in stand_in.waits_for}


def lineage_version(pairs: Iterable[Pair]) -> str:
    """A short digest of the lineage: the asset's code version, so a changed lineage shows."""
    text = "\n".join(f"{a}\t{b}" for a, b in sorted(pairs))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


# -- the table ------------------------------------------------------------------------------


def _rows(conn: Connection) -> Counter[Pair]:
    if not sa.inspect(conn).has_table(DEPENDENCY_MANAGER.name, schema=DEPENDENCY_MANAGER.schema):
        return Counter()
    t = DEPENDENCY_MANAGER
    return Counter(
        {
            (a, b): n
            for a, b, n in conn.execute(
                sa.select(t.c.asis_dag, t.c.tobe_dag, sa.func.count()).group_by(t.c.asis_dag, t.c.tobe_dag)
            )
        }
    )


def read_dependency_manager(engine: Engine) -> set[Pair]:
    """The table's distinct rows (empty when the table does not exist)."""
    with engine.connect() as conn:
        return set(_rows(conn))


def _derived(conn: Connection) -> set[Pair]:
    if not sa.inspect(conn).has_table(DERIVED.name, schema=DERIVED.schema):
        return set()
    return {(a, b) for a, b in conn.execute(sa.select(DERIVED.c.asis_dag, DERIVED.c.tobe_dag))}


def write_dependency_manager(engine: Engine, pairs: Iterable[Pair]) -> tuple[int, int]:
    """Write the lineage's ``pairs`` into the table, in one transaction; returns (inserted, deleted).

    Creates the table if missing. Rows already right are not touched, so writing the same lineage
    again changes nothing. Rows this function wrote before and the lineage no longer holds are
    deleted; rows it never wrote (entered by hand) are kept. Duplicate copies of a row (an older
    table without the unique constraint) are merged into one.
    """
    wanted = set(pairs)
    t = DEPENDENCY_MANAGER
    with engine.begin() as conn:
        ensure_table(conn, t)
        ensure_table(conn, DERIVED)
        # Writers (and the check's reader) see the table before or after, never half-written;
        # two writers run one after the other.
        preparer = conn.dialect.identifier_preparer
        conn.execute(sa.text(f"LOCK TABLE {preparer.format_table(t)} IN SHARE ROW EXCLUSIVE MODE"))
        current = _rows(conn)
        stale = _derived(conn) - wanted
        keep = (set(current) | wanted) - stale
        remove = {p for p, n in current.items() if p not in keep or n > 1}
        add = sorted(keep - (set(current) - remove), key=lambda p: (str(p[0]), str(p[1])))
        deleted = 0
        for asis, tobe in sorted(remove, key=lambda p: (str(p[0]), str(p[1]))):
            deleted += conn.execute(
                sa.delete(t).where(t.c.asis_dag.is_not_distinct_from(asis), t.c.tobe_dag.is_not_distinct_from(tobe))
            ).rowcount
        if add:
            conn.execute(
                pg_insert(t).values([{"asis_dag": a, "tobe_dag": b} for a, b in add]).on_conflict_do_nothing()
            )
        deleted -= sum(1 for p in remove if p in keep)  # a duplicated row keeps one (re-inserted) copy
        inserted = len([p for p in add if p not in remove])
        conn.execute(sa.delete(DERIVED))
        if wanted:
            conn.execute(sa.insert(DERIVED).values([{"asis_dag": a, "tobe_dag": b} for a, b in sorted(wanted)]))
    return inserted, deleted


def dependency_manager_disagreements(engine: Engine, pairs: Iterable[Pair]) -> tuple[set[Pair], set[Pair]]:
    """(missing, extra): lineage pairs absent from the table, table rows absent from the lineage."""
    wanted = set(pairs)
    current = read_dependency_manager(engine)
    return wanted - current, current - wanted


def stale_and_hand_entered(engine: Engine, pairs: Iterable[Pair]) -> tuple[set[Pair], set[Pair]]:
    """The table's rows outside the lineage, split: (derived by the asset earlier, never derived)."""
    _, extra = dependency_manager_disagreements(engine, pairs)
    with engine.connect() as conn:
        derived = _derived(conn)
    return extra & derived, extra - derived


def _pairs_text(pairs: Iterable[Pair], limit: int = 5) -> str:
    ordered = sorted(pairs, key=str)
    text = ", ".join(f"{a} -> {b}" for a, b in ordered[:limit])
    return text + (f" and {len(ordered) - limit} more" if len(ordered) > limit else "")


def _pairs_value(pairs: Iterable[Pair]) -> dg.MetadataValue:
    return dg.MetadataValue.json([{"asis_dag": a, "tobe_dag": b} for a, b in sorted(pairs, key=str)])


# -- the asset and its check ----------------------------------------------------------------


def build_dependency_manager_asset(pairs: Iterable[Pair]) -> dg.AssetsDefinition:
    """``compat/dependency_manager``: writes the table from ``pairs`` (``expected_dependencies``).

    Its code version is a digest of the lineage, so the UI marks it when the lineage changed
    since its last materialization.
    """
    lineage = frozenset(pairs)

    @dg.asset(
        key=DEPENDENCY_MANAGER_KEY,
        group_name=GROUP,
        kinds={"postgres"},
        code_version=lineage_version(lineage),
        freshness_policy=daily_freshness,
        description=(
            "`public.dependency_manager(asis_dag, tobe_dag)` on the Data Hub, written from the asset "
            "lineage: one row per upstream DAG of every old Airflow DAG; rows entered by hand are kept."
        ),
        metadata={"table": "public.dependency_manager", "lineage_pairs": len(lineage)},
    )
    def _dependency_manager(datahub: DataHub) -> dg.MaterializeResult:
        inserted, deleted = write_dependency_manager(datahub.engine(), lineage)
        return dg.MaterializeResult(
            metadata={"rows": len(lineage), "inserted": inserted, "deleted": deleted}
        )

    return _dependency_manager


def build_dependency_manager_check(pairs: Iterable[Pair]) -> dg.AssetChecksDefinition:
    """``dependency_manager_matches_lineage`` on ``compat/dependency_manager``: fails when the
    table and ``pairs`` disagree, listing the missing and extra pairs in its metadata."""
    lineage = frozenset(pairs)

    @dg.asset_check(
        asset=DEPENDENCY_MANAGER_KEY,
        name=CHECK_NAME,
        description=(
            "`public.dependency_manager` holds every (`asis_dag`, `tobe_dag`) pair of the lineage "
            "(`missing`: in the lineage, not in the table) and none the asset derived earlier that the "
            "lineage no longer holds (`stale`); rows entered by hand are kept and listed (`hand_entered`)."
        ),
    )
    def _matches_lineage(datahub: DataHub) -> dg.AssetCheckResult:
        engine = datahub.engine()
        missing, _ = dependency_manager_disagreements(engine, lineage)
        stale, by_hand = stale_and_hand_entered(engine, lineage)
        passed = not missing and not stale
        description = (
            f"the table holds the lineage ({len(lineage)} pairs)"
            if passed
            else f"{len(missing)} lineage pairs missing from the table, {len(stale)} stale rows"
        )
        if by_hand:
            description += f"; {len(by_hand)} rows entered by hand, kept: {_pairs_text(by_hand)}"
        return dg.AssetCheckResult(
            passed=passed,
            description=description,
            metadata={
                "lineage_pairs": len(lineage),
                "missing_count": len(missing),
                "stale_count": len(stale),
                "hand_entered_count": len(by_hand),
                "missing": _pairs_value(missing),
                "stale": _pairs_value(stale),
                "hand_entered": _pairs_value(by_hand),
            },
        )

    return _matches_lineage
