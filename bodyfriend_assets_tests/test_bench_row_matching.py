"""The lv0-vs-sling benchmark's row check (``benchmarks.lv0_vs_sling.fingerprint``): two copies
of a table match whatever their row order and the numeric type each copy picked, and one changed
value in one row is a mismatch."""

import sqlalchemy as sa

from benchmarks.lv0_vs_sling import fingerprint
from bodyfriend_assets_tests.conftest import rows

COLUMNS = ["seq", "code", "amount", "memo", "changed_at"]


def _copy(url, name: str, amount_type: str, order: str) -> None:
    rows(url, f"""
        CREATE TABLE {name} AS
        SELECT seq, code, amount::{amount_type} AS amount, memo, changed_at, now() AS _loaded_at
        FROM (VALUES
            (1, 'A'::char(8), 1.50::numeric(15,2), 'first', TIMESTAMP '2024-01-01 00:12:25.57'),
            (2, 'B'::char(8), 20.00::numeric(15,2), NULL, TIMESTAMP '2024-01-02 04:30:00'),
            (3, ''::char(8), NULL, '', NULL)
        ) AS v(seq, code, amount, memo, changed_at)
        ORDER BY seq {order}""")


def _fingerprint(url, name: str):
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return fingerprint(conn, sa.Table(name, sa.MetaData(), autoload_with=conn), COLUMNS)
    finally:
        engine.dispose()


def test_copies_with_other_row_order_and_numeric_type_match_and_one_changed_value_does_not(make_database):
    url = make_database("bench")
    _copy(url, "platform_copy", "numeric(15,2)", "ASC")
    _copy(url, "tool_copy", "numeric", "DESC")

    assert _fingerprint(url, "platform_copy") == _fingerprint(url, "tool_copy")
    assert _fingerprint(url, "platform_copy")[0] == 3

    rows(url, "UPDATE tool_copy SET memo = 'other' WHERE seq = 2")
    assert _fingerprint(url, "platform_copy") != _fingerprint(url, "tool_copy")

    rows(url, "UPDATE tool_copy SET memo = NULL WHERE seq = 2")
    rows(url, "UPDATE tool_copy SET memo = NULL WHERE seq = 3")  # an empty text is not a NULL
    assert _fingerprint(url, "platform_copy") != _fingerprint(url, "tool_copy")
