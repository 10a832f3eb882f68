"""DAG ids of assets, dependency_manager from the lineage, and its check.

lv1/lv2/hc do not exist yet, so the lineage here is a small stand-in: the real legacy sources and
lv0 assets of four catalog tables, plus do-nothing lv1/lv2/hc assets shaped like the old DAGs
(the code master B_MAJOR + B_MINOR, R_GOODS -> Product2). The table is written and checked on a
real PostgreSQL through real runs of the asset and its check.
"""

from __future__ import annotations

import dagster as dg
import pytest
import sqlalchemy as sa

from bodyfriend_assets.catalog import Catalog, load_catalog
from bodyfriend_assets.compat.dag_ids import DagIdError, dag_id_for, dag_ids_of
from bodyfriend_assets.compat.dependency_manager import (
    CHECK_NAME,
    DEPENDENCY_MANAGER_KEY,
    build_dependency_manager_asset,
    build_dependency_manager_check,
    dependency_manager_disagreements,
    expected_dependencies,
    read_dependency_manager,
    write_dependency_manager,
)
from bodyfriend_assets.legacy import legacy_specs
from bodyfriend_assets.lv0 import build_lv0_asset
from bodyfriend_assets.resources import DataHub, LegacyDatabase

CATALOG = load_catalog()
TABLES = [CATALOG.by_name(n) for n in ("b_major", "b_minor", "r_goods", "r_order_contract")]


def key(text: str) -> dg.AssetKey:
    return dg.AssetKey.from_user_string(text)


@dg.asset(key=["lv1", "b_minor"], deps=[key("lv0/b_major"), key("lv0/b_minor")],
          metadata={"dag_id": "lv0_dag_UNIERP5.B_MINOR"})
def lv1_code_master() -> None: ...


@dg.asset(key=["lv1", "r_goods"], deps=[key("lv0/r_goods")])  # DAG id derived: lv0_dag_RENTAL.R_GOODS
def lv1_goods() -> None: ...


@dg.asset(key=["lv2", "product2"], deps=[key("lv1/r_goods")], metadata={"dag_id": "lv1_dag_RENTAL.R_GOODS"})
def lv2_product2() -> None: ...


@dg.asset(key=["hc", "product2"], deps=[key("lv2/product2")], metadata={"dag_id": "lv1_dag_RENTAL.R_GOODS"})
def hc_product2() -> None: ...  # same DAG as its upstream: no row


@dg.asset(key=["lv2", "code_lookup"], deps=[key("lv1/b_minor")], metadata={"dag_id": None})
def lv2_code_lookup() -> None: ...  # an intermediate model with no DAG of its own: looked through


@dg.asset(key=["hc", "code__c"], deps=[key("lv2/code_lookup")], metadata={"dag_id": "lv1_dag_UNIERP5.B_MINOR"})
def hc_code() -> None: ...


FAKE_MODELS = [lv1_code_master, lv1_goods, lv2_product2, hc_product2, lv2_code_lookup, hc_code]
ASSETS = [*legacy_specs(Catalog(tables=tuple(TABLES))),
          *[build_lv0_asset(t) for t in TABLES], *FAKE_MODELS]

EXPECTED = {
    ("legacy_to_lv0_UNIERP5.B_MAJOR", "lv0_dag_UNIERP5.B_MINOR"),
    ("legacy_to_lv0_UNIERP5.B_MINOR", "lv0_dag_UNIERP5.B_MINOR"),
    ("legacy_to_lv0_RENTAL.R_GOODS", "lv0_dag_RENTAL.R_GOODS"),
    ("lv0_dag_RENTAL.R_GOODS", "lv1_dag_RENTAL.R_GOODS"),
    ("lv0_dag_UNIERP5.B_MINOR", "lv1_dag_UNIERP5.B_MINOR"),
}


