"""Values arrive in lv0 exactly as the source holds them, compared value by value."""

import uuid
from datetime import date, datetime, time, timezone
from decimal import Decimal

import pytest
import sqlalchemy as sa

from bodyfriend_assets.catalog import LegacyTable
from bodyfriend_assets.extraction.copy_text import RowEncoder
from bodyfriend_assets.extraction.engine import extract_to_lv0, open_source
from bodyfriend_assets.extraction.lv0_writer import Lineage, Lv0Load

NASTY_TEXT = [
    "홍길동",
    "서울특별시 강남구 테헤란로 123, 4층 (역삼동)",
    "",
    None,
    "trailing spaces   ",
    "   leading",
    'double "quotes" and \'single\'',
    "comma, separated, values",
    "tab\tinside",
    "line one\nline two\r\nline three",
    "back\\slash \\N \\t literal",
    "\\",
    "emoji 😀 and hanja 漢字",
    "\\N",
]

ENTRY = LegacyTable(
    database="RENTAL",
    table="R_FIDELITY",
    keys=["SEQ"],
    mode="snapshot",
    page_size=4,
    expressions=[{"name": "DEC_MEMO", "function": "FN_DEC", "argument": "MEMO"}],
)


@pytest.fixture
def fidelity_source(legacy_url):
    engine = sa.create_engine(legacy_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA rental")
        conn.exec_driver_sql(
            "CREATE FUNCTION rental.fn_dec(text) RETURNS text LANGUAGE sql IMMUTABLE AS "
            "$$ SELECT reverse($1) $$"
        )
        conn.exec_driver_sql(
            """CREATE TABLE rental.r_fidelity (
                seq integer PRIMARY KEY, memo varchar(200), code char(6), nmemo text,
                amt numeric(18, 4), money numeric(19, 4), ratio double precision, small real,
                qty smallint, big bigint, flag boolean, cont_dt date, at_time time(3),
                insrt_dt timestamp(3), stamp timestamptz, guid uuid, sign bytea)"""
        )
        rows = []
        for seq, text in enumerate(NASTY_TEXT, start=1):
            rows.append(
                {
                    "seq": seq,
                    "memo": text,
                    "code": None if text is None else "AB",
                    "nmemo": None if text is None else f"{text}|{seq}",
                    "amt": Decimal("-12345678901234.5678") if seq == 1 else Decimal(seq) / 7,
                    "money": Decimal("0.0001") * seq,
                    "ratio": 0.1 + seq / 3,
                    "small": 1.5 * seq,
                    "qty": -seq,
                    "big": 2**62 - seq,
                    "flag": seq % 2 == 0 if seq != 3 else None,
                    "cont_dt": date(2024, 2, 29),
                    "at_time": time(23, 59, 59, 997000),
                    "insrt_dt": datetime(2024, 3, 5, 23, 59, 59, 997000),
                    "stamp": datetime(2024, 3, 5, 14, 59, 59, tzinfo=timezone.utc),
                    "guid": uuid.UUID(int=seq),
                    "sign": bytes(range(seq * 7 % 256)) + b"\x00\\\t\n" if seq != 4 else b"",
                }
            )
        table = sa.Table("r_fidelity", sa.MetaData(), schema="rental", autoload_with=conn)
        conn.execute(table.insert(), rows)
    engine.dispose()
    return legacy_url


def _rows(url, sql):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


@pytest.mark.parametrize("reader", ["dbapi", "copy"])
def test_every_value_arrives_byte_identical(fidelity_source, datahub_url, reader):
    legacy = sa.create_engine(fidelity_source)
    hub = sa.create_engine(datahub_url)
    result = extract_to_lv0(
        ENTRY, legacy, hub, start=None, end=None, reader=reader,
        lineage=Lineage(datetime.now(timezone.utc), "run-fidelity", "2024-03-05"),
    )
    assert result.rows == len(NASTY_TEXT) and result.pages == 4

    columns = ("seq, memo, code, nmemo, amt, money, ratio, small, qty, big, flag, cont_dt, "
               "at_time, insrt_dt, stamp, guid, sign")
    source = _rows(fidelity_source, f"SELECT {columns}, rental.fn_dec(memo) FROM rental.r_fidelity ORDER BY seq")
    copied = _rows(datahub_url, f"SELECT {columns}, dec_memo FROM lv0.r_fidelity ORDER BY seq")
    assert len(copied) == len(source)
    for before, after in zip(source, copied):
        for a, b in zip(before, after):
            a = bytes(a) if isinstance(a, memoryview) else a
            b = bytes(b) if isinstance(b, memoryview) else b
            assert a == b and type(a) is type(b), (before[0], a, b)
    by_seq = {row[0]: row for row in copied}
    assert by_seq[3][1] == "" and by_seq[4][1] is None  # empty string and NULL stay apart
    assert by_seq[3][2] == "AB    "  # CHAR padding kept
    assert by_seq[5][1] == "trailing spaces   "
    assert by_seq[14][1] == "\\N"  # the text "\N" is not NULL
    legacy.dispose()
    hub.dispose()


def test_lv0_column_types_follow_the_documented_map(fidelity_source, datahub_url):
    legacy = sa.create_engine(fidelity_source)
    hub = sa.create_engine(datahub_url)
    extract_to_lv0(ENTRY, legacy, hub, start=None, end=None,
                   lineage=Lineage(datetime.now(timezone.utc), "r", "2024-03-05"))
    types = dict(_rows(datahub_url, "SELECT column_name, data_type FROM information_schema.columns "
                                    "WHERE table_schema = 'lv0' AND table_name = 'r_fidelity'"))
    assert types == {
        "seq": "integer", "memo": "text", "code": "text", "nmemo": "text", "amt": "numeric",
        "money": "numeric", "ratio": "double precision", "small": "real", "qty": "smallint",
        "big": "bigint", "flag": "boolean", "cont_dt": "date", "at_time": "time without time zone",
        "insrt_dt": "timestamp without time zone", "stamp": "timestamp with time zone",
        "guid": "uuid", "sign": "bytea", "dec_memo": "text",
        "_loaded_at": "timestamp with time zone", "_run_id": "text", "_partition": "text",
    }
    legacy.dispose()
    hub.dispose()


def test_nul_characters_are_removed_counted_and_never_fail_the_load(fidelity_source, datahub_url):
    """SQL Server text can hold NUL; PostgreSQL text cannot. The stand-in cannot hold it either,
    so the page is fed to the real writer as the SQL Server driver would return it."""
    legacy = sa.create_engine(fidelity_source)
    hub = sa.create_engine(datahub_url)
    source, reads, _ = open_source(ENTRY, legacy, None, None)
    with legacy.connect() as conn:
        rows = conn.execute(reads[0].page_query(None, 100)).fetchall()
    page = [(row[0], None if row[1] is None else f"\x00{row[1]}\x00x\x00", *row[2:]) for row in rows]
    encoder = RowEncoder()
    with hub.connect() as conn:
        load = Lv0Load(conn, source, Lineage(datetime.now(timezone.utc), "r", "2024-03-05"))
        load.write_page(encoder.encode_page(page))
        load.finish()
    non_null = [t for t in NASTY_TEXT if t is not None]
    assert encoder.nul_characters_removed == 3 * len(non_null)
    copied = dict(_rows(datahub_url, "SELECT seq, memo FROM lv0.r_fidelity"))
    for seq, text in enumerate(NASTY_TEXT, start=1):
        assert copied[seq] == (None if text is None else f"{text}x")
    legacy.dispose()
    hub.dispose()


@pytest.mark.parametrize("reader", ["dbapi", "copy"])
def test_keys_with_escapes_and_korean_page_correctly(legacy_url, datahub_url, reader):
    """The next page starts after the last key as the server returned it, even when that key
    needs COPY escaping (tab, newline, backslash) or sorts by a non-ASCII collation."""
    keys = ["02\t1", "02\\2", "82\n3", "HI 4", "HI 4 ", "K2가", "K2나\\N", "ON'5", "ON\"6", "\\N"]
    engine = sa.create_engine(legacy_url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE SCHEMA rental")
        conn.exec_driver_sql("CREATE TABLE rental.r_keys (order_no varchar(20) PRIMARY KEY, n int)")
        conn.execute(sa.text("INSERT INTO rental.r_keys VALUES (:k, :n)"),
                     [{"k": k, "n": i} for i, k in enumerate(keys)])
    entry = LegacyTable(database="RENTAL", table="R_KEYS", keys=["ORDER_NO"], mode="snapshot", page_size=1)
    hub = sa.create_engine(datahub_url)
    result = extract_to_lv0(entry, engine, hub, start=None, end=None, reader=reader,
                            lineage=Lineage(datetime.now(timezone.utc), "r", "2024-03-05"))
    assert result.rows == len(keys) and result.pages == len(keys)
    copied = _rows(datahub_url, "SELECT order_no, n FROM lv0.r_keys")
    assert sorted(copied) == sorted((k, i) for i, k in enumerate(keys))
    engine.dispose()
    hub.dispose()
