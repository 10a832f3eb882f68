"""Loading one Salesforce object's Heroku Connect table from its lv2 table, inside PostgreSQL.

In one transaction, no row through Python:

1. stage: the lv2 rows to consider (an incremental model's rows whose ``_partition`` falls in
   the run's window, its look-back included, and every row still held back from an earlier
   load; a full model's whole table) go to a temporary table under their hc column names;
   lv2's naive Korean timestamps become naive UTC at the fixed +09:00 offset (Korea's offset
   for every date Salesforce stores that matters here; historical offsets would move
   1900-01-01 00:00 to 15:32:08Z);
2. quarantine: every value Salesforce would refuse (:mod:`.rules`: lengths, required fields,
   e-mail, URL and phone syntax, restricted picklists, date ranges, number precision and scale,
   lookups whose parent is not in hc) is recorded in ``hc_meta.quarantine`` (object, external
   id, field, reason, value excerpt, run id) and its row is not written, so the record keeps its
   previous values; the row is also listed in ``hc_meta.held``, and every later load considers
   it again until it passes (a child waiting for its parent is written on the run that brings
   the parent);
3. upsert by external ID: a new row is inserted, an existing row is updated only when a mapped
   value differs (``IS DISTINCT FROM``), so an unchanged row is never written and Heroku Connect
   logs nothing. For an object whose Salesforce edits are kept (Product2), a field edited in
   Salesforce keeps its value until the ERP changes it (:mod:`.salesforce_edits`). Only the
   mapped columns are written: never ``id``, ``sfid`` or ``_hc_*``; lookups go to the
   relationship external-ID columns. Nothing is truncated;
4. deletes (a delete is how Heroku Connect deletes the Salesforce record): a row whose lv2 row
   has it marked (``delete_column``), and every hc row with an external id whose lv2 row is gone
   (the old ``func_delete_nomatch``). Rows without an external id are never touched. A record
   that hc children still look up is not deleted (Salesforce would delete or orphan them with
   it): it waits, quarantined as ``delete_waits``, until its children are gone or moved. A load
   that would delete more than a tenth of the table (and more than 100 rows) stops instead:
   lv2 is more likely incomplete than the ERP emptied.

Identifiers are quoted by SQLAlchemy, values bound.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, field, replace

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTableAs

from bodyfriend_assets.hc import salesforce_edits
from bodyfriend_assets.hc.mapping import EXTERNAL_ID_COLUMN, Field, HcMapping, HcObject
from bodyfriend_assets.hc.rules import Rule, object_rules
from bodyfriend_assets.hc.tables import held_table, hc_table, quarantine_table
from bodyfriend_assets.table_metadata import column_types, table_metadata
from bodyfriend_assets.transforms.models import PARTITION_COLUMN, SqlModel
from bodyfriend_assets.transforms.refresh import PartitionWindow

LV2_SCHEMA = "lv2"
KST_OFFSET = dt.timedelta(hours=9)  # lv2 timestamps are naive Korean time, as the ERP stores them
EXCERPT_LENGTH = 100
DELETE_FLAG = "_delete"
TEMPORARY_SCHEMA = "pg_temp"
DELETE_WAITS = "delete_waits"
# A load deleting more than this share of its table (and more than MASS_DELETE_ROWS rows) stops;
# BODYFRIEND_HC_ALLOW_MASS_DELETE=1 lets an intended one through.
MASS_DELETE_SHARE = 0.1
MASS_DELETE_ROWS = 100
ALLOW_MASS_DELETE_VAR = "BODYFRIEND_HC_ALLOW_MASS_DELETE"


class HcLoadError(RuntimeError):
    """The lv2 table cannot be loaded as mapped; nothing was written. Names the object."""


@dataclass(frozen=True)
class LoadResult:
    object: str
    table: str
    rows_read: int  # lv2 rows considered
    rows_inserted: int
    rows_updated: int
    rows_deleted: int  # marked for deletion in lv2, or gone from lv2
    rows_quarantined: int  # rows not written because Salesforce would refuse them
    rows_delete_waiting: int  # rows whose lv2 row is gone, kept while hc children look them up
    violations: dict[str, int]  # reason kind -> values refused
    partitions_read: str | None
    seconds: float
    rows: int = 0  # rows in the hc table afterwards
    rows_gone: int = 0  # of rows_deleted: those whose lv2 row is gone (not among rows_read)
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
            "rows_unchanged": self.rows_read - self.rows_written + self.rows_gone - self.rows_quarantined,
            "quarantine_count": self.rows_quarantined,
            "rows_delete_waiting": self.rows_delete_waiting,
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

    source_types = column_types(conn, LV2_SCHEMA, model.name)
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
    held = held_table()
    if incremental:
        bounds = window.parameters(model)
        in_window = source.c[PARTITION_COLUMN].between(bounds["partition_start"], bounds["partition_end"])
        held_back = sa.select(held.c.external_id).where(held.c.object == obj.object)
        # two branches, so that the window still reads through lv2's _partition index
        query = sa.union_all(
            query.where(in_window),
            query.where(source.c[EXTERNAL_ID_COLUMN].in_(held_back),
                        sa.not_(sa.func.coalesce(in_window, sa.false()))),
        )
        partitions_read = f"{bounds['partition_start']}...{bounds['partition_end']}"
    stage_name = f"_hc_stage_{obj.table}"[:63]
    conn.execute(sa.schema.DropTable(sa.table(stage_name, schema=TEMPORARY_SCHEMA), if_exists=True))
    rows_read = conn.execute(CreateTableAs(query, stage_name, temporary=True)).rowcount
    staged_columns = [external_id, *(f.hc_column for f in obj.fields)]
    staged_columns += [mapping.lookup_column(lk) for lk in obj.lookups]
    stage = sa.table(stage_name, *(sa.column(c) for c in [*staged_columns, DELETE_FLAG]), schema=TEMPORARY_SCHEMA)
    _refuse_repeated_external_ids(conn, stage, external_id, label)

    # 2. quarantine
    stage, rules = _judged(conn, stage, lambda table: object_rules(obj, mapping, table, schema, held))
    partitions = None if window is None else (
        window.start if window.start == window.end else f"{window.start}...{window.end}"
    )
    violations = _quarantine(conn, obj, stage, rules, run_id=run_id, partitions=partitions, external_id=external_id)
    refused = sa.or_(*(rule.condition for rule in rules)) if rules else sa.false()
    quarantined = conn.execute(
        sa.select(sa.func.count()).select_from(stage).where(refused)
    ).scalar_one()
    _hold(conn, obj, stage, refused, external_id)

    # 3. write
    writable = sa.and_(sa.not_(refused), sa.not_(stage.c[DELETE_FLAG]))
    fields = {f.hc_column: f for f in obj.fields}
    values = [stage.c[external_id]]
    for column in staged_columns[1:]:
        value = sa.cast(stage.c[column], target.c[column].type)
        if column in fields and fields[column].type == "boolean":  # a checkbox is never NULL
            value = sa.func.coalesce(value, sa.false())
        values.append(value)
    incoming = sa.select(*values)
    if obj.keep_salesforce_edits:
        incoming = salesforce_edits.keeping_edits(obj, target, stage, dict(zip(staged_columns, values)), fields)
    # In external-id order, so the hc table's serial ids (and the trigger log Heroku Connect reads)
    # come out the same whatever order the staged rows happen to be in.
    ordered = incoming.where(writable).order_by(stage.c[external_id])
    insert = postgresql.insert(target).from_select(staged_columns, ordered)
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
    if obj.keep_salesforce_edits:
        erp_values = dict(zip(staged_columns[1:], values[1:]))
        salesforce_edits.record_written(conn, obj, stage.c[external_id],
                                        {c: erp_values[c] for c in fields}, sa.select(stage).where(writable))

    deleted = 0
    if obj.delete_column:
        doomed = sa.select(stage.c[external_id]).where(stage.c[DELETE_FLAG], sa.not_(refused))
        deleted = conn.execute(sa.delete(target).where(target.c[external_id].in_(doomed))).rowcount

    conn.execute(sa.schema.DropTable(stage))

    # 4. the records whose lv2 row is gone
    stale, waiting = _delete_stale(conn, obj, mapping, model, schema, label,
                                   run_id=run_id, partitions=partitions)
    if obj.keep_salesforce_edits:
        salesforce_edits.forget_deleted(conn, obj, target)
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
        rows_deleted=deleted + stale,
        rows_quarantined=quarantined,
        rows_delete_waiting=waiting,
        rows_gone=stale,
        violations=violations,
        partitions_read=partitions_read,
        seconds=time.monotonic() - began,
    )


# -- staging ---------------------------------------------------------------------------------


def _staged(column, field: Field, source_type: str):
    """The lv2 value as staged: timestamps to naive UTC (naive ones are Korean time, +09:00),
    everything else as lv2 holds it (text is not cast yet: a cast to varchar(n) would cut a
    too-long value silently)."""
    if field.type == "datetime":
        if source_type.startswith("timestamp with time zone"):
            return sa.func.timezone("UTC", column)
        if source_type.startswith("timestamp"):
            return column - sa.literal(KST_OFFSET, sa.Interval)
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


# -- quarantine and the rows held back -----------------------------------------------------------


def _judged(conn: Connection, stage: sa.Table, rules_on) -> tuple[sa.Table, list[Rule]]:
    """The staged rows with each rule's verdict as a column, evaluated once per row (the lookups'
    parent checks included), and the rules reading those columns; the raw stage is dropped."""
    rules = rules_on(stage)
    verdicts = [sa.func.coalesce(rule.condition, sa.false()).label(f"_rule_{i}") for i, rule in enumerate(rules)]
    name = f"{stage.name}_judged"[:63]
    conn.execute(sa.schema.DropTable(sa.table(name, schema=TEMPORARY_SCHEMA), if_exists=True))
    conn.execute(CreateTableAs(sa.select(*stage.c, *verdicts), name, temporary=True))
    conn.execute(sa.schema.DropTable(stage))
    judged = sa.table(name, *(sa.column(c.name) for c in stage.c),
                      *(sa.column(v.name) for v in verdicts), schema=TEMPORARY_SCHEMA)
    return judged, [replace(rule, condition=judged.c[f"_rule_{i}"]) for i, rule in enumerate(rules_on(judged))]


def _hold(conn: Connection, obj: HcObject, stage: sa.Table, refused, external_id: str) -> None:
    """List the refused rows in ``hc_meta.held``; release the staged rows that passed."""
    held = held_table()
    conn.execute(
        postgresql.insert(held)
        .from_select(["object", "external_id"],
                     sa.select(sa.literal(obj.object, sa.Text), stage.c[external_id]).where(refused)
                     .where(stage.c[external_id].is_not(None)))
        .on_conflict_do_nothing()
    )
    passed = sa.select(stage.c[external_id]).where(sa.not_(refused))
    conn.execute(sa.delete(held).where(held.c.object == obj.object, held.c.external_id.in_(passed)))


def _quarantine(
    conn: Connection, obj: HcObject, stage: sa.Table, rules: list[Rule], *,
    run_id: str, partitions: str | None, external_id: str,
) -> dict[str, int]:
    """Record every refused value in ``hc_meta.quarantine``; return counts per kind."""
    if not rules:
        return {}
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
    _record(conn, obj, sa.union_all(*selects).cte("refused"), run_id=run_id, partitions=partitions)
    return _count_kinds(conn, stage, rules)


def _record(conn: Connection, obj: HcObject, refused, *, run_id: str, partitions: str | None) -> None:
    """Insert ``refused`` (kind, field, external_id, reason, value_excerpt) into the quarantine."""
    quarantine = quarantine_table()
    conn.execute(
        sa.insert(quarantine)
        .from_select(
            ["object", "hc_table", "external_id", "field", "reason", "value_excerpt", "run_id", "partitions"],
            sa.select(
                sa.literal(obj.object, sa.Text), sa.literal(obj.table, sa.Text), refused.c.external_id,
                refused.c.field, refused.c.reason, refused.c.value_excerpt,
                sa.literal(run_id, sa.Text), sa.literal(partitions, sa.Text),
            ).order_by(refused.c.external_id, refused.c.field, refused.c.reason),
        )
    )


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


# -- deletes ----------------------------------------------------------------------------------


def _delete_stale(
    conn: Connection, obj: HcObject, mapping: HcMapping, model: SqlModel, schema: str, label: str, *,
    run_id: str, partitions: str | None,
) -> tuple[int, int]:
    """Delete the hc rows (with an external id) whose lv2 row is gone, except those hc children
    still look up, which wait in the quarantine. Returns (deleted, waiting)."""
    target = hc_table(obj, mapping, schema)
    external_id = target.c[obj.external_id_column]
    lv2 = sa.table(model.name, sa.column(EXTERNAL_ID_COLUMN), schema=LV2_SCHEMA)
    gone = sa.and_(external_id.is_not(None), ~sa.exists().where(lv2.c[EXTERNAL_ID_COLUMN] == external_id))
    candidates = conn.execute(sa.select(sa.func.count()).select_from(target).where(gone)).scalar_one()
    if not candidates:
        return 0, 0
    total = conn.execute(sa.select(sa.func.count()).select_from(target)).scalar_one()
    if candidates > max(MASS_DELETE_ROWS, MASS_DELETE_SHARE * total) and os.environ.get(ALLOW_MASS_DELETE_VAR) != "1":
        raise HcLoadError(
            f"{label}: {candidates} of {total} records have no lv2.{model.name} row any more; deleting them "
            f"would delete them in Salesforce. Nothing was written: check that lv2.{model.name} is complete "
            f"(a rebuilt or partly loaded model), or set {ALLOW_MASS_DELETE_VAR}=1 for a run that means it"
        )
    looked_up, children = _looked_up(obj, mapping, schema, target)
    if children:
        waiting = (
            sa.select(
                sa.literal(DELETE_WAITS, sa.Text).label("kind"),
                sa.literal(obj.external_id, sa.Text).label("field"),
                external_id.label("external_id"),
                sa.literal(f"its lv2 row is gone, but {', '.join(children)} records in hc still look it up "
                           "(deleting it would delete or orphan them in Salesforce): not deleted yet", sa.Text)
                .label("reason"),
                sa.null().label("value_excerpt"),
            ).where(gone, looked_up).cte("waiting")
        )
        _record(conn, obj, waiting, run_id=run_id, partitions=partitions)
    waits = conn.execute(sa.select(sa.func.count()).select_from(target).where(gone, looked_up)).scalar_one()
    deleted = conn.execute(sa.delete(target).where(gone, sa.not_(looked_up))).rowcount
    held = held_table()
    conn.execute(sa.delete(held).where(
        held.c.object == obj.object, ~sa.exists().where(lv2.c[EXTERNAL_ID_COLUMN] == held.c.external_id)
    ))
    return deleted, waits


def _looked_up(obj: HcObject, mapping: HcMapping, schema: str, target: sa.Table) -> tuple[sa.ColumnElement, list[str]]:
    """True for a ``target`` row that an hc row of another object looks up, by its external id
    (the relationship column the platform writes) or its sfid (a lookup Heroku Connect filled);
    and the names of the objects that can."""
    conditions, children = [], []
    for child in mapping.objects:
        lookups = [lk for lk in child.lookups if lk.object == obj.object and child.object != obj.object]
        if not lookups:
            continue
        table = hc_table(child, mapping, schema)
        children.append(child.object)
        for lookup in lookups:
            conditions.append(sa.exists().where(table.c[mapping.lookup_column(lookup)] == target.c[obj.external_id_column]))
            conditions.append(sa.and_(target.c.sfid.is_not(None),
                                      sa.exists().where(table.c[lookup.field.lower()] == target.c.sfid)))
    return (sa.or_(*conditions) if conditions else sa.false()), children


# -- helpers -----------------------------------------------------------------------------------


__all__ = ["HcLoadError", "LoadResult", "load_object"]
