"""Edits made in Salesforce to objects whose edits the platform keeps (``keep_salesforce_edits``
in ``objects.yaml``: Product2), and bringing them back into lv1 (the old
``hc.func_hc_to_lv1_product``).

Heroku Connect writes a change made in Salesforce into the hc table (new values, a new
``systemmodstamp``, ``_hc_lastop`` SYNCED; its own writes are not in ``_trigger_log``). An edit
is told from the platform's own writes by value: ``hc_meta.written_values`` holds, per record,
the values the platform last wrote (the ERP's, as lv2 gave them). A field whose hc value differs
from them was changed in Salesforce. Per field, a three-way merge:

- the ERP's value unchanged since the platform wrote it, Salesforce's differs: the load keeps
  Salesforce's value (the field is not written);
- the ERP's value changed: the load writes it (the newer change wins), and Salesforce's edit of
  that field is over;
- a record with no written values yet (written before this record was kept) gets the ERP's
  values once, as before.

The asset ``lv1/<source>_salesforce_edits`` (downstream of ``hc/<source>``, so the graph has no
loop: the load reads only hc and its own ``hc_meta`` bookkeeping) lists, after each load, every
field Salesforce holds differently from the ERP: the record, its sfid, the field, both values and
when Salesforce changed it (KST, as lv1 keeps time).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.schema import CreateTableAs

from bodyfriend_assets.hc.mapping import HcMapping, HcObject
from bodyfriend_assets.hc.tables import hc_table, written_values_table
from bodyfriend_assets.reload_in_place import merge_staged

EDITS_SCHEMA = "lv1"
KST_OFFSET = dt.timedelta(hours=9)  # systemmodstamp is UTC; lv1 keeps Korean time
# jsonb_build_object takes at most 100 arguments: 50 fields a call, the calls joined with ||.
_PAIRS_PER_CALL = 50


def edits_table_name(obj: HcObject) -> str:
    return f"{obj.source}_salesforce_edits"


def edits_table(obj: HcObject, metadata: sa.MetaData | None = None) -> sa.Table:
    """``lv1.<source>_salesforce_edits``: one row per field Salesforce holds differently from the ERP."""
    return sa.Table(
        edits_table_name(obj), metadata or sa.MetaData(),
        sa.Column("external_id", sa.Text, primary_key=True),
        sa.Column("field", sa.Text, primary_key=True, comment="the Salesforce field"),
        sa.Column("column_name", sa.Text, nullable=False, comment="the lv2 column that feeds it"),
        sa.Column("sfid", sa.String(18)),
        sa.Column("salesforce_value", sa.Text),
        sa.Column("erp_value", sa.Text),
        sa.Column("salesforce_modified_at", sa.DateTime, comment="systemmodstamp, in KST"),
        schema=EDITS_SCHEMA,
    )


def _text(value) -> sa.ColumnElement:
    return sa.cast(value, sa.Text)


def _salesforce_changed(values, target: sa.Table, column: str) -> sa.ColumnElement:
    """The hc value of ``column`` is not the one the platform last wrote (``values``: its record)."""
    return sa.and_(values.op("?")(column), _text(target.c[column]).is_distinct_from(values.op("->>")(column)))


def keeping_edits(obj: HcObject, target: sa.Table, stage: sa.Table, incoming: dict[str, sa.ColumnElement],
                  fields: Iterable[str]) -> sa.Select:
    """The rows to upsert (``incoming``: hc column -> the ERP's value over ``stage``), each field
    Salesforce's value (``target``) where only Salesforce changed it since the platform's last write."""
    written = written_values_table()
    external_id = obj.external_id_column
    joined = stage.outerjoin(target, target.c[external_id] == stage.c[external_id]).outerjoin(
        written, sa.and_(written.c.object == obj.object, written.c.external_id == stage.c[external_id]))
    base = written.c["values"]
    merged = dict(incoming)
    for column in fields:
        erp_unchanged = _text(incoming[column]).is_not_distinct_from(base.op("->>")(column))
        merged[column] = sa.case(
            (sa.and_(_salesforce_changed(base, target, column), erp_unchanged), target.c[column]),
            else_=incoming[column],
        )
    return sa.select(*merged.values()).select_from(joined)


def record_written(conn: Connection, obj: HcObject, external_id, values: dict[str, sa.ColumnElement],
                   source: sa.Select) -> None:
    """Remember the values the load wrote or would write (the ERP's) for the rows of ``source``."""
    written = written_values_table()
    pairs = [(column, _text(value)) for column, value in values.items()]
    calls = [
        sa.func.jsonb_build_object(*(arg for column, value in pairs[i:i + _PAIRS_PER_CALL]
                                     for arg in (sa.literal(column, sa.Text), value)))
        for i in range(0, len(pairs), _PAIRS_PER_CALL)
    ]
    document = calls[0]
    for call in calls[1:]:
        document = document.op("||")(call)
    insert = postgresql.insert(written).from_select(
        ["object", "external_id", "values"],
        source.with_only_columns(sa.literal(obj.object, sa.Text), external_id, document),
    )
    conn.execute(insert.on_conflict_do_update(
        index_elements=["object", "external_id"],
        set_={"values": insert.excluded["values"], "written_at": sa.func.now()},
        where=written.c["values"].is_distinct_from(insert.excluded["values"]),
    ))


def forget_deleted(conn: Connection, obj: HcObject, target: sa.Table) -> None:
    """Drop the written values of records no longer in the hc table."""
    written = written_values_table()
    conn.execute(sa.delete(written).where(
        written.c.object == obj.object,
        ~sa.exists().where(target.c[obj.external_id_column] == written.c.external_id),
    ))


def bring_back(conn: Connection, obj: HcObject, mapping: HcMapping, schema: str) -> dict[str, int]:
    """Make ``lv1.<source>_salesforce_edits`` list every field Salesforce now holds differently from
    what the platform last wrote, in place; commit. Returns the counts for the metadata."""
    target = hc_table(obj, mapping, schema)
    written = written_values_table()
    base = written.c["values"]
    table = edits_table(obj)
    conn.execute(sa.schema.CreateSchema(EDITS_SCHEMA, if_not_exists=True))
    table.create(conn, checkfirst=True)
    found = [
        sa.select(
            target.c[obj.external_id_column].label("external_id"),
            sa.literal(field.field, sa.Text).label("field"),
            sa.literal(field.column, sa.Text).label("column_name"),
            target.c.sfid,
            _text(target.c[field.hc_column]).label("salesforce_value"),
            base.op("->>")(field.hc_column).label("erp_value"),
            (target.c.systemmodstamp + sa.literal(KST_OFFSET, sa.Interval)).label("salesforce_modified_at"),
        )
        .select_from(target.join(written, sa.and_(written.c.object == obj.object,
                                                  written.c.external_id == target.c[obj.external_id_column])))
        .where(_salesforce_changed(base, target, field.hc_column))
        for field in obj.fields
    ]
    staged = f"_{table.name}_staged"[:63]
    conn.execute(sa.schema.DropTable(sa.table(staged, schema="pg_temp"), if_exists=True))
    conn.execute(CreateTableAs(sa.union_all(*found), staged, temporary=True))
    columns = [c.name for c in table.c]
    stage = sa.table(staged, *(sa.column(c) for c in columns), schema="pg_temp")
    changes = merge_staged(conn, table, stage, ["external_id", "field"], columns)
    conn.execute(sa.schema.DropTable(stage))
    edits, records = conn.execute(
        sa.select(sa.func.count(), sa.func.count(sa.distinct(table.c.external_id)))
    ).one()
    conn.commit()
    return {"rows": edits, "salesforce_edits": edits, "records_edited_in_salesforce": records,
            "rows_changed": changes.rows}
