"""The synthetic legacy database: shape, messiness, references and determinism."""

from __future__ import annotations

import datetime as dt
import re

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import aggregate_order_by

from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.demo.generator import seed_legacy
from bodyfriend_assets.demo.legacy_schema import (
    CODE_COLUMNS,
    TABLES,
    sqlalchemy_table,
    table_columns,
)

ROWS = 2000
START = dt.date(2024, 3, 4)
DAYS = 5
INCREMENTAL = [t for t in load_catalog().tables if t.mode == "incremental"]


@pytest.fixture(scope="module")
def seeded(make_database):
    url = make_database("legacy")
    written = seed_legacy(url, ROWS, start=START, days=DAYS)
    engine = sa.create_engine(url)
    yield engine, written
    engine.dispose()


@pytest.fixture(scope="module")
def db(seeded):
    return seeded[0]


def rows(engine, query, **params):
    with engine.connect() as conn:
        return conn.execute(sa.text(query) if isinstance(query, str) else query, params).all()


def value(engine, query, **params):
    return rows(engine, query, **params)[0][0]


def table(name: str) -> sa.Table:
    return sqlalchemy_table(name)


def not_blank(column):
    return sa.and_(column.is_not(None), sa.func.trim(sa.cast(column, sa.Text)) != "")


def test_every_catalog_table_exists_with_the_catalog_keys_as_primary_key(db):
    inspector = sa.inspect(db)
    for entry in load_catalog().tables:
        columns = [c["name"] for c in inspector.get_columns(entry.name, schema=entry.source_schema)]
        assert columns == [c.pg_name for c in table_columns(entry.qualified_name)]
        primary_key = inspector.get_pk_constraint(entry.name, schema=entry.source_schema)
        assert primary_key["constrained_columns"] == list(entry.key_columns), entry.qualified_name


def test_the_four_large_tables_have_the_column_counts_of_the_real_ones(db):
    inspector = sa.inspect(db)
    counts = {
        name: len(inspector.get_columns(name, schema="rental"))
        for name in ("r_order_contract", "r_service_receipt", "r_order_contract_add", "v_customer")
    }
    assert counts == {
        "r_order_contract": 83,
        "r_service_receipt": 86,
        "r_order_contract_add": 64,
        "v_customer": 43,
    }


def test_every_table_is_filled_large_tables_with_rows_and_medium_ones_with_a_quarter(seeded):
    engine, written = seeded
    assert set(written) == set(TABLES)
    for name, count in written.items():
        assert value(engine, sa.select(sa.func.count()).select_from(table(name))) == count > 0
        size = TABLES[name].rows
        if size == "large":
            assert count == ROWS, name
        elif size == "medium":
            assert count == ROWS // 4, name


def test_order_numbers_carry_all_five_prefixes_and_every_day_spans_them(db):
    prefixes = rows(db, "SELECT DISTINCT left(order_no, 2) FROM rental.r_order_contract")
    assert sorted(p for (p,) in prefixes) == ["02", "82", "HI", "K2", "ON"]
    per_day = rows(db, """
        SELECT substr(order_no, 3, 6), count(DISTINCT left(order_no, 2))
        FROM rental.r_order_contract GROUP BY 1
    """)
    assert len(per_day) == DAYS and all(n == 5 for _, n in per_day)
    assert all(re.fullmatch(r"(02|82|HI|K2|ON)\d{11}", o) for (o,) in rows(
        db, "SELECT order_no FROM rental.r_order_contract"))


def test_cursor_values_fall_inside_the_window_with_insert_before_update(db):
    start = dt.datetime.combine(START, dt.time())
    end = start + dt.timedelta(days=DAYS)
    for entry in INCREMENTAL:
        t = table(entry.qualified_name)
        lowest, highest, misordered, nulls = rows(db, sa.select(
            sa.func.least(sa.func.min(t.c.insrt_dt), sa.func.min(t.c.updt_dt)),
            sa.func.greatest(sa.func.max(t.c.insrt_dt), sa.func.max(t.c.updt_dt)),
            sa.func.count().filter(t.c.insrt_dt > t.c.updt_dt),
            sa.func.count().filter(t.c.updt_dt.is_(None)),
        ))[0]
        assert start <= lowest and highest < end, entry.qualified_name
        assert misordered == 0 and nulls == 0, entry.qualified_name


