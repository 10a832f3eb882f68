"""The Heroku Connect tables: their shape, creating them (development, tests), checking them
(production), and a stand-in for Heroku Connect's change log.

In production Heroku Connect owns the tables (schema ``salesforce`` by default): the platform
never creates, alters or truncates them; :func:`verify_hc_tables` only checks that every column
the load writes is there, with the external-ID column's unique index, and fails naming the
object and the column otherwise. For development and tests :func:`create_hc_tables` creates
them as Heroku Connect would (``id`` serial, ``sfid`` unique, ``systemmodstamp``,
``createddate``, ``isdeleted``, ``_hc_lastop``, ``_hc_err``, the mapped fields, lookup fields and
relationship external-ID columns, a unique index on the external-ID column) and, asked to,
installs the stand-in triggers that record every change in ``<schema>._trigger_log`` as
Heroku Connect does (INSERT with all columns, UPDATE with the changed ones, DELETE; state NEW,
or IGNORE for an UPDATE that changed nothing; nothing for Heroku Connect's own write-back of
``_hc_lastop``/``_hc_err``). TRUNCATE is not captured, as in Heroku Connect.

The platform's own bookkeeping is outside the Heroku Connect schema, in ``hc_meta``, created
by the platform in every mode: ``quarantine`` (every value Salesforce would refuse, per run),
``held`` (the rows held back from hc now, which every load considers again until they pass) and
``written_values`` (what the platform last wrote to the records whose Salesforce edits it keeps:
:mod:`.salesforce_edits`).

:func:`record_sync_result` plays Heroku Connect's write-back for tests: it sets ``_hc_lastop``
and ``_hc_err`` on a row as Heroku Connect does after Salesforce accepted or refused it;
:func:`record_salesforce_change` plays a change made in Salesforce arriving in the hc table.
"""

from __future__ import annotations

import json

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.schema import ExecutableDDLElement

from bodyfriend_assets.hc.mapping import EXTERNAL_ID_LENGTH, Field, HcMapping, HcObject, load_mapping
from bodyfriend_assets.table_metadata import column_types, regclass

DEFAULT_SCHEMA = "salesforce"
META_SCHEMA = "hc_meta"
QUARANTINE_TABLE = "quarantine"
HELD_TABLE = "held"
WRITTEN_VALUES_TABLE = "written_values"
TRIGGER_LOG_TABLE = "_trigger_log"
LOG_FUNCTION = "hc_stand_in_log"
SFID_LENGTH = 18
LOOKUP_COLUMN_LENGTH = EXTERNAL_ID_LENGTH
SYSTEM_COLUMNS = ("id", "sfid", "systemmodstamp", "createddate", "isdeleted", "_hc_lastop", "_hc_err")
# Columns the stand-in's UPDATE log leaves out: Heroku Connect's own status columns.
STATUS_COLUMNS = ("_hc_lastop", "_hc_err")


class HcSchemaError(RuntimeError):
    """The Heroku Connect tables lack what the load writes; names the object, table and column."""


# -- shapes -----------------------------------------------------------------------------------


def column_type(field: Field) -> sa.types.TypeEngine:
    """The PostgreSQL type Heroku Connect gives a field."""
    if field.is_text:
        return sa.String(field.length)
    if field.is_number:
        return postgresql.DOUBLE_PRECISION()
    return {"boolean": sa.Boolean(), "date": sa.Date(), "datetime": sa.DateTime()}[field.type]


def unique_index_name(obj: HcObject) -> str:
    return f"hcu_idx_{obj.table}_{obj.external_id_column}"[:63]


def hc_table(obj: HcObject, mapping: HcMapping, schema: str, metadata: sa.MetaData | None = None) -> sa.Table:
    """``<schema>.<object>`` as Heroku Connect shapes it, with every column the mapping names."""
    columns = [
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("sfid", sa.String(SFID_LENGTH)),
        sa.Column("systemmodstamp", sa.DateTime),
        sa.Column("createddate", sa.DateTime),
        sa.Column("isdeleted", sa.Boolean),
        sa.Column("_hc_lastop", sa.String(32)),
        sa.Column("_hc_err", sa.Text),
        sa.Column(obj.external_id_column, sa.String(EXTERNAL_ID_LENGTH)),
        *(sa.Column(f.hc_column, column_type(f)) for f in obj.fields),
    ]
    for lookup in obj.lookups:
        columns.append(sa.Column(lookup.field.lower(), sa.String(SFID_LENGTH)))
        columns.append(sa.Column(mapping.lookup_column(lookup), sa.String(LOOKUP_COLUMN_LENGTH)))
    table = sa.Table(obj.table, metadata or sa.MetaData(), *columns, schema=schema)
    sa.Index(f"hcu_idx_{obj.table}_sfid"[:63], table.c.sfid, unique=True)
    sa.Index(unique_index_name(obj), table.c[obj.external_id_column], unique=True)
    return table


