"""``public.dag_log``: each old DAG's completion, mirrored from the assets' materializations.

The old DAGs upserted ``(dag_id, completion_date, completion_datetime)`` when they succeeded,
unique on ``(dag_id, completion_date)``, in Korean local time (UTC+9, naive). Here a DAG id stands
for some assets (:mod:`.dag_ids`) and completes on a Korean day when all of them were materialized
that day with their blocking checks passed (:mod:`.completions`):

- ``completion_date`` is that Korean date, and ``completion_datetime`` the Korean wall-clock time
  (naive) of the last of them;
- a later completion on the same day moves ``completion_datetime`` forward, never back, so rows
  can be written in any order, any number of times, and end up the same;
- a failed run, or a materialization that failed a blocking check, completes nothing.

The table keeps its unique key: a ``dag_log`` recreated without it gets it back (duplicate rows of
one day merged into the latest) before anything is written, or the tick fails naming what is
wrong with the table. A ``dag_log`` dropped, recreated (another table under its name) or emptied
after the sensor wrote rows into it is refilled from Dagster's history by the sensor itself (the
saved state names the table's oid and whether it held rows): its positions start over from the
beginning of the history, and the following ticks read it again, ``max_records_per_tick`` at a
time, writing every completion (the same reading as a fresh start).

The sensor ``dag_log_mirror`` (:func:`build_dag_log_sensor`) does this continuously;
:func:`backfill_dag_log` (``bodyfriend dag-log-backfill``) rebuilds the table from the instance's
whole history.

The sensor's positions
----------------------
Per asset key, a position ``(settled S, seen [ids...])``:

- every materialization of the key with storage id <= S is in dag_log, and no other can ever
  appear there (see below);
- ``seen`` lists the storage ids above S that are already in dag_log.

A tick reads, per key, every materialization after S (ascending, in pages), recomputes the
completions of the (DAG, Korean day) that the records not in ``seen`` belong to, writes them, and saves the new positions in the same Data Hub transaction as the rows it wrote, in
``public.dag_log_mirror_state`` under the digest of their content. The sensor's cursor is only
that digest (``dag_log_mirror_state:<digest>``), so the sensor page shows one short line rather
than a map of every asset; Dagster saves it after the tick returns, and a tick evaluated again
with the same cursor reads the same positions (and computes the same next digest). Storage ids come from one sequence but are committed by concurrent runs, so
a lower id can become visible after a higher one (two runs of one asset, different partitions).
A plain "last id" cursor would then skip it forever. Here S only moves past a record whose event
timestamp is older than ``settle_seconds`` (default 300) when the tick starts: by then every lower
id, whose insert began before that record's, has long been committed, and the tick's queries
(issued later) see it. Younger records are kept in ``seen`` and read again by the following ticks
(not written again) until they settle, which is also when a late lower id shows up and is
written. Hence:

- nothing is lost: a record is either <= S (written before S passed it) or read by every tick
  until it is written;
- nothing is written twice by the sensor: a record is written by the tick that first sees it,
  then skipped through ``seen`` / S; should a tick's cursor be lost (a crash after the write, the
  same cursor evaluated twice), the upsert is idempotent and the table is left identical;
- saved positions nobody has referred to for ``STATE_KEEP_DAYS`` are deleted; the ones the
  current and the previous cursor name are always kept. A cursor of the older JSON form (the
  positions themselves) is still read.
- a daemon down for a day: the next ticks read everything after S, ``max_records_per_tick`` new
  records at a time (the rest on the following ticks), and write it.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone

import dagster as dg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.engine import Connection, Engine

from bodyfriend_assets.compat.completions import (
    CheckOutcomes,
    Completion,
    completion_kst,
    completions_on,
    history_completions,
)
from bodyfriend_assets.compat.dag_ids import StandIn, dag_work
from bodyfriend_assets.resources import DataHub

SENSOR_NAME = "dag_log_mirror"
MINIMUM_INTERVAL_SECONDS = 30
SETTLE_SECONDS = 300
MAX_RECORDS_PER_TICK = 5000
PAGE_SIZE = 500
CURSOR_VERSION = 1  # the JSON form of the positions, stored in dag_log_mirror_state
STATE_PREFIX = "dag_log_mirror_state:"
STATE_KEEP_DAYS = 7
TICK_SUMMARY_ASSETS = 10  # assets named in a tick's message; the rest are counted

_metadata = sa.MetaData()
DAG_LOG = sa.Table(
    "dag_log",
    _metadata,
    sa.Column("dag_id", sa.String(250), nullable=False),
    sa.Column("completion_date", sa.Date, nullable=False),
    sa.Column("completion_datetime", sa.DateTime(timezone=False), nullable=False),
    sa.UniqueConstraint("dag_id", "completion_date", name="dag_log_dag_id_completion_date_key"),
    schema="public",
)
MIRROR_STATE = sa.Table(
    "dag_log_mirror_state",
    _metadata,
    sa.Column("digest", sa.Text, primary_key=True),
    sa.Column("positions", sa.Text, nullable=False),  # format_cursor's JSON
    sa.Column("saved_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    schema="public",
)
_UNIQUE_KEY = next(c for c in DAG_LOG.constraints if isinstance(c, sa.UniqueConstraint))
_UPSERT_CHUNK = 1000


# -- the table ------------------------------------------------------------------------------


def ensure_table(conn: Connection, table: sa.Table) -> None:
    """Create ``table`` if it is missing (serialized, so two writers cannot race to create it)."""
    if sa.inspect(conn).has_table(table.name, schema=table.schema):
        return
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"{table.schema}.{table.name}"))))
    table.create(conn, checkfirst=True)


class DagLogTableError(RuntimeError):
    """public.dag_log exists in a shape the mirror cannot write to; the message says why."""


def _has_unique_key(conn: Connection) -> bool:
    inspector = sa.inspect(conn)
    wanted = {"dag_id", "completion_date"}
    constraints = inspector.get_unique_constraints(DAG_LOG.name, schema=DAG_LOG.schema)
    indexes = inspector.get_indexes(DAG_LOG.name, schema=DAG_LOG.schema)
    return any(set(c["column_names"]) == wanted for c in constraints) or any(
        i["unique"] and set(i["column_names"]) == wanted and not i.get("dialect_options", {}).get("postgresql_where")
        for i in indexes
    )


def ensure_dag_log(conn: Connection) -> None:
    """Create dag_log if missing; give back its unique key to one recreated without it.

    Duplicate rows of one (dag_id, completion_date) are merged into the latest first, which is
    what the upsert would have kept. A table missing one of the three columns is not guessed at:
    :class:`DagLogTableError` names the column.
    """
    ensure_table(conn, DAG_LOG)
    if _has_unique_key(conn):
        return
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext("public.dag_log"))))
    if _has_unique_key(conn):
        return
    columns = {c["name"] for c in sa.inspect(conn).get_columns(DAG_LOG.name, schema=DAG_LOG.schema)}
    for column in DAG_LOG.columns:
        if column.name not in columns:
            raise DagLogTableError(
                f"public.dag_log has no column {column.name!r}: the mirror writes (dag_id, "
                "completion_date, completion_datetime); drop the table (the sensor refills it from "
                "Dagster's history) or add the column"
            )
    table = conn.dialect.identifier_preparer.format_table(DAG_LOG)
    # The newest row of each (dag_id, completion_date) stays; ties keep one copy.
    conn.execute(sa.text(
        f"DELETE FROM {table} a USING {table} b "
        "WHERE a.dag_id = b.dag_id AND a.completion_date = b.completion_date "
        "AND (a.completion_datetime < b.completion_datetime "
        "OR (a.completion_datetime IS NOT DISTINCT FROM b.completion_datetime AND a.ctid < b.ctid) "
        "OR (a.completion_datetime IS NULL AND b.completion_datetime IS NOT NULL))"
    ))
    try:
        with conn.begin_nested():
            conn.execute(sa.schema.AddConstraint(_UNIQUE_KEY))
    except sa.exc.DBAPIError as err:
        raise DagLogTableError(
            "public.dag_log has no unique key on (dag_id, completion_date) and adding it failed "
            f"({type(err.orig).__name__}): the mirror cannot upsert into it; add "
            "UNIQUE (dag_id, completion_date) or drop the table (the sensor refills it)"
        ) from None


def latest_per_day(completions: Iterable[tuple[str, datetime]]) -> dict[tuple[str, date], datetime]:
    """(dag_id, Korean date) -> the latest completion that day."""
    latest: dict[tuple[str, date], datetime] = {}
    for dag_id, moment in completions:
        key = (dag_id, moment.date())
        if key not in latest or moment > latest[key]:
            latest[key] = moment
    return latest


def upsert_completions(engine: Engine, completions: Iterable[tuple[str, datetime]]) -> int:
    """Upsert completions (dag_id, naive KST datetime) into dag_log in one transaction.

    Creates the table if missing. A row's completion_datetime only ever moves forward. Returns
    the number of rows inserted or changed (0 when everything was already there).
    """
    with engine.begin() as conn:
        return write_completions(conn, completions)


def write_completions(conn: Connection, completions: Iterable[tuple[str, datetime]]) -> int:
    """:func:`upsert_completions` inside the caller's transaction."""
    rows = sorted(latest_per_day(completions).items())  # one order for every writer: no deadlocks
    written = 0
    ensure_dag_log(conn)
    for start in range(0, len(rows), _UPSERT_CHUNK):
        statement = pg_insert(DAG_LOG).values(
            [
                {"dag_id": dag_id, "completion_date": day, "completion_datetime": moment}
                for (dag_id, day), moment in rows[start : start + _UPSERT_CHUNK]
            ]
        )
        statement = statement.on_conflict_do_update(
            index_elements=[DAG_LOG.c.dag_id, DAG_LOG.c.completion_date],
            set_={"completion_datetime": statement.excluded.completion_datetime},
            where=sa.or_(
                DAG_LOG.c.completion_datetime.is_(None),
                DAG_LOG.c.completion_datetime < statement.excluded.completion_datetime,
            ),
        ).returning(DAG_LOG.c.dag_id)
        written += len(conn.execute(statement).all())
    return written