def test_many_rows_share_one_cursor_timestamp_in_datetime_steps(db):
    for entry in INCREMENTAL:
        t = table(entry.qualified_name)
        total = value(db, sa.select(sa.func.count()).select_from(t))
        busiest = value(db, sa.select(sa.func.count()).select_from(t).group_by(t.c.updt_dt)
                        .order_by(sa.func.count().desc()).limit(1))
        assert busiest >= max(10, total // 50), entry.qualified_name
        milliseconds = sa.cast(sa.extract("milliseconds", t.c.updt_dt) * 1000, sa.Integer) % 10
        endings = {e for (e,) in rows(db, sa.select(milliseconds).distinct())}
        assert endings <= {0, 3, 7}, entry.qualified_name
    on_batch_stamps = value(db, """
        SELECT sum(n) FROM (SELECT count(*) AS n FROM rental.r_order_contract
                            GROUP BY updt_dt ORDER BY n DESC LIMIT 12) AS top
    """)
    assert on_batch_stamps >= ROWS * 0.2


def test_optional_text_holds_both_empty_strings_and_nulls(db):
    contracts = table("RENTAL.R_ORDER_CONTRACT")
    for column in ("remark", "acct_no", "lounge_cd", "cancel_dt"):
        nulls, empties = rows(db, sa.select(
            sa.func.count().filter(contracts.c[column].is_(None)),
            sa.func.count().filter(sa.func.trim(contracts.c[column]) == ""),
        ))[0]
        assert nulls > 0 and empties > 0, column


def test_text_is_korean_and_as_messy_as_the_erp(db):
    names = [n for (n,) in rows(db, "SELECT cust_nm FROM rental.v_customer")]
    assert all(re.fullmatch(r"[가-힣]{2,5} ?", n) for n in names)
    assert any(n.endswith(" ") for n in names), "some names carry a trailing space"
    assert all(re.fullmatch(r"[가-힣]+(특별시|광역시|특별자치시|특별자치도|도) .+[동읍]", a)
               for (a,) in rows(db, "SELECT addr1 FROM rental.v_customer"))
    # CHAR(n) pads: five-digit postal codes in CHAR(6), codes in CHAR(4).
    assert value(db, "SELECT count(*) FROM rental.v_customer WHERE octet_length(zip_cd) <> 6") == 0
    assert value(db, "SELECT bool_and(zip_cd::text ~ '^[0-9]{5}$') FROM rental.v_customer")
    assert value(db, "SELECT bool_and(octet_length(order_status_cd) = 4 "
                     "AND length(order_status_cd) = 2) FROM rental.r_order_contract")
    memos = "\n".join(m for (m,) in rows(db, "SELECT DISTINCT remark FROM rental.r_order_contract "
                                              "WHERE remark IS NOT NULL"))
    for character in (",", "'", '"', "\t", "\n", "\\"):
        assert character in memos, repr(character)
    assert value(db, "SELECT bool_and(cont_dt ~ '^20[0-9]{6}$') FROM rental.r_order_contract")
    flags = rows(db, "SELECT DISTINCT use_yn FROM rental.r_order_contract")
    assert {flag for (flag,) in flags} == {"Y", "N"}
    assert value(db, "SELECT count(*) FROM rental.r_order_contract "
                     "WHERE discount_rate <> trunc(discount_rate, 0)") > 0


def test_fn_dec_turns_the_stored_phone_numbers_back_into_phone_numbers(db):
    phone = re.compile(r"0\d{1,2}-?\d{3,4}-?\d{4}")
    pairs = rows(db, """
        SELECT tel_no, rental.fn_dec(tel_no), hand_tel_no, rental.fn_dec(hand_tel_no)
        FROM rental.r_service_receipt
    """)
    decrypted = 0
    for stored_tel, tel, stored_hand, hand in pairs:
        for stored, plain in ((stored_tel, tel), (stored_hand, hand)):
            if stored is None or stored == "":
                assert plain == stored
            else:
                assert not phone.fullmatch(stored), "phone numbers are stored encrypted"
                assert phone.fullmatch(plain), plain
                decrypted += 1
    assert decrypted > ROWS
    assert rows(db, "SELECT rental.fn_dec(NULL), rental.fn_dec('')") == [(None, "")]


def test_every_contract_customer_exists_in_v_customer(db):
    assert value(db, """
        SELECT count(*) FROM rental.r_order_contract AS o
        WHERE NOT EXISTS (SELECT 1 FROM rental.v_customer AS c WHERE c.cust_no = o.cust_no)
    """) == 0


def test_rows_about_a_contract_agree_with_the_contract(db):
    assert value(db, """
        SELECT count(*) FROM rental.r_service_receipt AS r
        LEFT JOIN rental.r_order_contract AS o USING (order_no)
        WHERE o.order_no IS NULL OR r.cust_no <> o.cust_no OR r.goods_cd <> o.goods_cd
    """) == 0
    assert value(db, """
        SELECT count(*) FROM rental.r_service_evaluation AS e
        JOIN rental.r_service_receipt AS r USING (receipt_no)
        WHERE e.order_no <> r.order_no OR e.cust_no <> r.cust_no
    """) == 0
    assert value(db, """
        SELECT count(*) FROM rental.v_home_care AS h
        JOIN rental.r_order_contract AS o USING (order_no)
        WHERE h.cont_dt <> o.cont_dt OR h.cust_no <> o.cust_no
    """) == 0


def test_every_referencing_column_points_at_an_existing_row(db):
    checked = 0
    for name, stand_in in TABLES.items():
        source = table(name)
        for column in stand_in.columns:
            if column.kind not in ("ref", "pick"):
                continue
            target_name, target_column = column.arg.split(".")
            target = table(target_name).alias("target")
            here, there = source.c[column.pg_name], target.c[target_column.lower()]
            dangling = sa.select(sa.func.count()).select_from(source).where(
                not_blank(here), ~sa.exists().where(there == here)
            )
            assert value(db, dangling) == 0, f"{name}.{column.name} -> {column.arg}"
            checked += 1
    assert checked > 50


def test_code_columns_hold_minor_codes_of_their_major(db):
    minor = table("UNIERP5.B_MINOR")
    for (name, column_name), major_cd in CODE_COLUMNS.items():
        codes = table(name).c[column_name.lower()]
        unknown = sa.select(sa.func.count()).select_from(codes.table).where(
            not_blank(codes),
            ~sa.exists().where(minor.c.major_cd == major_cd, minor.c.minor_cd == codes),
        )
        assert value(db, unknown) == 0, f"{name}.{column_name} ({major_cd})"
        distinct = value(db, sa.select(sa.func.count(sa.distinct(codes))).select_from(codes.table))
        assert distinct > 1, f"{name}.{column_name} uses one code only"


def test_code_columns_name_documented_majors(db):
    majors = {m for (m,) in rows(db, "SELECT major_cd FROM unierp5.b_major")}
    assert set(CODE_COLUMNS.values()) <= majors
    assert CODE_COLUMNS[("RENTAL.R_ORDER_CONTRACT", "ORDER_STATUS_CD")] == "R1001"


def checksum(engine, name: str) -> str:
    entry = load_catalog().by_name(name)
    t = table(name)
    row_text = sa.cast(sa.func.row(*t.c), sa.Text)
    separator = aggregate_order_by(sa.literal("|", sa.Text), *(t.c[k] for k in entry.key_columns))
    return value(engine, sa.select(sa.func.md5(sa.func.string_agg(row_text, separator))))


def test_the_same_seed_gives_the_same_data_and_another_seed_other_data(legacy_url):
    engine = sa.create_engine(legacy_url)
    try:
        tables = ["RENTAL.R_SERVICE_RECEIPT", "unierp5.b_minor"]
        assert seed_legacy(legacy_url, 300, tables=tables) == {
            "RENTAL.R_SERVICE_RECEIPT": 300,
            "UNIERP5.B_MINOR": TABLES["UNIERP5.B_MINOR"].rows,
        }
        first = checksum(engine, "RENTAL.R_SERVICE_RECEIPT")
        seed_legacy(legacy_url, 300, tables=["r_service_receipt"])
        assert checksum(engine, "RENTAL.R_SERVICE_RECEIPT") == first
        seed_legacy(legacy_url, 300, tables=["r_service_receipt"], seed=8)
        assert checksum(engine, "RENTAL.R_SERVICE_RECEIPT") != first
    finally:
        engine.dispose()


def test_a_table_seeded_alone_matches_the_same_table_seeded_with_all(seeded, legacy_url):
    engine, _ = seeded
    alone = sa.create_engine(legacy_url)
    try:
        seed_legacy(legacy_url, ROWS, start=START, days=DAYS, tables=["RENTAL.R_ORDER_CONTRACT"])
        name = "RENTAL.R_ORDER_CONTRACT"
        assert checksum(alone, name) == checksum(engine, name)
    finally:
        alone.dispose()


def test_only_postgresql_urls_are_accepted():
    with pytest.raises(ValueError, match="PostgreSQL"):
        seed_legacy("mssql+pymssql://user:secret@erp/RENTAL")
