"""The hc layer as one subsettable multi-asset: one asset per Salesforce object, one step per run.

``hc/<lv2 table>`` (``hc/account``, ``hc/service_receipt``, ...), group ``hc``, daily partitions
with single-run backfills like the layers below it, upstream ``lv2/<table>`` and the hc assets
of the objects it looks up (so the graph shows parents before children). The step loads the
selected objects parents first (Account and Product2 before Opportunity, ...) and evaluates
each one's checks right after it:

- ``external_id_unique`` (blocking): no external id appears twice in the hc table;
- ``lookups_resolve`` (blocking, objects with lookups): every lookup in the hc table names a
  parent that is in its hc table, so Salesforce sees no child pointing at nothing;
- ``quarantine_count`` (WARN): the rows of this load Salesforce would refuse, kept out of hc
  and recorded in ``hc_meta.quarantine`` (and records whose delete waits for their children);
- ``salesforce_errors`` (WARN): the rows Heroku Connect marked FAILED (``_hc_lastop``/``_hc_err``),
  with the fields and Salesforce's message, customer values masked.

For an object whose Salesforce edits are kept (Product2), the step also materializes
``lv1/<source>_salesforce_edits`` right after the object's load: the fields edited in Salesforce,
brought back into lv1 (:mod:`.salesforce_edits`). It reads the hc table, so it is downstream of
``hc/<source>`` and the graph has no loop.

A child whose parent failed (or failed its blocking check) is skipped, and so is an object
whose lv2 table failed or was skipped earlier in the run; the other objects still load, and the
run ends failed naming what did not (``materialize_in_order``). Before loading, the step checks
the tables: in production it only verifies that every column it writes exists (failing, naming
object and column, otherwise); in development (the embedded Data Hub, or
``BODYFRIEND_HC_MODE=development``) it creates them first, with the Heroku Connect stand-in.
"""


import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import dagster as dg
import sqlalchemy as sa

from bodyfriend_assets.catalog import Catalog
from bodyfriend_assets.hc import salesforce_edits
from bodyfriend_assets.hc.load import HcLoadError, LoadResult, load_object
from bodyfriend_assets.hc.mapping import HcMapping, HcObject, check_against_models, load_mapping
from bodyfriend_assets.hc.sync_errors import refused_rows
from bodyfriend_assets.hc.tables import (
    DEFAULT_SCHEMA,
    HcSchemaError,
    create_hc_tables,
    create_meta_tables,
    hc_table,
    quarantine_table,
    verify_hc_tables,
)
from bodyfriend_assets.materialize_in_order import StepItem, materialize_in_order
from bodyfriend_assets.partitions import daily_freshness, daily_partitions
from bodyfriend_assets.resources import DataHub
from bodyfriend_assets.retries import CONNECTION_ERRORS, retry_connection_errors
from bodyfriend_assets.skips_per_asset import SKIPS_PER_ASSET_TAGS
from bodyfriend_assets.table_metadata import table_metadata
from bodyfriend_assets.transforms.assets import model_dag_id  # the lv2 rule: lv1_dag_<DB>.<TABLE>
from bodyfriend_assets.transforms.models import SqlModel
from bodyfriend_assets.transforms.refresh import PartitionWindow


OP_NAME = "hc_objects"
LAYER = "hc"
UNIQUE_CHECK = "external_id_unique"
QUARANTINE_CHECK = "quarantine_count"
LOOKUP_CHECK = "lookups_resolve"
SALESFORCE_CHECK = "salesforce_errors"
MODE_VAR = "BODYFRIEND_HC_MODE"
EXAMPLES = 5

Mode = Literal["production", "development"]


class HerokuConnect(dg.ConfigurableResource):
    """Where the Heroku Connect tables are, and whether the platform may create them.

    ``mode``: ``production`` (the tables belong to Heroku Connect: only checked), ``development``
    (created if missing, with the stand-in triggers logging into ``<schema>._trigger_log``) or
    ``auto``: ``BODYFRIEND_HC_MODE`` when set, else development on the embedded Data Hub and
    production on any configured one (the ``DataHub`` resource's ``url``, or
    ``BODYFRIEND_DATAHUB_URL``)."""

    schema_name: str = DEFAULT_SCHEMA
    mode: Literal["auto", "production", "development"] = "auto"

    def resolved_mode(self, datahub: DataHub) -> Mode:
        """The mode for loads into ``datahub``."""
        if self.mode != "auto":
            return self.mode
        chosen = os.environ.get(MODE_VAR, "").strip().lower()
        if chosen:
            if chosen not in ("production", "development"):
                raise dg.Failure(f"{MODE_VAR} must be 'production' or 'development', not {chosen!r}")
            return chosen  # type: ignore[return-value]
        return "production" if datahub.is_configured() else "development"


