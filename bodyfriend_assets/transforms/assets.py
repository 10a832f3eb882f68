"""The lv1/lv2 models as one subsettable multi-asset: one asset per table, one step per run.

Each model is its own asset (``lv1/<name>``, ``lv2/<name>``: key = schema.table, group = layer),
with its own materializations and checks, and its upstream assets read from its SQL. They are
computed by a single op because every model runs inside PostgreSQL: a step per table would
spend more time starting Dagster processes (~0.8 s each) than refreshing small tables. The op
refreshes the selected models in dependency order and evaluates their checks right after each
one (``materialize_in_order``); a failed model, or one that failed a blocking check, and an lv0
table that did either earlier in the run, skip only the models that read them: the others still
run, and so does the hc step after this one.
"""


from collections.abc import Iterable, Sequence
from pathlib import Path

import dagster as dg
import sqlalchemy as sa

from bodyfriend_assets.catalog import Catalog
from bodyfriend_assets.compat.dag_ids import LAYER_DAG_PREFIX
from bodyfriend_assets.markdown import quote_code
from bodyfriend_assets.materialize_in_order import StepItem, materialize_in_order
from bodyfriend_assets.partitions import daily_freshness, daily_partitions
from bodyfriend_assets.resources import DataHub
from bodyfriend_assets.retries import CONNECTION_ERRORS, retry_connection_errors
from bodyfriend_assets.skips_per_asset import SKIPS_PER_ASSET_TAGS
from bodyfriend_assets.transforms.checks import (
    COMPLETE_CHECK,
    KEY_CHECK,
    evaluate_completeness_check,
    evaluate_key_check,
    evaluate_reference_check,
    model_check_specs,
)
from bodyfriend_assets.transforms.functions import ensure_functions
from bodyfriend_assets.transforms.models import ModelError, SqlModel, dependency_order
from bodyfriend_assets.transforms.refresh import PartitionWindow, refresh_model


OP_NAME = "sql_models"
PACKAGE_ROOT = Path(__file__).resolve().parents[1]

Upstream = dg.AssetKey | dg.AssetSpec | dg.AssetsDefinition


def model_key(model: SqlModel) -> dg.AssetKey:
    return dg.AssetKey([model.layer, model.name])


def build_sql_assets(
    models: Iterable[SqlModel], *, upstream: Iterable[Upstream], catalog: Catalog, name: str = OP_NAME
) -> dg.AssetsDefinition:
    """One multi-asset refreshing ``models``; ``upstream`` are the assets they may read besides
    each other (the lv0 assets). Raises :class:`ModelError` when a model reads a table no asset
    produces, naming the model file and the table."""
    models = list(models)
    _refuse_duplicates(models)
    produced = {model.table for model in models} | {
        tuple(key.path) for key in _keys(upstream) if len(key.path) == 2
    }
    for model in models:
        for table in sorted(model.upstream):
            if table not in produced:
                raise ModelError(
                    f"{model.file} reads {'.'.join(table)}, which no asset produces "
                    f"(expected an asset keyed {'/'.join(table)})"
                )
    ordered = dependency_order(models)
    specs = [_spec(model, catalog) for model in ordered]
    check_specs = [spec for model in ordered for spec in model_check_specs(model, model_key(model))]

    @dg.multi_asset(
        name=name,
        specs=specs,
        check_specs=check_specs,
        can_subset=True,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        op_tags=SKIPS_PER_ASSET_TAGS,
        description="The `lv1` and `lv2` tables, refreshed in PostgreSQL in dependency order.",
    )
    def _sql_models(context: dg.AssetExecutionContext, datahub: DataHub):
        keys = context.partition_key_range
        window = PartitionWindow(keys.start, keys.end)
        with retry_connection_errors(context):
            yield from _refresh_selected(context, ordered, window, datahub)

    return _sql_models


def _refresh_selected(context, ordered: Sequence[SqlModel], window: PartitionWindow, datahub: DataHub):
    engine = datahub.engine()
    with engine.begin() as conn:
        ensure_functions(conn)

    snapshots: dict[tuple[str, str], str | None] = {}  # model -> its refresh's snapshot (completeness)

    def refresh(item: StepItem) -> dg.MaterializeResult:
        model = item.subject
        with engine.connect() as conn:
            result = refresh_model(conn, model, window, datahub.lock_timeout_seconds)
        snapshots[model.table] = result.snapshot
        # The counts are the materialization's metadata: no log line repeats them (each is a
        # stored event, and they add up on a daily run).
        return dg.MaterializeResult(
            asset_key=item.key, metadata={**result.as_metadata(), **_window_metadata(model, window)}
        )

    def evaluate(item: StepItem, spec: dg.AssetCheckSpec) -> dg.AssetCheckResult:
        with engine.connect() as conn:
            return _evaluate(
                conn, item.subject, spec.name, item.key, window, snapshots.get(item.subject.table)
            )

    items = [
        StepItem(
            model, model_key(model), model.qualified_name,
            frozenset(dg.AssetKey(list(table)) for table in model.upstream),
            model_check_specs(model, model_key(model)),
        )
        for model in ordered
    ]
    yield from materialize_in_order(context, items, materialize=refresh, evaluate=evaluate)


