"""DAG ids of assets, dependency_manager from the lineage, and its check.

lv1/lv2/hc do not exist yet, so the lineage here is a small stand-in: the real legacy sources and
lv0 assets of four catalog tables, plus do-nothing lv1/lv2/hc assets shaped like the old DAGs
(the code master B_MAJOR + B_MINOR, R_GOODS -> Product2). The table is written and checked on a
real PostgreSQL through real runs of the asset and its check.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from bodyfriend_assets.catalog import Catalog, load_catalog
from bodyfriend_assets.compat.dag_ids import DagIdError, dag_id_for, dag_ids_of, dag_work, stand_in_dags
from bodyfriend_assets.compat.dependency_manager import (
    CHECK_NAME,
    DEPENDENCY_MANAGER_KEY,
    build_dependency_manager_asset,
    build_dependency_manager_check,
    dependency_manager_disagreements,
    expected_dependencies,
    read_dependency_manager,
    stale_and_hand_entered,
    stand_in_dependencies,
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


OLD_DAG_IDS = {
    line.strip()
    for line in (Path(__file__).parent / "reference" / "old_dag_ids.txt").read_text().splitlines()
    if line.strip() and not line.startswith("#")
}


def test_every_old_dag_id_and_no_other_is_written_by_the_platform():
    """The 92 ids of the old chain, read from its DAG files, the 4 ``lv1ex_dag_`` (address
    refinement) among them, and no other."""
    from bodyfriend_assets.definitions import dag_ids, dependencies, stand_ins

    assert len(OLD_DAG_IDS) == 92
    lv1ex = {d for d in OLD_DAG_IDS if d.startswith("lv1ex_dag_")}
    assert len(lv1ex) == 4
    assert set(dag_work(dag_ids, stand_ins)) == OLD_DAG_IDS
    assert {dag_ids[dg.AssetKey(["lv1ex", "v_customer"])]} == {d for d in lv1ex if d.endswith(".V_CUSTOMER")}
    # The seed's own example row of dependency_manager, and the stand-ins' rows, are derived.
    assert ("legacy_to_lv0_UNIERP5.B_MAJOR", "lv0_dag_UNIERP5.B_MINOR") in dependencies
    assert ("legacy_to_lv0_UNIERP5.B_MINOR", "lv0_dag_UNIERP5.B_MINOR") in dependencies
    assert ("legacy_to_lv0_RENTAL.R_ACQ_INTRO", "lv0_dag_RENTAL.R_ACQ_INTRO") in dependencies
    assert ("lv0_dag_RENTAL.R_ACQ_INTRO", "lv1_dag_RENTAL.R_ACQ_INTRO") in dependencies
    assert {d for pair in dependencies for d in pair} <= OLD_DAG_IDS


def test_an_old_dag_without_an_asset_completes_with_the_work_it_stood_for():
    dag_ids = dag_ids_of(ASSETS, CATALOG)
    stand_ins = stand_in_dags(ASSETS, CATALOG, dag_ids)
    work = {d: {k.to_user_string() for k in keys} for d, keys in dag_work(dag_ids, stand_ins).items()}
    # Here the code master (lv1/b_minor, built from B_MAJOR and B_MINOR) carries B_MINOR's id;
    # B_MAJOR has no lv1 model of its own: the code master built from it is its lv0 -> lv1 work.
    assert work["lv0_dag_UNIERP5.B_MINOR"] == {"lv1/b_minor"}
    assert "lv0_dag_UNIERP5.B_MINOR" not in stand_ins
    assert work["lv0_dag_UNIERP5.B_MAJOR"] == {"lv1/b_minor"}
    assert stand_ins["lv0_dag_UNIERP5.B_MAJOR"].waits_for == {
        "legacy_to_lv0_UNIERP5.B_MAJOR", "legacy_to_lv0_UNIERP5.B_MINOR"}
    # No lv1 model reads R_ORDER_CONTRACT's lv0 here: its lv0 load is all its lv0 -> lv1 work.
    assert work["lv0_dag_RENTAL.R_ORDER_CONTRACT"] == {"lv0/r_order_contract"}
    assert work["lv1_dag_RENTAL.R_ORDER_CONTRACT"] == {"lv0/r_order_contract"}
    # R_GOODS has lv2 and hc models: its lv1_dag is both of them.
    assert work["lv1_dag_RENTAL.R_GOODS"] == {"lv2/product2", "hc/product2"}
    assert stand_in_dependencies(stand_ins) >= {
        ("legacy_to_lv0_RENTAL.R_ORDER_CONTRACT", "lv0_dag_RENTAL.R_ORDER_CONTRACT"),
        ("lv0_dag_RENTAL.R_ORDER_CONTRACT", "lv1_dag_RENTAL.R_ORDER_CONTRACT"),
        ("legacy_to_lv0_UNIERP5.B_MINOR", "lv0_dag_UNIERP5.B_MAJOR"),
    }


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


def test_rows_entered_by_hand_are_kept_and_reported_and_a_missing_lineage_row_fails_the_check(hub):
    check_only = dg.AssetSelection.checks(build_dependency_manager_check(EXPECTED))
    with dg.instance_for_test() as instance:
        # Before anything was written (no table): everything is missing.
        evaluation = check_result(execute(check_only, instance))
        assert not evaluation.passed
        assert pairs_of(evaluation.metadata["missing"]) == EXPECTED
        assert pairs_of(evaluation.metadata["hand_entered"]) == set()

        execute(dg.AssetSelection.assets(DEPENDENCY_MANAGER_KEY), instance)
        assert check_result(execute(check_only, instance)).passed

        hand_row = ("legacy_to_lv0_RENTAL.R_CRM_INFO", "lv0_dag_RENTAL.R_GOODS")
        with hub.begin() as conn:  # someone edits the table by hand
            conn.execute(sa.text("INSERT INTO public.dependency_manager VALUES ('legacy_to_lv0_RENTAL.R_CRM_INFO', 'lv0_dag_RENTAL.R_GOODS')"))
            conn.execute(sa.text("DELETE FROM public.dependency_manager WHERE asis_dag = 'legacy_to_lv0_UNIERP5.B_MAJOR'"))
        evaluation = check_result(execute(check_only, instance))
        assert not evaluation.passed  # a lineage row is missing
        assert pairs_of(evaluation.metadata["missing"]) == {("legacy_to_lv0_UNIERP5.B_MAJOR", "lv0_dag_UNIERP5.B_MINOR")}
        assert pairs_of(evaluation.metadata["hand_entered"]) == {hand_row}
        assert pairs_of(evaluation.metadata["stale"]) == set()
        assert "1 rows entered by hand, kept: legacy_to_lv0_RENTAL.R_CRM_INFO -> lv0_dag_RENTAL.R_GOODS" in evaluation.description

        # Materializing again puts the lineage row back and keeps the hand-entered one, every night.
        for _ in range(2):
            result = execute(dg.AssetSelection.assets(DEPENDENCY_MANAGER_KEY), instance)
            evaluation = check_result(result)
            assert evaluation.passed
            assert pairs_of(evaluation.metadata["hand_entered"]) == {hand_row}
            assert evaluation.metadata["hand_entered_count"].value == 1
        [event] = result.get_asset_materialization_events()
        assert event.materialization.metadata["deleted"].value == 0
    assert read_dependency_manager(hub) == EXPECTED | {hand_row}


def test_a_row_the_lineage_no_longer_holds_is_stale_until_the_next_write_removes_it(hub):
    write_dependency_manager(hub, EXPECTED)
    with hub.begin() as conn:
        conn.execute(sa.text("INSERT INTO public.dependency_manager VALUES ('by', 'hand')"))
    smaller = EXPECTED - {("lv0_dag_RENTAL.R_GOODS", "lv1_dag_RENTAL.R_GOODS")}
    check_only = dg.AssetSelection.checks(build_dependency_manager_check(smaller))
    with dg.instance_for_test() as instance:
        evaluation = check_result(execute(check_only, instance, smaller))
    assert not evaluation.passed
    assert pairs_of(evaluation.metadata["stale"]) == {("lv0_dag_RENTAL.R_GOODS", "lv1_dag_RENTAL.R_GOODS")}
    assert pairs_of(evaluation.metadata["hand_entered"]) == {("by", "hand")}
    assert write_dependency_manager(hub, smaller) == (0, 1)
    assert read_dependency_manager(hub) == smaller | {("by", "hand")}


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


def test_an_older_tables_own_rows_are_kept_and_its_duplicates_merged(hub):
    """The old system's table may hold duplicates and NULLs: none of its rows were derived here, so
    all are kept (one copy each) beside the lineage's."""
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
    old_rows = {(None, "lv0_dag_RENTAL.R_GOODS"), ("legacy_to_lv0_RENTAL.R_PROMOTION", "lv0_dag_RENTAL.R_PROMOTION")}
    assert extra == old_rows
    assert write_dependency_manager(hub, EXPECTED) == (3, 1)  # 1 duplicate copy out
    with hub.connect() as conn:
        rows = conn.execute(sa.text("SELECT asis_dag, tobe_dag FROM public.dependency_manager")).all()
    assert sorted(map(tuple, rows), key=str) == sorted(EXPECTED | old_rows, key=str)
    assert write_dependency_manager(hub, EXPECTED) == (0, 0)
    assert stale_and_hand_entered(hub, EXPECTED) == (set(), old_rows)