# -- DAG ids --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "asset_key, metadata, dag_id",
    [
        ("lv0/r_order_contract", {}, "legacy_to_lv0_RENTAL.R_ORDER_CONTRACT"),
        ("lv0/b_major", None, "legacy_to_lv0_UNIERP5.B_MAJOR"),
        ("lv1/r_order_contract", {}, "lv0_dag_RENTAL.R_ORDER_CONTRACT"),
        ("lv2/r_order_contract", {}, "lv1_dag_RENTAL.R_ORDER_CONTRACT"),
        ("hc/r_order_contract", {}, "lv1_dag_RENTAL.R_ORDER_CONTRACT"),
        ("hc/opportunity", {"dag_id": "lv1_dag_RENTAL.R_ORDER_CONTRACT"}, "lv1_dag_RENTAL.R_ORDER_CONTRACT"),
        ("hc/opportunity", {"dag_id": dg.MetadataValue.text("lv1_dag_RENTAL.R_ORDER_CONTRACT")}, "lv1_dag_RENTAL.R_ORDER_CONTRACT"),
        ("lv0/b_minor", {"dag_id": "legacy_to_lv0_UNIERP5.B_MAJOR"}, "legacy_to_lv0_UNIERP5.B_MAJOR"),  # override
        ("lv0/b_minor", {"dag_id": None}, None),  # opted out
        ("legacy/rental/r_order_contract", {"source_table": "RENTAL.dbo.R_ORDER_CONTRACT"}, None),
        ("compat/dependency_manager", {}, None),
    ],
)
def test_dag_id_of_an_asset(asset_key, metadata, dag_id):
    assert dag_id_for(key(asset_key), metadata, CATALOG) == dag_id


@pytest.mark.parametrize(
    "asset_key, metadata, message",
    [
        ("lv1/address_master", {}, "lv1/address_master"),
        ("hc/opportunity", {"other": 1}, "hc/opportunity"),
        ("lv2/x", {"dag_id": 3}, "must be a DAG id"),
        ("lv2/x", {"dag_id": " lv1_dag_X "}, "must be a DAG id"),
        ("lv2/x", {"dag_id": "x" * 251}, "must be a DAG id"),
    ],
)
def test_an_asset_of_a_dag_layer_without_a_dag_id_is_a_definition_error(asset_key, metadata, message):
    with pytest.raises(DagIdError, match=message):
        dag_id_for(key(asset_key), metadata, CATALOG)


def test_the_platforms_own_lineage_gives_a_dag_per_asset_and_the_old_chain():
    from bodyfriend_assets.definitions import dag_ids as platform_dag_ids
    from bodyfriend_assets.definitions import defs, platform_assets

    graph = defs.resolve_asset_graph()
    dag_ids = dag_ids_of(graph, CATALOG)
    assert dag_ids == platform_dag_ids == dag_ids_of(platform_assets, CATALOG)
    for table in CATALOG.tables:
        assert dag_ids[key(f"lv0/{table.name}")] == f"legacy_to_lv0_{table.qualified_name}"
    layers = {k.path[0] for k in dag_ids}
    assert layers >= {"lv0", "lv1", "lv2"} and "legacy" not in layers
    pairs = expected_dependencies(graph, dag_ids)
    # lv0 of a table feeds its lv1; lv1 feeds the lv2 models built on it
    assert ("legacy_to_lv0_RENTAL.R_ORDER_CONTRACT", "lv0_dag_RENTAL.R_ORDER_CONTRACT") in pairs
    assert ("lv0_dag_RENTAL.R_ORDER_CONTRACT", "lv1_dag_RENTAL.R_ORDER_CONTRACT") in pairs
    assert ("lv1_dag_RENTAL.V_CUSTOMER", "lv1_dag_RENTAL.R_ORDER_CONTRACT") in pairs  # account -> opportunity
    assert all(asis != tobe for asis, tobe in pairs)
    assert expected_dependencies(platform_assets, dag_ids) == pairs


def test_dependencies_follow_the_lineage():
    graph = dg.Definitions(assets=ASSETS, resources={"datahub": DataHub(), "legacy": LegacyDatabase()}).resolve_asset_graph()
    dag_ids = dag_ids_of(graph, CATALOG)
    assert dag_ids == {
        key("lv0/b_major"): "legacy_to_lv0_UNIERP5.B_MAJOR",
        key("lv0/b_minor"): "legacy_to_lv0_UNIERP5.B_MINOR",
        key("lv0/r_goods"): "legacy_to_lv0_RENTAL.R_GOODS",
        key("lv0/r_order_contract"): "legacy_to_lv0_RENTAL.R_ORDER_CONTRACT",
        key("lv1/b_minor"): "lv0_dag_UNIERP5.B_MINOR",
        key("lv1/r_goods"): "lv0_dag_RENTAL.R_GOODS",
        key("lv2/product2"): "lv1_dag_RENTAL.R_GOODS",
        key("hc/product2"): "lv1_dag_RENTAL.R_GOODS",
        key("hc/code__c"): "lv1_dag_UNIERP5.B_MINOR",
    }
    assert expected_dependencies(graph, dag_ids) == EXPECTED
    assert dag_ids_of(ASSETS, CATALOG) == dag_ids
    assert expected_dependencies(ASSETS, dag_ids) == EXPECTED


