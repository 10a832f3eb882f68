"""Faults during a load: a killed process, a failing source query, a non-unique source key.

Each test first loads lv0 successfully, records every column of every lv0 row (lineage included,
as text), then changes the source so a completed load WOULD change lv0, and makes the next load
fail for real. lv0 must read exactly as before, with no staging or ``__incoming`` table left, and
a plain re-run must complete.
"""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import psycopg2
import pytest
import sqlalchemy as sa
from sqlalchemy import text

from bodyfriend_assets.catalog import LegacyTable
from bodyfriend_assets.extraction.engine import extract_to_lv0
from bodyfriend_assets.extraction.lv0_writer import Lineage, Lv0WriteError
from bodyfriend_assets_tests.pages import page_observing_engine

REPO_ROOT = Path(__file__).resolve().parents[1]
WINDOW_START = datetime(2024, 3, 5)
WINDOW_END = datetime(2024, 3, 6)
FIRST_TS = datetime(2024, 3, 5, 0, 10, 0, 333000)
SEEDED = 20_000
KILL_AFTER_PAGES = 100
CHILD_PAGE_SIZE = 20

ORDERS = LegacyTable(
    database="RENTAL",
    table="R_ORDER_CONTRACT_ADD",
    keys=["ORDER_NO"],
    mode="incremental",
    cursor="UPDT_DT",
    page_size=5000,
    lookback_minutes=0,
)
CODES = LegacyTable(database="RENTAL", table="R_CODE_MST", keys=["CODE"], mode="snapshot", page_size=5000)
ORDER_COLUMNS = "order_no, updt_dt, cust_nm, amt, hp_no_enc"
CODE_COLUMNS = "code, code_nm, use_yn, sort_no"

CHILD = textwrap.dedent(
    """
    import json, os
    from datetime import datetime, timezone

    import sqlalchemy as sa

    from bodyfriend_assets import settings
    from bodyfriend_assets.catalog import LegacyTable
    from bodyfriend_assets.extraction.engine import extract_to_lv0
    from bodyfriend_assets.extraction.lv0_writer import Lineage
    from bodyfriend_assets_tests.pages import page_observing_engine

    entry = LegacyTable.model_validate(json.loads(os.environ["FAULT_ENTRY"]))
    window = json.loads(os.environ["FAULT_WINDOW"])
    progress = open(os.environ["FAULT_PROGRESS"], "a", buffering=1)
    app = os.environ["FAULT_APP"]
    source = f"{entry.source_schema}.{entry.name}"

    legacy = page_observing_engine(
        settings.legacy_url(), source, lambda: progress.write("page\\n"), application_name=app
    )
    datahub = sa.create_engine(settings.datahub_url(), connect_args={"application_name": app})
    extract_to_lv0(
        entry,
        legacy,
        datahub,
        start=window and datetime.fromisoformat(window[0]),
        end=window and datetime.fromisoformat(window[1]),
        lineage=Lineage(datetime.now(timezone.utc), "killed-run", "2024-03-05"),
        page_size=int(os.environ["FAULT_PAGE_SIZE"]),
        reader=os.environ["FAULT_READER"],
    )
    progress.write("done\\n")
    """
)
READERS = ["copy", "dbapi"]


# -- fixtures and helpers -------------------------------------------------------------------


@pytest.fixture
def legacy(legacy_url):
    engine = sa.create_engine(legacy_url)
    with engine.begin() as conn:
        conn.execute(text("CREATE SCHEMA rental"))
    yield engine
    engine.dispose()


@pytest.fixture
def datahub(datahub_url):
    engine = sa.create_engine(datahub_url)
    yield engine
    engine.dispose()


