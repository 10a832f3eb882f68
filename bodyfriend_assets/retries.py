"""Retrying what waiting can fix, failing at once on what it cannot, and never publishing why in
the driver's words.

A lost or refused connection, a timeout, a database still recovering (the ERP restarting, a
failover, a maintenance window) is worth waiting for: the step is retried with backoff, doubling
from ``BODYFRIEND_RETRY_FIRST_DELAY_SECONDS`` (30) up to ``BODYFRIEND_RETRY_MAX_DELAY_SECONDS``
(600), until the waits add up to ``BODYFRIEND_RETRY_WINDOW_SECONDS`` (7200: two hours). Each wait
is logged with the error's type and a cause in a few words. A step whose window ran out fails and
asks for a run retry (the daemon relaunches the run, ``run_retries`` in dagster.yaml).

A login refused, an unknown host, and errors in the data (a duplicate key, a changed source
table) would fail the same way again: they fail at once, retried by nothing, step or run.

Driver messages name hosts and users (and a password written with an unencoded ``@`` ends up in
the "host name"), so no driver message or chained driver exception ever leaves this module: the
errors raised here carry only the error type and the classified cause.
"""

from __future__ import annotations

import re
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
import psycopg2
import pymssql
import sqlalchemy as sa

from bodyfriend_assets import settings

CONNECTION_ERRORS = (
    sa.exc.OperationalError,  # SQLAlchemy's wrapper for psycopg2 and pymssql alike
    sa.exc.InterfaceError,
    psycopg2.OperationalError,  # raised directly by COPY on the driver connection
    psycopg2.InterfaceError,
    pymssql.OperationalError,
    pymssql.InterfaceError,
)

FIRST_DELAY_VAR = "BODYFRIEND_RETRY_FIRST_DELAY_SECONDS"
MAX_DELAY_VAR = "BODYFRIEND_RETRY_MAX_DELAY_SECONDS"
WINDOW_VAR = "BODYFRIEND_RETRY_WINDOW_SECONDS"
FIRST_DELAY_SECONDS = 30.0
MAX_DELAY_SECONDS = 600.0
WINDOW_SECONDS = 7200.0

# The run tag Dagster's run retries read: a run whose step failed is relaunched only with it.
RETRY_RUN_ON_STEP_FAILURE_TAG = "dagster/retry_on_asset_or_op_failure"


@dataclass(frozen=True)
class Fault:
    """What went wrong with a connection, in words fit for the run log."""

    error_type: str
    cause: str
    transient: bool

    def __str__(self) -> str:
        return f"{self.error_type}: {self.cause}"


# Causes recognised in driver messages, first match wins. The message is read, never shown.
_PERMANENT = [
    (re.compile(r"password authentication failed|role \".*\" does not exist|no pg_hba\.conf entry"
                r"|not permitted to log in|login failed|authentication", re.I), "login refused (user or password)"),
    (re.compile(r"could not translate host name|name or service not known|unknown host"
                r"|server name not found|nodename nor servname", re.I), "unknown host"),
    (re.compile(r"statement timeout", re.I), "statement timeout (the query ran too long)"),
]
_TRANSIENT = [
    (re.compile(r"connection refused", re.I), "connection refused"),
    (re.compile(r"timeout expired|timed out|timeout", re.I), "timeout"),
    (re.compile(r"no route to host|network is unreachable|host is unreachable", re.I), "network unreachable"),
    (re.compile(r"database .* does not exist|cannot open database|starting up|shutting down"
                r"|recovery mode|not yet accepting connections", re.I), "database not available"),
    (re.compile(r"server closed the connection|connection reset|broken pipe|unexpected eof"
                r"|terminating connection|connection already closed|dbprocess is dead|ssl syscall",
                re.I), "connection lost"),
]
# SQL Server error numbers (pymssql's first argument, and every "error message N" in its text).
_SQL_SERVER_PERMANENT = {
    18456: "login refused (user or password)",
    18452: "login refused (untrusted domain)",
    18486: "login refused (account locked)",
    18487: "login refused (password expired)",
    18488: "login refused (password must be changed)",
    20012: "unknown host",
}
_SQL_SERVER_TRANSIENT = {
    20003: "timeout",
    4060: "database not available",
    40613: "database not available",
    20047: "connection lost",
    20017: "connection lost",
    20006: "connection lost",
}