# -- the table, the asset, the check --------------------------------------------------------


def table_versions(hub) -> list[tuple]:
    with hub.connect() as conn:
        return [tuple(r) for r in conn.execute(sa.text(
            "SELECT asis_dag, tobe_dag, xmin::text FROM public.dependency_manager ORDER BY 1, 2"))]


def execute(selection, instance, pairs=EXPECTED) -> dg.ExecuteInProcessResult:
    """Run the compat asset and/or its check, beside the stand-in lineage, as a UI run would."""
    result = dg.materialize(
        [*ASSETS, build_dependency_manager_asset(pairs), build_dependency_manager_check(pairs)],
        selection=selection,
        instance=instance,
        resources={"datahub": DataHub(), "legacy": LegacyDatabase()},
    )
    assert result.success
    return result


def check_result(result) -> dg.AssetCheckEvaluation:
    [evaluation] = result.get_asset_check_evaluations()
    assert evaluation.check_name == CHECK_NAME and evaluation.asset_key == DEPENDENCY_MANAGER_KEY
    return evaluation


def pairs_of(metadata_value) -> set[tuple]:
    return {(p["asis_dag"], p["tobe_dag"]) for p in metadata_value.value}


def test_the_asset_writes_the_lineage_and_writing_again_changes_nothing(hub):
    asset = build_dependency_manager_asset(EXPECTED)
    assert asset.key == DEPENDENCY_MANAGER_KEY
    assert asset.group_names_by_key[DEPENDENCY_MANAGER_KEY] == "compat"
    assert not asset.partitions_def
    with dg.instance_for_test() as instance:
        first = execute(dg.AssetSelection.assets(DEPENDENCY_MANAGER_KEY), instance)
        # Materializing the asset runs its check too: it passes.
        assert check_result(first).passed
        [event] = first.get_asset_materialization_events()
        meta = {k: v.value for k, v in event.materialization.metadata.items()}
        assert meta == {"rows": 5, "inserted": 5, "deleted": 0}
        assert read_dependency_manager(hub) == EXPECTED
        versions = table_versions(hub)

        second = execute(dg.AssetSelection.assets(DEPENDENCY_MANAGER_KEY), instance)
        [event] = second.get_asset_materialization_events()
        assert {k: v.value for k, v in event.materialization.metadata.items()} == {"rows": 5, "inserted": 0, "deleted": 0}
    assert table_versions(hub) == versions  # no row rewritten
    with hub.connect() as conn:
        constraints = conn.execute(sa.text(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'public.dependency_manager'::regclass AND contype = 'u'")).scalars().all()
    assert constraints == ["UNIQUE (asis_dag, tobe_dag)"]


def test_the_check_fails_naming_the_pairs_after_a_hand_edit(hub):
    check_only = dg.AssetSelection.checks(build_dependency_manager_check(EXPECTED))
    with dg.instance_for_test() as instance:
        # Before anything was written (no table): everything is missing.
        evaluation = check_result(execute(check_only, instance))
        assert not evaluation.passed
        assert pairs_of(evaluation.metadata["missing"]) == EXPECTED
        assert pairs_of(evaluation.metadata["extra"]) == set()

        execute(dg.AssetSelection.assets(DEPENDENCY_MANAGER_KEY), instance)
        assert check_result(execute(check_only, instance)).passed

        with hub.begin() as conn:  # someone edits the table by hand
            conn.execute(sa.text("INSERT INTO public.dependency_manager VALUES ('legacy_to_lv0_RENTAL.R_CRM_INFO', 'lv0_dag_RENTAL.R_GOODS')"))
            conn.execute(sa.text("DELETE FROM public.dependency_manager WHERE asis_dag = 'legacy_to_lv0_UNIERP5.B_MAJOR'"))
        evaluation = check_result(execute(check_only, instance))
        assert not evaluation.passed
        assert pairs_of(evaluation.metadata["missing"]) == {("legacy_to_lv0_UNIERP5.B_MAJOR", "lv0_dag_UNIERP5.B_MINOR")}
        assert pairs_of(evaluation.metadata["extra"]) == {("legacy_to_lv0_RENTAL.R_CRM_INFO", "lv0_dag_RENTAL.R_GOODS")}
        assert (evaluation.metadata["missing_count"].value, evaluation.metadata["extra_count"].value) == (1, 1)
        assert dependency_manager_disagreements(hub, EXPECTED) == (
            {("legacy_to_lv0_UNIERP5.B_MAJOR", "lv0_dag_UNIERP5.B_MINOR")},
            {("legacy_to_lv0_RENTAL.R_CRM_INFO", "lv0_dag_RENTAL.R_GOODS")},
        )

        # Materializing again repairs it.
        result = execute(dg.AssetSelection.assets(DEPENDENCY_MANAGER_KEY), instance)
        assert check_result(result).passed
        [event] = result.get_asset_materialization_events()
        assert event.materialization.metadata["inserted"].value == 1
        assert event.materialization.metadata["deleted"].value == 1
    assert read_dependency_manager(hub) == EXPECTED


def test_a_changed_lineage_replaces_the_table_and_changes_the_code_version(hub):
    write_dependency_manager(hub, EXPECTED)
    assert build_dependency_manager_asset(EXPECTED).code_versions_by_key[DEPENDENCY_MANAGER_KEY] == \
        build_dependency_manager_asset(set(EXPECTED)).code_versions_by_key[DEPENDENCY_MANAGER_KEY]
    smaller = EXPECTED - {("lv0_dag_RENTAL.R_GOODS", "lv1_dag_RENTAL.R_GOODS")}
    bigger = smaller | {("legacy_to_lv0_RENTAL.R_ORDER_CONTRACT", "lv0_dag_RENTAL.R_ORDER_CONTRACT")}
    assert build_dependency_manager_asset(bigger).code_versions_by_key[DEPENDENCY_MANAGER_KEY] != \
        build_dependency_manager_asset(EXPECTED).code_versions_by_key[DEPENDENCY_MANAGER_KEY]
    assert write_dependency_manager(hub, bigger) == (1, 1)
    assert read_dependency_manager(hub) == bigger
    assert write_dependency_manager(hub, set()) == (0, 5)
    assert read_dependency_manager(hub) == set()


def test_writing_is_one_transaction(hub):
    write_dependency_manager(hub, EXPECTED)
    before = table_versions(hub)
    # The delete of a stale row succeeds, then the insert fails (a DAG id wider than the column):
    # the delete is rolled back with it.
    broken = (EXPECTED - {("lv0_dag_RENTAL.R_GOODS", "lv1_dag_RENTAL.R_GOODS")}) | {("x" * 300, "lv0_dag_RENTAL.R_GOODS")}
    with pytest.raises(sa.exc.DBAPIError):
        write_dependency_manager(hub, broken)
    assert table_versions(hub) == before


def test_an_older_table_without_the_constraint_is_made_exact(hub):
    """The old system's own table may hold duplicates and NULLs; writing leaves exactly the lineage."""
    with hub.begin() as conn:
        conn.execute(sa.text("CREATE TABLE public.dependency_manager (asis_dag varchar(250), tobe_dag varchar(250))"))
        conn.execute(sa.text(
            """
            INSERT INTO public.dependency_manager VALUES
                ('legacy_to_lv0_UNIERP5.B_MAJOR', 'lv0_dag_UNIERP5.B_MINOR'),
                ('legacy_to_lv0_UNIERP5.B_MAJOR', 'lv0_dag_UNIERP5.B_MINOR'),
                ('legacy_to_lv0_RENTAL.R_GOODS', 'lv0_dag_RENTAL.R_GOODS'),
                (NULL, 'lv0_dag_RENTAL.R_GOODS'),
                ('legacy_to_lv0_RENTAL.R_PROMOTION', 'lv0_dag_RENTAL.R_PROMOTION')
            """
        ))
    missing, extra = dependency_manager_disagreements(hub, EXPECTED)
    assert len(missing) == 3
    assert extra == {(None, "lv0_dag_RENTAL.R_GOODS"), ("legacy_to_lv0_RENTAL.R_PROMOTION", "lv0_dag_RENTAL.R_PROMOTION")}
    assert write_dependency_manager(hub, EXPECTED) == (3, 3)  # 2 stale rows and 1 duplicate copy out
    with hub.connect() as conn:
        rows = conn.execute(sa.text("SELECT asis_dag, tobe_dag FROM public.dependency_manager")).all()
    assert sorted(map(tuple, rows)) == sorted(EXPECTED)
    assert write_dependency_manager(hub, EXPECTED) == (0, 0)
