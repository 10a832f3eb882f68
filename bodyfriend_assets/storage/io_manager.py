"""``DataHubIOManager``: Python assets read and write Data Hub tables, a bounded chunk at a time.

An asset computed in Python (lv1ex's address refinement, for one) names its upstream tables as
inputs and returns its rows; this IO manager does the storage, so the asset holds no connection
and no SQL::

    @dg.asset(key=["lv1ex", "address_master"], io_manager_key=DATAHUB_IO, partitions_def=daily_partitions,
              ins={"customers": datahub_in(["lv1", "v_customer"])},
              metadata={"dagster/column_schema": dg.TableSchema(columns=[...])})
    def address_master(customers: DataFrameChunks) -> DataFrameChunks:
        return map(refine, customers)   # an iterator, not a generator function: see below

Dagster loads an input with the upstream asset's IO manager; lv0, lv1 and lv2 write their tables
themselves, so an input read from them names this one (``datahub_in``: an ``AssetIn`` with
``input_manager_key``). An upstream written through this IO manager needs nothing more.

Reading (``load_input``): the upstream table (``<layer>.<name>`` from the asset key, or the
asset's ``table`` metadata) for the run's partition window, ``partition_expr`` (default
``_partition``) between the window's first and last partition key; the whole table when the
upstream is unpartitioned or reloaded whole (``mode`` ``snapshot`` or ``full``). It arrives as a
lazy iterator of DataFrames read through one server-side cursor (one consistent snapshot), each
holding at most ``chunk_rows`` rows and about ``chunk_bytes`` of memory (``PageSizer``, as the
extraction's pages are sized). Values are the database's own Python objects (``None`` for NULL,
``int``, ``Decimal``, ``str``, ``datetime``) in ``object`` columns, so nothing is rounded or
typed differently from one chunk to the next.

Writing (``handle_output``): a DataFrame or an iterable of them, COPYed (``copy_writer``) into the
asset's table in one transaction that first deletes the rows of the run's partition window (of
the whole table, unpartitioned), so a re-run replaces its window, rows outside it stay, and
readers see the old window or the new, never half of it. A value a column cannot hold, or a
column the table lacks, fails naming the table and the column (never the value) and leaves the
table as it was. A missing table is created from the asset's ``dagster/column_schema``, with
``_partition`` (partitioned assets), ``_loaded_at`` and ``_run_id``, which are filled in when the
frames lack them.

Upserting instead (``upsert_key`` metadata, a column): the rows are staged and merged on that
key (``INSERT ... ON CONFLICT DO UPDATE``), nothing is deleted, so several assets may write one
table (lv1ex's four sources of ``lv1.address_master``). A table it creates gets a unique index
on the key.

An asset function that ``yield``s is a stream of Dagster events, not an output: return an
iterator (``map``, ``itertools.chain``) or ``dg.Output(generator)``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

import dagster as dg
import pandas as pd
import psycopg2
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql.base import ischema_names
from sqlalchemy.engine import Connection, Engine

from bodyfriend_assets.extraction.copy_text import RowEncoder
from bodyfriend_assets.extraction.engine import peak_rss_mb
from bodyfriend_assets.extraction.lv0_writer import LINEAGE_COLUMNS, ensure_schema
from bodyfriend_assets.extraction.pages import PAGE_BYTES, PageSizer
from bodyfriend_assets.resources import DataHub
from bodyfriend_assets.storage.copy_writer import CopyWriter, lock_for_load, refused_column
from bodyfriend_assets.table_locks import naming_lock_holders
from bodyfriend_assets.table_metadata import PARTITION_COLUMN, size_metadata, table_metadata

DATAHUB_IO = "datahub_io"  # the resource key of the IO manager in the platform's definitions
WHOLE_TABLE_MODES = ("snapshot", "full")  # reloaded whole: ``_partition`` is the load's, not the rows'
GUESSED_VALUE_BYTES = 64  # a first chunk's guess per value, until one chunk has been measured
_TYPE_NAME = re.compile(r"([a-z][a-z ]*?)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?")


class DataFrameChunks(Iterator):
    """The annotation of a chunked input or output: an iterator of ``pd.DataFrame``
    (``Iterator[pd.DataFrame]`` itself is not a type Dagster accepts). Any iterator is one
    (``map``, ``itertools.chain``, a generator), as for ``collections.abc.Iterator``."""

    @classmethod
    def __subclasshook__(cls, candidate):
        return Iterator.__subclasshook__.__func__(Iterator, candidate)


class TableChunks(DataFrameChunks):
    """An input's chunks. Not a generator, so an asset may return its input as its output (Dagster
    takes a returned generator for a stream of events); ``close`` ends the read early."""

    def __init__(self, frames: Iterator[pd.DataFrame]):
        self._frames = frames

    def __next__(self) -> pd.DataFrame:
        return next(self._frames)

    def close(self) -> None:
        self._frames.close()


def datahub_in(key: Sequence[str] | dg.AssetKey) -> dg.AssetIn:
    """An input read from the Data Hub table of asset ``key`` through this IO manager."""
    return dg.AssetIn(key=dg.AssetKey(key) if not isinstance(key, dg.AssetKey) else key, input_manager_key=DATAHUB_IO)


class HubWriteError(RuntimeError):
    """An output was refused; the table was left as it was. Names the table and the column."""


@dataclass(frozen=True)
class HubTable:
    """Where an asset's rows live, and how its partitions are selected (None: the whole table)."""

    schema: str
    name: str
    partition_column: str | None

    @property
    def qualified_name(self) -> str:
        return f"{self.schema}.{self.name}"


