"""Asset checks on lv0, partition by partition. Both block downstream assets when they fail.

- ``row_count_matches_source``: lv0 holds every key the source holds for the partitions, read as
  the load reads them (``SourceTable.load_reads`` without the look-back; the whole table for
  snapshots): cursor in ``[D 00:00, D+1 00:00)`` KST, open below for the first partition (it
  holds every older row), and, whatever the partitions, the rows in no partition that every load
  reads (a NULL cursor, or one at or after the start of the day after the load began). The ERP
  is written while the platform reads it, so the check compares keys, not counts, and tells a
  lost row from one that changed under the load:

  - the source's keys and cursors are streamed by keyset passes reading those columns alone (the
    extraction's own page readers) into a temporary table in the Data Hub, one page at a time,
    and compared there with lv0 both ways: memory stays one page, whatever the table size;
  - a key in the source window that lv0 lacks (or holds in an older version), stamped before the
    load began, was committed late (after the reader passed its place) or lost. Up to
    ``REREAD_LIMIT`` of them are read again by key and upserted into lv0: a late row is then
    loaded, and reported (``rows_loaded_late``). More than that is a loss, and fails, naming
    some keys (keys only, never a row's values);
  - a key stamped at or after the load's start (and before the floating rows' start) changed or
    arrived while the load ran (a NULL or future stamp says nothing of when: such a row counts
    as there before the load), and a
    key in lv0's window that the source window no longer holds was moved out of the window or
    deleted since: both are reported, not failed; the next run loads them;
  - a snapshot has no stamps: keys it lacks are rows inserted while the table was read, reported
    (the next night's snapshot holds them), unless there are more than ``REREAD_LIMIT``;
  - a source row with a NULL key can never be loaded by key: it fails, with the count.

- ``keys_unique_and_not_null``: the catalog keys identify lv0's rows of the window.

They are evaluated in the lv0 step, right after the table's load (or alone, when only the
checks are selected). The figures are named for what they count: ``source_rows_in_partitions``
and ``lv0_rows_in_partitions`` are the partitions' own rows (the whole range in a range run,
each day in ``rows_per_partition``, the rows in no partition as ``floating``); the materialization's ``rows_read`` counts its read window,
look-back included.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from bodyfriend_assets.catalog import LegacyTable
from bodyfriend_assets.extraction.copy_text import RowEncoder
from bodyfriend_assets.extraction.engine import choose_reader
from bodyfriend_assets.extraction.lv0_writer import (
    LV0_SCHEMA, FloatingRows, Lineage, Lv0Load, Lv0WriteError,
)
from bodyfriend_assets.extraction.pages import PAGE_BYTES, PageSizer, read_pages
from bodyfriend_assets.extraction.row_partition import RowPartition
from bodyfriend_assets.extraction.source import KeysetRead, SourceTable, SourceTableError
from bodyfriend_assets.lv0.cadence import load_partitions, off_day_reason
from bodyfriend_assets.lv0.keys import lv0_key
from bodyfriend_assets.partitions import (
    FIRST_PARTITION_START, KST, NOT_LOADED, daily_partitions, last_partition_of, naive_kst, naive_window,
    start_of_tomorrow,
)
from bodyfriend_assets.storage.copy_writer import CopyWriter

# Partitioned asset checks are labelled preview; they are what lets a check look at one day.

ROW_COUNT = "row_count_matches_source"
KEYS = "keys_unique_and_not_null"
# Keys found missing that the check reads again (a few late commits); more is a loss.
REREAD_LIMIT = 1000
# A key-only page: the byte bound (PAGE_BYTES) keeps it small whatever this says.
KEY_PAGE_ROWS = 200_000
EXAMPLES = 5
REREAD_BATCH = 200  # keys per re-read query


def lv0_check_specs(entry: LegacyTable) -> list[dg.AssetCheckSpec]:
    key = lv0_key(entry)
    return [
        dg.AssetCheckSpec(
            ROW_COUNT,
            asset=key,
            blocking=True,
            partitions_def=daily_partitions,
            description=(
                f"`lv0.{entry.name}` holds every key `{entry.qualified_name}` held for the partition "
                "before the load began (rows written during the load are reported, not failed)."
            ),
        ),
        dg.AssetCheckSpec(
            KEYS,
            asset=key,
            blocking=True,
            partitions_def=daily_partitions,
            description=f"{', '.join(f'`{k}`' for k in entry.keys)} identify the rows of `lv0.{entry.name}`.",
        ),
    ]


def evaluate_lv0_check(
    entry: LegacyTable,
    name: str,
    legacy: Engine,
    datahub: Engine,
    time_window,
    *,
    load_started: datetime | None = None,
    lineage: Lineage | None = None,
    reread_limit: int | None = None,
) -> dg.AssetCheckResult:
    """The result of check ``name`` on ``lv0.<entry>`` for the partitions of ``time_window``.

    ``load_started``: when the load this check follows began (naive KST, the materialization's
    ``load_started_kst``); without it the check's own start stands in, so every change up to now
    counts as before the load. ``lineage``: what rows the check re-reads are stamped with (the
    load's); ``reread_limit``: how many missing keys the check reads again before failing
    (default ``REREAD_LIMIT``). Partitions the table is not loaded for (``cadence``) pass with
    "not a load day", comparing nothing.
    """
    if not load_partitions(entry, daily_partitions.get_partition_keys_in_time_window(time_window)):
        return dg.AssetCheckResult(
            asset_key=lv0_key(entry), check_name=name, passed=True, metadata={NOT_LOADED: off_day_reason(entry)}
        )
    if name == ROW_COUNT:
        try:
            passed, metadata = _keys_match_source(
                entry, legacy, datahub, time_window,
                load_started=load_started or naive_kst(datetime.now(timezone.utc)),
                lineage=lineage, reread_limit=REREAD_LIMIT if reread_limit is None else reread_limit,
            )
        except (Lv0WriteError, SourceTableError) as err:  # keys not unique at the source, columns changed
            passed, metadata = False, {"error": str(err)}
    elif name == KEYS:
        passed, metadata = _keys(entry, datahub, time_window)
    else:
        raise ValueError(f"lv0.{entry.name} has no check {name!r}")
    return dg.AssetCheckResult(asset_key=lv0_key(entry), check_name=name, passed=passed, metadata=metadata)


def _lv0_window(entry: LegacyTable, time_window, floating_from: datetime) -> tuple[sa.TableClause, list]:
    """lv0's rows of the partitions of ``time_window``, as the load puts them there: cursor in
    the window (open below at the first partition), or in no partition (NULL, or at or after
    ``floating_from``)."""
    columns = [sa.column(c) for c in entry.key_columns]
    if entry.cursor_column:
        columns.append(sa.column(entry.cursor_column))
    table = sa.table(entry.name, *columns, schema=LV0_SCHEMA)
    if entry.mode != "incremental":
        return table, []
    start, end = naive_window(time_window)
    cursor = table.c[entry.cursor_column]
    in_window = cursor < end if start <= FIRST_PARTITION_START else sa.and_(cursor >= start, cursor < end)
    return table, [sa.or_(in_window, _floating(cursor, floating_from, end))]


def _floating(cursor, floating_from: datetime, end: datetime):
    """Rows in no partition, which every load reads (``SourceTable.load_reads``)."""
    return sa.or_(cursor.is_(None), cursor >= max(floating_from, end))


def _source_reads(source: SourceTable, time_window, floating_from: datetime) -> list[KeysetRead]:
    """The keyset passes over the source rows of the partitions (keys and cursor only): the
    load's own passes, without the look-back."""
    entry = source.entry
    if entry.mode != "incremental":
        return [source.read(None).only(*entry.key_columns)]
    start, end = naive_window(time_window)
    reads = source.load_reads(None if start <= FIRST_PARTITION_START else start, end, floating_from)
    return [read.only(*entry.key_columns, entry.cursor_column) for read in reads]


# -- row_count_matches_source: keys, both ways ----------------------------------------------------


@dataclass
class _Found:
    """A set of keys the comparison found: how many, and a few of them (keys only)."""

    count: int
    examples: list[tuple]

    def shown(self) -> str:
        return ", ".join(str(tuple(k)) for k in self.examples) or "none"


def _keys_match_source(
    entry: LegacyTable, legacy: Engine, datahub: Engine, time_window, *,
    load_started: datetime, lineage: Lineage | None, reread_limit: int,
) -> tuple[bool, dict]:
    incremental = entry.mode == "incremental"
    # The rows the load read as in no partition: stamped from the day after the load began.
    floating_from = start_of_tomorrow(load_started.replace(tzinfo=KST))
    metadata: dict = {"load_started_kst": load_started.isoformat(sep=" ", timespec="seconds")}
    with legacy.connect() as conn:
        source = SourceTable.reflect(conn, entry)
    lv0, conditions = _lv0_window(entry, time_window, floating_from)
    with datahub.connect() as hub:
        if not sa.inspect(hub).has_table(entry.name, schema=LV0_SCHEMA):
            return False, {**metadata, "error": f"lv0.{entry.name} does not exist"}
        scanned = _stream_source_keys(source, _source_reads(source, time_window, floating_from), legacy, hub)
        comparison = _Comparison(entry, hub, scanned, lv0, conditions, load_started, floating_from)
        late = comparison.late()
        too_many = late.count > reread_limit
        if incremental and late.count and not too_many:
            keys = comparison.late_keys()
            floating = FloatingRows(floating_from, last_partition_of(naive_window(time_window)[1]))
            _reread(source, legacy, datahub, keys, lineage or _check_lineage(time_window), floating)
            vanished = comparison.late()  # not found again: deleted or moved out since the scan
            metadata |= {
                "rows_loaded_late": late.count - vanished.count,
                "rows_loaded_late_keys": ", ".join(str(k) for k in keys[:EXAMPLES]),
                "rows_gone_before_reread": vanished.count,
            }
        elif incremental:
            metadata |= {"rows_loaded_late": 0}
        else:
            metadata |= {
                "rows_added_during_load": 0 if too_many else late.count,
                "rows_added_during_load_keys": "none" if too_many else late.shown(),
            }
        if too_many:
            metadata |= {"missing_rows": late.count, "missing_keys": late.shown()}
        if incremental:
            during = comparison.changed_during_load()
            metadata |= {
                "rows_changed_during_load": during.count,
                "rows_changed_during_load_keys": during.shown(),
            }
        gone = comparison.gone_from_source()
        null_keys = comparison.null_keys()
        counts = comparison.per_partition()
    metadata |= {
        "lv0_rows_gone_from_source": gone.count,
        "lv0_rows_gone_from_source_keys": gone.shown(),
        "source_rows_with_null_key": null_keys,
    }
    scope = "partitions" if incremental else "table"
    metadata |= {
        f"source_rows_in_{scope}": sum(s for s, _ in counts.values()),
        f"lv0_rows_in_{scope}": sum(v for _, v in counts.values()),
    }
    if incremental:
        metadata["rows_per_partition"] = dg.MetadataValue.json(
            {day: {"source": s, "lv0": v} for day, (s, v) in sorted(counts.items())}
        )
    return null_keys == 0 and not too_many, metadata


def _stream_source_keys(source: SourceTable, reads: list[KeysetRead], legacy: Engine, hub: Connection) -> sa.Table:
    """The keys and cursors ``reads`` select, page by page into a temporary table of ``hub``'s
    transaction (dropped when it ends)."""
    names = reads[0].column_names  # every read has the same columns (``_source_reads``)
    types = {c.name: c.lv0_type for c in source.columns}
    table = sa.Table(
        f"_source_keys_{source.entry.name}",
        sa.MetaData(),
        *(sa.Column(name, types[name]) for name in names),
        prefixes=["TEMPORARY"],
        postgresql_on_commit="DROP",
    )
    table.create(hub)
    row_bytes = sum(c.width + 1 for c in source.columns if c.name in names)
    pages = read_pages(
        reads, legacy, PageSizer(KEY_PAGE_ROWS, PAGE_BYTES, row_bytes),
        RowEncoder([types[name] for name in names]), choose_reader(legacy, "auto"),
    )
    keys = CopyWriter(hub, table)
    for page in pages:
        keys.write(page.copy_text)
    hub.exec_driver_sql(f"ANALYZE {hub.dialect.identifier_preparer.format_table(table)}")
    return table


class _Comparison:
    """The source window's keys (``scanned``) against lv0, in SQL: only counts and a few keys
    come back."""

    def __init__(self, entry: LegacyTable, hub: Connection, scanned: sa.Table, lv0: sa.TableClause,
                 conditions: list, load_started: datetime, floating_from: datetime):
        self.entry, self.hub, self.scanned, self.conditions = entry, hub, scanned, conditions
        self.load_started, self.floating_from = load_started, floating_from
        self.lv0 = lv0
        self.found = lv0.alias("found")
        keys = entry.key_columns
        self.has_key = sa.and_(*(scanned.c[k].is_not(None) for k in keys))
        self.joined = scanned.outerjoin(self.found, sa.and_(*(scanned.c[k] == self.found.c[k] for k in keys)))
        missing = self.found.c[keys[0]].is_(None)
        cursor = entry.cursor_column
        if cursor is None:
            self.out_of_date, self.before_load, self.during_load = missing, sa.true(), sa.false()
        else:
            self.out_of_date = sa.or_(missing, self.found.c[cursor].is_distinct_from(scanned.c[cursor]))
            stamped = scanned.c[cursor]
            # A NULL or future stamp says nothing of when the row changed: it counts as before.
            no_time = sa.or_(stamped.is_(None), stamped >= floating_from)
            self.before_load = sa.or_(stamped < load_started, no_time)
            self.during_load = sa.and_(stamped >= load_started, sa.not_(no_time))

    def _found(self, *conditions) -> _Found:
        keys = [self.scanned.c[k] for k in self.entry.key_columns]
        where = [self.has_key, self.out_of_date, *conditions]
        count = self.hub.execute(sa.select(sa.func.count()).select_from(self.joined).where(*where)).scalar_one()
        examples = self.hub.execute(
            sa.select(*keys).select_from(self.joined).where(*where).order_by(*keys).limit(EXAMPLES)
        ).all() if count else []
        return _Found(count, [tuple(row) for row in examples])

    def late(self) -> _Found:
        """Source keys stamped before the load that lv0 lacks or holds in another version."""
        return self._found(self.before_load)

    def late_keys(self) -> list[tuple]:
        keys = [self.scanned.c[k] for k in self.entry.key_columns]
        rows = self.hub.execute(
            sa.select(*keys).select_from(self.joined)
            .where(self.has_key, self.out_of_date, self.before_load).order_by(*keys)
        ).all()
        return [tuple(row) for row in rows]

    def changed_during_load(self) -> _Found:
        return self._found(self.during_load)

    def gone_from_source(self) -> _Found:
        """Keys of lv0's window that the source window no longer holds."""
        keys = [self.lv0.c[k] for k in self.entry.key_columns]
        absent = ~sa.exists().where(*(self.scanned.c[k] == self.lv0.c[k] for k in self.entry.key_columns))
        count = self.hub.execute(
            sa.select(sa.func.count()).select_from(self.lv0).where(*self.conditions, absent)
        ).scalar_one()
        examples = self.hub.execute(
            sa.select(*keys).where(*self.conditions, absent).order_by(*keys).limit(EXAMPLES)
        ).all() if count else []
        return _Found(count, [tuple(row) for row in examples])

    def null_keys(self) -> int:
        return self.hub.execute(
            sa.select(sa.func.count()).select_from(self.scanned).where(sa.not_(self.has_key))
        ).scalar_one()

    def per_partition(self) -> dict[str, tuple[int, int]]:
        """{day: (source rows, lv0 rows)} of the window (rows before the first partition in it,
        rows in no partition as ``floating``); one entry, ``table``, for snapshots."""
        cursor = self.entry.cursor_column
        if cursor is None:
            source = self.hub.execute(sa.select(sa.func.count()).select_from(self.scanned)).scalar_one()
            lv0 = self.hub.execute(sa.select(sa.func.count()).select_from(self.lv0)).scalar_one()
            return {"table": (source, lv0)}
        counts: dict[str, list[int]] = {}
        rule = RowPartition(FloatingRows(self.floating_from, "floating"))  # lv0's _partition rule
        for side, (table, conditions) in enumerate(((self.scanned, []), (self.lv0, self.conditions))):
            day = rule.sql(table.c[cursor])
            for partition, rows in self.hub.execute(
                sa.select(day, sa.func.count()).select_from(table).where(*conditions).group_by(day)
            ):
                counts.setdefault(partition, [0, 0])[side] = rows
        return {day: (s, v) for day, (s, v) in counts.items()}


def _reread(source: SourceTable, legacy: Engine, datahub: Engine, keys: list[tuple], lineage: Lineage,
            floating: FloatingRows) -> None:
    """Read the rows of ``keys`` again, by key, and upsert them into lv0 (one transaction)."""
    sizer = PageSizer(source.entry.page_size, PAGE_BYTES, source.estimated_row_bytes)
    encoder = RowEncoder([c.lv0_type for c in source.columns])
    reads = [
        source.read(source.with_keys(keys[first:first + REREAD_BATCH])) for first in range(0, len(keys), REREAD_BATCH)
    ]
    with datahub.connect() as conn:
        load = Lv0Load(conn, source, lineage, floating)
        for page in read_pages(reads, legacy, sizer, encoder, choose_reader(legacy, "auto")):
            load.write_page(page.copy_text)
        load.finish()


def _check_lineage(time_window) -> Lineage:
    """What rows re-read by a check run alone (without its load) are stamped with."""
    last_day = (naive_window(time_window)[1] - timedelta(days=1)).date().isoformat()
    return Lineage(loaded_at=datetime.now(timezone.utc), run_id=ROW_COUNT, partition=last_day)


# -- keys_unique_and_not_null -------------------------------------------------------------------


def _keys(entry: LegacyTable, datahub: Engine, time_window) -> tuple[bool, dict]:
    table, conditions = _lv0_window(entry, time_window, start_of_tomorrow())
    keys = [table.c[k] for k in entry.key_columns]
    with datahub.connect() as conn:
        null_keys = conn.execute(
            sa.select(sa.func.count()).select_from(table)
            .where(*conditions, sa.or_(*(k.is_(None) for k in keys)))
        ).scalar_one()
        duplicates = conn.execute(
            sa.select(*keys).where(*conditions).group_by(*keys)
            .having(sa.func.count() > 1).limit(5)
        ).fetchall()
    return null_keys == 0 and not duplicates, {
        "rows_with_null_key": null_keys,
        "duplicated_keys": ", ".join(str(tuple(r)) for r in duplicates) or "none",
    }
