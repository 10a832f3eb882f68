"""SQL functions the models call: the lv1 cleaning rules that take more than a word of SQL
(``bodyfriend_assets/lv1/__init__.py``), in the ``lv1`` schema, so that a model says
``lv1.yes_no(s.use_yn)`` rather than repeating the expression.

Each is one SQL expression, which PostgreSQL inlines into the model's query. The model step
(re)creates them before it runs any model, so a rule changed here applies everywhere on the next run.
"""

import sqlalchemy as sa
from sqlalchemy.engine import Connection

SCHEMA = "lv1"

# name -> (signature, definition). Names and bodies are fixed text: nothing here comes from input.
FUNCTIONS: dict[str, tuple[str, str]] = {
    # 'Y' is true, 'N' false (any case, any padding), anything else NULL.
    "yes_no": (
        "(flag text)",
        "RETURNS boolean LANGUAGE sql IMMUTABLE PARALLEL SAFE "
        "RETURN CASE upper(btrim(flag)) WHEN 'Y' THEN true WHEN 'N' THEN false END",
    ),
    # A 'YYYYMMDD' string as a date; NULL when it is not eight digits forming a real date.
    "yyyymmdd_date": (
        "(yyyymmdd text)",
        "RETURNS date LANGUAGE sql STABLE PARALLEL SAFE "
        "RETURN CASE WHEN btrim(yyyymmdd) ~ '^[0-9]{8}$' AND pg_input_is_valid(btrim(yyyymmdd), 'date') "
        "THEN CAST(btrim(yyyymmdd) AS date) END",
    ),
    # Written 010-1234-5678 / 02-123-4567 / 1588-1234 when its digits are shaped like a Korean
    # number; otherwise kept as typed (trimmed; '' is NULL), so that the hc rules refuse it
    # rather than a NULL clearing the phone Salesforce holds.
    "phone_number": (
        "(raw text)",
        "RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE "
        "RETURN CASE WHEN regexp_replace(raw, '[^0-9]', '', 'g') ~ '^((02|0[0-9]{2})[0-9]{7,8}|1[5-9][0-9]{6})$' "
        "THEN regexp_replace(regexp_replace(regexp_replace(raw, '[^0-9]', '', 'g'), "
        "'^(02|0[0-9]{2})([0-9]{3,4})([0-9]{4})$', '\\1-\\2-\\3'), '^(1[5-9][0-9]{2})([0-9]{4})$', '\\1-\\2') "
        "ELSE NULLIF(btrim(raw), '') END",
    ),
}


def ensure_functions(conn: Connection) -> None:
    """Create or replace the functions, in the caller's transaction. Runs that start at the same
    time take turns (an advisory lock), as concurrent CREATE OR REPLACE of one function fails."""
    preparer = conn.dialect.identifier_preparer
    conn.execute(sa.schema.CreateSchema(SCHEMA, if_not_exists=True))
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"{SCHEMA} functions"))))
    for name, (signature, definition) in FUNCTIONS.items():
        qualified = f"{preparer.quote_schema(SCHEMA)}.{preparer.quote(name)}"
        conn.exec_driver_sql(f"CREATE OR REPLACE FUNCTION {qualified}{signature} {definition}")