def written_columns(obj: HcObject, mapping: HcMapping) -> list[str]:
    """The hc columns the load writes: external id, fields, relationship external-ID columns."""
    return [
        obj.external_id_column,
        *(f.hc_column for f in obj.fields),
        *(mapping.lookup_column(lookup) for lookup in obj.lookups),
    ]


def quarantine_table(metadata: sa.MetaData | None = None) -> sa.Table:
    return sa.Table(
        QUARANTINE_TABLE,
        metadata or sa.MetaData(),
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("object", sa.Text, nullable=False),
        sa.Column("hc_table", sa.Text, nullable=False),
        sa.Column("external_id", sa.Text),
        sa.Column("field", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("value_excerpt", sa.Text),
        sa.Column("run_id", sa.Text, nullable=False),
        sa.Column("partitions", sa.Text),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Index("quarantine_run_id_object", "run_id", "object"),
        sa.Index("quarantine_object_external_id", "object", "external_id"),
        schema=META_SCHEMA,
    )


def held_table(metadata: sa.MetaData | None = None) -> sa.Table:
    """The rows held back from hc (quarantined, or waiting for a parent) until a load writes them."""
    return sa.Table(
        HELD_TABLE,
        metadata or sa.MetaData(),
        sa.Column("object", sa.Text, primary_key=True),
        sa.Column("external_id", sa.Text, primary_key=True),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=META_SCHEMA,
    )


def written_values_table(metadata: sa.MetaData | None = None) -> sa.Table:
    """``hc_meta.written_values``: per record of an object whose Salesforce edits are kept, the
    values the platform last wrote (hc column -> value as text; a JSON null for NULL)."""
    return sa.Table(
        WRITTEN_VALUES_TABLE, metadata or sa.MetaData(),
        sa.Column("object", sa.Text, primary_key=True),
        sa.Column("external_id", sa.Text, primary_key=True),
        sa.Column("values", postgresql.JSONB, nullable=False),
        sa.Column("written_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        schema=META_SCHEMA,
    )


def trigger_log_table(schema: str, metadata: sa.MetaData | None = None) -> sa.Table:
    """``<schema>._trigger_log`` of the stand-in. Heroku Connect writes hstore text in ``values``
    and ``old``; the stand-in writes jsonb, which tests can read."""
    return sa.Table(
        TRIGGER_LOG_TABLE,
        metadata or sa.MetaData(),
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("txid", sa.BigInteger, server_default=sa.func.txid_current()),
        sa.Column("created_at", sa.DateTime, server_default=sa.text("(now() AT TIME ZONE 'UTC')")),
        sa.Column("updated_at", sa.DateTime, server_default=sa.text("(now() AT TIME ZONE 'UTC')")),
        sa.Column("processed_at", sa.DateTime),
        sa.Column("processed_tx", sa.BigInteger),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("action", sa.String(7), nullable=False),
        sa.Column("table_name", sa.String(128), nullable=False),
        sa.Column("record_id", sa.Integer),
        sa.Column("sfid", sa.String(SFID_LENGTH)),
        sa.Column("old", postgresql.JSONB),
        sa.Column("values", postgresql.JSONB),
        sa.Column("sf_result", sa.Integer),
        sa.Column("sf_message", sa.Text),
        schema=schema,
    )


# -- creating (development and tests) ----------------------------------------------------------


def create_hc_tables(
    engine: Engine | Connection,
    schema: str = DEFAULT_SCHEMA,
    *,
    mapping: HcMapping | None = None,
    stand_in: bool = False,
) -> list[str]:
    """Create the schema and every mapped object's table (those missing), and ``hc_meta``.

    ``stand_in=True`` also installs the Heroku Connect stand-in (``_trigger_log`` and a trigger
    per table). For development and tests only: production tables belong to Heroku Connect.
    Idempotent. Returns the qualified names of the tables it created."""
    mapping = mapping or load_mapping()
    if isinstance(engine, Connection):
        return _create(engine, schema, mapping, stand_in)
    with engine.begin() as conn:
        return _create(conn, schema, mapping, stand_in)


def _create(conn: Connection, schema: str, mapping: HcMapping, stand_in: bool) -> list[str]:
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(sa.literal(f"hc_setup:{schema}")))))
    conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))
    metadata = sa.MetaData()
    tables = [hc_table(obj, mapping, schema, metadata) for obj in mapping.objects]
    created = [f"{t.schema}.{t.name}" for t in tables if not sa.inspect(conn).has_table(t.name, schema=schema)]
    metadata.create_all(conn, checkfirst=True)
    create_meta_tables(conn)
    if stand_in:
        log = trigger_log_table(schema)
        log.create(conn, checkfirst=True)
        conn.execute(CreateLogFunction(schema))
        for table in tables:
            conn.execute(DropLogTrigger(table))
            conn.execute(CreateLogTrigger(table))
    return created