@pytest.fixture
def orders(legacy):
    """RENTAL.R_ORDER_CONTRACT_ADD: 20,000 rows on 2024-03-05, 250 per UPDT_DT value."""
    with legacy.begin() as conn:
        conn.execute(
            text(
                """
                CREATE TABLE rental.r_order_contract_add (
                    order_no  varchar(20) PRIMARY KEY,
                    updt_dt   timestamp(3) NOT NULL,
                    cust_nm   varchar(50),
                    amt       numeric(12, 2),
                    hp_no_enc varchar(40)
                )
                """
            )
        )
        conn.execute(text("CREATE INDEX ix_order_updt ON rental.r_order_contract_add (updt_dt, order_no)"))
        conn.execute(
            text(
                f"""
                INSERT INTO rental.r_order_contract_add ({ORDER_COLUMNS})
                SELECT (CAST(:prefixes AS text[]))[1 + i % 5] || lpad(i::text, 8, '0'),
                       CAST(:first_ts AS timestamp(3)) + (i / 250) * interval '15 minutes',
                       '고객 ' || i || CASE WHEN i % 50 = 0 THEN E'\\t탭' ELSE '' END,
                       round(i * 0.75, 2),
                       'ENC' || lpad(i::text, 10, '0')
                FROM generate_series(0, :n - 1) AS i
                """
            ),
            {"prefixes": ["02", "82", "HI", "K2", "ON"], "first_ts": FIRST_TS, "n": SEEDED},
        )
    return ORDERS


@pytest.fixture
def codes(legacy):
    """RENTAL.R_CODE_MST, a snapshot table of 20,000 codes."""
    with legacy.begin() as conn:
        conn.execute(
            text(
                """
                CREATE TABLE rental.r_code_mst (
                    code    varchar(20) PRIMARY KEY,
                    code_nm varchar(100),
                    use_yn  char(1),
                    sort_no integer
                )
                """
            )
        )
        conn.execute(
            text(
                f"""
                INSERT INTO rental.r_code_mst ({CODE_COLUMNS})
                SELECT (CAST(:prefixes AS text[]))[1 + i % 5] || lpad(i::text, 6, '0'),
                       '코드 ' || i, CASE WHEN i % 7 = 0 THEN 'N' ELSE 'Y' END, i
                FROM generate_series(0, :n - 1) AS i
                """
            ),
            {"prefixes": ["02", "82", "HI", "K2", "ON"], "n": SEEDED},
        )
    return CODES


def lineage(run_id: str) -> Lineage:
    return Lineage(datetime.now(timezone.utc), run_id, "2024-03-05")


def lv0_image(datahub, table: str) -> list[str]:
    """Every lv0 row, all columns (lineage included), as PostgreSQL's own text of the row."""
    with datahub.connect() as conn:
        return conn.execute(
            text(f"SELECT t::text FROM lv0.{table} AS t ORDER BY 1")  # table: a constant below
        ).scalars().all()


def lv0_relations(datahub) -> list[str]:
    """Every relation in lv0, and every staging/incoming relation anywhere (temporary included)."""
    with datahub.connect() as conn:
        return sorted(
            conn.execute(
                text(
                    "SELECT n.nspname || '.' || c.relname FROM pg_class c "
                    "JOIN pg_namespace n ON n.oid = c.relnamespace "
                    "WHERE n.nspname = 'lv0' OR c.relname LIKE :staging OR c.relname LIKE :incoming"
                ),
                {"staging": "\\_staging\\_%", "incoming": "%\\_\\_incoming%"},
            ).scalars()
        )


def source_rows(legacy, sql: str, **params) -> set[tuple]:
    with legacy.connect() as conn:
        return {tuple(r) for r in conn.execute(text(sql), params)}


def lv0_rows(datahub, table: str, columns: str) -> set[tuple]:
    with datahub.connect() as conn:
        rows = conn.execute(text(f"SELECT {columns} FROM lv0.{table}")).all()
    assert len(rows) == len({r[0] for r in rows}), f"lv0.{table} holds a key twice"
    return {tuple(r) for r in rows}


def order_window(legacy) -> set[tuple]:
    return source_rows(
        legacy,
        f"SELECT {ORDER_COLUMNS} FROM rental.r_order_contract_add WHERE updt_dt >= :s AND updt_dt < :e",
        s=WINDOW_START,
        e=WINDOW_END,
    )