# -- the cursor -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KeyPosition:
    """Where the mirror stands on one asset key (see the module docstring)."""

    settled: int = 0
    seen: frozenset[int] = frozenset()


@dataclass(frozen=True)
class TableIdentity:
    """Which ``dag_log`` table the positions were saved against (its oid), and whether it held
    rows: a different oid means it was dropped or recreated, no rows after some means emptied."""

    oid: int
    filled: bool


@dataclass(frozen=True)
class MirrorState:
    positions: dict[dg.AssetKey, KeyPosition]
    table: TableIdentity | None = None


def _parse(cursor: str | None) -> MirrorState:
    if not cursor:
        return MirrorState({})
    try:
        document = json.loads(cursor)
        if document.get("version") != CURSOR_VERSION:
            raise ValueError(f"version {document.get('version')!r}")
        positions = {
            dg.AssetKey.from_user_string(key): KeyPosition(
                int(value["settled"]), frozenset(int(i) for i in value.get("seen", ()))
            )
            for key, value in document["keys"].items()
        }
        table = document.get("dag_log")
        return MirrorState(positions, TableIdentity(int(table["oid"]), bool(table["filled"])) if table else None)
    except (ValueError, TypeError, KeyError, AttributeError) as err:
        raise ValueError(
            f"{SENSOR_NAME}: unreadable cursor ({err}); clear it to mirror the whole history again "
            "(idempotent)"
        ) from None