def hc_key(obj: HcObject) -> dg.AssetKey:
    return dg.AssetKey([LAYER, obj.source])


def build_hc_assets(
    catalog: Catalog,
    *,
    models: Iterable[SqlModel] | None = None,
    mapping: HcMapping | None = None,
    schema: str = DEFAULT_SCHEMA,
    name: str = OP_NAME,
) -> dg.AssetsDefinition:
    """The hc multi-asset for ``mapping`` (default: ``objects.yaml``) over the lv2 ``models``.

    ``schema`` is the one shown in the assets' metadata; a run writes to the resource's."""
    if models is None:
        from bodyfriend_assets import lv2

        models = lv2.models
    mapping = mapping or load_mapping()
    model_of = check_against_models(mapping, models)
    ordered = mapping.ordered()
    specs = [_spec(obj, model_of[obj.object], mapping, catalog, schema) for obj in ordered]
    specs += [_edits_spec(obj, schema) for obj in ordered if obj.keep_salesforce_edits]
    check_specs = [spec for obj in ordered for spec in _check_specs(obj)]

    @dg.multi_asset(
        name=name,
        specs=specs,
        check_specs=check_specs,
        can_subset=True,
        partitions_def=daily_partitions,
        backfill_policy=dg.BackfillPolicy.single_run(),
        op_tags=SKIPS_PER_ASSET_TAGS,
        description="The Heroku Connect tables, loaded from `lv2` in PostgreSQL, parents first.",
    )
    def _hc_objects(context: dg.AssetExecutionContext, datahub: DataHub, heroku_connect: HerokuConnect):
        keys = context.partition_key_range
        window = PartitionWindow(keys.start, keys.end)
        with retry_connection_errors(context):
            yield from _load_selected(context, ordered, model_of, mapping, window, datahub, heroku_connect)

    return _hc_objects


def _load_selected(context, ordered: Sequence[HcObject], model_of, mapping: HcMapping, window: PartitionWindow,
                   datahub: DataHub, heroku_connect: HerokuConnect):
    selected = context.selected_asset_keys
    selected_checks = context.selected_asset_check_keys
    todo = [
        obj for obj in ordered
        if hc_key(obj) in selected or any(spec.key in selected_checks for spec in _check_specs(obj))
    ]
    schema = heroku_connect.schema_name
    mode = heroku_connect.resolved_mode(datahub)
    engine = datahub.engine()
    with engine.begin() as conn:
        if mode == "development":
            created = create_hc_tables(conn, schema, mapping=mapping, stand_in=True)
            if created:
                context.log.info(f"development mode: created {', '.join(created)} with the Heroku Connect stand-in")
        else:
            create_meta_tables(conn)
        try:
            verify_hc_tables(conn, schema, [o for o in todo if hc_key(o) in selected], mapping)
        except HcSchemaError as err:
            raise dg.Failure(description=str(err), allow_retries=False) from None

    loaded: dict[str, LoadResult] = {}  # object -> this run's load, for its quarantine check

    def load(item: StepItem) -> dg.MaterializeResult:
        if isinstance(item.subject, SalesforceEdits):
            return _bring_back(item, engine, mapping, schema, window)
        obj = item.subject
        with engine.connect() as conn:
            result = load_object(
                conn, obj, model_of[obj.object], mapping, schema=schema, run_id=context.run.run_id, window=window,
            )
        loaded[obj.object] = result
        # The counts are the materialization's metadata, not repeated in a log line.
        return dg.MaterializeResult(
            asset_key=item.key,
            metadata={**result.as_metadata(), "partitions": _partitions(window), "hc_mode": mode},
        )

    def evaluate(item: StepItem, spec: dg.AssetCheckSpec) -> dg.AssetCheckResult:
        obj = item.subject
        with engine.connect() as conn:
            return _evaluate(
                spec.name, conn, obj, mapping, schema, item.key, loaded.get(obj.object), context.run.run_id
            )

    items = [
        StepItem(
            obj, hc_key(obj), obj.object,
            frozenset([dg.AssetKey(["lv2", model_of[obj.object].name]),
                       *(hc_key(mapping.by_object(p)) for p in obj.parents)]),
            _check_specs(obj),
        )
        for obj in todo
    ]
    items += [
        StepItem(SalesforceEdits(obj), edits_key(obj), f"{obj.object} edits made in Salesforce",
                 frozenset([hc_key(obj)]))
        for obj in ordered if obj.keep_salesforce_edits and edits_key(obj) in selected
    ]
    yield from materialize_in_order(
        context, items, materialize=load, evaluate=evaluate, item_errors=(HcLoadError, sa.exc.DBAPIError)
    )


# -- Salesforce's edits, back into lv1 ------------------------------------------------------------


