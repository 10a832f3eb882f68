"""Atomic writes into lv0: a load is one PostgreSQL transaction, or nothing.

- incremental: each page is COPYed into a temporary staging table and at once upserted into
  ``lv0.<table>`` by key, in the same transaction, so the database merges page n while the reader
  fetches page n + 1. A row whose values did not change is not touched, so re-running a
  partition, or overlapping windows, change nothing. Then the delete pass: the source's keys
  (``write_source_keys``) go to a second temporary table and lv0 rows whose key is not among
  them are deleted (``delete_missing``), in the same transaction (``engine`` says why that order
  never deletes a row the source holds).
- snapshot: pages are COPYed into ``lv0.<table>__incoming``, created in the same transaction, which
  then replaces ``lv0.<table>`` by rename.

Until the commit, readers see the previous rows; if the process dies, PostgreSQL rolls the
transaction back, temporary and half-built tables included, and a re-run starts clean.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from datetime import datetime

import psycopg2.errors
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from bodyfriend_assets.extraction.source import SourceTable
from bodyfriend_assets.partitions import FIRST_PARTITION_START, START_DATE

LV0_SCHEMA = "lv0"
# psycopg2 reads COPY input from its file object in chunks of this size (its default is 8 kB:
# a Python call, and a hand-over of the GIL, every 8 kB).
COPY_CHUNK_BYTES = 1 << 20
LINEAGE_COLUMNS = (
    sa.Column("_loaded_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("_run_id", sa.Text, nullable=False),
    # The daily partition the row belongs to: its cursor's KST date for incremental tables (the
    # first partition for older rows; for floating rows, the load's last partition), the run's
    # partition for snapshots.
    sa.Column("_partition", sa.Text, nullable=False),
)


class Lv0WriteError(RuntimeError):
    """A load was refused; nothing was written. The message names the table and the row key."""


def lv0_table(source: SourceTable, name: str | None = None, metadata: sa.MetaData | None = None) -> sa.Table:
    name = name or source.entry.name
    return sa.Table(
        name,
        metadata or sa.MetaData(),
        *(
            sa.Column(c.name, c.lv0_type, nullable=c.name not in source.entry.key_columns)
            for c in source.columns
        ),
        *(c._copy() for c in LINEAGE_COLUMNS),
        sa.PrimaryKeyConstraint(*source.entry.key_columns, name=f"{name}_pkey"),
        schema=LV0_SCHEMA,
    )


@dataclass
class Lineage:
    loaded_at: object  # timezone-aware datetime
    run_id: str
    partition: str


@dataclass(frozen=True)
class FloatingRows:
    """Incremental rows in no partition: a NULL cursor, or one at or after ``since`` (the start
    of tomorrow, KST). Each load reads them; their ``_partition`` is ``partition``, the load's
    last."""

    since: datetime
    partition: str


class Lv0Load:
    """One transaction's load of pages into lv0; use ``write_page`` then ``commit``."""

    def __init__(
        self, conn: Connection, source: SourceTable, lineage: Lineage, floating: FloatingRows | None = None
    ):
        self.conn = conn
        self.source = source
        self.lineage = lineage
        self.floating = floating
        self.target = lv0_table(source)
        self.incremental = source.entry.mode == "incremental"
        self.rows_changed = 0  # incremental: lv0 rows inserted or updated so far
        self._cursor = conn.connection.driver_connection.cursor()
        self._prepare()

    # -- setup -----------------------------------------------------------------------------

    def _prepare(self) -> None:
        ensure_schema(self.conn.engine, LV0_SCHEMA)
        # Loads of one table queue behind each other (two runs of overlapping partitions would
        # otherwise race to create the table or deadlock in the upsert); other tables go on.
        self.conn.execute(
            sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"{LV0_SCHEMA}.{self.source.entry.name}")))
        )
        if self.incremental:
            self.target.create(self.conn, checkfirst=True)
            self._check_target_columns()
            # lv1's incremental models read lv0 by ``_partition``: a day's rows, not the table.
            partition_index = sa.Index(f"{self.target.name}__partition", self.target.c["_partition"])
            self.conn.execute(sa.schema.CreateIndex(partition_index, if_not_exists=True))
            self.staging = self._temporary_table(
                f"_staging_{self.source.entry.name}", [(c.name, c.lv0_type) for c in self.source.columns]
            )
            self._prepare_merge()
            self._copy_into = self.staging
            self._suffix = ""
        else:
            self.incoming = lv0_table(self.source, f"{self.source.entry.name}__incoming")
            self.incoming.create(self.conn)
            self._copy_into = self.incoming
            self._suffix = "".join(
                "\t" + v
                for v in (
                    self.lineage.loaded_at.isoformat(sep=" "),
                    _escape(self.lineage.run_id),
                    _escape(self.lineage.partition),
                )
            )
        self._copy_sql = self._copy_statement(self._copy_into)

    def _temporary_table(self, name: str, columns: list[tuple[str, sa.types.TypeEngine]]) -> sa.Table:
        """A temporary table of this load's transaction (dropped at its end, or with it)."""
        table = sa.Table(
            name, sa.MetaData(), *(sa.Column(n, t) for n, t in columns),
            prefixes=["TEMPORARY"], postgresql_on_commit="DROP",
        )
        table.create(self.conn)
        return table

    def _copy_statement(self, table: sa.Table) -> str:
        preparer = self.conn.dialect.identifier_preparer
        columns = ", ".join(preparer.quote(c.name) for c in table.columns)
        return f"COPY {preparer.format_table(table)} ({columns}) FROM STDIN"

    def _check_target_columns(self) -> None:
        """lv0 must have the source's columns with the same types; never adapt it silently."""
        dialect = postgresql.dialect()
        existing = {
            c["name"]: c["type"].compile(dialect=dialect)
            for c in sa.inspect(self.conn).get_columns(self.target.name, schema=LV0_SCHEMA)
        }
        expected = {c.name: c.type.compile(dialect=dialect) for c in self.target.columns}
        if existing != expected:
            missing = sorted(set(expected) - set(existing))
            extra = sorted(set(existing) - set(expected))
            changed = sorted(
                f"{n} ({existing[n]} -> {expected[n]})"
                for n in set(existing) & set(expected)
                if existing[n] != expected[n]
            )
            raise Lv0WriteError(
                f"lv0.{self.target.name} no longer matches {self.source.entry.qualified_name}: "
                f"new source columns {missing}, columns gone from the source {extra}, "
                f"changed types {changed}. Migrate lv0.{self.target.name} (or drop it to reload)."
            )

    def _prepare_merge(self) -> None:
        """The statements that merge one staged page into lv0 (built once per load)."""
        staging = self.staging
        key_names = list(self.source.entry.key_columns)
        keys = [staging.c[k] for k in key_names]
        cursor = staging.c[self.source.entry.cursor_column]
        self._repeated_key = sa.select(*keys).group_by(*keys).having(sa.func.count() > 1).limit(1)
        self._repeated_position = (
            sa.select(*keys).group_by(*keys, cursor).having(sa.func.count() > 1).limit(1)
        )
        data_columns = [c.name for c in self.source.columns]
        staged = sa.select(
            *(staging.c[n] for n in data_columns),
            sa.literal(self.lineage.loaded_at, sa.DateTime(timezone=True)).label("_loaded_at"),
            sa.literal(self.lineage.run_id).label("_run_id"),
            self._row_partition(cursor).label("_partition"),
        )
        # A row read twice within a page (its cursor moved forward during the read) keeps its
        # newest version. Across pages the later page holds the newer version and overwrites.
        newest = staged.ext(postgresql.distinct_on(*keys)).order_by(*keys, cursor.desc())
        self._merge_all = self._merge_statement(staged, data_columns, key_names)
        self._merge_newest = self._merge_statement(newest, data_columns, key_names)
        preparer = self.conn.dialect.identifier_preparer
        self._empty_staging = f"TRUNCATE {preparer.format_table(staging)}"

    def _row_partition(self, cursor):
        """``_partition`` of an incremental row (``partitions`` explains the rows in no window)."""
        in_a_day = sa.func.to_char(cursor, "YYYY-MM-DD")
        before_first = (cursor < sa.literal(FIRST_PARTITION_START, sa.DateTime()), sa.literal(START_DATE))
        if self.floating is None:
            return sa.case(before_first, else_=in_a_day)
        floating = sa.or_(cursor.is_(None), cursor >= sa.literal(self.floating.since, sa.DateTime()))
        return sa.case((floating, sa.literal(self.floating.partition)), before_first, else_=in_a_day)

    def _merge_statement(self, rows: sa.Select, data_columns: list[str], key_names: list[str]) -> sa.Select:
        """Upsert ``rows`` into lv0; the statement returns (rows written, rows rewritten).

        A rewritten row is one an earlier page of this load already wrote (read again because its
        cursor moved during the read): it counts once in ``rows_changed``. The outer query reads
        lv0 as it was before the upsert (all parts of a statement share one snapshot). Rows the
        upsert inserted (``xmax = 0``) cannot be rewrites and skip that look-up.
        """
        target = self.target
        insert = postgresql.insert(target).from_select(
            [*data_columns, "_loaded_at", "_run_id", "_partition"], rows
        )
        non_keys = [n for n in data_columns if n not in key_names]
        if not non_keys:
            upsert = insert.on_conflict_do_nothing(index_elements=key_names)
        else:
            updated = [*non_keys, "_loaded_at", "_run_id", "_partition"]
            upsert = insert.on_conflict_do_update(
                index_elements=key_names,
                set_={n: insert.excluded[n] for n in updated},
                where=sa.tuple_(*(target.c[n] for n in non_keys)).is_distinct_from(
                    sa.tuple_(*(insert.excluded[n] for n in non_keys))
                ),
            )
        written = upsert.returning(
            *(target.c[k] for k in key_names), sa.literal_column("xmax = 0").label("inserted")
        ).cte("written")
        before = target.alias("before")
        rewrite = sa.exists().where(
            *(before.c[k] == written.c[k] for k in key_names),
            before.c["_run_id"] == self.lineage.run_id,
            before.c["_loaded_at"] == sa.literal(self.lineage.loaded_at, sa.DateTime(timezone=True)),
        )
        return sa.select(
            sa.func.count(),
            sa.func.count().filter(sa.and_(sa.not_(written.c.inserted), rewrite)),
        ).select_from(written)

    # -- pages -----------------------------------------------------------------------------

    def write_page(self, copy_text: bytes) -> None:
        if not copy_text:
            return
        if self._suffix:
            suffix = self._suffix.encode("utf-8")
            copy_text = copy_text.replace(b"\n", suffix + b"\n")
        try:
            self._cursor.copy_expert(self._copy_sql, io.BytesIO(copy_text), size=COPY_CHUNK_BYTES)
        except psycopg2.errors.UniqueViolation as err:
            # This DETAIL holds the key alone: "Key (item_cd)=(HI000502) already exists."
            raise Lv0WriteError(
                f"{self.source.entry.qualified_name}: the source returned one key twice "
                f"({err.diag.message_detail}); lv0.{self.source.entry.name} was left unchanged"
            ) from None
        except psycopg2.Error as err:
            raise self._refused(err) from None
        if self.incremental:
            self.rows_changed += self._merge_staged_page()

    def _merge_staged_page(self) -> int:
        """Upsert the staged page into lv0 and empty the staging table; returns rows changed."""
        if self.conn.execute(self._repeated_key).first() is None:
            statement = self._merge_all  # the usual page: every key once, nothing to sort
        else:
            duplicate = self.conn.execute(self._repeated_position).first()
            if duplicate is not None:
                raise Lv0WriteError(
                    f"{self.source.entry.qualified_name}: key {dict(duplicate._mapping)} appears "
                    f"twice with the same {self.source.entry.cursor}; the catalog keys are not "
                    f"unique on the source. lv0.{self.target.name} was left unchanged"
                )
            statement = self._merge_newest
        try:
            written, rewritten = self.conn.execute(statement).one()
        except sa.exc.DBAPIError as err:
            raise self._refused(err.orig) from None
        self.conn.exec_driver_sql(self._empty_staging)
        return written - rewritten

    def _refused(self, err: Exception) -> Lv0WriteError:
        """The error for rows PostgreSQL refused, naming the table, the key and the column or
        constraint at fault, never a value (PostgreSQL's own message and DETAIL quote the row)."""
        entry = self.source.entry
        diag = getattr(err, "diag", None)
        column = getattr(diag, "column_name", None)
        at_fault = f", column {column}" if column else ""
        if column in entry.key_columns and isinstance(err, psycopg2.errors.NotNullViolation):
            return Lv0WriteError(
                f"{entry.qualified_name}: a source row with a NULL key column {column} arrived during "
                f"the read; lv0.{entry.name} was left unchanged"
            )
        constraint = getattr(diag, "constraint_name", None)
        at_fault += f", constraint {constraint}" if constraint else ""
        return Lv0WriteError(
            f"{entry.qualified_name}: lv0.{entry.name} refused the source rows "
            f"({type(err).__name__}{at_fault}; key {list(entry.keys)}); lv0.{entry.name} was left unchanged"
        )

    # -- deletes ---------------------------------------------------------------------------

    def start_key_scan(self) -> None:
        """A temporary table for the source's keys, filled by ``write_source_keys``."""
        types = {c.name: c.lv0_type for c in self.source.columns}
        self.source_keys = self._temporary_table(
            f"_source_keys_{self.source.entry.name}", [(k, types[k]) for k in self.source.entry.key_columns]
        )
        self._keys_copy_sql = self._copy_statement(self.source_keys)

    def write_source_keys(self, copy_text: bytes) -> None:
        if copy_text:
            self._cursor.copy_expert(self._keys_copy_sql, io.BytesIO(copy_text), size=COPY_CHUNK_BYTES)

    def delete_missing(self, sample: int) -> tuple[int, list[tuple]]:
        """Delete the lv0 rows whose key the source no longer holds; returns (rows deleted, the
        keys of up to ``sample`` of them)."""
        preparer = self.conn.dialect.identifier_preparer
        self.conn.exec_driver_sql(f"ANALYZE {preparer.format_table(self.source_keys)}")
        target, keys = self.target, self.source.entry.key_columns
        present = sa.exists().where(*(self.source_keys.c[k] == target.c[k] for k in keys))
        gone = sa.delete(target).where(~present).returning(*(target.c[k] for k in keys)).cte("gone")
        # A data-modifying WITH runs to completion whatever the outer query reads.
        rows = self.conn.execute(
            sa.select(sa.func.count().over(), *gone.c).order_by(*gone.c).limit(sample)
        ).all()
        return (rows[0][0] if rows else 0), [tuple(r[1:]) for r in rows]

    # -- commit ----------------------------------------------------------------------------

    def finish(self) -> int:
        """Commit the load (a snapshot is swapped in first); returns how many lv0 rows were
        inserted or changed."""
        changed = self.rows_changed if self.incremental else self._swap()
        self.conn.commit()
        return changed

    def _swap(self) -> int:
        name = self.source.entry.name
        old = sa.Table(name, sa.MetaData(), schema=LV0_SCHEMA)
        preparer = self.conn.dialect.identifier_preparer
        self.conn.execute(sa.schema.DropTable(old, if_exists=True))
        self.conn.exec_driver_sql(
            f"ALTER TABLE {preparer.format_table(self.incoming)} RENAME TO {preparer.quote(name)}"
        )
        self.conn.exec_driver_sql(
            f"ALTER INDEX {preparer.quote_schema(LV0_SCHEMA)}.{preparer.quote(name + '__incoming_pkey')} "
            f"RENAME TO {preparer.quote(name + '_pkey')}"
        )
        return self.conn.execute(sa.select(sa.func.count()).select_from(self.target)).scalar_one()


def ensure_schema(engine: sa.Engine, schema: str) -> None:
    """Create ``schema`` if missing. Concurrent first loads would collide on CREATE SCHEMA IF NOT
    EXISTS (it is not safe against itself), so creators take turns under an advisory lock, in a
    short transaction of their own."""
    with engine.begin() as conn:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("create schema"))))
        conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
