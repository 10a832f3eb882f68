"""Atomic writes into lv0: a load is one PostgreSQL transaction, or nothing.

- incremental: each page is COPYed into a temporary staging table and at once upserted into
  ``lv0.<table>`` by key, in the same transaction, so the database merges page n while the reader
  fetches page n + 1. A row whose values did not change is not touched, so re-running a
  partition, or overlapping windows, change nothing. Into an lv0 table that was empty when the
  load began (a first load, a full-history load) there is nothing to merge with: pages are COPYed
  straight into it, their lineage fields appended in Python (``lineage_text``), which writes each
  row once instead of twice. A page that holds a key already written (a row read twice because
  its cursor moved during the read), or a cursor ``lineage_text`` cannot place, goes the general
  way, and so does every page after it. Then the delete pass: the source's keys
  (``write_source_keys``) go to a second temporary table and lv0 rows whose key is not among
  them are deleted (``delete_missing``), in the same transaction (``engine`` says why that order
  never deletes a row the source holds).
- snapshot: pages are COPYed into a temporary staging table (keyed, so a key the source returns
  twice is refused), which is then merged into ``lv0.<table>`` in place (``reload_in_place``): rows
  gone from the source deleted, changed rows updated, new rows inserted, unchanged rows untouched.
  The table itself stays, with its grants, the views built on it, its comments and indexes.

Until the commit, readers see the previous rows; if the process dies, PostgreSQL rolls the
transaction back, temporary tables included, and a re-run starts clean. Every load waits at most
``lock_timeout_seconds`` for a lock on its table (``table_locks``), and a change of the source's
columns is followed or refused by one policy for both modes (``schema_drift``). The COPY itself,
and the load's locks, are ``storage.copy_writer``'s, which the Data Hub IO manager writes through
too.
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg2.errors
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

from bodyfriend_assets.extraction.lineage_text import LineageText
from bodyfriend_assets.extraction.row_partition import FloatingRows, RowPartition
from bodyfriend_assets.extraction.schema_drift import GONE, plan_drift
from bodyfriend_assets.extraction.source import SourceTable
from bodyfriend_assets.reload_in_place import merge_staged
from bodyfriend_assets.storage.copy_writer import CopyWriter, lock_for_load, refused_column
from bodyfriend_assets.table_locks import DEFAULT_LOCK_TIMEOUT_SECONDS

LV0_SCHEMA = "lv0"
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


class Lv0Load:
    """One transaction's load of pages into lv0; use ``write_page`` then ``commit``."""

    def __init__(self, conn: Connection, source: SourceTable, lineage: Lineage,
                 floating: FloatingRows | None = None,
                 lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS):
        self.conn = conn
        self.source = source
        self.lineage = lineage
        self.floating = floating
        self.partition_rule = RowPartition(floating)
        self.lock_timeout_seconds = lock_timeout_seconds
        self.target = lv0_table(source)
        self.incremental = source.entry.mode == "incremental"
        self.rows_changed = 0  # incremental: lv0 rows inserted or updated so far
        self.direct_pages = 0  # incremental: pages COPYed straight into lv0 (it was empty)
        self.schema_changes: list[str] = []  # how lv0 followed the source's columns (schema_drift)
        self.cleared_columns: list[str] = []  # lv0 columns the source lost: NULL in written rows
        self._prepare()

    # -- setup -----------------------------------------------------------------------------

    def _prepare(self) -> None:
        ensure_schema(self.conn.engine, LV0_SCHEMA)
        # Loads of one table queue behind each other (two runs of overlapping partitions would
        # otherwise race to create the table or deadlock in the upsert); other tables go on.
        # Only then a bounded wait: any other lock on the table is someone else's.
        lock_for_load(self.conn, f"{LV0_SCHEMA}.{self.source.entry.name}", self.lock_timeout_seconds)
        self.target.create(self.conn, checkfirst=True)
        self._check_target_columns()
        keys = self.source.entry.key_columns
        self.staging = sa.Table(
            f"_staging_{self.source.entry.name}",
            sa.MetaData(),
            *(sa.Column(c.name, c.lv0_type) for c in self.source.columns),
            # A snapshot's keys are unique in the source: a key read twice fails its COPY.
            *([] if self.incremental else [sa.PrimaryKeyConstraint(*keys)]),
            prefixes=["TEMPORARY"],
            postgresql_on_commit="DROP",
        )
        self.staging.create(self.conn)
        if self.incremental:
            # lv1's incremental models read lv0 by ``_partition``: a day's rows, not the table.
            partition_index = sa.Index(f"{self.target.name}__partition", self.target.c["_partition"])
            self.conn.execute(sa.schema.CreateIndex(partition_index, if_not_exists=True))
            self._prepare_merge()
        self._pages = CopyWriter(self.conn, self.staging)
        # The COPY straight into lv0 (None once given up, or never), and the lineage it appends.
        self._direct, self._lineage_text = (self._direct_writer() if self.incremental else None) or (None, None)

    def _direct_writer(self) -> tuple[CopyWriter, LineageText] | None:
        """The COPY straight into lv0 and the lineage it appends, if lv0 holds no row yet and the
        cursor is a naive timestamp or a date (``lineage_text`` places those); else None."""
        names = [c.name for c in self.source.columns]
        cursor = self.source.entry.cursor_column
        cursor_type = self.source.columns[names.index(cursor)].lv0_type
        if isinstance(cursor_type, sa.DateTime) and cursor_type.timezone:
            return None
        if not isinstance(cursor_type, (sa.DateTime, sa.Date)):
            return None
        if self.conn.execute(sa.select(sa.exists().select_from(self.target))).scalar_one():
            return None
        lineage = LineageText(
            self.lineage.loaded_at, self.lineage.run_id, names.index(cursor), len(names), self.partition_rule,
        )
        columns = [*names, "_loaded_at", "_run_id", "_partition"]
        return CopyWriter(self.conn, self.target, columns), lineage

    def _temporary_table(self, name: str, columns: list[tuple[str, sa.types.TypeEngine]]) -> sa.Table:
        """A temporary table of this load's transaction (dropped at its end, or with it)."""
        table = sa.Table(
            name, sa.MetaData(), *(sa.Column(n, t) for n, t in columns),
            prefixes=["TEMPORARY"], postgresql_on_commit="DROP",
        )
        table.create(self.conn)
        return table

    def _check_target_columns(self) -> None:
        """Follow the source's column changes in lv0, or refuse them (``schema_drift``)."""
        dialect = postgresql.dialect()
        reflected = sa.inspect(self.conn).get_columns(self.target.name, schema=LV0_SCHEMA)
        existing = {c["name"]: c["type"].compile(dialect=dialect) for c in reflected}
        expected = {c.name: c.type.compile(dialect=dialect) for c in self.target.columns}
        reported = {c["name"] for c in reflected if (c.get("comment") or "").startswith(GONE)}
        plan = plan_drift(f"lv0.{self.target.name}", self.source.entry.qualified_name, existing, expected, reported)
        preparer = self.conn.dialect.identifier_preparer
        table = preparer.format_table(self.target)
        for name in plan.added:
            column = sa.schema.CreateColumn(sa.Column(name, self.target.c[name].type))
            self.conn.exec_driver_sql(f"ALTER TABLE {table} ADD COLUMN {column.compile(dialect=dialect)}")
        for name in plan.widened:
            self.conn.exec_driver_sql(
                f"ALTER TABLE {table} ALTER COLUMN {preparer.quote(name)} TYPE {expected[name]}"
            )
        for column in reflected:
            if column["name"] in plan.gone:
                kept = sa.Column(column["name"], column["type"], comment=column.get("comment"))
                self.target.append_column(kept)
                if column["name"] not in reported:
                    kept.comment = f"{GONE} {self.source.entry.qualified_name} since {self.lineage.partition}"
                    self.conn.execute(sa.schema.SetColumnComment(kept))
        self.cleared_columns = plan.gone
        self.schema_changes = [f"lv0.{self.target.name}.{change}" for change in plan.report]

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
            self.partition_rule.sql(cursor).label("_partition"),
        )
        # A row read twice within a page (its cursor moved forward during the read) keeps its
        # newest version. Across pages the later page holds the newer version and overwrites.
        newest = staged.ext(postgresql.distinct_on(*keys)).order_by(*keys, cursor.desc())
        self._merge_all = self._merge_statement(staged, data_columns, key_names)
        self._merge_newest = self._merge_statement(newest, data_columns, key_names)
        preparer = self.conn.dialect.identifier_preparer
        self._empty_staging = f"TRUNCATE {preparer.format_table(staging)}"

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
                set_={n: insert.excluded[n] for n in updated} | {n: sa.null() for n in self.cleared_columns},
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

    def with_lineage(self, copy_text: bytes) -> bytes | None:
        """``copy_text`` with its lineage fields appended, ready to be COPYed straight into lv0,
        or None if the load writes the general way. Pure work on the text: a reader thread can
        do it while this load writes the page before (``write_page`` takes the result)."""
        return None if self._direct is None or not copy_text else self._lineage_text.append(copy_text)

    def write_page(self, copy_text: bytes, lineage_appended: bool = False) -> None:
        """Write one page: ``copy_text`` as read, or, with ``lineage_appended``, the text
        ``with_lineage`` made of it (so a caller keeps one text per page, not both)."""
        if not copy_text:
            return
        if self._direct is not None:
            lines = copy_text if lineage_appended else self.with_lineage(copy_text)
            if self._write_direct(lines):
                return
        if lineage_appended:
            # The direct way was given up after the reader had appended the lineage fields.
            copy_text = self._lineage_text.strip(copy_text)
        try:
            self._pages.write(copy_text)
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

    def _write_direct(self, lines: bytes | None) -> bool:
        """COPY the page, its lineage fields appended (``lines``), straight into lv0 (it was
        empty when the load began); False, with nothing written and the direct way given up for
        the rest of the load, if the page must go the general way."""
        writer = self._direct
        if lines is None:
            self._direct = None
            return False
        savepoint = self.conn.begin_nested()
        try:
            writer.write(lines)
        except psycopg2.errors.UniqueViolation:
            savepoint.rollback()  # a key this load wrote already: the merge keeps the newest
            self._direct = None
            return False
        except psycopg2.Error as err:
            savepoint.rollback()
            raise self._refused(err) from None
        savepoint.commit()
        self.rows_changed += lines.count(b"\n")
        self.direct_pages += 1
        return True

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
        column = refused_column(err)
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
        self._keys = CopyWriter(self.conn, self.source_keys)

    def write_source_keys(self, copy_text: bytes) -> None:
        self._keys.write(copy_text)

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
        """Commit the load (a snapshot is merged in first); returns how many lv0 rows were
        inserted, changed or (snapshot) deleted."""
        changed = self.rows_changed if self.incremental else self._swap()
        self.conn.commit()
        return changed

    def _swap(self) -> int:
        """Make lv0 hold the staged snapshot, in place; returns the rows deleted, updated, inserted."""
        lineage = {
            "_loaded_at": sa.literal(self.lineage.loaded_at, sa.DateTime(timezone=True)),
            "_run_id": sa.literal(self.lineage.run_id),
            "_partition": sa.literal(self.lineage.partition),
        }
        changes = merge_staged(
            self.conn, self.target, self.staging, self.source.entry.key_columns,
            [c.name for c in self.source.columns], written=lineage, cleared=self.cleared_columns,
        )
        return changes.rows


def ensure_schema(engine: sa.Engine, schema: str) -> None:
    """Create ``schema`` if missing. Concurrent first loads would collide on CREATE SCHEMA IF NOT
    EXISTS (it is not safe against itself), so creators take turns under an advisory lock, in a
    short transaction of their own."""
    with engine.begin() as conn:
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("create schema"))))
        conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))

