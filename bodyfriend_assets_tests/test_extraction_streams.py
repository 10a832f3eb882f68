"""A source with no index on its cursor column, read as one ordered stream, and a stream whose
connection dies or whose statement times out mid-read.

The source is a real PostgreSQL stand-in table shaped like RENTAL.R_ORDER_CONTRACT_ADD with only
its primary key on ORDER_NO, the way the ERP may hold it: keyset pages would read and sort the rest
of the window for every page, so the load reads each pass with one ordered query. Statements are
observed at the driver (psycopg2 cursors); the Data Hub's pages are observed where the load COPYs
them into its staging table.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import datetime, timedelta

import psycopg2.extensions
import pytest
import sqlalchemy as sa
from sqlalchemy import text
from sqlalchemy.dialects.mssql import pymssql

from bodyfriend_assets.catalog import LegacyTable
from bodyfriend_assets.extraction.engine import extract_to_lv0
from bodyfriend_assets_tests.test_extraction_concurrency import (
    COLUMNS,
    READERS,
    WINDOW_END,
    WINDOW_START,
    datahub,  # noqa: F401 (a fixture)
    lineage,
    lv0_rows,
    source_rows,
)
from bodyfriend_assets_tests.test_keyset_sql import _service_receipt_on_sql_server

FIRST_TS = datetime(2024, 3, 5, 0, 10, 0, 333000)
ROWS_PER_TS = 250
APP = "stream-test-reader"

ENTRY = LegacyTable(
    database="RENTAL",
    table="R_ORDER_CONTRACT_ADD",
    keys=["ORDER_NO"],
    mode="incremental",
    cursor="UPDT_DT",
    page_size=500,
    lookback_minutes=0,
)
ORDERED_BY_CURSOR = "ORDER BY rental.r_order_contract_add.updt_dt"


def seed(legacy, rows: int, memo_bytes: int, cursor_index: bool) -> None:
    """``rows`` rows on 2024-03-05 (``ROWS_PER_TS`` per UPDT_DT value, keys in an order unlike
    the cursor's), a row the day before and one the day after (outside the window), memos of
    about ``memo_bytes`` (tabs, newlines, backslashes, Korean text)."""
    with legacy.begin() as conn:
        conn.execute(text("CREATE SCHEMA rental"))
        conn.execute(
            text(
                """
                CREATE TABLE rental.r_order_contract_add (
                    order_no varchar(20) PRIMARY KEY,
                    updt_dt  timestamp(3),
                    cust_nm  varchar(50),
                    amt      numeric(12, 2),
                    memo     text
                )
                """
            )
        )
        if cursor_index:
            conn.execute(text("CREATE INDEX ix_updt ON rental.r_order_contract_add (updt_dt, order_no)"))
        conn.execute(
            text(
                f"""
                INSERT INTO rental.r_order_contract_add ({COLUMNS})
                SELECT (CAST(:prefixes AS text[]))[1 + i % 5] || lpad(((i * 7919) % :n)::text, 8, '0'),
                       CAST(:first_ts AS timestamp(3)) + (i / :per_ts) * interval '1 minute',
                       '고객 ' || i,
                       round(i * 0.75, 2),
                       E'메모\\t' || i || E'\\n\\\\끝 ' || repeat('x', :memo)
                FROM generate_series(0, :n - 1) AS i
                """
            ),
            {"prefixes": ["02", "82", "HI", "K2", "ON"], "first_ts": FIRST_TS, "per_ts": ROWS_PER_TS,
             "n": rows, "memo": memo_bytes},
        )
        conn.execute(
            text(
                f"INSERT INTO rental.r_order_contract_add ({COLUMNS}) VALUES "
                "('02OUT00001', :before, 'outside', 1, NULL), ('ONOUT00002', :after, 'outside', 2, NULL)"
            ),
            {"before": WINDOW_START - timedelta(hours=3), "after": WINDOW_END + timedelta(hours=1)},
        )
        conn.execute(text("ANALYZE rental.r_order_contract_add"))


def seeded(legacy_url, **shape) -> dict:
    """``seed`` the source; returns its window's rows by key."""
    legacy = sa.create_engine(legacy_url)
    try:
        seed(legacy, **shape)
        return source_rows(legacy, WINDOW_START, WINDOW_END)
    finally:
        legacy.dispose()


def load_observed(legacy_url, datahub_url, on_page: Callable[[int], None], connect_args: dict, **options):
    """``extract_to_lv0`` of the window in pages of 1,000 rows, ``on_page`` called as each page
    is written; returns the result and the messages it logged."""
    messages: list[str] = []
    source = sa.create_engine(legacy_url, connect_args=connect_args)
    hub = hub_observing_pages(datahub_url, on_page)
    try:
        result = extract_to_lv0(
            ENTRY.model_copy(update={"page_size": 1000}), source, hub, start=WINDOW_START,
            end=WINDOW_END, lineage=lineage("observed"), log=messages.append, **options,
        )
    finally:
        source.dispose()
        hub.dispose()
    return result, messages


def observing_cursor(on_statement: Callable[[str], None]) -> type:
    """A psycopg2 cursor class calling ``on_statement`` with each statement it has run (named
    cursors' DECLARE included; COPY too)."""

    class ObservingCursor(psycopg2.extensions.cursor):
        def execute(self, query, *args, **kwargs):
            result = super().execute(query, *args, **kwargs)
            on_statement(query.decode() if isinstance(query, bytes) else str(query))
            return result

        def copy_expert(self, sql, *args, **kwargs):
            result = super().copy_expert(sql, *args, **kwargs)
            on_statement(sql.decode() if isinstance(sql, bytes) else str(sql))
            return result

    return ObservingCursor


def hub_observing_pages(datahub_url, on_page: Callable[[int], None]) -> sa.Engine:
    """A Data Hub engine calling ``on_page(n)`` once the load has COPYed its n-th page into its
    staging table, or straight into lv0 (a first load)."""
    counter = itertools.count(1)

    def seen(sql: str) -> None:
        if sql.startswith("COPY lv0.") or (sql.startswith("COPY") and "_staging_" in sql):
            on_page(next(counter))

    return sa.create_engine(datahub_url, connect_args={"cursor_factory": observing_cursor(seen)})


# -- tests ----------------------------------------------------------------------------------


def full_load_observed(legacy_url, datahub, reader: str, cursor_index: bool):
    """(the load's result, the source statements ordered by the cursor) of a first load of
    20,000 rows, checked to hold every row once; the statements are observed at the driver."""
    expected = seeded(legacy_url, rows=20_000, memo_bytes=20, cursor_index=cursor_index)
    statements: list[str] = []
    observed = sa.create_engine(legacy_url, connect_args={"cursor_factory": observing_cursor(statements.append)})
    try:
        result = extract_to_lv0(
            ENTRY, observed, datahub, start=WINDOW_START, end=WINDOW_END, lineage=lineage("full"),
            reader=reader,
        )
    finally:
        observed.dispose()
    assert lv0_rows(datahub) == expected
    assert result.rows == len(expected) == 20_000  # each row read once
    normalized = (" ".join(s.split()) for s in statements)
    return result, [s for s in normalized if ORDERED_BY_CURSOR in s]


@pytest.mark.parametrize("reader", READERS)
def test_a_source_without_a_cursor_index_is_read_by_one_ordered_query_per_pass_every_row_once(
    legacy_url, datahub, reader
):
    result, by_cursor = full_load_observed(legacy_url, datahub, reader, cursor_index=False)
    assert result.pages >= 20_000 // ENTRY.page_size  # one query, cut into pages of page_size rows
    assert result.as_metadata()["source_read"] == "one ordered stream (no source index leads with updt_dt)"
    # The passes ordered by the cursor (the window, the rows stamped in the future) were one query
    # each, without a LIMIT; nothing paged over the cursor.
    assert len(by_cursor) == 2, by_cursor
    assert not [s for s in by_cursor if "LIMIT" in s.upper()]


@pytest.mark.parametrize("reader", READERS)
def test_a_first_full_load_of_a_source_with_the_cursor_index_is_read_by_keyset_pages(legacy_url, datahub, reader):
    """The read plan's rule: a pass whose order a source index serves is read a keyset page per
    query, however many rows it holds (a first load into an empty lv0 included); measured no
    slower than one stream (README, "Which way a pass is read"), and it holds nothing on the ERP
    between pages."""
    result, by_cursor = full_load_observed(legacy_url, datahub, reader, cursor_index=True)
    assert result.as_metadata()["source_read"] == "keyset pages (a source index leads with updt_dt)"
    paged = [s for s in by_cursor if "LIMIT" in s.upper()]
    assert len(paged) >= 20_000 // ENTRY.page_size, len(paged)  # a query per page of the window
    assert paged == by_cursor  # and no unbounded, streamed query over the cursor


@pytest.mark.parametrize("reader", READERS)
def test_a_source_connection_killed_mid_stream_loses_and_repeats_no_row(
    legacy_url, datahub_url, datahub, reader
):
    # 150,000 rows of ~300 bytes: far more than the sockets buffer, so the server is still
    # sending when its connection is killed.
    expected = seeded(legacy_url, rows=150_000, memo_bytes=300, cursor_index=False)

    admin = sa.create_engine(legacy_url, isolation_level="AUTOCOMMIT")
    killed: list[int] = []

    def kill_the_stream(page: int) -> None:
        """After pages 5 and 40 are written, terminate the reader's session that is in a
        transaction: the one streaming the window (its parallel workers end with it)."""
        if page not in (5, 40):
            return
        with admin.connect() as conn:
            killed.append(
                conn.execute(
                    text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :app AND datname = current_database() "
                        "AND backend_type = 'client backend' AND xact_start IS NOT NULL"
                    ),
                    {"app": APP},
                ).scalar_one()
            )

    try:
        result, messages = load_observed(
            legacy_url, datahub_url, kill_the_stream, {"application_name": APP}, reader=reader
        )
    finally:
        admin.dispose()

    # The stream's session really was killed, twice, mid-read, and the load read on each time.
    assert killed == [1, 1]
    resumed = [m for m in messages if "resume" in m]
    assert len(resumed) == 2, messages
    assert "connection lost" in resumed[0]
    loaded = lv0_rows(datahub)
    assert loaded == expected
    assert result.rows == len(expected)  # no row read twice
    assert result.rows_changed == len(expected)


