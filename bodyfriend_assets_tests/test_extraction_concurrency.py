"""Keyset extraction while the ERP keeps writing: no pre-existing row is lost or read twice.

The source is a real PostgreSQL stand-in table shaped like RENTAL.R_ORDER_CONTRACT_ADD: 20,000
rows in one KST day, 500 rows on each of 40 identical UPDT_DT values, keys with the ERP's
prefixes. While ``extract_to_lv0`` reads it in pages of 100, a writer thread commits new rows one
by one whose keys sort into the middle of pages ('HI...' between '82...' and 'K2...') on the very
timestamps being read, and back-dated rows behind the reader. A control reads the same table with
positional OFFSET paging under the same kind of inserts and shows the rows it repeats.

Both page readers are covered: ``copy`` (COPY TO STDOUT, what a PostgreSQL source gets) and
``dbapi`` (row fetches, the SQL Server path). Pages are observed at the driver: the legacy engine's
psycopg2 cursors report each page statement of the source table after it has run.
"""

from __future__ import annotations

import itertools
import random
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy import text

from bodyfriend_assets.catalog import LegacyTable
from bodyfriend_assets.extraction.engine import extract_to_lv0
from bodyfriend_assets.extraction.lv0_writer import Lineage
from bodyfriend_assets_tests.pages import page_observing_engine

WINDOW_START = datetime(2024, 3, 5)
WINDOW_END = datetime(2024, 3, 6)
FIRST_TS = datetime(2024, 3, 5, 1, 0, 0, 123000)
TIMESTAMPS = [FIRST_TS + timedelta(minutes=30 * k) for k in range(40)]  # 01:00 .. 20:30
ROWS_PER_TS = 500
SEEDED = ROWS_PER_TS * len(TIMESTAMPS)
PAGE_SIZE = 100
# Back-dated commits: one inside the window but before every seeded row (so behind the reader
# from its first page on), one in the previous day's last half hour (only a look-back reaches it).
BACKDATED_IN_WINDOW = datetime(2024, 3, 5, 0, 30, 0, 500000)
BACKDATED_BEFORE_WINDOW = datetime(2024, 3, 4, 23, 30, 0, 250000)
LOOKBACK_FOR_RERUN = 60

COLUMNS = "order_no, updt_dt, cust_nm, amt, memo"

READERS = ["copy", "dbapi"]

ENTRY = LegacyTable(
    database="RENTAL",
    table="R_ORDER_CONTRACT_ADD",
    keys=["ORDER_NO"],
    mode="incremental",
    cursor="UPDT_DT",
    page_size=PAGE_SIZE,
    lookback_minutes=0,
)


# -- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def legacy(legacy_url):
    engine = sa.create_engine(legacy_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA rental"))
        conn.execute(
            text(
                """
                CREATE TABLE rental.r_order_contract_add (
                    order_no varchar(20) PRIMARY KEY,
                    updt_dt  timestamp(3) NOT NULL,
                    cust_nm  varchar(50),
                    amt      numeric(12, 2),
                    memo     text
                )
                """
            )
        )
        conn.execute(
            text("CREATE INDEX ix_r_order_contract_add_updt ON rental.r_order_contract_add (updt_dt, order_no)")
        )
        # Keys '02', '82', 'K2', 'ON' round-robin, so 'HI' keys inserted later land mid-group.
        conn.execute(
            text(
                f"""
                INSERT INTO rental.r_order_contract_add ({COLUMNS})
                SELECT (CAST(:prefixes AS text[]))[1 + i % 4] || lpad(i::text, 8, '0'),
                       CAST(:first_ts AS timestamp(3)) + (i / :per_ts) * interval '30 minutes',
                       '고객 ' || i,
                       round(i * 1.25, 2),
                       CASE WHEN i % 97 = 0 THEN E'메모\\t' || i || E'\\n끝 ' END
                FROM generate_series(0, :n - 1) AS i
                """
            ),
            {
                "prefixes": ["02", "82", "K2", "ON"],
                "first_ts": FIRST_TS,
                "per_ts": ROWS_PER_TS,
                "n": SEEDED,
            },
        )
        # Rows outside every window used here: they must never reach lv0.
        conn.execute(
            text(
                f"INSERT INTO rental.r_order_contract_add ({COLUMNS}) VALUES "
                "(:a, :ta, 'outside', 1, NULL), (:b, :tb, 'outside', 2, NULL)"
            ),
            {
                "a": "02OUT00001",
                "ta": WINDOW_START - timedelta(hours=3),
                "b": "ONOUT00002",
                "tb": WINDOW_END,
            },
        )
    yield engine
    engine.dispose()


@pytest.fixture
def datahub(datahub_url):
    engine = sa.create_engine(datahub_url)
    yield engine
    engine.dispose()


def source_rows(engine, start, end) -> dict:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                f"SELECT {COLUMNS} FROM rental.r_order_contract_add "
                "WHERE updt_dt >= :start AND updt_dt < :end"
            ),
            {"start": start, "end": end},
        ).all()
    return {r[0]: tuple(r) for r in rows}