def parse_cursor(cursor: str | None) -> dict[dg.AssetKey, KeyPosition]:
    return _parse(cursor).positions


def format_cursor(positions: Mapping[dg.AssetKey, KeyPosition], *, table: TableIdentity | None = None) -> str:
    keys = {
        key.to_user_string(): {"settled": position.settled, "seen": sorted(position.seen)}
        for key, position in sorted(positions.items(), key=lambda item: item[0].to_user_string())
        if position != KeyPosition()
    }
    document = {"version": CURSOR_VERSION, "keys": keys}
    if table is not None:
        document["dag_log"] = {"oid": table.oid, "filled": table.filled}
    return json.dumps(document, separators=(",", ":"))


def save_positions(
    conn: Connection, positions: Mapping[dg.AssetKey, KeyPosition], *, keep: str | None, table: TableIdentity | None = None
) -> str:
    """Store ``positions`` in ``public.dag_log_mirror_state`` (in the caller's transaction) and
    return the cursor naming them. States unused for ``STATE_KEEP_DAYS`` are deleted, except
    ``keep`` (the cursor the tick started from)."""
    document = format_cursor(positions, table=table)
    digest = hashlib.sha256(document.encode()).hexdigest()[:24]
    ensure_table(conn, MIRROR_STATE)
    statement = pg_insert(MIRROR_STATE).values(digest=digest, positions=document)
    conn.execute(statement.on_conflict_do_update(
        index_elements=[MIRROR_STATE.c.digest], set_={"saved_at": sa.func.now()}
    ))
    kept = [digest] + ([keep.removeprefix(STATE_PREFIX)] if keep and keep.startswith(STATE_PREFIX) else [])
    conn.execute(sa.delete(MIRROR_STATE).where(
        MIRROR_STATE.c.saved_at < datetime.now(timezone.utc) - timedelta(days=STATE_KEEP_DAYS),
        MIRROR_STATE.c.digest.not_in(kept),
    ))
    return STATE_PREFIX + digest


