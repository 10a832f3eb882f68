"""What the extraction sends to SQL Server: TOP, an expanded keyset predicate, FN_DEC on the server."""

from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.mssql import pymssql

from bodyfriend_assets.catalog import load_catalog
from bodyfriend_assets.extraction.source import SourceColumn, SourceTable


def _service_receipt_on_sql_server() -> SourceTable:
    entry = load_catalog().by_name("RENTAL.R_SERVICE_RECEIPT")
    columns = [
        SourceColumn("RECEIPT_NO", "receipt_no", sa.Text()),
        SourceColumn("UPDT_DT", "updt_dt", sa.DateTime()),
        SourceColumn("TEL_NO", "tel_no", sa.Text()),
        SourceColumn("HAND_TEL_NO", "hand_tel_no", sa.Text()),
        SourceColumn("DEC_TEL_NO", "dec_tel_no", sa.Text()),
        SourceColumn("DEC_HAND_TEL_NO", "dec_hand_tel_no", sa.Text()),
    ]
    return SourceTable(entry, on_sql_server=True, columns=tuple(columns))


def _sql(query) -> str:
    return str(query.compile(dialect=pymssql.dialect()))


def test_a_later_page_uses_top_and_the_expanded_keyset_predicate():
    source = _service_receipt_on_sql_server()
    window = source.window(datetime(2024, 3, 4, 21), datetime(2024, 3, 6))
    sql = _sql(source.page_query(window, ["2024-03-05 10:00:00.003", "HI24030500017"], 5000))
    flat = " ".join(sql.split())

    assert flat.startswith("SELECT TOP ")
    assert "FROM [RENTAL].dbo.[R_SERVICE_RECEIPT]" in flat
    assert "OFFSET" not in flat.upper() and "ROW_NUMBER" not in flat.upper()
    assert "FETCH" not in flat.upper() and "NOLOCK" not in flat.upper()
    # a > x OR (a = x AND b > y), led by a >= x; never a row-value comparison "(a, b) > (x, y)"
    assert (
        "[UPDT_DT] >= :UPDT_DT_3 AND ([UPDT_DT] > :UPDT_DT_4 "
        "OR [UPDT_DT] = :UPDT_DT_5 AND [RECEIPT_NO] > :RECEIPT_NO_1)"
    ) in flat.replace("[RENTAL].dbo.[R_SERVICE_RECEIPT].", "")
    assert "), (" not in flat and ") > (" not in flat
    assert flat.endswith(
        "ORDER BY [RENTAL].dbo.[R_SERVICE_RECEIPT].[UPDT_DT], [RENTAL].dbo.[R_SERVICE_RECEIPT].[RECEIPT_NO]"
    )


def test_source_side_decryption_runs_on_the_server_in_the_select_list():
    source = _service_receipt_on_sql_server()
    sql = " ".join(_sql(source.page_query(None, None, 100)).split())
    select_list = sql.split(" FROM ")[0]
    assert "RENTAL.dbo.FN_DEC([RENTAL].dbo.[R_SERVICE_RECEIPT].[TEL_NO]) AS [DEC_TEL_NO]" in select_list
    assert "RENTAL.dbo.FN_DEC([RENTAL].dbo.[R_SERVICE_RECEIPT].[HAND_TEL_NO]) AS [DEC_HAND_TEL_NO]" in select_list


def test_values_are_bound_parameters_never_inlined():
    source = _service_receipt_on_sql_server()
    window = source.window(datetime(2024, 3, 4, 21), datetime(2024, 3, 6))
    compiled = source.page_query(window, ["2024-03-05 10:00:00.003", "O'Brien--"], 5000).compile(
        dialect=pymssql.dialect()
    )
    assert "O'Brien" not in str(compiled)
    assert "O'Brien--" in compiled.params.values()


def test_the_stand_in_reads_lower_case_schema_and_table_and_its_own_fn_dec():
    source = _service_receipt_on_sql_server()
    stand_in = SourceTable(source.entry, on_sql_server=False, columns=source.columns)
    sql = str(stand_in.page_query(None, ["2024-03-05", "02"], 10).compile(dialect=sa.create_engine("postgresql+psycopg2://").dialect))
    assert "FROM rental.r_service_receipt" in " ".join(sql.split())
    assert "rental.fn_dec(" in sql
    assert "LIMIT" in sql and "OFFSET" not in sql