def hub_table(key: dg.AssetKey, metadata: Mapping, partitioned: bool) -> HubTable:
    """The table of asset ``key``: its ``table`` metadata (``schema.table``), else its key
    (``lv0/x`` -> ``lv0.x``); windowed by ``partition_expr`` (default ``_partition``) when the asset
    is partitioned and not reloaded whole."""
    value = lambda name: getattr(metadata.get(name), "value", metadata.get(name))  # noqa: E731
    named = value("table")
    parts = tuple(named.split(".")) if isinstance(named, str) else tuple(key.path)
    if len(parts) != 2:
        raise ValueError(
            f"{key.to_user_string()}: no Data Hub table: give the asset a two-part key "
            "(layer/table) or `table` metadata `schema.table`"
        )
    windowed = partitioned and value("mode") not in WHOLE_TABLE_MODES
    return HubTable(*parts, (value("partition_expr") or PARTITION_COLUMN) if windowed else None)


def partition_window(context: dg.InputContext | dg.OutputContext) -> tuple[str, str]:
    """The first and last partition key of the context's asset partitions (daily keys sort)."""
    keys = context.asset_partition_key_range
    return keys.start, keys.end


class DataHubIOManager(dg.ConfigurableIOManager):
    """Python assets' tables in the Data Hub: inputs read as lazy chunks of DataFrames, outputs
    COPYed in atomically per partition window (see the module docstring).

    ``chunk_bytes`` / ``chunk_rows``: the most memory and rows a chunk holds."""

    datahub: DataHub
    chunk_bytes: int = PAGE_BYTES
    chunk_rows: int = 100_000

    def load_input(self, context: dg.InputContext) -> Iterator[pd.DataFrame]:
        upstream = context.upstream_output
        table = hub_table(context.asset_key, upstream.definition_metadata if upstream else {},
                          context.has_asset_partitions)
        window = partition_window(context) if table.partition_column else None
        return TableChunks(read_frames(self.datahub.engine(), table, window, self.chunk_rows, self.chunk_bytes))

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame | Iterable[pd.DataFrame]) -> None:
        table = hub_table(context.asset_key, context.definition_metadata, context.has_asset_partitions)
        window = partition_window(context) if table.partition_column else None
        frames = [obj] if isinstance(obj, pd.DataFrame) else obj
        if frames is None or not isinstance(frames, Iterable):
            raise HubWriteError(
                f"{table.qualified_name}: the asset returned {type(obj).__name__}, not DataFrames"
            )
        writer = FrameWriter(
            self.datahub.engine(), table, window, context.run_id,
            lock_timeout_seconds=self.datahub.lock_timeout_seconds,
            declared=context.definition_metadata.get("dagster/column_schema"),
            upsert_key=_metadata_text(context.definition_metadata, "upsert_key"),
        )
        context.add_output_metadata(writer.write(frames))