def lv0_rows(engine) -> dict:
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {COLUMNS} FROM lv0.r_order_contract_add")).all()
    keyed = {r[0]: tuple(r) for r in rows}
    assert len(keyed) == len(rows), "lv0 holds a key twice"
    return keyed


def lineage(run_id: str) -> Lineage:
    return Lineage(datetime.now(timezone.utc), run_id, "2024-03-05")


def observed_engine(url, on_page: Callable[[int], None]) -> sa.engine.Engine:
    """A legacy engine whose cursors call ``on_page(n)`` once the n-th page query has run.

    Page queries are the source table's ``... LIMIT`` statements, whether executed for rows
    (dbapi reader) or wrapped in ``COPY (...) TO STDOUT`` (copy reader).
    """
    counter = itertools.count(1)
    lock = threading.Lock()

    def page_read() -> None:
        with lock:
            n = next(counter)
        on_page(n)

    return page_observing_engine(url, "rental.r_order_contract_add", page_read)


class ConcurrentWriter(threading.Thread):
    """Commits one row at a time until stopped, the way ERP screens write.

    Two of every three rows get an 'HI' key on one of the seeded timestamps (mid-page, ahead of
    or behind the reader); every third row is back-dated.
    """

    def __init__(self, url):
        super().__init__(daemon=True)
        self.url = url
        self.stop = threading.Event()
        self.running = threading.Event()
        self.committed = 0
        self.inserted: list[tuple[str, datetime]] = []
        self.error: BaseException | None = None

    def run(self):
        rng = random.Random(20240305)
        engine = sa.create_engine(self.url)
        insert = text(
            f"INSERT INTO rental.r_order_contract_add ({COLUMNS}) "
            "VALUES (:order_no, :updt_dt, :cust_nm, :amt, NULL)"
        )
        try:
            with engine.connect() as conn:
                self.running.set()
                n = 0
                while not self.stop.is_set():
                    if n % 3 == 2:
                        when = BACKDATED_IN_WINDOW if n % 2 else BACKDATED_BEFORE_WINDOW
                    else:
                        when = rng.choice(TIMESTAMPS)
                    key = f"HI{n:08d}"
                    conn.execute(
                        insert, {"order_no": key, "updt_dt": when, "cust_nm": f"신규 {n}", "amt": n}
                    )
                    conn.commit()
                    self.inserted.append((key, when))
                    self.committed += 1
                    n += 1
        except BaseException as err:  # surfaced by the test
            self.error = err
            self.running.set()
        finally:
            engine.dispose()

    def __enter__(self):
        self.start()
        assert self.running.wait(30)
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.join(30)
        assert not self.is_alive()
        if self.error is not None:
            raise self.error


def extract_while_writing(legacy, datahub, legacy_url, reader: str):
    """One keyset extraction of the 2024-03-05 window with the writer committing throughout.

    Returns the pre-existing rows, the result, the writer, and the writer's commit count at each
    page.
    """
    before = source_rows(legacy, WINDOW_START, WINDOW_END)
    assert len(before) == SEEDED
    commits_at_page: list[int] = []
    with ConcurrentWriter(legacy_url) as writer:
        observed = observed_engine(legacy_url, lambda n: commits_at_page.append(writer.committed))
        try:
            result = extract_to_lv0(
                ENTRY,
                observed,
                datahub,
                start=WINDOW_START,
                end=WINDOW_END,
                lineage=lineage("run-1"),
                reader=reader,
            )
        finally:
            observed.dispose()
    return before, result, writer, commits_at_page


# -- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", READERS)
def test_rows_inserted_mid_extraction_are_neither_lost_nor_duplicated(legacy, datahub, legacy_url, reader):
    before, result, writer, commits_at_page = extract_while_writing(legacy, datahub, legacy_url, reader)

    # The read really was many pages and the writer really committed between its first and
    # last page.
    assert len(commits_at_page) >= SEEDED // PAGE_SIZE
    assert result.pages >= SEEDED // PAGE_SIZE
    committed_during_read = commits_at_page[-1] - commits_at_page[0]
    assert committed_during_read > 0
    assert any(when in TIMESTAMPS for _, when in writer.inserted)

    loaded = lv0_rows(datahub)
    missing = sorted(set(before) - set(loaded))
    assert not missing, f"{len(missing)} pre-existing rows lost, e.g. {missing[:5]}"
    changed = [k for k in before if loaded[k] != before[k]]
    assert not changed, f"pre-existing rows altered, e.g. {changed[:5]}"

    # Every row was read once: rows read == distinct keys that reached lv0 (which was empty).
    assert result.rows == len(loaded)
    # Whatever new rows the read caught are exact copies, and nothing outside the window came in.
    after = source_rows(legacy, WINDOW_START, WINDOW_END)
    assert set(loaded) <= set(after)
    assert all(loaded[k] == after[k] for k in loaded)
    assert all(k.startswith("HI") for k in set(loaded) - set(before))