def load_state(engine: Engine, cursor: str | None) -> MirrorState:
    """The state a cursor names (a stored state, or the older inline JSON form)."""
    if not cursor or not cursor.startswith(STATE_PREFIX):
        return _parse(cursor)
    with engine.connect() as conn:
        document = None
        if sa.inspect(conn).has_table(MIRROR_STATE.name, schema=MIRROR_STATE.schema):
            document = conn.execute(
                sa.select(MIRROR_STATE.c.positions).where(
                    MIRROR_STATE.c.digest == cursor.removeprefix(STATE_PREFIX)
                )
            ).scalar_one_or_none()
    if document is None:
        raise ValueError(
            f"{SENSOR_NAME}: the cursor's positions ({cursor}) are not in "
            "public.dag_log_mirror_state; clear the cursor to mirror the whole history again "
            "(idempotent)"
        )
    return _parse(document)


def load_positions(engine: Engine, cursor: str | None) -> dict[dg.AssetKey, KeyPosition]:
    """The positions a cursor names."""
    return load_state(engine, cursor).positions


def dag_log_identity(conn: Connection) -> TableIdentity | None:
    """The dag_log table now (None when it does not exist)."""
    oid = conn.execute(sa.text("SELECT to_regclass(:name)::oid"), {"name": "public.dag_log"}).scalar()
    if oid is None:
        return None
    filled = conn.execute(sa.select(sa.exists(sa.select(sa.literal(1)).select_from(DAG_LOG)))).scalar()
    return TableIdentity(int(oid), bool(filled))


def lost_table(saved: MirrorState, now: TableIdentity | None) -> str:
    """Why the positions must start over to refill dag_log ("dropped", "recreated", "emptied"),
    or "" when the table still holds what the positions say was written."""
    if not any(p != KeyPosition() for p in saved.positions.values()):
        return ""  # nothing written yet: the reading from the start fills it anyway
    if now is None:
        return "dropped"
    if saved.table is None:
        return ""  # positions of an earlier version, saved without the table's identity
    if now.oid != saved.table.oid:
        return "recreated"
    return "emptied" if saved.table.filled and not now.filled else ""


