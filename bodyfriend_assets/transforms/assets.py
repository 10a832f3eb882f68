"""The lv1/lv2 models as subsettable multi-assets, one per layer: one asset per table, one step
per layer and run.

Each model is its own asset (``lv1/<name>``, ``lv2/<name>``: key = schema.table, group = layer),
with its own materializations and checks, and its upstream assets read from its SQL. A layer's
models are computed by a single op because every model runs inside PostgreSQL: a step per table
would spend more time starting Dagster processes (~0.8 s each) than refreshing small tables. lv1
and lv2 are two steps (``lv1_models``, ``lv2_models``) because lv2 reads what Python assets make
of lv1 (lv1ex's ``lv1.address_master``): lv0 -> lv1 -> lv1ex -> lv2 -> hc. The op refreshes the
selected models in dependency order and evaluates their checks right after each one
(``materialize_in_order``); a failed model, or one that failed a blocking check, and an upstream
asset that did either earlier in the run, skip only the models that read them: the others still
run, and so do the steps after this one.
"""


from collections.abc import Iterable, Sequence
from dataclasses import dataclass
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
from bodyfriend_assets.transforms.functions import OPTIONAL_READS, ensure_functions
from bodyfriend_assets.transforms.models import ModelError, SqlModel, dependency_order
from bodyfriend_assets.transforms.refresh import PartitionWindow, refresh_model


STEP_NAMES = {"lv1": "lv1_models", "lv2": "lv2_models"}  # the op (step) of each layer's models
PACKAGE_ROOT = Path(__file__).resolve().parents[1]

Upstream = dg.AssetKey | dg.AssetSpec | dg.AssetsDefinition


def model_key(model: SqlModel) -> dg.AssetKey:
    return dg.AssetKey([model.layer, model.name])


def build_model_steps(
    models: Iterable[SqlModel], *, upstream: Iterable[Upstream], catalog: Catalog,
    lv2_upstream: Iterable[Upstream] = (),
) -> list[dg.AssetsDefinition]:
    """The lv1 models and the lv2 models as two multi-assets (``lv1_models``, ``lv2_models``), lv2
    reading lv1; ``lv2_upstream``: the other assets lv2 reads (lv1ex's)."""
    models = list(models)
    steps = []
    for layer in STEP_NAMES:
        of_layer = [model for model in models if model.layer == layer]
        if of_layer:
            steps.append(build_sql_assets(
                of_layer, upstream=[*upstream, *steps, *(lv2_upstream if layer == "lv2" else ())], catalog=catalog
            ))
    return steps


def build_sql_assets(
    models: Iterable[SqlModel], *, upstream: Iterable[Upstream], catalog: Catalog, name: str | None = None
) -> dg.AssetsDefinition:
    """One multi-asset refreshing ``models``, named after their layer's step unless ``name`` says
    otherwise; ``upstream`` are the assets they may read besides each other (the lv0 assets; lv1
    for lv2). Raises :class:`ModelError` when a model reads a table no asset produces, naming the
    model file and the table."""
    models = list(models)
    _refuse_duplicates(models)
    layers = sorted({model.layer for model in models})
    name = name or (STEP_NAMES[layers[0]] if len(layers) == 1 else "_".join(layers) + "_models")
    writers = _writers(upstream)
    produced = {model.table for model in models} | set(writers)
    for model in models:
        for table in sorted(model.upstream):
            if table not in produced:
                raise ModelError(
                    f"{model.file} reads {'.'.join(table)}, which no asset produces "
                    f"(expected an asset keyed {'/'.join(table)})"
                )
    ordered = dependency_order(models)
    reads = {model.table: _read_assets(model, writers) for model in ordered}
    specs = [_spec(model, catalog, reads[model.table]) for model in ordered]
    check_specs = [spec for model in ordered for spec in model_check_specs(model, model_key(model))]

    @dg.multi_asset(
        name=name,
        specs=specs,
        check_specs=check_specs,
        can_subset=True,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        op_tags=SKIPS_PER_ASSET_TAGS,
        description=f"The {' and '.join(f'`{layer}`' for layer in layers)} tables, refreshed in PostgreSQL "
                    "in dependency order.",
    )
    def _refresh_models(context: dg.AssetExecutionContext, datahub: DataHub):
        keys = context.partition_key_range
        window = PartitionWindow(keys.start, keys.end)
        with retry_connection_errors(context):
            yield from _refresh_selected(context, ordered, reads, window, datahub)

    return _refresh_models


def _refresh_selected(context, ordered: Sequence[SqlModel], reads: dict[tuple[str, str], "ReadAssets"],
                      window: PartitionWindow, datahub: DataHub):
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
            reads[model.table].required,
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


def _spec(model: SqlModel, catalog: Catalog, reads: "ReadAssets") -> dg.AssetSpec:
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
        deps=sorted(reads.all, key=lambda key: key.path),
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


@dataclass(frozen=True)
class ReadAssets:
    """The assets a model reads: ``required`` ones skip it when they fail in the run; the others
    (``OPTIONAL_READS``) only come before it."""

    required: frozenset[dg.AssetKey]
    optional: frozenset[dg.AssetKey]

    @property
    def all(self) -> frozenset[dg.AssetKey]:
        return self.required | self.optional


def _writers(items: Iterable[Upstream]) -> dict[tuple[str, str], list[dg.AssetSpec]]:
    """The upstream assets writing each table: its own key (``lv0/x`` -> ``lv0.x``), or its
    ``table`` metadata, which several assets may share (lv1ex's four writers of
    ``lv1.address_master``)."""
    writers: dict[tuple[str, str], list[dg.AssetSpec]] = {}
    for spec in _specs(items):
        named = getattr(spec.metadata.get("table"), "value", spec.metadata.get("table"))
        table = tuple(named.split(".")) if isinstance(named, str) else tuple(spec.key.path)
        if len(table) == 2:
            writers.setdefault(table, []).append(spec)
    return writers


def _read_assets(model: SqlModel, writers: dict[tuple[str, str], list[dg.AssetSpec]]) -> ReadAssets:
    """The assets behind the tables ``model`` reads. A table several assets write is read after
    those of them that work from a table the model reads too (``lv2.account`` reads
    ``lv1.v_customer``: after ``lv1ex/v_customer``), else after all of them."""
    reads = {table: dg.AssetKey(list(table)) for table in model.upstream}
    required, optional = set(), set()
    for table in model.upstream:
        candidates = writers.get(table, [])
        if len(candidates) > 1:
            related = [s for s in candidates if {dep.asset_key for dep in s.deps} & set(reads.values())]
            keys = {s.key for s in related or candidates}
        else:
            keys = {s.key for s in candidates} or {reads[table]}
        (optional if table in OPTIONAL_READS else required).update(keys)
    return ReadAssets(frozenset(required), frozenset(optional))


def _specs(items: Iterable[Upstream]) -> list[dg.AssetSpec]:
    specs: list[dg.AssetSpec] = []
    for item in items:
        if isinstance(item, dg.AssetKey):
            specs.append(dg.AssetSpec(item))
        elif isinstance(item, dg.AssetSpec):
            specs.append(item)
        else:
            specs.extend(item.specs)
    return specs


def _refuse_duplicates(models: list[SqlModel]) -> None:
    seen: dict[tuple[str, str], SqlModel] = {}
    for model in models:
        if model.table in seen:
            raise ModelError(
                f"{seen[model.table].file} and {model.file} would both write {model.qualified_name}"
            )
        seen[model.table] = model