def change_orders(legacy) -> None:
    """A busy day on the ERP: many rows updated (some moved later in the day), more inserted."""
    with legacy.begin() as conn:
        updated = conn.execute(
            text(
                "UPDATE rental.r_order_contract_add SET cust_nm = cust_nm || ' 변경', amt = amt + 1, "
                "updt_dt = CASE WHEN right(order_no, 1) = '3' THEN updt_dt + interval '2 hours' "
                "ELSE updt_dt END WHERE right(order_no, 1) IN ('1', '3', '7')"
            )
        ).rowcount
        assert updated > 5000
        conn.execute(
            text(
                f"""
                INSERT INTO rental.r_order_contract_add ({ORDER_COLUMNS})
                SELECT 'HI9' || lpad(i::text, 7, '0'), CAST(:ts AS timestamp(3)) + (i % 40) * interval '1 minute',
                       '신규 ' || i, i, 'ENCNEW' || i
                FROM generate_series(1, 3000) AS i
                """
            ),
            {"ts": datetime(2024, 3, 5, 9, 0, 0, 1000)},
        )


def change_codes(legacy) -> None:
    with legacy.begin() as conn:
        conn.execute(text("UPDATE rental.r_code_mst SET use_yn = 'N', code_nm = code_nm || ' 폐기' WHERE sort_no % 3 = 0"))
        conn.execute(text("DELETE FROM rental.r_code_mst WHERE sort_no % 11 = 0"))
        conn.execute(
            text(
                f"INSERT INTO rental.r_code_mst ({CODE_COLUMNS}) "
                "SELECT 'K9' || lpad(i::text, 6, '0'), '신규 코드 ' || i, 'Y', 100000 + i "
                "FROM generate_series(1, 2000) AS i"
            )
        )


def sessions(datahub, app: str) -> list[tuple]:
    """The child's sessions on the server (both databases), with their transaction state."""
    with datahub.connect() as conn:
        return conn.execute(
            text(
                "SELECT datname, state, xact_start IS NOT NULL FROM pg_stat_activity "
                "WHERE application_name = :app"
            ),
            {"app": app},
        ).all()


def wait_for(condition, what: str, seconds: float = 60.0):
    deadline = time.monotonic() + seconds
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.02)