def summarize(tick: "Tick", written: int) -> str:
    """What a tick mirrored, for the sensor page: the counts first, then the DAG ids."""
    per_dag: dict[str, int] = {}
    for dag_id, _ in tick.completions:
        per_dag[dag_id] = per_dag.get(dag_id, 0) + 1
    named = [f"{dag_id} x{n}" if n > 1 else dag_id for dag_id, n in sorted(per_dag.items())]
    if len(named) > TICK_SUMMARY_ASSETS:
        named = named[:TICK_SUMMARY_ASSETS] + [f"and {len(named) - TICK_SUMMARY_ASSETS} more"]
    return (
        f"{tick.read} new materializations"
        + (f" ({tick.failed_checks} failed a blocking check: no completion)" if tick.failed_checks else "")
        + f", {len(tick.completions)} DAG completions mirrored into public.dag_log "
        f"({written} rows inserted or updated)"
        + (f": {', '.join(named)}" if named else "")
        + ("; more to read on the next tick" if tick.backlog else "")
        + (f"; public.dag_log was {tick.refilled}: refilling it from Dagster's history" if tick.refilled else "")
    )


@dataclass
class Tick:
    """What one tick read: the completions to write and the cursor to save after writing."""

    positions: dict[dg.AssetKey, KeyPosition]
    completions: list[Completion] = field(default_factory=list)
    read: int = 0  # materializations read for the first time
    failed_checks: int = 0  # of which failed a blocking check
    backlog: bool = False  # the record budget ran out: the next tick goes on
    refilled: str = ""  # why this tick started over to refill dag_log (see lost_table)


def read_new_completions(
    instance: dg.DagsterInstance,
    work: Mapping[str, frozenset[dg.AssetKey]],
    positions: Mapping[dg.AssetKey, KeyPosition],
    outcomes: CheckOutcomes,
    *,
    now: float,
    settle_seconds: float = SETTLE_SECONDS,
    max_records: int = MAX_RECORDS_PER_TICK,
    page_size: int = PAGE_SIZE,
) -> Tick:
    """Read every materialization not yet mirrored and the completions of the days they touch;
    ``now`` must be taken before calling."""
    horizon = now - settle_seconds
    budget = max_records
    tick = Tick(positions={})
    dags_of: dict[dg.AssetKey, list[str]] = {}
    for dag_id, keys in work.items():
        for key in keys:
            dags_of.setdefault(key, []).append(dag_id)
    touched: set[tuple[str, date]] = set()
    for key in sorted(dags_of, key=lambda k: k.to_user_string()):
        position = positions.get(key, KeyPosition())
        if budget <= 0:
            tick.positions[key] = position
            tick.backlog = True
            continue
        fetched: list[dg.EventLogRecord] = []
        fresh: list[dg.EventLogRecord] = []
        after = position.settled
        while True:
            limit = min(page_size, budget - len(fresh))  # > 0: checked below
            page = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_storage_id=after),
                limit=limit,
                ascending=True,
            ).records
            fetched.extend(page)
            fresh.extend(r for r in page if r.storage_id not in position.seen)
            if len(page) < limit:
                break  # read to the end
            after = page[-1].storage_id
            if len(fresh) >= budget:
                tick.backlog = True  # maybe more: the next tick goes on from the cursor
                break
        budget -= len(fresh)
        tick.read += len(fresh)
        for record in fresh:
            if not outcomes.passed(record):
                tick.failed_checks += 1
                continue
            day = completion_kst(record.timestamp).date()
            touched.update((dag_id, day) for dag_id in dags_of[key])
        settled = max([position.settled, *(r.storage_id for r in fetched if r.timestamp <= horizon)])
        seen = {i for i in position.seen if i > settled}
        seen.update(r.storage_id for r in fetched if r.storage_id > settled)
        tick.positions[key] = KeyPosition(settled, frozenset(seen))
    tick.completions = completions_on(instance, work, touched, outcomes)
    return tick


