"""The asset checks every model gets, evaluated in PostgreSQL over the whole table.

- ``key_unique_and_not_null`` (blocking): the header's key identifies the table's rows. An
  incremental table enforces it with its primary key; a full model can break it (a join that
  fans out), and then nothing downstream of it runs.
- ``<column>_references_<table>`` (one per ``-- references:`` line): every non-NULL ``column``
  is found in the referenced table; a row pointing at nothing could not be loaded into Salesforce.
- ``driving_rows_complete`` (incremental models, blocking): every key the model's SELECT returns
  for the run's partitions is in the table. It tells a row lost in the model from one that
  changed upstream: a missing key whose driving row was written after the refresh took its
  snapshot (a concurrent load below) is reported, not failed, and the next run brings it; so are
  the driving rows of the window the model's own filter leaves out (a contract whose customer
  has no account yet). Any other missing key is a loss, and fails, naming a few keys.
"""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTableAs

from bodyfriend_assets.transforms.deletes import provenance
from bodyfriend_assets.transforms.models import Reference, SqlModel
from bodyfriend_assets.transforms.refresh import TEMPORARY_SCHEMA, PartitionWindow, model_select

KEY_CHECK = "key_unique_and_not_null"
COMPLETE_CHECK = "driving_rows_complete"
EXAMPLES = 5


def model_check_specs(model: SqlModel, asset_key: dg.AssetKey) -> list[dg.AssetCheckSpec]:
    specs = [
        dg.AssetCheckSpec(
            KEY_CHECK,
            asset=asset_key,
            blocking=True,
            description=f"{', '.join(f'`{k}`' for k in model.key)} identify the rows of `{model.qualified_name}`.",
        )
    ]
    if model.mode == "incremental":
        specs.append(
            dg.AssetCheckSpec(
                COMPLETE_CHECK,
                asset=asset_key,
                blocking=True,
                description=(
                    f"Every row the SELECT of `{model.file}` returns for the run's partitions is in "
                    f"`{model.qualified_name}` (rows changed upstream since the refresh are reported)."
                ),
            )
        )
    for reference in model.references:
        target = dg.AssetKey(list(reference.table))
        specs.append(
            dg.AssetCheckSpec(
                reference.check_name,
                asset=asset_key,
                additional_deps=[target] if reference.table != model.table else [],
                description=(
                    f"Every `{model.qualified_name}.{reference.column}` is a "
                    f"`{'.'.join(reference.table)}.{reference.target_column}`."
                ),
            )
        )
    return specs


def evaluate_key_check(conn: Connection, model: SqlModel, asset_key: dg.AssetKey) -> dg.AssetCheckResult:
    table = sa.table(model.name, *(sa.column(k) for k in model.key), schema=model.layer)
    keys = [table.c[k] for k in model.key]
    null_keys = conn.execute(
        sa.select(sa.func.count()).select_from(table).where(sa.or_(*(k.is_(None) for k in keys)))
    ).scalar_one()
    repeated = conn.execute(
        sa.select(*keys).group_by(*keys).having(sa.func.count() > 1).limit(EXAMPLES)
    ).all()
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=KEY_CHECK,
        passed=null_keys == 0 and not repeated,
        metadata={
            "rows_with_null_key": null_keys,
            "repeated_keys": ", ".join(str(tuple(row)) for row in repeated) or "none",
        },
    )


def evaluate_reference_check(
    conn: Connection, model: SqlModel, reference: Reference, asset_key: dg.AssetKey
) -> dg.AssetCheckResult:
    child = sa.table(model.name, sa.column(reference.column), schema=model.layer)
    parent = sa.table(reference.table[1], sa.column(reference.target_column), schema=reference.table[0])
    column = child.c[reference.column]
    orphans = (
        sa.select(column)
        .where(column.is_not(None))
        .where(~sa.exists().where(parent.c[reference.target_column] == column))
    )
    count = conn.execute(sa.select(sa.func.count()).select_from(orphans.subquery())).scalar_one()
    examples = conn.execute(orphans.distinct().limit(EXAMPLES)).scalars().all()
    return dg.AssetCheckResult(
        asset_key=asset_key,
        check_name=reference.check_name,
        passed=count == 0,
        metadata={
            "rows_without_match": count,
            "examples": ", ".join(map(str, examples)) or "none",
        },
    )


class _PgType(sa.types.UserDefinedType):
    """A PostgreSQL type SQLAlchemy has no class for (``xid8``, ``pg_snapshot``), for casts."""

    cache_ok = True

    def __init__(self, name: str):
        self.name = name

    def get_col_spec(self, **kw) -> str:
        return self.name