def create_meta_tables(conn: Connection) -> None:
    """``hc_meta.quarantine`` and ``hc_meta.held``: the platform's own, created in every mode."""
    conn.execute(sa.schema.CreateSchema(META_SCHEMA, if_not_exists=True))
    quarantine_table().create(conn, checkfirst=True)
    held_table().create(conn, checkfirst=True)
    written_values_table().create(conn, checkfirst=True)


# -- Heroku Connect's write-back, played for tests ----------------------------------------------

SYNCED = "SYNCED"
FAILED = "FAILED"


def record_sync_result(
    conn: Connection, obj: HcObject, mapping: HcMapping, schema: str, external_id: str, *,
    operation: str = "UPDATE", error: str | None = None,
) -> None:
    """Write back a sync as Heroku Connect does: ``_hc_lastop`` SYNCED, or FAILED with ``_hc_err``
    ``{"op": ..., "src": "SF", "msg": <Salesforce's message>}``; the row's pending
    ``_trigger_log`` entries become SUCCESS or FAILED (with ``sf_message``)."""
    table = hc_table(obj, mapping, schema)
    row_id = conn.execute(
        sa.update(table).where(table.c[obj.external_id_column] == external_id)
        .values(_hc_lastop=FAILED if error else SYNCED,
                _hc_err=json.dumps({"op": operation, "src": "SF", "msg": error}) if error else None)
        .returning(table.c.id)
    ).scalar_one()
    log = trigger_log_table(schema)
    conn.execute(
        sa.update(log).where(log.c.table_name == obj.table, log.c.record_id == row_id, log.c.state == "NEW")
        .values(state="FAILED" if error else "SUCCESS", sf_message=error, processed_at=sa.func.now())
    )


def record_salesforce_change(
    conn: Connection, obj: HcObject, mapping: HcMapping, schema: str, external_id: str,
    values: dict[str, object], *, modified_at,
) -> None:
    """Write a change made in Salesforce into the hc row as Heroku Connect does: the new ``values``
    (hc column -> value), ``systemmodstamp`` (``modified_at``, UTC) and ``_hc_lastop`` SYNCED,
    without a ``_trigger_log`` entry (Heroku Connect does not log its own writes)."""
    table = hc_table(obj, mapping, schema)
    conn.execute(sa.text("SET LOCAL session_replication_role = replica"))  # the stand-in's trigger is off
    conn.execute(
        sa.update(table).where(table.c[obj.external_id_column] == external_id)
        .values(**values, systemmodstamp=modified_at, _hc_lastop=SYNCED)
    )
    conn.execute(sa.text("SET LOCAL session_replication_role = DEFAULT"))


# -- checking (production) -------------------------------------------------------------------


def verify_hc_tables(conn: Connection, schema: str, objects: list[HcObject], mapping: HcMapping) -> None:
    """Raise :class:`HcSchemaError` unless every column the load writes exists and each external-ID
    column has a unique index; the message names every object, table and column at fault."""
    problems = []
    for obj in objects:
        qualified = f"{schema}.{obj.table}"
        relation = regclass(conn, schema, obj.table)
        if conn.execute(sa.select(relation)).scalar() is None:
            problems.append(f"{obj.object}: table {qualified} does not exist")
            continue
        present = column_types(conn, schema, obj.table)
        missing = [c for c in written_columns(obj, mapping) if c not in present]
        for column in missing:
            problems.append(f"{obj.object}: column {qualified}.{column} does not exist")
        if obj.external_id_column in present and not _has_unique_index(conn, relation, obj.external_id_column):
            problems.append(
                f"{obj.object}: external-ID column {qualified}.{obj.external_id_column} has no unique index"
            )
    if problems:
        raise HcSchemaError(
            "the Heroku Connect tables lack what the hc load writes (map these fields in Heroku "
            "Connect, or remove them from bodyfriend_assets/hc/objects.yaml; on a development "
            "Data Hub, BODYFRIEND_HC_MODE=development creates the tables):\n" + "\n".join(problems)
        )


