"""How long a load waits for a table lock, and who to blame when it gives up.

Every load of a Data Hub table (lv0, lv1, lv2) sets PostgreSQL's ``lock_timeout`` for its
transaction, so a session holding a lock on the table (a forgotten ``BEGIN; LOCK TABLE``, a
long report while lv0 adds a column) makes the night fail within that time, with a message naming
the table and the sessions holding locks on it (pid, application, lock mode and the first words of
their query), instead of waiting in silence.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from contextlib import contextmanager

import psycopg2.errors
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection

DEFAULT_LOCK_TIMEOUT_SECONDS = 60.0
QUERY_WORDS = 4
# A word of a query shown in an error: SQL keywords and names only, never a literal value.
_PLAIN_WORD = re.compile(r'^[A-Za-z_][A-Za-z0-9_."*(),]*$')


class LockTimeout(RuntimeError):
    """A load could not lock its table in time; nothing was written. Names the table and holders."""


def set_lock_timeout(conn: Connection, seconds: float) -> None:
    """``lock_timeout`` for the rest of ``conn``'s transaction (0: wait forever)."""
    conn.execute(sa.select(sa.func.set_config("lock_timeout", f"{int(seconds * 1000)}ms", True)))


@contextmanager
def naming_lock_holders(conn: Connection, table: str, seconds: float, reads: Sequence[str] = ()):
    """Turn a lock timeout inside the block into :class:`LockTimeout` naming ``table``
    (schema.name) and the sessions holding locks on it or on the tables it ``reads``. The
    transaction is rolled back."""
    try:
        yield
    except (sa.exc.OperationalError, psycopg2.errors.LockNotAvailable) as err:
        if not isinstance(getattr(err, "orig", err), psycopg2.errors.LockNotAvailable):
            raise
        conn.rollback()
        raise LockTimeout(
            f"{table}: could not lock the table within {seconds:g}s (lock_timeout); "
            f"{describe_lock_holders(conn, [table, *reads])}. Nothing was written."
        ) from None


def describe_lock_holders(conn: Connection, tables: Sequence[str]) -> str:
    """``held by pid 123 on lv0.x (application 'psql', AccessExclusiveLock, query 'LOCK TABLE lv0.x')``."""
    locks = sa.table("pg_locks", sa.column("pid"), sa.column("relation"), sa.column("mode"),
                     sa.column("granted"), schema="pg_catalog")
    activity = sa.table("pg_stat_activity", sa.column("pid"), sa.column("application_name"),
                        sa.column("query"), schema="pg_catalog")
    relation = sa.cast(sa.cast(locks.c.relation, postgresql.REGCLASS), sa.Text)
    holders = conn.execute(
        sa.select(locks.c.pid, relation, activity.c.application_name, locks.c.mode, activity.c.query)
        .select_from(locks.join(activity, locks.c.pid == activity.c.pid))
        .where(
            locks.c.relation.in_([sa.func.to_regclass(sa.literal(t)) for t in tables]),
            locks.c.granted,
            locks.c.pid != sa.func.pg_backend_pid(),
        )
        .order_by(locks.c.pid, relation)
    ).all()
    conn.rollback()
    if not holders:
        return "no session holds a lock on it any more"
    return "held by " + "; ".join(
        f"pid {pid} on {name} (application {application or '-'!r}, {mode}, query {first_words(query)!r})"
        for pid, name, application, mode, query in holders
    )


def first_words(query: str | None) -> str:
    """The query's first few words, stopping before anything that could be a value."""
    words = []
    for word in (query or "").split()[:QUERY_WORDS]:
        if not _PLAIN_WORD.match(word):
            words.append("...")
            break
        words.append(word)
    return " ".join(words)
