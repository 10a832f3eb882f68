"""Loading one Salesforce object's Heroku Connect table from its lv2 table, inside PostgreSQL.

In one transaction, no row through Python:

1. stage: the lv2 rows to consider (an incremental model's rows whose ``_partition`` falls in
   the run's window, its look-back included; a full model's whole table) go to a temporary
   table under their hc column names; lv2's naive Korean timestamps become naive UTC;
2. quarantine: every value Salesforce would refuse (too long for the field, a required field
   empty, a value outside a restricted picklist, a number too large for the field) is recorded
   in ``hc_meta.quarantine`` (object, external id, field, reason, value excerpt, run id) and
   its row is not written; the rest of the batch loads;
3. upsert by external ID: a new row is inserted, an existing row is updated only when a mapped
   value differs (``IS DISTINCT FROM``), so an unchanged row is never written and Heroku Connect
   logs nothing. Only the mapped columns are written: never ``id``, ``sfid`` or ``_hc_*``;
   lookups go to the relationship external-ID columns. Nothing is truncated; rows are deleted
   only when the object declares a ``delete_column`` and the lv2 row has it true.

Identifiers are quoted by SQLAlchemy, values bound.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTableAs

from bodyfriend_assets.hc.mapping import EXTERNAL_ID_COLUMN, Field, HcMapping, HcObject
from bodyfriend_assets.hc.tables import LOOKUP_COLUMN_LENGTH, hc_table, quarantine_table
from bodyfriend_assets.table_metadata import table_metadata
from bodyfriend_assets.transforms.models import PARTITION_COLUMN, SqlModel
from bodyfriend_assets.transforms.refresh import PartitionWindow

LV2_SCHEMA = "lv2"
LOCAL_TIME_ZONE = "Asia/Seoul"  # lv2 timestamps are naive Korean time, as the ERP stores them
EXCERPT_LENGTH = 100
DELETE_FLAG = "_delete"
TEMPORARY_SCHEMA = "pg_temp"


class HcLoadError(RuntimeError):
    """The lv2 table cannot be loaded as mapped; nothing was written. Names the object."""


@dataclass(frozen=True)
class LoadResult:
    object: str
    table: str
    rows_read: int  # lv2 rows considered
    rows_inserted: int
    rows_updated: int
    rows_deleted: int
    rows_quarantined: int  # rows not written because Salesforce would refuse them
    violations: dict[str, int]  # reason kind -> values refused
    partitions_read: str | None
    seconds: float
    rows: int = 0  # rows in the hc table afterwards
    table_metadata: dict = field(default_factory=dict)  # the catalog's columns and row count

    @property
    def rows_written(self) -> int:
        return self.rows_inserted + self.rows_updated + self.rows_deleted

    def as_metadata(self) -> dict[str, object]:
        metadata: dict[str, object] = {
            **self.table_metadata,
            "table": self.table,
            "rows": self.rows,
            "rows_read": self.rows_read,
            "rows_written": self.rows_written,
            "rows_changed": self.rows_written,  # the name the lower layers use
            "rows_inserted": self.rows_inserted,
            "rows_updated": self.rows_updated,
            "rows_deleted": self.rows_deleted,
            "rows_unchanged": self.rows_read - self.rows_written - self.rows_quarantined,
            "quarantine_count": self.rows_quarantined,
            "quarantined_values": sum(self.violations.values()),
            "seconds": round(self.seconds, 3),
        }
        metadata |= {f"quarantined_{kind}": count for kind, count in sorted(self.violations.items())}
        if self.partitions_read:
            metadata["partitions_read"] = self.partitions_read
        return metadata


def load_object(
    conn: Connection,
    obj: HcObject,
    model: SqlModel,
    mapping: HcMapping,
    *,
    schema: str,
    run_id: str,
    window: PartitionWindow | None = None,
) -> LoadResult:
    """Load ``obj`` from ``lv2.<model>`` into ``<schema>.<obj.table>`` and commit (roll back on error)."""
    began = time.monotonic()
    target = hc_table(obj, mapping, schema)
    label = f"{obj.object} ({schema}.{obj.table})"
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(sa.literal(f"hc:{schema}.{obj.table}")))))

    source_types = _column_types(conn, model.name, LV2_SCHEMA)
    if not source_types:
        raise HcLoadError(f"{label}: lv2.{model.name} does not exist; materialize lv2/{model.name} first")
    needed = [EXTERNAL_ID_COLUMN, *(f.column for f in obj.fields), *(lk.column for lk in obj.lookups)]
    if obj.delete_column:
        needed.append(obj.delete_column)
    incremental = model.mode == "incremental" and window is not None
    if incremental:
        needed.append(PARTITION_COLUMN)
    missing = [c for c in needed if c not in source_types]
    if missing:
        raise HcLoadError(f"{label}: lv2.{model.name} has no column {', '.join(missing)}")

    # 1. stage
    source = sa.table(model.name, *(sa.column(c) for c in source_types), schema=LV2_SCHEMA)
    external_id = obj.external_id_column
    selected = [source.c[EXTERNAL_ID_COLUMN].label(external_id)]
    selected += [_staged(source.c[f.column], f, source_types[f.column]).label(f.hc_column) for f in obj.fields]
    selected += [source.c[lk.column].label(mapping.lookup_column(lk)) for lk in obj.lookups]
    selected.append(
        sa.func.coalesce(source.c[obj.delete_column], sa.false()).label(DELETE_FLAG)
        if obj.delete_column else sa.false().label(DELETE_FLAG)
    )
    query = sa.select(*selected)
    partitions_read = None
    if incremental:
        bounds = window.parameters(model)
        query = query.where(source.c[PARTITION_COLUMN].between(bounds["partition_start"], bounds["partition_end"]))
        partitions_read = f"{bounds['partition_start']}...{bounds['partition_end']}"
    stage_name = f"_hc_stage_{obj.table}"[:63]
    conn.execute(sa.schema.DropTable(sa.table(stage_name, schema=TEMPORARY_SCHEMA), if_exists=True))
    rows_read = conn.execute(CreateTableAs(query, stage_name, temporary=True)).rowcount
    staged_columns = [external_id, *(f.hc_column for f in obj.fields)]
    staged_columns += [mapping.lookup_column(lk) for lk in obj.lookups]
    stage = sa.table(stage_name, *(sa.column(c) for c in [*staged_columns, DELETE_FLAG]), schema=TEMPORARY_SCHEMA)
    _refuse_repeated_external_ids(conn, stage, external_id, label)

    # 2. quarantine
    rules = _rules(obj, mapping, stage)
    partitions = None if window is None else (
        window.start if window.start == window.end else f"{window.start}...{window.end}"
    )
    violations = _quarantine(conn, obj, stage, rules, run_id=run_id, partitions=partitions, external_id=external_id)
    refused = sa.or_(*(sa.func.coalesce(rule.condition, sa.false()) for rule in rules)) if rules else sa.false()
    quarantined = conn.execute(
        sa.select(sa.func.count()).select_from(stage).where(refused)
    ).scalar_one()

    # 3. write
    writable = sa.and_(sa.not_(refused), sa.not_(stage.c[DELETE_FLAG]))
    fields = {f.hc_column: f for f in obj.fields}
    values = [stage.c[external_id]]
    for column in staged_columns[1:]:
        value = sa.cast(stage.c[column], target.c[column].type)
        if column in fields and fields[column].type == "boolean":  # a checkbox is never NULL
            value = sa.func.coalesce(value, sa.false())
        values.append(value)
    insert = postgresql.insert(target).from_select(staged_columns, sa.select(*values).where(writable))
    updated_columns = staged_columns[1:]
    upsert = insert.on_conflict_do_update(
        index_elements=[external_id],
        set_={c: insert.excluded[c] for c in updated_columns},
        where=sa.tuple_(*(target.c[c] for c in updated_columns)).is_distinct_from(
            sa.tuple_(*(insert.excluded[c] for c in updated_columns))
        ),
    ).returning((sa.column("xmax") == sa.literal_column("0")).label("inserted"))
    written = upsert.cte("written")
    inserted, total = conn.execute(
        sa.select(sa.func.count().filter(written.c.inserted), sa.func.count()).select_from(written)
    ).one()

    deleted = 0
    if obj.delete_column:
        doomed = sa.select(stage.c[external_id]).where(stage.c[DELETE_FLAG], sa.not_(refused))
        deleted = conn.execute(sa.delete(target).where(target.c[external_id].in_(doomed))).rowcount

    conn.execute(sa.schema.DropTable(stage))
    rows = conn.execute(sa.select(sa.func.count()).select_from(target)).scalar_one()
    described = table_metadata(conn, schema, obj.table)
    conn.commit()
    return LoadResult(
        rows=rows,
        table_metadata=described,
        object=obj.object,
        table=f"{schema}.{obj.table}",
        rows_read=rows_read,
        rows_inserted=inserted,
        rows_updated=total - inserted,
        rows_deleted=deleted,
        rows_quarantined=quarantined,
        violations=violations,
        partitions_read=partitions_read,
        seconds=time.monotonic() - began,
    )


# -- staging ---------------------------------------------------------------------------------


def _staged(column, field: Field, source_type: str):
    """The lv2 value as staged: timestamps to naive UTC, everything else as lv2 holds it (text is
    not cast yet: a cast to varchar(n) would cut a too-long value silently)."""
    if field.type == "datetime":
        if source_type.startswith("timestamp with time zone"):
            return sa.func.timezone("UTC", column)
        if source_type.startswith("timestamp"):
            return sa.func.timezone("UTC", sa.func.timezone(LOCAL_TIME_ZONE, column))
    return column


def _refuse_repeated_external_ids(conn: Connection, stage: sa.Table, external_id: str, label: str) -> None:
    column = stage.c[external_id]
    repeated = conn.execute(
        sa.select(column).group_by(column).having(sa.func.count() > 1).limit(3)
    ).scalars().all()
    if repeated:
        raise HcLoadError(
            f"{label}: the lv2 rows repeat external ids {repeated}; nothing was written "
            "(the lv2 key check should have stopped this load)"
        )


# -- what Salesforce would refuse ---------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    field: str  # the Salesforce field
    kind: str  # too_long | required | not_in_picklist | number_too_large
    condition: sa.ColumnElement  # true for a row Salesforce would refuse
    reason: sa.ColumnElement  # text, computed per row
    value: sa.ColumnElement


def _rules(obj: HcObject, mapping: HcMapping, stage: sa.Table) -> list[Rule]:
    rules = []
    for field in (obj.external_id_field, *obj.fields):
        column = stage.c[field.hc_column if field.column != EXTERNAL_ID_COLUMN else obj.external_id_column]
        rules += _field_rules(field, column)
    for lookup in obj.lookups:
        column = stage.c[mapping.lookup_column(lookup)]
        pseudo = Field(column=lookup.column, field=lookup.field, type="string",
                       length=LOOKUP_COLUMN_LENGTH, required=lookup.required)
        rules += _field_rules(pseudo, column)
    return rules


def _field_rules(field: Field, column) -> list[Rule]:
    rules = []
    as_text = sa.cast(column, sa.Text)
    if field.required:
        empty = column.is_(None)
        if field.is_text:
            empty = sa.or_(empty, sa.func.btrim(as_text) == "")
        rules.append(Rule(field.field, "required", empty,
                          sa.literal(f"required field {field.label} is empty", sa.Text), as_text))
    if field.is_text:
        length = sa.func.char_length(as_text)
        rules.append(Rule(
            field.field, "too_long",
            sa.and_(column.is_not(None), length > field.length),
            sa.func.concat(sa.literal("value of ", sa.Text), length,
                           sa.literal(f" characters is too long for {field.label}", sa.Text)),
            as_text,
        ))
    if field.values is not None:
        rules.append(Rule(
            field.field, "not_in_picklist",
            sa.and_(column.is_not(None), as_text.not_in(list(field.values))),
            sa.literal(f"not a value of the restricted picklist {field.field}", sa.Text),
            as_text,
        ))
    if field.is_number:
        limit = 10 ** (field.precision - field.scale)
        rules.append(Rule(
            field.field, "number_too_large",
            sa.and_(column.is_not(None), sa.func.abs(sa.cast(column, sa.Numeric)) >= limit),
            sa.literal(f"number too large for {field.label}", sa.Text),
            as_text,
        ))
    return rules


def _quarantine(
    conn: Connection, obj: HcObject, stage: sa.Table, rules: list[Rule], *,
    run_id: str, partitions: str | None, external_id: str,
) -> dict[str, int]:
    """Record every refused value in ``hc_meta.quarantine``; return counts per kind."""
    if not rules:
        return {}
    quarantine = quarantine_table()
    selects = [
        sa.select(
            sa.literal(rule.kind, sa.Text).label("kind"),
            sa.literal(rule.field, sa.Text).label("field"),
            stage.c[external_id].label("external_id"),
            rule.reason.label("reason"),
            sa.func.left(rule.value, EXCERPT_LENGTH).label("value_excerpt"),
        ).where(rule.condition)
        for rule in rules
    ]
    refused = sa.union_all(*selects).cte("refused")
    recorded = (
        sa.insert(quarantine)
        .from_select(
            ["object", "hc_table", "external_id", "field", "reason", "value_excerpt", "run_id", "partitions"],
            sa.select(
                sa.literal(obj.object, sa.Text), sa.literal(obj.table, sa.Text), refused.c.external_id,
                refused.c.field, refused.c.reason, refused.c.value_excerpt,
                sa.literal(run_id, sa.Text), sa.literal(partitions, sa.Text),
            ),
        )
    )
    conn.execute(recorded)
    return _count_kinds(conn, stage, rules)


def _count_kinds(conn: Connection, stage: sa.Table, rules: list[Rule]) -> dict[str, int]:
    """Values refused per kind (one row can be refused for several fields)."""
    columns: dict[str, list] = {}
    for rule in rules:
        columns.setdefault(rule.kind, []).append(sa.cast(sa.func.coalesce(rule.condition, sa.false()), sa.Integer))
    counts = conn.execute(
        sa.select(*(sa.func.coalesce(sa.func.sum(_sum_of(terms)), 0).label(kind) for kind, terms in columns.items()))
        .select_from(stage)
    ).one()
    return {kind: int(count) for kind, count in zip(columns, counts) if count}


def _sum_of(terms: list) -> sa.ColumnElement:
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


# -- helpers -----------------------------------------------------------------------------------


def _column_types(conn: Connection, name: str, schema: str) -> Mapping[str, str]:
    """Column name -> PostgreSQL type of ``schema.name``, in table order; empty if it does not exist."""
    attribute = sa.table(
        "pg_attribute",
        *(sa.column(c) for c in ("attrelid", "attname", "atttypid", "atttypmod", "attnum", "attisdropped")),
        schema="pg_catalog",
    )
    qualified = conn.dialect.identifier_preparer.format_table(sa.table(name, schema=schema))
    relation = sa.func.to_regclass(sa.literal(qualified))
    rows = conn.execute(
        sa.select(attribute.c.attname, sa.func.format_type(attribute.c.atttypid, attribute.c.atttypmod))
        .where(attribute.c.attrelid == relation, attribute.c.attnum > 0, sa.not_(attribute.c.attisdropped))
        .order_by(attribute.c.attnum)
    ).all()
    return {column: type_ for column, type_ in rows}


__all__ = ["HcLoadError", "LoadResult", "load_object"]