def _has_unique_index(conn: Connection, relation, column: str) -> bool:
    index = sa.table("pg_index", sa.column("indrelid"), sa.column("indisunique"), sa.column("indkey"),
                     sa.column("indnatts"), sa.column("indpred"), schema="pg_catalog")
    attribute = sa.table("pg_attribute", sa.column("attrelid"), sa.column("attname"), sa.column("attnum"),
                         schema="pg_catalog")
    query = (
        sa.select(sa.func.count())
        .select_from(index.join(attribute, attribute.c.attrelid == index.c.indrelid))
        .where(
            index.c.indrelid == relation,
            index.c.indisunique,
            index.c.indnatts == 1,
            index.c.indpred.is_(None),
            attribute.c.attname == column,
            attribute.c.attnum == sa.literal_column("indkey[0]"),
        )
    )
    return conn.execute(query).scalar_one() > 0


# -- the Heroku Connect stand-in: DDL SQLAlchemy has no construct for ---------------------------

# Static text: the schema of the log is the schema of the table that fired (TG_TABLE_SCHEMA).
_LOG_FUNCTION_BODY = """
DECLARE
    changed jsonb;
    previous jsonb;
BEGIN
    IF TG_OP = 'INSERT' THEN
        EXECUTE format('INSERT INTO %I._trigger_log (state, action, table_name, record_id, sfid, "values") '
                       'VALUES ($1, $2, $3, $4, $5, $6)', TG_TABLE_SCHEMA)
            USING 'NEW', 'INSERT', TG_TABLE_NAME, NEW.id, NEW.sfid, to_jsonb(NEW);
        RETURN NEW;
    ELSIF TG_OP = 'UPDATE' THEN
        SELECT jsonb_object_agg(n.key, n.value), jsonb_object_agg(n.key, o.value)
            INTO changed, previous
            FROM jsonb_each(to_jsonb(NEW)) AS n
            JOIN jsonb_each(to_jsonb(OLD)) AS o ON o.key = n.key
            WHERE n.value IS DISTINCT FROM o.value AND n.key NOT IN ('_hc_lastop', '_hc_err');
        IF changed IS NULL AND to_jsonb(NEW) IS DISTINCT FROM to_jsonb(OLD) THEN
            RETURN NEW;  -- only Heroku Connect's own status columns changed: its write-back
        END IF;
        EXECUTE format('INSERT INTO %I._trigger_log (state, action, table_name, record_id, sfid, "values", old) '
                       'VALUES ($1, $2, $3, $4, $5, $6, $7)', TG_TABLE_SCHEMA)
            USING CASE WHEN changed IS NULL THEN 'IGNORE' ELSE 'NEW' END, 'UPDATE', TG_TABLE_NAME,
                  NEW.id, NEW.sfid, coalesce(changed, '{}'::jsonb), previous;
        RETURN NEW;
    ELSE
        EXECUTE format('INSERT INTO %I._trigger_log (state, action, table_name, record_id, sfid, old) '
                       'VALUES ($1, $2, $3, $4, $5, $6)', TG_TABLE_SCHEMA)
            USING 'NEW', 'DELETE', TG_TABLE_NAME, OLD.id, OLD.sfid, to_jsonb(OLD);
        RETURN OLD;
    END IF;
END
"""


class CreateLogFunction(ExecutableDDLElement):
    def __init__(self, schema: str):
        self.schema = schema


@compiles(CreateLogFunction)
def _create_log_function(element: CreateLogFunction, compiler, **kw) -> str:
    name = f"{compiler.preparer.quote_schema(element.schema)}.{compiler.preparer.quote(LOG_FUNCTION)}"
    body = _LOG_FUNCTION_BODY
    if compiler.dialect.paramstyle in ("format", "pyformat"):  # psycopg2 reads '%' as a placeholder
        body = body.replace("%", "%%")
    return f"CREATE OR REPLACE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $hc_stand_in${body}$hc_stand_in$"


def _trigger_name(table: sa.Table) -> str:
    return f"hc_{table.name}_logtrigger"[:63]


class CreateLogTrigger(ExecutableDDLElement):
    def __init__(self, table: sa.Table):
        self.table = table


@compiles(CreateLogTrigger)
def _create_log_trigger(element: CreateLogTrigger, compiler, **kw) -> str:
    preparer = compiler.preparer
    function = f"{preparer.quote_schema(element.table.schema)}.{preparer.quote(LOG_FUNCTION)}"
    return (
        f"CREATE TRIGGER {preparer.quote(_trigger_name(element.table))} "
        f"AFTER INSERT OR UPDATE OR DELETE ON {preparer.format_table(element.table)} "
        f"FOR EACH ROW EXECUTE FUNCTION {function}()"
    )


class DropLogTrigger(ExecutableDDLElement):
    def __init__(self, table: sa.Table):
        self.table = table


@compiles(DropLogTrigger)
def _drop_log_trigger(element: DropLogTrigger, compiler, **kw) -> str:
    preparer = compiler.preparer
    return (
        f"DROP TRIGGER IF EXISTS {preparer.quote(_trigger_name(element.table))} "
        f"ON {preparer.format_table(element.table)}"
    )
