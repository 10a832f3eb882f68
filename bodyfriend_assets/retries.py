"""Retrying lost database connections, and nothing else.

A dropped connection to the ERP or the Data Hub (network blip, failover, a server restart) is
worth retrying with backoff; a data error (a duplicate key, a changed source table) is not: it
would fail the same way again, so it fails at once with its message.
"""

from contextlib import contextmanager

import dagster as dg
import psycopg2
import sqlalchemy as sa

CONNECTION_ERRORS = (
    sa.exc.OperationalError,  # SQLAlchemy's wrapper for psycopg2 and pymssql alike
    sa.exc.InterfaceError,
    psycopg2.OperationalError,  # raised directly by COPY on the driver connection
    psycopg2.InterfaceError,
)
MAX_RETRIES = 3
FIRST_DELAY_SECONDS = 30.0  # then 60, 120


@contextmanager
def retry_connection_errors(context):
    """Turn a connection error into a retry of the step after 30 s, 60 s, 120 s."""
    try:
        yield
    except CONNECTION_ERRORS as err:
        attempt = context.retry_number
        delay = FIRST_DELAY_SECONDS * 2**attempt
        # The exception type only: driver messages can name hosts and users.
        context.log.warning(
            f"database connection failed ({type(err).__name__}); "
            f"retry {attempt + 1} of {MAX_RETRIES} in {delay:.0f}s"
        )
        raise dg.RetryRequested(max_retries=MAX_RETRIES, seconds_to_wait=delay) from err