def test_a_stream_cut_by_the_statement_timeout_reads_on_from_the_last_row(legacy_url, datahub_url, datahub):
    """PostgreSQL's statement_timeout counts the whole COPY stream, time spent waiting for a slow
    Data Hub included: a stream cut by it after pages were handed out reads on, and no row is lost
    or read twice. (The index on the cursor makes the first row come at once; the plan is forced.)"""
    expected = seeded(legacy_url, rows=60_000, memo_bytes=300, cursor_index=True)

    def slow_hub(page: int) -> None:
        if page <= 3:
            time.sleep(1.5)  # longer than the statement timeout: the stream's statement outlives it

    result, messages = load_observed(
        legacy_url, datahub_url, slow_hub, {"options": "-c statement_timeout=1000"}, reader="copy", plan="stream"
    )

    resumed = [m for m in messages if "resume" in m]
    assert resumed and "statement timeout" in resumed[0], messages
    assert lv0_rows(datahub) == expected
    assert result.rows == len(expected)


def test_the_sql_server_stream_is_one_ordered_select_resumed_by_the_expanded_keyset():
    """What SQL Server gets for a pass without an index: no TOP, no OFFSET or ROW_NUMBER; a
    resumed stream starts after the last row by the expanded keyset predicate, values bound."""
    source = _service_receipt_on_sql_server()
    read = source.read(source.window(datetime(2024, 3, 4, 21), datetime(2024, 3, 6)))
    first = " ".join(str(read.stream_query(None).compile(dialect=pymssql.dialect())).split())
    resumed = read.stream_query(["2024-03-05 10:00:00.003", "HI24030500017"]).compile(dialect=pymssql.dialect())
    flat = " ".join(str(resumed).split())

    for sql in (first, flat):
        assert sql.startswith("SELECT [RENTAL]") and "TOP" not in sql
        assert "OFFSET" not in sql.upper() and "ROW_NUMBER" not in sql.upper() and "NOLOCK" not in sql.upper()
        assert sql.endswith(
            "ORDER BY [RENTAL].dbo.[R_SERVICE_RECEIPT].[UPDT_DT], [RENTAL].dbo.[R_SERVICE_RECEIPT].[RECEIPT_NO]"
        )
    assert "[RECEIPT_NO] >" not in first
    assert (
        "[UPDT_DT] >= :UPDT_DT_3 AND ([UPDT_DT] > :UPDT_DT_4 "
        "OR [UPDT_DT] = :UPDT_DT_5 AND [RECEIPT_NO] > :RECEIPT_NO_1)"
    ) in flat.replace("[RENTAL].dbo.[R_SERVICE_RECEIPT].", "")
    assert "HI24030500017" in resumed.params.values() and "HI24030500017" not in flat
