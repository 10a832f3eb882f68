"""The definitions load, and the naming contract other tools rely on holds for every table."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from bodyfriend_assets.catalog import CatalogError, load_catalog, parse_catalog
from bodyfriend_assets.definitions import defs


def test_every_catalog_table_has_a_legacy_source_and_an_lv0_asset():
    catalog = load_catalog()
    assert len(catalog.tables) == 31
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    for entry in catalog.tables:
        legacy = f"legacy/{entry.database.lower()}/{entry.table.lower()}"
        lv0 = f"lv0/{entry.table.lower()}"
        assert legacy in keys and lv0 in keys
        node = graph.get(dg.AssetKey.from_user_string(lv0))
        assert node.group_name == "lv0"
        assert {p.to_user_string() for p in node.parent_keys} == {legacy}
        assert node.partitions_def.timezone == "Asia/Seoul"
        assert node.backfill_policy == dg.BackfillPolicy.single_run()
        assert graph.get(dg.AssetKey.from_user_string(legacy)).group_name == "legacy"
    assert len(keys) == 62 + 1 + 40 + 15 + 4  # + compat/dependency_manager, 25 lv1 (one the Product2 sync-back), 15 lv2, 15 hc, 4 lv1ex


def test_the_contract_example_table_is_named_as_documented():
    node = defs.resolve_asset_graph().get(dg.AssetKey(["lv0", "r_order_contract_add"]))
    assert node.metadata["table"] == "lv0.r_order_contract_add"
    assert node.partitions_def.get_first_partition_key() == "2024-01-01"


def test_large_tables_share_one_concurrency_pool():
    graph = defs.resolve_asset_graph()
    large = {e.name for e in load_catalog().tables if e.large}
    assert large == {"r_order_contract", "r_order_contract_add", "r_service_receipt", "v_customer"}
    for entry in load_catalog().tables:
        pools = graph.get(dg.AssetKey(["lv0", entry.name])).pools
        assert pools == ({"large_tables"} if entry.large else set())


def test_the_daily_job_runs_in_ten_named_steps_lv0_lv1_lv1ex_lv2_hc():
    """lv0 in three steps (small tables in two, for two workers to share; large tables in their
    pool), lv1 in one, lv1ex's address refinement in one per source table, lv2 in one (it reads
    the refined addresses), hc in one (with the Product2 sync-back into lv1, which reads hc)."""
    job = defs.resolve_job_def("daily_data_hub")
    steps = {node.name for node in job.nodes}
    lv1ex = {"lv1ex__v_customer", "lv1ex__r_shipping_info", "lv1ex__r_contract_move_receipt", "lv1ex__v_sales_lounge"}
    assert steps == {"lv0_tables_1", "lv0_tables_2", "lv0_large_tables", "lv1_models", *lv1ex, "lv2_models", "hc_objects"}
    layers = {
        assets.op.name: {key.path[0] for key in assets.keys}
        for assets in defs.resolve_asset_graph().assets_defs
        if assets.is_executable and assets.op.name in steps
    }
    assert layers == {"lv0_tables_1": {"lv0"}, "lv0_tables_2": {"lv0"}, "lv0_large_tables": {"lv0"},
                      "lv1_models": {"lv1"}, "lv2_models": {"lv2"}, "hc_objects": {"hc", "lv1"},
                      **{step: {"lv1ex"} for step in lv1ex}}
    # the steps' order: lv1 -> each lv1ex step -> lv2 -> hc
    upstream = {node.name: {output.node_name for output in job.dependency_structure.all_upstream_outputs_from_node(node.name)}
                for node in job.nodes}
    assert "lv1_models" in set.intersection(*(upstream[step] for step in lv1ex))
    assert {"lv1_models", *lv1ex} <= upstream["lv2_models"]
    assert upstream["hc_objects"] == {"lv2_models"}


@pytest.mark.parametrize(
    "entry, message",
    [
        ({"database": "RENTAL", "table": "R_X", "keys": [], "mode": "snapshot"}, "R_X"),
        ({"database": "RENTAL", "table": "R_X", "keys": ["A"], "mode": "incremental"}, "needs a cursor"),
        ({"database": "RENTAL", "table": "R_X; DROP", "keys": ["A"], "mode": "snapshot"}, "not a plain SQL identifier"),
        ({"database": "RENTAL", "table": "R_X", "keys": ["A"], "mode": "snapshot", "page_size": 0}, "page_size"),
        ({"database": "RENTAL", "table": "R_X", "keys": ["A"], "mode": "sometimes"}, "mode"),
        ({"database": "RENTAL", "table": "R_X", "keys": ["A"], "mode": "snapshot", "colour": 1}, "colour"),
    ],
)
def test_a_bad_catalog_entry_fails_naming_it(entry, message):
    good = {"database": "UNIERP5", "table": "B_MAJOR", "keys": ["MAJOR_CD"], "mode": "snapshot"}
    with pytest.raises(CatalogError) as raised:
        parse_catalog({"tables": [good, entry]})
    assert "#2" in str(raised.value) and "R_X" in str(raised.value)
    assert message in str(raised.value)


def test_two_entries_for_one_lv0_table_are_refused():
    entry = {"database": "RENTAL", "table": "R_GOODS", "keys": ["GOODS_CD"], "mode": "snapshot"}
    with pytest.raises(CatalogError, match="lv0.r_goods"):
        parse_catalog({"tables": [entry, {**entry, "database": "UNIERP5"}]})


def test_dagster_validates_the_workspace(pg_server_url):
    # pg_server_url: the embedded server is up before the subprocess's instance attaches to it
    done = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-m", "bodyfriend_assets.definitions"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def _batch_size_after_loading_the_definitions(env: dict[str, str]) -> str:
    script = "import os, bodyfriend_assets.definitions; print(os.environ.get('DAGSTER_EVENT_BATCH_SIZE'))"
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_loading_the_definitions_has_dagster_store_event_batches_unless_the_environment_sets_a_size():
    # A range run created in this process stores its planned events in a few statements.
    env = {name: value for name, value in os.environ.items() if name != "DAGSTER_EVENT_BATCH_SIZE"}
    assert _batch_size_after_loading_the_definitions(env) == "1000"
    assert _batch_size_after_loading_the_definitions({**env, "DAGSTER_EVENT_BATCH_SIZE": "0"}) == "0"


SNAPSHOT = Path(__file__).with_name("snapshots") / "asset_graph.txt"


def _graph_lines() -> list[str]:
    graph = defs.resolve_asset_graph()
    lines = []
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        parents = ", ".join(sorted(p.to_user_string() for p in node.parent_keys))
        lines.append(f"{key.to_user_string()} | {node.group_name} | {parents}")
    return lines


def test_the_asset_graph_from_legacy_to_hc_matches_its_snapshot():
    """Every asset key, group and dependency, legacy -> lv0 -> lv1 (-> lv1ex) -> lv2 -> hc. An intended change
    of the graph is recorded with BODYFRIEND_UPDATE_SNAPSHOT=1 and reviewed in the diff."""
    lines = _graph_lines()
    if os.environ.get("BODYFRIEND_UPDATE_SNAPSHOT"):
        SNAPSHOT.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert lines == SNAPSHOT.read_text(encoding="utf-8").splitlines()
    for line in lines:
        key, group, _ = line.split(" | ")
        assert group == key.split("/")[0]
    layers = {line.split("/")[0] for line in lines}
    assert layers == {"legacy", "lv0", "lv1", "lv1ex", "lv2", "hc", "compat"}
    # an hc object reads its lv2 table and loads after the objects it looks up
    assert "hc/opportunity | hc | hc/account, hc/product2, hc/promotion, lv2/opportunity" in lines
