"""A concurrency pool's turn, made exclusive in the Data Hub, and said out loud while waiting.

Dagster's pool (``large_tables``, limit 1) already keeps a second step of the pool waiting, but
two runs whose steps claim the pool's slot within the same instant can both get it: dagster-postgres
claims a slot with a ``SELECT ... FOR UPDATE SKIP LOCKED`` then an ``UPDATE``, on an autocommit
connection, so the row lock ends with the SELECT and both claims can take the same slot row. A step
of a pool therefore also holds an advisory lock named after the pool in the Data Hub, on a
connection whose ``application_name`` names its run. A step that finds the lock taken logs at INFO
which run holds it, and again every ``WAIT_REPORT_SECONDS`` while it waits, so a night waiting on
another run (or on one whose process died and whose connection the server has not yet dropped)
says so. The lock is a session lock: released when the step ends, or when its connection closes if
the process dies. The step logs "holding the <pool> pool" once it has the lock and "releasing the
<pool> pool" before letting go: its extraction runs between the two, so those two lines, not the
step's start and end, show whether two extractions of a pool overlapped (test_orchestration).
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager

import dagster as dg
import sqlalchemy as sa

from bodyfriend_assets.retries import CONNECTION_ERRORS

POLL_SECONDS = 1.0
WAIT_REPORT_SECONDS = 60.0
APPLICATION_PREFIX = "bodyfriend run "

_HOLDER = sa.text(
    """
    SELECT a.application_name, a.pid
    FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
      AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
      AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtext(:name)::bigint
    """
)


def _current_run() -> tuple[str | None, object]:
    """The running step's run id and log (a plain logger outside a step)."""
    try:
        context = dg.OpExecutionContext.get()
    except Exception:
        return None, logging.getLogger(__name__)
    return context.run_id, context.log


def _holder(conn, name: str) -> str:
    row = conn.execute(_HOLDER, {"name": name}).first()
    if row is None:
        return "no session any more (being released)"
    application, pid = row
    if application and application.startswith(APPLICATION_PREFIX):
        return f"run {application[len(APPLICATION_PREFIX):]}"
    return f"a session without a run id (server pid {pid})"


@contextmanager
def exclusive_pool(engine: sa.Engine, pool: str | None):
    """Hold the pool's advisory lock in the Data Hub for the step (nothing without a pool)."""
    if pool is None:
        yield
        return
    name = f"pool {pool}"
    key = sa.func.hashtext(name)
    run_id, log = _current_run()
    with engine.connect() as conn:
        if run_id:
            conn.execute(sa.select(sa.func.set_config("application_name", APPLICATION_PREFIX + run_id, False)))
        reported = None
        while not conn.execute(sa.select(sa.func.pg_try_advisory_lock(key))).scalar():
            conn.commit()  # each poll sees the current holders
            if reported is None or time.monotonic() - reported >= WAIT_REPORT_SECONDS:
                log.info(f"waiting for the {pool} pool: held by {_holder(conn, name)}")
                conn.commit()
                reported = time.monotonic()
            time.sleep(POLL_SECONDS)
        conn.commit()
        if reported is not None:
            log.info(f"the {pool} pool is free: going on")
        log.info(f"holding the {pool} pool")
        try:
            yield
        finally:
            log.info(f"releasing the {pool} pool")
            try:
                conn.execute(sa.select(sa.func.pg_advisory_unlock(key)))
                conn.commit()
            except CONNECTION_ERRORS:
                conn.invalidate()  # the session, and its lock, are gone with the connection