@pytest.mark.parametrize("reader", READERS)
def test_offset_paging_under_the_same_inserts_repeats_pre_existing_rows(legacy, datahub, legacy_url, reader):
    """Control: the hazard is real. Identical inserts between the same pages, read two ways."""
    before = source_rows(legacy, WINDOW_START, WINDOW_END)
    writer_engine = sa.create_engine(legacy_url)
    counter = itertools.count()

    def insert_behind_the_reader(page: int) -> int:
        """After pages 10, 60 and 150, commit rows that sort before everything read so far."""
        if page not in (10, 60, 150):
            return 0
        with writer_engine.begin() as conn:
            for when in (FIRST_TS, FIRST_TS, FIRST_TS, BACKDATED_IN_WINDOW, TIMESTAMPS[1]):
                n = next(counter)
                conn.execute(
                    text(
                        f"INSERT INTO rental.r_order_contract_add ({COLUMNS}) "
                        "VALUES (:k, :t, :c, :a, NULL)"
                    ),
                    {"k": f"HI{n:08d}", "t": when, "c": f"신규 {n}", "a": n},
                )
        return 5

    try:
        # Positional paging, the way the old DAG read: ORDER BY ... OFFSET n.
        offset_inserted = 0
        read: list[str] = []
        with legacy.connect() as conn:
            page = 0
            while True:
                rows = conn.execute(
                    text(
                        "SELECT order_no FROM rental.r_order_contract_add "
                        "WHERE updt_dt >= :start AND updt_dt < :end "
                        "ORDER BY updt_dt, order_no LIMIT :limit OFFSET :offset"
                    ),
                    {"start": WINDOW_START, "end": WINDOW_END, "limit": PAGE_SIZE, "offset": page * PAGE_SIZE},
                ).scalars().all()
                conn.rollback()
                if not rows:
                    break
                read.extend(rows)
                page += 1
                offset_inserted += insert_behind_the_reader(page)
        assert offset_inserted == 15
        seen: set[str] = set()
        repeated = set()
        for key in read:
            (repeated if key in seen else seen).add(key)
        repeated_pre_existing = repeated & set(before)
        lost_pre_existing = set(before) - seen
        assert repeated_pre_existing or lost_pre_existing
        # Each row committed behind the reader pushes one already-read row onto the next page.
        assert len(repeated_pre_existing) == offset_inserted

        # The keyset engine under the identical schedule of inserts.
        keyset_inserted = []
        observed = observed_engine(legacy_url, lambda n: keyset_inserted.append(insert_behind_the_reader(n)))
        try:
            result = extract_to_lv0(
                ENTRY,
                observed,
                datahub,
                start=WINDOW_START,
                end=WINDOW_END,
                lineage=lineage("run-k"),
                reader=reader,
            )
        finally:
            observed.dispose()
        assert sum(keyset_inserted) == 15
    finally:
        writer_engine.dispose()

    loaded = lv0_rows(datahub)
    assert set(before) <= set(loaded)
    assert all(loaded[k] == before[k] for k in before)
    assert result.rows == len(loaded)


@pytest.mark.parametrize("reader", READERS)
def test_a_second_run_after_concurrent_inserts_picks_up_back_dated_rows(legacy, datahub, legacy_url, reader):
    before, first, writer, commits_at_page = extract_while_writing(legacy, datahub, legacy_url, reader)
    assert commits_at_page[-1] - commits_at_page[0] > 0

    backdated = {k for k, when in writer.inserted if when in (BACKDATED_IN_WINDOW, BACKDATED_BEFORE_WINDOW)}
    assert any(when == BACKDATED_BEFORE_WINDOW for _, when in writer.inserted)
    after_first = lv0_rows(datahub)
    missed = backdated - set(after_first)
    # The hazard the look-back exists for: back-dated commits the first pass could not see.
    assert missed

    rerun_entry = LegacyTable.model_validate(
        {**ENTRY.model_dump(by_alias=True), "lookback_minutes": LOOKBACK_FOR_RERUN}
    )
    second = extract_to_lv0(
        rerun_entry,
        legacy,
        datahub,
        start=WINDOW_START,
        end=WINDOW_END,
        lineage=lineage("run-2"),
        reader=reader,
    )

    window_start = WINDOW_START - timedelta(minutes=LOOKBACK_FOR_RERUN)
    expected = source_rows(legacy, window_start, WINDOW_END)
    loaded = lv0_rows(datahub)
    assert loaded == expected
    assert backdated <= set(loaded)
    assert "02OUT00001" not in loaded and "ONOUT00002" not in loaded
    # Only what the first pass missed was written; rows it already had were left alone.
    assert second.rows_changed == len(set(expected) - set(after_first))
    assert second.rows == len(expected)
    with datahub.connect() as conn:
        untouched = conn.execute(
            text("SELECT count(*) FROM lv0.r_order_contract_add WHERE _run_id = 'run-1'")
        ).scalar_one()
    assert untouched == len(after_first)