@dataclass(frozen=True)
class SalesforceEdits:
    """The step item of ``lv1/<source>_salesforce_edits``: ``obj``'s fields edited in Salesforce."""

    obj: HcObject


def edits_key(obj: HcObject) -> dg.AssetKey:
    return dg.AssetKey([salesforce_edits.EDITS_SCHEMA, salesforce_edits.edits_table_name(obj)])


def _bring_back(item: StepItem, engine: sa.Engine, mapping: HcMapping, schema: str,
                window: PartitionWindow) -> dg.MaterializeResult:
    obj = item.subject.obj
    with engine.connect() as conn:
        counts = salesforce_edits.bring_back(conn, obj, mapping, schema)
        described = table_metadata(conn, salesforce_edits.EDITS_SCHEMA, salesforce_edits.edits_table_name(obj))
    return dg.MaterializeResult(
        asset_key=item.key, metadata={**described, **counts, "partitions": _partitions(window)},
    )


def _edits_spec(obj: HcObject, schema: str) -> dg.AssetSpec:
    table = f"{salesforce_edits.EDITS_SCHEMA}.{salesforce_edits.edits_table_name(obj)}"
    return dg.AssetSpec(
        key=edits_key(obj),
        deps=[hc_key(obj)],
        group_name=salesforce_edits.EDITS_SCHEMA,
        description=(
            f"The `{obj.object}` fields edited in Salesforce, brought back from `{schema}.{obj.table}` "
            f"(the old `hc.func_hc_to_lv1_product`): one row per record and field Salesforce holds "
            "differently from the ERP, with both values. The hc load keeps such a value until the ERP "
            "changes the field."
        ),
        metadata={"table": table, "dag_id": None, "source": f"{schema}.{obj.table}"},
        kinds={"postgres", "salesforce"},
        freshness_policy=daily_freshness,
        skippable=True,
    )


# -- checks ------------------------------------------------------------------------------------


def _check_specs(obj: HcObject) -> list[dg.AssetCheckSpec]:
    key = hc_key(obj)
    specs = [
        dg.AssetCheckSpec(
            UNIQUE_CHECK, asset=key, blocking=True,
            description=f"No `{obj.external_id}` appears twice in the `{obj.object}` table.",
        ),
    ]
    if _parent_lookups(obj):
        parents = ", ".join(f"`{p}`" for p in obj.parents)
        specs.append(dg.AssetCheckSpec(
            LOOKUP_CHECK, asset=key, blocking=True,
            description=f"Every `{obj.object}` lookup names a record in the hc tables of {parents}.",
        ))
    specs += [
        dg.AssetCheckSpec(
            QUARANTINE_CHECK, asset=key,
            description=(
                f"No `{obj.object}` row of the load was kept out of hc because Salesforce would refuse "
                "it, and no record waits to be deleted (see `hc_meta.quarantine`)."
            ),
        ),
        dg.AssetCheckSpec(
            SALESFORCE_CHECK, asset=key,
            description=f"Heroku Connect reports no `{obj.object}` row that Salesforce refused (`_hc_lastop` FAILED).",
        ),
    ]
    return specs


def _parent_lookups(obj: HcObject):
    return [lookup for lookup in obj.lookups if lookup.object != obj.object]


def _evaluate(name: str, conn, obj: HcObject, mapping: HcMapping, schema: str, key: dg.AssetKey,
              result: LoadResult | None, run_id: str) -> dg.AssetCheckResult:
    """Evaluate the check ``name`` of ``obj`` (one of :func:`_check_specs`)."""
    if name == UNIQUE_CHECK:
        return _evaluate_unique(conn, obj, mapping, schema, key)
    if name == LOOKUP_CHECK:
        return _evaluate_lookups(conn, obj, mapping, schema, key)
    if name == SALESFORCE_CHECK:
        return _evaluate_salesforce_errors(conn, obj, mapping, schema, key)
    return _evaluate_quarantine(conn, obj, key, result, run_id)


def _evaluate_unique(conn, obj: HcObject, mapping: HcMapping, schema: str, key: dg.AssetKey) -> dg.AssetCheckResult:
    table = hc_table(obj, mapping, schema)
    column = table.c[obj.external_id_column]
    try:
        repeated = conn.execute(
            sa.select(column, sa.func.count()).where(column.is_not(None)).group_by(column)
            .having(sa.func.count() > 1).limit(EXAMPLES)
        ).all()
    except CONNECTION_ERRORS:
        raise
    except sa.exc.DBAPIError as err:
        return dg.AssetCheckResult(asset_key=key, check_name=UNIQUE_CHECK, passed=False,
                                   metadata={"error": str(err.orig).strip()})
    return dg.AssetCheckResult(
        asset_key=key, check_name=UNIQUE_CHECK, passed=not repeated,
        metadata={"repeated_external_ids": ", ".join(f"{v} ({n} rows)" for v, n in repeated) or "none"},
    )