def classify(err: BaseException) -> Fault:
    """The cause of a connection error, and whether waiting can fix it."""
    driver_error = getattr(err, "orig", None) or err
    error_type = type(driver_error).__name__
    if isinstance(driver_error, psycopg2.errors.QueryCanceled):
        return Fault(error_type, "statement timeout (the query ran too long)", False)
    text = _driver_text(driver_error)
    if isinstance(driver_error, (pymssql.OperationalError, pymssql.InterfaceError)):
        numbers = _sql_server_numbers(driver_error, text)
        for number in numbers:
            if number in _SQL_SERVER_PERMANENT:
                return Fault(error_type, _SQL_SERVER_PERMANENT[number], False)
        if 20009 in numbers and "net-lib error" not in text.lower() and 20003 not in numbers:
            # FreeTDS reports "unavailable or does not exist" with no network error when the
            # name does not resolve.
            return Fault(error_type, "unknown host", False)
    for pattern, cause in _PERMANENT:
        if pattern.search(text):
            return Fault(error_type, cause, False)
    for pattern, cause in _TRANSIENT:
        if pattern.search(text):
            return Fault(error_type, cause, True)
    if isinstance(driver_error, (pymssql.OperationalError, pymssql.InterfaceError)):
        for number in _sql_server_numbers(driver_error, text):
            if number in _SQL_SERVER_TRANSIENT:
                return Fault(error_type, _SQL_SERVER_TRANSIENT[number], True)
    return Fault(error_type, "connection failed", True)


def _driver_text(error: BaseException) -> str:
    parts = []
    for arg in getattr(error, "args", ()):
        parts.append(arg.decode(errors="replace") if isinstance(arg, bytes) else str(arg))
    return " ".join(parts)


def _sql_server_numbers(error: BaseException, text: str) -> list[int]:
    numbers = [error.args[0]] if error.args and isinstance(error.args[0], int) else []
    return numbers + [int(n) for n in re.findall(r"error message (\d+)", text)]


def retry_delays() -> list[float]:
    """Seconds to wait before each retry: doubling up to the cap, until the window is covered."""
    first = settings.seconds_setting(FIRST_DELAY_VAR, FIRST_DELAY_SECONDS)
    cap = settings.seconds_setting(MAX_DELAY_VAR, MAX_DELAY_SECONDS)
    window = settings.seconds_setting(WINDOW_VAR, WINDOW_SECONDS)
    delays: list[float] = []
    delay = first
    while sum(delays) < window:
        delays.append(min(delay, cap, window - sum(delays)))
        delay *= 2
    return delays


def _minutes(seconds: float) -> str:
    if seconds >= 120:
        return f"{seconds / 60:.0f} min"
    return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"


class DatabaseUnavailable(Exception):
    """A connection failure, told without the driver's message (hosts, users, passwords)."""


@contextmanager
def retry_connection_errors(context):
    """Retry the step on a transient connection error; fail it at once, with the cause, on a
    permanent one. Other errors pass through untouched."""
    try:
        yield
        return
    except CONNECTION_ERRORS as err:
        fault = classify(err)
    # ``from None``: Dagster stores an exception's chain unless it is suppressed, and the driver's
    # exception names hosts and users.
    raise _step_outcome(context, fault) from None


def _step_outcome(context, fault: Fault) -> BaseException:
    if not fault.transient:
        message = f"database connection failed ({fault}); not retried: waiting cannot fix it"
        context.log.error(message)
        return dg.Failure(description=message, allow_retries=False)
    delays = retry_delays()
    attempt = context.retry_number  # 0 on the first try
    if attempt >= len(delays):
        context.instance.add_run_tags(context.run_id, {RETRY_RUN_ON_STEP_FAILURE_TAG: "true"})
        message = (
            f"database connection failed ({fault}) after {len(delays)} retries over "
            f"{_minutes(sum(delays))}; the run may be relaunched (run retries)"
        )
        context.log.error(message)
        return dg.Failure(description=message, allow_retries=False)
    delay = delays[attempt]
    context.log.warning(
        f"database connection failed ({fault}); retry {attempt + 1} of {len(delays)} "
        f"in {_minutes(delay)}"
    )
    return dg.RetryRequested(max_retries=len(delays), seconds_to_wait=delay)