def read_frames(
    engine: Engine, table: HubTable, window: tuple[str, str] | None, max_rows: int, max_bytes: int
) -> Iterator[pd.DataFrame]:
    """``table``'s rows in ``window`` (None: all), lazily, in DataFrames of bounded size."""
    with engine.connect() as conn:
        try:
            relation = sa.Table(table.name, sa.MetaData(), schema=table.schema, autoload_with=conn)
        except sa.exc.NoSuchTableError:
            raise LookupError(f"{table.qualified_name} is not in the Data Hub: materialize it first") from None
        query = sa.select(relation)
        if window is not None:
            if table.partition_column not in relation.c:
                raise LookupError(f"{table.qualified_name} has no column {table.partition_column} to select partitions by")
            query = query.where(relation.c[table.partition_column].between(*window))
        names = [c.name for c in relation.columns]
        sizer = PageSizer(max_rows, max_bytes, GUESSED_VALUE_BYTES * len(names))
        result = conn.execution_options(stream_results=True).execute(query)
        while rows := result.fetchmany(sizer.rows()):
            frame = pd.DataFrame([tuple(row) for row in rows], columns=names, dtype=object)
            del rows
            sizer.observe(len(frame), int(frame.memory_usage(deep=True, index=False).sum()))
            yield frame
            del frame