def _evaluate_lookups(conn, obj: HcObject, mapping: HcMapping, schema: str, key: dg.AssetKey) -> dg.AssetCheckResult:
    """Child rows whose relationship external id names no record of the parent's hc table."""
    table = hc_table(obj, mapping, schema)
    dangling = []
    for lookup in _parent_lookups(obj):
        parent = mapping.by_object(lookup.object)
        parent_table = hc_table(parent, mapping, schema)
        column = table.c[mapping.lookup_column(lookup)]
        dangling.append(
            sa.select(table.c[obj.external_id_column].label("external_id"),
                      sa.literal(lookup.field, sa.Text).label("field"), column.label("parent"))
            .where(column.is_not(None),
                   ~sa.exists().where(parent_table.c[parent.external_id_column] == column))
        )
    found = sa.union_all(*dangling).subquery()
    count = conn.execute(sa.select(sa.func.count()).select_from(found)).scalar_one()
    examples = conn.execute(sa.select(found).limit(EXAMPLES)).all()
    return dg.AssetCheckResult(
        asset_key=key, check_name=LOOKUP_CHECK, passed=count == 0,
        metadata={
            "dangling_lookups": count,
            "examples": "\n".join(f"{e}: {f} -> {p} (not in hc)" for e, f, p in examples) or "none",
        },
    )


def _evaluate_salesforce_errors(conn, obj: HcObject, mapping: HcMapping, schema: str,
                                key: dg.AssetKey) -> dg.AssetCheckResult:
    """The rows Heroku Connect could not write to Salesforce, as it last reported them."""
    count, refusals = refused_rows(conn, obj, mapping, schema, EXAMPLES)
    return dg.AssetCheckResult(
        asset_key=key, check_name=SALESFORCE_CHECK, passed=count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "refused_by_salesforce": count,
            "examples": "\n".join(str(r) for r in refusals) or "none",
        },
    )


def _evaluate_quarantine(conn, obj: HcObject, key: dg.AssetKey, result: LoadResult | None,
                         run_id: str) -> dg.AssetCheckResult:
    """This run's quarantine; for a check run alone, the latest load's that quarantined rows."""
    quarantine = quarantine_table()
    of_object = quarantine.c.object == obj.object
    if result is None:
        latest = conn.execute(
            sa.select(quarantine.c.run_id).where(of_object).order_by(quarantine.c.id.desc()).limit(1)
        ).scalar()
        run_id = latest or run_id
    in_run = sa.and_(of_object, quarantine.c.run_id == run_id)
    count = conn.execute(
        sa.select(sa.func.count(sa.distinct(quarantine.c.external_id))).where(in_run)
    ).scalar_one()
    examples = conn.execute(
        sa.select(quarantine.c.external_id, quarantine.c.field, quarantine.c.reason)
        .where(in_run).order_by(quarantine.c.id).limit(EXAMPLES)
    ).all()
    return dg.AssetCheckResult(
        asset_key=key,
        check_name=QUARANTINE_CHECK,
        passed=count == 0,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "quarantine_count": count,
            "run_id": run_id,
            "examples": "\n".join(f"{e}: {f}: {r}" for e, f, r in examples) or "none",
        },
    )


# -- specs -------------------------------------------------------------------------------------


def _spec(obj: HcObject, model: SqlModel, mapping: HcMapping, catalog: Catalog, schema: str) -> dg.AssetSpec:
    parents = [hc_key(mapping.by_object(p)) for p in obj.parents]
    return dg.AssetSpec(
        key=hc_key(obj),
        deps=[dg.AssetKey(["lv2", model.name]), *parents],
        group_name=LAYER,
        description=f"Salesforce `{obj.object}` through Heroku Connect (`{schema}.{obj.table}`), from `lv2.{model.name}`.",
        metadata={
            "table": f"{schema}.{obj.table}",
            "dag_id": model_dag_id(model, catalog),
            "salesforce_object": obj.object,
            "external_id": obj.external_id,
            "source": model.qualified_name,
            "mode": model.mode,
            "fields": len(obj.fields) + len(obj.lookups) + 1,
            "mapping_file": "bodyfriend_assets/hc/objects.yaml",
        },
        kinds={"postgres", "salesforce"},
        code_version=hashlib.sha256(obj.model_dump_json().encode("utf-8")).hexdigest()[:16],
        freshness_policy=daily_freshness,
        skippable=True,
    )


def _partitions(window: PartitionWindow) -> str:
    return window.start if window.start == window.end else f"{window.start}...{window.end}"