def kill_mid_load(tmp_path, platform_env, datahub, entry: LegacyTable, window, reader: str) -> None:
    """Run extract_to_lv0 in a child process and SIGKILL it once it is well into its pages."""
    legacy_url, datahub_url = platform_env
    script = tmp_path / "extract_child.py"
    script.write_text(CHILD, encoding="utf-8")
    progress = tmp_path / "progress.log"
    progress.write_text("", encoding="utf-8")
    app = f"fault-child-{os.getpid()}-{time.monotonic_ns()}"
    env = {
        **os.environ,  # BODYFRIEND_LEGACY_URL / BODYFRIEND_DATAHUB_URL from platform_env
        "FAULT_ENTRY": json.dumps(entry.model_dump(mode="json", by_alias=True)),
        "FAULT_WINDOW": json.dumps(window and [w.isoformat() for w in window]),
        "FAULT_PROGRESS": str(progress),
        "FAULT_APP": app,
        "FAULT_PAGE_SIZE": str(CHILD_PAGE_SIZE),
        "FAULT_READER": reader,
        # the child imports this repository's test helpers (bodyfriend_assets_tests.pages)
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    stderr = open(tmp_path / "child_stderr.log", "wb")
    child = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.DEVNULL, stderr=stderr)
    try:

        def pages_read() -> int:
            lines = progress.read_text(encoding="utf-8").split()
            assert "done" not in lines, "the child finished before it could be killed"
            if child.poll() is not None:
                errors = (tmp_path / "child_stderr.log").read_text(encoding="utf-8", errors="replace")
                raise AssertionError(f"child exited early: {errors[-2000:]}")
            return lines.count("page")

        wait_for(lambda: pages_read() >= KILL_AFTER_PAGES, f"{KILL_AFTER_PAGES} pages")
        # Mid-load for real: the child holds an open transaction on the Data Hub right now (its
        # other pooled connection, used to create the schema, sits idle).
        hub_sessions = [s for s in sessions(datahub, app) if s[0] == datahub_url.database]
        assert any(in_xact for _, _, in_xact in hub_sessions), hub_sessions
        os.kill(child.pid, signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(30)
        stderr.close()
    assert "done" not in progress.read_text(encoding="utf-8").split()
    # The server notices the dead client and rolls its transaction back.
    wait_for(lambda: not sessions(datahub, app), "the killed child's sessions to end")


# -- tests ----------------------------------------------------------------------------------


@pytest.mark.parametrize("reader", READERS)
def test_sigkill_mid_extraction_leaves_lv0_as_it_was_and_a_rerun_completes(
    tmp_path, platform_env, legacy, datahub, orders, reader
):
    extract_to_lv0(orders, legacy, datahub, start=WINDOW_START, end=WINDOW_END, lineage=lineage("first"))
    before = lv0_image(datahub, "r_order_contract_add")
    relations = lv0_relations(datahub)
    assert len(before) == SEEDED
    assert relations == ["lv0.r_order_contract_add", "lv0.r_order_contract_add__partition", "lv0.r_order_contract_add_pkey"]

    change_orders(legacy)
    assert order_window(legacy) != lv0_rows(datahub, "r_order_contract_add", ORDER_COLUMNS)

    kill_mid_load(tmp_path, platform_env, datahub, orders, (WINDOW_START, WINDOW_END), reader)

    assert lv0_image(datahub, "r_order_contract_add") == before
    assert lv0_relations(datahub) == relations

    result = extract_to_lv0(
        orders, legacy, datahub, start=WINDOW_START, end=WINDOW_END, lineage=lineage("rerun"), reader=reader
    )
    expected = order_window(legacy)
    assert lv0_rows(datahub, "r_order_contract_add", ORDER_COLUMNS) == expected
    assert result.rows == len(expected)
    assert result.rows_changed > 5000
    assert lv0_relations(datahub) == relations


@pytest.mark.parametrize("reader", READERS)
def test_sigkill_mid_snapshot_leaves_lv0_as_it_was_and_no_incoming_table(
    tmp_path, platform_env, legacy, datahub, codes, reader
):
    extract_to_lv0(codes, legacy, datahub, start=None, end=None, lineage=lineage("first"))
    before = lv0_image(datahub, "r_code_mst")
    relations = lv0_relations(datahub)
    assert len(before) == SEEDED
    assert relations == ["lv0.r_code_mst", "lv0.r_code_mst_pkey"]

    change_codes(legacy)
    kill_mid_load(tmp_path, platform_env, datahub, codes, None, reader)

    assert lv0_image(datahub, "r_code_mst") == before
    assert lv0_relations(datahub) == relations  # no lv0.r_code_mst__incoming

    old_rows = set(lv0_rows(datahub, "r_code_mst", CODE_COLUMNS))
    result = extract_to_lv0(codes, legacy, datahub, start=None, end=None, lineage=lineage("rerun"), reader=reader)
    expected = source_rows(legacy, f"SELECT {CODE_COLUMNS} FROM rental.r_code_mst")
    assert lv0_rows(datahub, "r_code_mst", CODE_COLUMNS) == expected
    assert result.rows == len(expected)
    # the reload is merged in place: only the updated, deleted and inserted rows are written
    old_keys, new_keys = {r[0] for r in old_rows}, {r[0] for r in expected}
    changed = len(set(expected) - old_rows) + len(old_keys - new_keys)
    assert result.rows_changed == changed < len(expected)
    assert lv0_relations(datahub) == relations


@pytest.mark.parametrize("reader", READERS)
def test_a_failed_page_query_leaves_lv0_unchanged(legacy_url, legacy, datahub, orders, reader):
    with legacy.begin() as conn:
        conn.execute(
            text(
                """
                CREATE FUNCTION rental.fn_dec(value text) RETURNS text LANGUAGE plpgsql AS $$
                BEGIN
                    IF value = 'ENC-CORRUPT' THEN
                        RAISE EXCEPTION 'fn_dec: cannot decrypt %', value;
                    END IF;
                    RETURN 'DEC' || substr(value, 4);
                END
                $$
                """
            )
        )
    entry = LegacyTable(
        database="RENTAL",
        table="R_ORDER_CONTRACT_ADD",
        keys=["ORDER_NO"],
        mode="incremental",
        cursor="UPDT_DT",
        lookback_minutes=0,
        expressions=[{"name": "HP_NO", "function": "FN_DEC", "argument": "HP_NO_ENC"}],
    )
    extract_to_lv0(entry, legacy, datahub, start=WINDOW_START, end=WINDOW_END, lineage=lineage("first"))
    before = lv0_image(datahub, "r_order_contract_add")
    with datahub.connect() as conn:
        assert conn.execute(
            text("SELECT hp_no FROM lv0.r_order_contract_add WHERE order_no = :k"), {"k": "0200000000"}
        ).scalar_one() == "DEC0000000000"

    change_orders(legacy)
    # One row late in the day (far past the first pages) can no longer be decrypted.
    with legacy.begin() as conn:
        poisoned = conn.execute(
            text(
                "UPDATE rental.r_order_contract_add SET hp_no_enc = 'ENC-CORRUPT' WHERE order_no = :k "
                "RETURNING updt_dt"
            ),
            {"k": "K200018003"},
        ).scalar_one()
    assert poisoned > datetime(2024, 3, 5, 18)

    pages = itertools.count()
    observed = page_observing_engine(legacy_url, "rental.r_order_contract_add", lambda: next(pages))
    try:
        # The dbapi reader surfaces it wrapped by SQLAlchemy, the copy reader as psycopg2's own.
        with pytest.raises((sa.exc.DBAPIError, psycopg2.Error), match="cannot decrypt ENC-CORRUPT"):
            extract_to_lv0(
                entry,
                observed,
                datahub,
                start=WINDOW_START,
                end=WINDOW_END,
                lineage=lineage("failed"),
                page_size=500,
                reader=reader,
            )
    finally:
        observed.dispose()
    # The failure came deep into the read, after many pages had been staged in the transaction
    # (after_cursor_execute does not fire for the failing statement itself).
    assert next(pages) > 10

    assert lv0_image(datahub, "r_order_contract_add") == before
    assert lv0_relations(datahub) == ["lv0.r_order_contract_add", "lv0.r_order_contract_add__partition", "lv0.r_order_contract_add_pkey"]


@pytest.fixture
def items(legacy):
    """RENTAL.R_ITEM_MST without a primary key on the source (the catalog still declares one)."""
    with legacy.begin() as conn:
        conn.execute(text("CREATE TABLE rental.r_item_mst (item_cd varchar(20), item_nm varchar(100))"))
        conn.execute(
            text(
                "INSERT INTO rental.r_item_mst "
                "SELECT (CAST(:prefixes AS text[]))[1 + i % 5] || lpad(i::text, 6, '0'), '품목 ' || i "
                "FROM generate_series(0, 999) AS i"
            ),
            {"prefixes": ["02", "82", "HI", "K2", "ON"]},
        )
    return LegacyTable(database="RENTAL", table="R_ITEM_MST", keys=["ITEM_CD"], mode="snapshot", page_size=100)


def duplicate_key_fails(legacy, datahub, items, key: str, reader: str) -> None:
    extract_to_lv0(items, legacy, datahub, start=None, end=None, lineage=lineage("first"), reader=reader)
    before = lv0_image(datahub, "r_item_mst")
    with legacy.begin() as conn:
        conn.execute(text("INSERT INTO rental.r_item_mst VALUES (:k, :n)"), {"k": key, "n": "중복 품목"})
        conn.execute(text("UPDATE rental.r_item_mst SET item_nm = item_nm || ' 변경'"))

    with pytest.raises(Lv0WriteError) as failure:
        extract_to_lv0(items, legacy, datahub, start=None, end=None, lineage=lineage("dup"), reader=reader)
    assert "RENTAL.R_ITEM_MST" in str(failure.value)
    assert key in str(failure.value)

    assert lv0_image(datahub, "r_item_mst") == before
    assert lv0_relations(datahub) == ["lv0.r_item_mst", "lv0.r_item_mst_pkey"]


@pytest.mark.parametrize("reader", READERS)
def test_duplicate_source_key_in_snapshot_fails_naming_the_key(legacy, datahub, items, reader):
    # Keys sort '02…' < '82…' < 'HI…' < 'K2…' < 'ON…'; 'HI000502' is the 451st key, mid-page.
    duplicate_key_fails(legacy, datahub, items, "HI000502", reader)


@pytest.mark.parametrize("reader", READERS)
def test_duplicate_source_key_across_a_page_boundary_fails_naming_the_key(legacy, datahub, items, reader):
    # The 100th key in key order ends the first page of 100; its second copy opens the next.
    with legacy.connect() as conn:
        key = conn.execute(
            text("SELECT item_cd FROM rental.r_item_mst ORDER BY item_cd OFFSET 99 LIMIT 1")
        ).scalar_one()
    duplicate_key_fails(legacy, datahub, items, key, reader)