class FrameWriter:
    """One output's write: ``write(frames)`` replaces ``window``'s rows of ``table`` in one
    transaction and returns the materialization's metadata."""

    def __init__(self, engine: Engine, table: HubTable, window: tuple[str, str] | None, run_id: str, *,
                 lock_timeout_seconds: float, declared: dg.TableSchema | None = None,
                 upsert_key: str | None = None):
        self.engine, self.table, self.window, self.run_id = engine, table, window, run_id
        self.upsert_key = upsert_key
        self.lock_timeout_seconds = lock_timeout_seconds
        self.declared = getattr(declared, "value", declared)
        self.lineage = {"_loaded_at": datetime.now(timezone.utc), "_run_id": run_id}
        if window is not None and window[0] == window[1]:
            self.lineage[table.partition_column] = window[0]

    def write(self, frames: Iterable[pd.DataFrame]) -> dict[str, object]:
        began = time.monotonic()
        rows = pages = nbytes = 0
        name = self.table.qualified_name
        ensure_schema(self.engine, self.table.schema)
        with self.engine.connect() as conn, naming_lock_holders(conn, name, self.lock_timeout_seconds):
            lock_for_load(conn, name, self.lock_timeout_seconds)
            target = self._target(conn)
            if self.upsert_key:
                merged, target = target, self._staging(conn, target)
                replaced = 0
            else:
                replaced = conn.execute(self._window_rows(sa.delete(target), target)).rowcount
            for frame in frames:
                text = self._copy_text(conn, target, frame)
                try:
                    self._copy.write(text)
                except psycopg2.Error as err:
                    column = refused_column(err)
                    at = f"column {column}" if column else f"({type(err).__name__})"
                    raise HubWriteError(
                        f"{name}: {at} cannot hold a value of the output ({type(err).__name__}); "
                        f"{name} was left as it was"
                    ) from None
                rows, pages, nbytes = rows + len(frame), pages + 1, nbytes + len(text)
                del frame, text
            if self.upsert_key and self._columns:
                replaced = self._merge(conn, merged, target)
            described = table_metadata(conn, self.table.schema, self.table.name, self.window)
            conn.commit()
        seconds = time.monotonic() - began
        return {
            "rows_written": rows,
            "rows_replaced": replaced,
            "pages": pages,
            **size_metadata("copy_text", nbytes),
            "seconds": round(seconds, 3),
            "rows_per_second": round(rows / seconds if seconds > 0 else 0.0, 1),
            "peak_rss_mb": round(peak_rss_mb(), 1),
            **({"partitions": f"{self.window[0]}...{self.window[1]}"} if self.window else {}),
            **described,
        }

    def _staging(self, conn: Connection, target: sa.Table) -> sa.Table:
        """A temporary table shaped like ``target``, dropped at commit, for the rows to upsert."""
        if self.upsert_key not in target.c:
            raise HubWriteError(f"{self.table.qualified_name} has no column {self.upsert_key} to upsert by")
        staging = sa.Table(f"{self.table.name}__upsert", sa.MetaData(),
                           *(sa.Column(c.name, c.type) for c in target.columns),
                           prefixes=["TEMPORARY"], postgresql_on_commit="DROP")
        staging.create(conn)
        return staging

    def _merge(self, conn: Connection, target: sa.Table, staging: sa.Table) -> int:
        """Upsert the staged rows into ``target`` on ``upsert_key``: the count of rows that
        replaced an existing one. A key staged twice keeps one of its rows."""
        columns = self._columns
        key = staging.c[self.upsert_key]
        rows = sa.select(*(staging.c[c] for c in columns)).ext(postgresql.distinct_on(key)).order_by(key)
        existing = conn.execute(sa.select(sa.func.count()).select_from(
            staging.join(target, target.c[self.upsert_key] == key))).scalar_one()
        insert = postgresql.insert(target).from_select(columns, rows)
        update = {c: insert.excluded[c] for c in columns if c != self.upsert_key}
        try:
            conn.execute(insert.on_conflict_do_update(index_elements=[self.upsert_key], set_=update))
        except sa.exc.ProgrammingError:
            raise HubWriteError(
                f"{self.table.qualified_name}: cannot upsert on {self.upsert_key} (no unique index on it?); "
                f"{self.table.qualified_name} was left as it was"
            ) from None
        return existing

    def _window_rows(self, statement, target: sa.Table):
        if self.window is None:
            return statement
        return statement.where(target.c[self.table.partition_column].between(*self.window))

    def _target(self, conn: Connection) -> sa.Table:
        """The table, reflected, or created from the asset's declared columns."""
        metadata = sa.MetaData()
        try:
            target = sa.Table(self.table.name, metadata, schema=self.table.schema, autoload_with=conn)
        except sa.exc.NoSuchTableError:
            target = self._create(conn, metadata)
        if self.table.partition_column and self.table.partition_column not in target.c:
            raise HubWriteError(
                f"{self.table.qualified_name}: no column {self.table.partition_column} to replace "
                f"partitions by; {self.table.qualified_name} was left as it was"
            )
        self._columns: list[str] = []  # the COPY's columns, in the order of the frames' fields
        return target

    def _create(self, conn: Connection, metadata: sa.MetaData) -> sa.Table:
        name = self.table.qualified_name
        if not isinstance(self.declared, dg.TableSchema):
            raise HubWriteError(
                f"{name} does not exist: declare its columns in the asset's `dagster/column_schema` "
                "metadata (a dg.TableSchema) for the IO manager to create it"
            )
        columns = [
            sa.Column(c.name, _column_type(name, c.name, c.type), nullable=c.constraints.nullable)
            for c in self.declared.columns
        ]
        own = {c.name for c in columns}
        lineage = [c._copy() for c in LINEAGE_COLUMNS if c.name not in own]
        if self.table.partition_column is None:
            lineage = [c for c in lineage if c.name != PARTITION_COLUMN]
        target = sa.Table(self.table.name, metadata, *columns, *lineage, schema=self.table.schema)
        target.create(conn)
        if self.table.partition_column:
            column = target.c[self.table.partition_column]
            conn.execute(sa.schema.CreateIndex(sa.Index(f"{self.table.name}__partition", column)))
        if self.upsert_key and self.upsert_key in target.c:
            key = target.c[self.upsert_key]
            conn.execute(sa.schema.CreateIndex(sa.Index(f"{self.table.name}__{self.upsert_key}", key, unique=True)))
        return target

    def _copy_text(self, conn: Connection, target: sa.Table, frame: pd.DataFrame) -> bytes:
        """``frame`` as COPY text for ``target``'s columns, lineage filled in where missing."""
        name = self.table.qualified_name
        if not isinstance(frame, pd.DataFrame):
            raise HubWriteError(f"{name}: the asset's output holds a {type(frame).__name__}, not a DataFrame")
        unknown = [c for c in frame.columns if c not in target.c]
        if unknown:
            raise HubWriteError(f"{name} has no column {', '.join(map(str, unknown))}; {name} was left as it was")
        filled = {c: v for c, v in self.lineage.items() if c in target.c and c not in frame.columns}
        missing = [c.name for c in target.columns if c.name not in frame.columns and c.name not in filled]
        if missing:
            raise HubWriteError(f"{name}: the output lacks column {', '.join(missing)}; {name} was left as it was")
        columns = [*map(str, frame.columns), *filled]
        if columns != self._columns:
            self._columns, self._types = columns, [target.c[c].type for c in columns]
            self._encoder = RowEncoder(self._types)
            self._copy = CopyWriter(conn, target, columns)
        # Python objects, NULL as None: numpy scalars and NaN/NaT are pandas', not COPY's.
        values = frame.astype(object).where(frame.notna(), None)
        self._refuse_outside_window(values)
        rows = values.itertuples(index=False, name=None)
        if filled:
            tail = tuple(filled.values())
            rows = (row + tail for row in rows)
        rows = list(rows)
        try:
            return self._encoder.encode_page(rows)
        except (TypeError, ValueError):
            raise HubWriteError(
                f"{name}: column {self._unencodable_column(rows)} cannot hold a value of the output "
                f"(not a value of its type); {name} was left as it was"
            ) from None

    def _refuse_outside_window(self, values: pd.DataFrame) -> None:
        column = self.table.partition_column
        if self.window is None or column not in values.columns:
            return
        keys = values[column]
        outside = int((keys.isna() | (keys < self.window[0]) | (keys > self.window[1])).sum())
        if outside:
            raise HubWriteError(
                f"{self.table.qualified_name}: {outside:,} output row(s) have column {column} outside "
                f"the run's partitions {self.window[0]}...{self.window[1]}; "
                f"{self.table.qualified_name} was left as it was"
            )

    def _unencodable_column(self, rows: list[tuple]) -> str:
        for position, (column, kind) in enumerate(zip(self._columns, self._types)):
            try:
                RowEncoder([kind]).encode_rows([(row[position],) for row in rows])
            except (TypeError, ValueError):
                return column
        return "?"


def _metadata_text(metadata: Mapping, name: str) -> str | None:
    value = metadata.get(name)
    return getattr(value, "value", value) or None


def _column_type(table: str, column: str, type_name: str) -> sa.types.TypeEngine:
    """A PostgreSQL type named in a ``dg.TableSchema`` (``text``, ``numeric(12,2)``, ...)."""
    found = _TYPE_NAME.fullmatch(type_name.strip().lower())
    kind = ischema_names.get(found.group(1)) if found else None
    if kind is None:
        raise HubWriteError(f"{table}: column {column} declares an unknown type {type_name!r}")
    arguments = [int(a) for a in found.groups()[1:] if a is not None]
    return kind(*arguments)