def _evaluate(
    conn, model: SqlModel, check_name: str, key: dg.AssetKey, window: PartitionWindow, refreshed: str | None
) -> dg.AssetCheckResult:
    """The check's result; a check that cannot run (a table missing) fails, naming why."""
    try:
        if check_name == KEY_CHECK:
            return evaluate_key_check(conn, model, key)
        if check_name == COMPLETE_CHECK:
            return evaluate_completeness_check(conn, model, key, window, refreshed)
        reference = next(r for r in model.references if r.check_name == check_name)
        return evaluate_reference_check(conn, model, reference, key)
    except CONNECTION_ERRORS:
        raise
    except sa.exc.DBAPIError as err:
        conn.rollback()
        return dg.AssetCheckResult(
            asset_key=key, check_name=check_name, passed=False,
            metadata={"error": str(err.orig).strip()},
        )


def _window_metadata(model: SqlModel, window: PartitionWindow) -> dict[str, str]:
    partitions = window.start if window.start == window.end else f"{window.start}...{window.end}"
    if model.mode != "incremental":
        return {"partitions": partitions}
    bounds = window.parameters(model)
    return {
        "partitions": partitions,
        "partitions_read": f"{bounds['partition_start']}...{bounds['partition_end']}",
    }


def _spec(model: SqlModel, catalog: Catalog) -> dg.AssetSpec:
    metadata = {
        "table": model.qualified_name,
        "dag_id": model_dag_id(model, catalog),
        "mode": model.mode,
        "key": ", ".join(model.key),
        "sql_file": _repository_path(model.path),
    }
    if model.mode == "incremental":
        metadata |= {
            "partition_expr": "_partition",
            "driving": ".".join(model.driving),
            "lookback_days": model.lookback_days,
        }
    return dg.AssetSpec(
        key=model_key(model),
        deps=[dg.AssetKey(list(table)) for table in sorted(model.upstream)],
        group_name=model.layer,
        description=quote_code(model.description) or None,
        metadata=metadata,
        kinds={"postgres", "sql"},
        code_version=model.code_version,
        freshness_policy=daily_freshness,
        # A model skipped because an upstream model failed its blocking check yields nothing.
        skippable=True,
    )


def model_dag_id(model: SqlModel, catalog: Catalog) -> str:
    """The model's ``dag_id``: declared, or the layer's DAG prefix + the legacy table it derives from."""
    if model.dag_id:
        return model.dag_id
    candidates = [model.source] if model.source else [model.name, model.driving[1] if model.driving else None]
    for candidate in filter(None, candidates):
        try:
            entry = catalog.by_name(candidate)
        except KeyError:
            continue
        return LAYER_DAG_PREFIX[model.layer] + entry.qualified_name
    if model.source:
        raise ModelError(f"{model.file}: '-- source: {model.source}' is not a table of the catalog")
    raise ModelError(
        f"{model.file}: cannot tell which legacy table {model.qualified_name} derives from; "
        "declare '-- source: <DB>.<TABLE>' (or '-- dag_id: ...')"
    )


def _repository_path(path: Path) -> str:
    """``bodyfriend_assets/lv1/r_goods.sql`` for the package's models, the full path otherwise."""
    try:
        return path.resolve().relative_to(PACKAGE_ROOT.parent).as_posix()
    except ValueError:
        return str(path)


def _keys(items: Iterable[Upstream]) -> list[dg.AssetKey]:
    keys: list[dg.AssetKey] = []
    for item in items:
        if isinstance(item, dg.AssetKey):
            keys.append(item)
        elif isinstance(item, dg.AssetSpec):
            keys.append(item.key)
        else:
            keys.extend(item.keys)
    return keys


def _refuse_duplicates(models: list[SqlModel]) -> None:
    seen: dict[tuple[str, str], SqlModel] = {}
    for model in models:
        if model.table in seen:
            raise ModelError(
                f"{seen[model.table].file} and {model.file} would both write {model.qualified_name}"
            )
        seen[model.table] = model
