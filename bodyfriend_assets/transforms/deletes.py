"""Which rows of an incremental model no longer come out of its SELECT, found without running it.

An incremental refresh upserts the rows its partitions changed; a row deleted below (from lv0 by
the load, from lv1 by this module) changes no partition, so the refresh alone would keep its
model row for good. After each upsert the model therefore deletes the rows its SELECT can no
longer produce, read from the model's own SQL (sqlglot), not from a header:

- **its driving row is gone**: the key columns of the outermost SELECT are expressions over the
  driving table (``btrim(s.order_no) AS order_no``, ``c.order_no AS external_id``), and the
  driving table is in its FROM or an inner JOIN. A model row is deleted when no driving row gives
  its key: one anti-join, by the driving table's key index where the expression is a plain column.
- **a required parent is gone**: a ``-- references: column -> schema.table.target`` whose table
  is inner-joined in the outermost SELECT and whose column is that table's ``target`` (as
  ``lv2.opportunity``'s ``account_external_id`` is ``a.external_id`` of ``JOIN lv2.account AS
  a``): a row whose parent no longer exists cannot come out of the SELECT, and is deleted. So an
  Account deleted in the ERP takes its Opportunities out of lv2, as Salesforce does.

A model whose keys are not plain expressions over its driving table falls back on the exact but
slower rule: its rows whose key the SELECT over every partition does not return are deleted.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import sqlalchemy as sa
import sqlglot
from sqlglot import exp

from bodyfriend_assets.transforms.models import Reference, SqlModel


@dataclass(frozen=True)
class Provenance:
    """Where a model's rows come from, as its SQL says."""

    driving_alias: str
    key_expressions: tuple[tuple[str, str], ...]  # (model key column, PostgreSQL over the alias)
    required_parents: tuple[Reference, ...]  # references the SELECT inner-joins


@cache
def provenance(model: SqlModel) -> Provenance | None:
    """The model's provenance, or None when its SQL does not show it plainly."""
    if model.mode != "incremental" or model.driving is None:
        return None
    statement = sqlglot.parse_one(model.sql, read="postgres")
    if not isinstance(statement, exp.Select):
        return None  # a UNION at the top: no single driving row per model row
    inner = _inner_tables(statement)
    driving_aliases = [alias for alias, table in inner.items() if table == model.driving]
    if len(driving_aliases) != 1:
        return None
    (alias,) = driving_aliases
    projections = {p.alias_or_name: p.unalias() for p in statement.expressions}
    keys = []
    for key in model.key:
        expression = projections.get(key)
        if expression is None:
            return None
        columns = list(expression.find_all(exp.Column))
        if not columns or any(c.table != alias for c in columns) or expression.find(exp.Subquery, exp.AggFunc):
            return None
        keys.append((key, expression.sql(dialect="postgres")))
    parents = []
    for reference in model.references:
        expression = projections.get(reference.column)
        if (
            isinstance(expression, exp.Column)
            and expression.name == reference.target_column
            and inner.get(expression.table) == reference.table
        ):
            parents.append(reference)
    return Provenance(alias, tuple(keys), tuple(parents))


def _inner_tables(statement: exp.Select) -> dict[str, tuple[str, str]]:
    """alias -> (schema, table) of the tables a row of the outermost SELECT must have: its FROM
    and its inner JOINs (a LEFT JOIN's table may be missing)."""
    found = {}
    sources = [statement.args.get("from_") and statement.args["from_"].this]
    sources += [j.this for j in statement.args.get("joins") or [] if not j.side and (j.kind or "").upper() in ("", "INNER", "CROSS")]
    for source in sources:
        if isinstance(source, exp.Table) and source.db:
            found[source.alias_or_name] = (source.db.lower(), source.name.lower())
    return found


def vanished_rows(model: SqlModel, target: sa.Table, every_partition: sa.Select) -> sa.ColumnElement:
    """The condition on ``target``'s rows that their SELECT can no longer produce them.

    ``every_partition``: the model's SELECT over all partitions, used when the SQL does not show
    where its rows come from."""
    found = provenance(model)
    if found is None:
        produced = every_partition.subquery("produced")
        return ~sa.exists().where(*(produced.c[k] == target.c[k] for k in model.key))
    schema, name = model.driving
    driving = sa.table(name, schema=schema).alias(found.driving_alias)
    gives_key = [sa.literal_column(sql) == target.c[key] for key, sql in found.key_expressions]
    conditions = [~sa.exists(sa.select(sa.literal(1)).select_from(driving).where(*gives_key))]
    for reference in found.required_parents:
        parent = sa.table(reference.table[1], sa.column(reference.target_column), schema=reference.table[0])
        column = target.c[reference.column]
        conditions.append(
            sa.and_(column.is_not(None), ~sa.exists().where(parent.c[reference.target_column] == column))
        )
    return sa.or_(*conditions)
