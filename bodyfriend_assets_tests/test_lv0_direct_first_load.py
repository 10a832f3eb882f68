"""A first incremental load COPYs its pages straight into the empty lv0 table, with the lineage
fields appended in Python; what it writes is exactly what the general way (staging and upsert)
writes, and a page it cannot write so goes the general way."""

import threading
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa

from bodyfriend_assets.catalog import LegacyTable
from bodyfriend_assets.extraction.copy_text import RowEncoder
from bodyfriend_assets.extraction.engine import extract_to_lv0, open_source
from bodyfriend_assets.extraction.lv0_writer import FloatingRows, Lineage, Lv0Load, Lv0WriteError
from bodyfriend_assets.partitions import FIRST_PARTITION_START, last_partition_of
from bodyfriend_assets_tests.conftest import rows

ENTRY = LegacyTable(database="RENTAL", table="R_FIRST", keys=["SEQ"], mode="incremental",
                    cursor="INSRT_DT", page_size=3)
# Floating rows start in the middle of a day: that day's rows are placed one by one.
FLOATING_FROM = datetime(2024, 3, 6, 12, 30)
CURSORS = [
    None,  # floating
    datetime(2023, 12, 31, 23, 0),  # before the first partition: in the first
    datetime(2024, 1, 1, 0, 0),
    datetime(2024, 3, 5, 10, 0, 0, 123000),
    datetime(2024, 3, 6, 12, 29, 59, 999000),  # the floating day, before FLOATING_FROM
    datetime(2024, 3, 6, 12, 30),  # floating
    datetime(2024, 3, 7, 1, 0),  # floating
    datetime(9999, 12, 31),  # the ERP's placeholder: floating
]
MEMOS = ["tab\there", "line\nbreak", "back\\slash", "\\N", "", None, "홍길동", "plain"]
COLUMNS = "seq, memo, amt, insrt_dt, _loaded_at, _run_id, _partition"