# -- the sensor -----------------------------------------------------------------------------


def build_dag_log_sensor(
    dag_ids: Mapping[dg.AssetKey, str],
    *,
    stand_ins: Mapping[str, StandIn] | None = None,
    blocking_checks: frozenset[dg.AssetCheckKey] = frozenset(),
    name: str = SENSOR_NAME,
    minimum_interval_seconds: int = MINIMUM_INTERVAL_SECONDS,
    settle_seconds: float = SETTLE_SECONDS,
    max_records_per_tick: int = MAX_RECORDS_PER_TICK,
    clock: Callable[[], float] = time.time,
) -> dg.SensorDefinition:
    """The ``dag_log_mirror`` sensor over the given assets (asset key -> DAG id), the DAGs that
    stand in for work without an id of its own, and the blocking checks the assets declare.

    Running by default. It launches no runs, so Dagster lists every tick as "Skipped"; the
    tick's message (its skip reason, also logged) says what it mirrored. It needs the
    ``datahub`` resource.
    """
    work = dag_work(dag_ids, stand_ins)

    @dg.sensor(
        name=name,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Writes each old Airflow DAG's completion into `public.dag_log` (`dag_id`, "
            "`completion_date`, `completion_datetime` in KST) on the Data Hub: a DAG completes on "
            "a Korean day when all its assets were materialized that day with their blocking "
            "checks passed. Refills the table from Dagster's history if it is dropped or emptied; "
            "its positions are in `public.dag_log_mirror_state`."
        ),
    )
    def _dag_log_mirror(context: dg.SensorEvaluationContext, datahub: DataHub) -> dg.SensorResult:
        now = clock()  # before any read: see the module docstring
        engine = datahub.engine()
        state = load_state(engine, context.cursor)
        with engine.connect() as conn:
            refilled = lost_table(state, dag_log_identity(conn))
        positions = {} if refilled else state.positions
        if refilled:
            context.log.warning(f"public.dag_log was {refilled}: refilling it from Dagster's history")
        tick = read_new_completions(
            context.instance,
            work,
            positions,
            CheckOutcomes(context.instance, blocking_checks),
            now=now,
            settle_seconds=settle_seconds,
            max_records=max_records_per_tick,
        )
        tick.refilled = refilled
        with engine.begin() as conn:  # the rows and the positions past them, together
            written = write_completions(conn, tick.completions)
            cursor = save_positions(conn, tick.positions, keep=context.cursor, table=dag_log_identity(conn))
        message = summarize(tick, written)
        if tick.completions or tick.failed_checks:
            context.log.info(message)
        return dg.SensorResult(skip_reason=dg.SkipReason(message), cursor=cursor)

    return _dag_log_mirror


# -- the backfill ---------------------------------------------------------------------------


@dataclass(frozen=True)
class BackfillSummary:
    materializations: int
    rows: int  # (dag_id, date) rows the history yields
    written: int  # rows inserted or moved forward


def backfill_dag_log(
    instance: dg.DagsterInstance,
    engine: Engine,
    dag_ids: Mapping[dg.AssetKey, str],
    *,
    stand_ins: Mapping[str, StandIn] | None = None,
    blocking_checks: frozenset[dg.AssetCheckKey] = frozenset(),
    page_size: int = 1000,
) -> BackfillSummary:
    """Upsert dag_log from every completion in the instance's history (idempotent).

    Rows not produced by this history (the old system's own rows, say) are left alone.
    """
    count, completions = history_completions(
        instance, dag_work(dag_ids, stand_ins), CheckOutcomes(instance, blocking_checks), page_size=page_size
    )
    written = upsert_completions(engine, completions)
    return BackfillSummary(materializations=count, rows=len(completions), written=written)