def evaluate_completeness_check(
    conn: Connection, model: SqlModel, asset_key: dg.AssetKey, window: PartitionWindow,
    refreshed_snapshot: str | None = None,
) -> dg.AssetCheckResult:
    """``driving_rows_complete`` for ``window``. ``refreshed_snapshot``: ``pg_current_snapshot()``
    as the refresh saw it (``RefreshResult.snapshot``); without it (the check run alone) every
    missing key counts as lost."""
    keys = list(model.key)
    # The SELECT runs once, into a temporary table the queries below read (rolled back with them).
    name = f"_expected_{model.name}"
    conn.execute(sa.schema.DropTable(sa.Table(name, sa.MetaData(), schema=TEMPORARY_SCHEMA), if_exists=True))
    returned = model_select(model, window).with_only_columns(
        *(sa.literal_column(k) for k in keys), maintain_column_froms=False
    )
    rows_expected = conn.execute(CreateTableAs(returned, name, temporary=True)).rowcount
    expected = sa.table(name, *(sa.column(k) for k in keys), schema=TEMPORARY_SCHEMA)
    table = sa.table(model.name, *(sa.column(k) for k in keys), schema=model.layer)
    missing = ~sa.exists().where(*(table.c[k] == expected.c[k] for k in keys))
    found = provenance(model)
    later = sa.false()
    if found is not None and refreshed_snapshot is not None:
        later = _written_after(model, found, expected, refreshed_snapshot)
    lost = _keys_where(conn, expected, keys, missing, ~later)
    changed = _keys_where(conn, expected, keys, missing, later)
    metadata = {
        "partitions_read": "{partition_start}...{partition_end}".format(**window.parameters(model)),
        "rows_expected": rows_expected,
        "rows_missing": lost[0],
        "rows_missing_keys": lost[1],
        "rows_changed_upstream_after_refresh": changed[0],
        "rows_changed_upstream_after_refresh_keys": changed[1],
    }
    if found is not None:
        excluded = _excluded_by_model(model, found, expected, window)
        metadata["driving_rows_excluded_by_model"], metadata["driving_rows_excluded_by_model_keys"] = (
            _keys_where(conn, excluded, ["key"], sa.true())
        )
    return dg.AssetCheckResult(
        asset_key=asset_key, check_name=COMPLETE_CHECK, passed=lost[0] == 0, metadata=metadata
    )


def _keys_where(conn: Connection, rows, keys: list[str], *conditions) -> tuple[int, str]:
    """How many of ``rows`` meet ``conditions``, and a few of their keys."""
    count = conn.execute(sa.select(sa.func.count()).select_from(rows).where(*conditions)).scalar_one()
    if not count:
        return 0, "none"
    columns = [rows.c[k] for k in keys]
    examples = conn.execute(sa.select(*columns).where(*conditions).order_by(*columns).limit(EXAMPLES)).all()
    return count, ", ".join(str(tuple(row)) for row in examples)


def _driving(model: SqlModel, alias: str) -> sa.Alias:
    schema, name = model.driving
    return sa.table(name, sa.column("xmin"), sa.column("_partition"), schema=schema).alias(alias)


def _written_after(model: SqlModel, found, expected, snapshot: str) -> sa.ColumnElement:
    """The expected key's driving row was written by a transaction the refresh could not see.

    ``xmin`` is a 32-bit transaction id; its epoch is the current one unless it is above the
    current id's low 32 bits (then the one before)."""
    driving = _driving(model, found.driving_alias)
    now = sa.cast(sa.cast(sa.func.pg_snapshot_xmax(sa.func.pg_current_snapshot()), sa.Text), sa.BigInteger)
    low = now.op("&")(0xFFFFFFFF)
    xid = sa.cast(sa.cast(driving.c.xmin, sa.Text), sa.BigInteger)
    full = now - low + xid - sa.case((xid > low, 1 << 32), else_=0)
    invisible = ~sa.func.pg_visible_in_snapshot(
        sa.cast(sa.cast(full, sa.Text), _PgType("xid8")), sa.cast(snapshot, _PgType("pg_snapshot"))
    )
    gives_key = [sa.literal_column(sql) == expected.c[key] for key, sql in found.key_expressions]
    return sa.exists(sa.select(sa.literal(1)).select_from(driving).where(*gives_key, invisible))


def _excluded_by_model(model: SqlModel, found, expected, window: PartitionWindow) -> sa.Subquery:
    """The keys of the driving rows of the window that the model's SELECT does not return."""
    driving = _driving(model, found.driving_alias)
    bounds = window.parameters(model)
    key_columns = [sa.literal_column(sql) for _, sql in found.key_expressions]
    returned = sa.exists().where(*(expected.c[k] == sa.literal_column(s) for k, s in found.key_expressions))
    return (
        sa.select(sa.func.concat_ws(", ", *key_columns).label("key"))
        .select_from(driving)
        .where(driving.c._partition.between(bounds["partition_start"], bounds["partition_end"]), ~returned)
        .subquery("excluded")
    )