@pytest.fixture
def first_source(legacy_url):
    engine = sa.create_engine(legacy_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA rental")
        conn.exec_driver_sql("CREATE TABLE rental.r_first (seq integer PRIMARY KEY, memo varchar(40), "
                             "amt numeric(18, 4), insrt_dt timestamp(3))")
        conn.execute(sa.text("INSERT INTO rental.r_first VALUES (:seq, :memo, :amt, :at)"), [
            {"seq": i, "memo": memo, "amt": f"{i}.0001", "at": at}
            for i, (memo, at) in enumerate(zip(MEMOS, CURSORS), start=1)
        ])
    engine.dispose()
    return legacy_url


def _rows(url, sql):
    return [tuple(row) for row in rows(url, sql)]


def _load(legacy, hub, reader, lineage):
    return extract_to_lv0(ENTRY, legacy, hub, start=FIRST_PARTITION_START, end=FLOATING_FROM,
                          floating_from=FLOATING_FROM, reader=reader, lineage=lineage)


@pytest.mark.parametrize("reader", ["dbapi", "copy"])
def test_a_first_load_written_straight_into_lv0_holds_what_the_merge_writes(first_source, datahub_url, reader):
    legacy, hub = sa.create_engine(first_source), sa.create_engine(datahub_url)
    lineage = Lineage(datetime(2024, 3, 7, 1, 2, 3, 456789, tzinfo=timezone.utc), "run\tfirst", "2024-03-06")
    direct = _load(legacy, hub, reader, lineage)
    straight = _rows(datahub_url, f"SELECT {COLUMNS} FROM lv0.r_first ORDER BY seq")
    assert direct.rows == direct.rows_changed == len(CURSORS)
    floating = last_partition_of(FLOATING_FROM)
    assert [row[-1] for row in straight] == [
        floating, "2024-01-01", "2024-01-01", "2024-03-05", "2024-03-06", floating, floating, floating,
    ]

    # lv0 holding a row, the same load goes the general way: staging, then the upsert.
    rows(datahub_url, "DELETE FROM lv0.r_first WHERE seq <> 1")
    merged = _load(legacy, hub, reader, lineage)
    assert merged.rows_changed == len(CURSORS) - 1  # row 1 was unchanged, so untouched
    assert _rows(datahub_url, f"SELECT {COLUMNS} FROM lv0.r_first ORDER BY seq") == straight
    legacy.dispose()
    hub.dispose()


@pytest.mark.parametrize("appended_ahead", [False, True])
def test_a_key_read_twice_on_a_first_load_keeps_its_newest_version_and_counts_once(
    first_source, datahub_url, appended_ahead
):
    """A row whose cursor moved during the read arrives in two pages; the second page cannot be
    COPYed into lv0 (the key is there), so it and the pages after it are merged. With
    ``appended_ahead`` every page's lineage fields were appended before the first was written
    (the reader thread works ahead of the writer, which keeps only that text): the pages merged
    are the same rows, without those fields."""
    legacy, hub = sa.create_engine(first_source), sa.create_engine(datahub_url)
    source, _, _ = open_source(ENTRY, legacy, FIRST_PARTITION_START, FLOATING_FROM, FLOATING_FROM)
    encoder = RowEncoder([c.lv0_type for c in source.columns])
    pages = [
        [(1, "old", 1, datetime(2024, 3, 1, 9)), (2, "two", 2, datetime(2024, 3, 2, 9))],
        [(3, "three", 3, datetime(2024, 3, 3, 9)), (1, "new", 10, datetime(2024, 3, 4, 9))],
        [(4, "fo\tur\\", 4, datetime(2024, 3, 5, 9))],
    ]
    with hub.connect() as conn:
        load = Lv0Load(conn, source, Lineage(datetime.now(timezone.utc), "r\tun", "2024-03-05"),
                       FloatingRows(FLOATING_FROM, "2024-03-05"))
        texts = [encoder.encode_page(page) for page in pages]
        if appended_ahead:
            texts = [load.with_lineage(text) for text in texts]
        for text in texts:
            load.write_page(text, appended_ahead)
        assert load.direct_pages == 1
        assert load.finish() == 4
    assert _rows(datahub_url, "SELECT seq, memo, amt::int, _partition FROM lv0.r_first ORDER BY seq") == [
        (1, "new", 10, "2024-03-04"), (2, "two", 2, "2024-03-02"), (3, "three", 3, "2024-03-03"),
        (4, "fo\tur\\", 4, "2024-03-05"),
    ]
    legacy.dispose()
    hub.dispose()


def test_a_load_into_an_lv0_table_holding_rows_merges_every_page(first_source, datahub_url):
    legacy, hub = sa.create_engine(first_source), sa.create_engine(datahub_url)
    lineage = Lineage(datetime.now(timezone.utc), "r", "2024-03-06")
    _load(legacy, hub, "copy", lineage)
    source, _, _ = open_source(ENTRY, legacy, FIRST_PARTITION_START, FLOATING_FROM, FLOATING_FROM)
    encoder = RowEncoder([c.lv0_type for c in source.columns])
    with hub.connect() as conn:
        later = Lineage(datetime.now(timezone.utc), "r2", "2024-03-06")
        load = Lv0Load(conn, source, later, FloatingRows(FLOATING_FROM, "2024-03-06"))
        load.write_page(encoder.encode_page([(1, "changed", 1, datetime(2024, 3, 5, 11))]))
        assert load.direct_pages == 0
        assert load.finish() == 1
    assert _rows(datahub_url, "SELECT memo, _partition FROM lv0.r_first WHERE seq = 1") == [("changed", "2024-03-05")]
    legacy.dispose()
    hub.dispose()


@pytest.mark.parametrize("reader", ["dbapi", "copy"])
def test_a_row_lv0_refuses_on_a_first_load_fails_it_naming_the_table_and_leaves_lv0_as_it_was(
    first_source, datahub_url, reader
):
    legacy, hub = sa.create_engine(first_source), sa.create_engine(datahub_url)
    lineage = Lineage(datetime.now(timezone.utc), "r", "2024-03-06")
    _load(legacy, hub, reader, lineage)
    # Empty again, so the next load writes straight into lv0, which now refuses amounts of 5 or more.
    rows(datahub_url, "DELETE FROM lv0.r_first")
    rows(datahub_url, "ALTER TABLE lv0.r_first ADD CONSTRAINT small_amounts CHECK (amt < 5)")
    threads_before = set(threading.enumerate())
    with pytest.raises(Lv0WriteError) as refused:
        _load(legacy, hub, reader, Lineage(datetime.now(timezone.utc), "r2", "2024-03-06"))
    message = str(refused.value)
    assert "RENTAL.R_FIRST" in message and "constraint small_amounts" in message
    assert "5.0001" not in message  # the error names the constraint, never the row's values
    assert rows(datahub_url, "SELECT count(*) FROM lv0.r_first") == [(0,)]
    assert set(threading.enumerate()) <= threads_before  # the reader's threads ended with the load
    legacy.dispose()
    hub.dispose()
