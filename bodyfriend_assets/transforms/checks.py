"""The asset checks every model gets, evaluated in PostgreSQL over the whole table.

- ``key_unique_and_not_null`` (blocking): the header's key identifies the table's rows. An
  incremental table enforces it with its primary key; a full model can break it (a join that
  fans out), and then nothing downstream of it runs.
- ``<column>_references_<table>`` (one per ``-- references:`` line): every non-NULL ``column``
  is found in the referenced table; a row pointing at nothing could not be loaded into Salesforce.
"""

from __future__ import annotations

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bodyfriend_assets.transforms.models import Reference, SqlModel

KEY_CHECK = "key_unique_and_not_null"
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
