"""SQL functions the models call: the lv1 cleaning rules (``bodyfriend_assets/lv1/__init__.py``),
in the ``lv1`` schema, so that a model says ``lv1.yes_no(s.use_yn)`` or ``lv1.clean_text(s.remark)``
rather than repeating the expression, and a rule changes in one place.

Each is written so that PostgreSQL inlines it into the model's query, as if the model spelled the
expression out: the scalar ones are one expression (IMMUTABLE, or STABLE where a cast depends on
settings), and the code book lookup ``lv1.codes(major)`` is a set-returning SQL function the model
joins, which the planner replaces by its SELECT (a scalar lookup called per row would run its own
query for every row and code: about seven times slower on the large tables). The model step
(re)creates them before it runs any model, so a rule changed here applies everywhere on the next run.
"""

import sqlalchemy as sa
from sqlalchemy.engine import Connection

SCHEMA = "lv1"

# name -> (signature, definition). Names and bodies are fixed text: nothing here comes from input.
FUNCTIONS: dict[str, tuple[str, str]] = {
    # Trimmed (CHAR padding, stray spaces); '' is NULL: in the ERP both mean "not known".
    "clean_text": (
        "(raw text)",
        "RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE RETURN NULLIF(btrim(raw), '')",
    ),
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
        "ELSE lv1.clean_text(raw) END",
    ),
    # The codes of one B_MAJOR and their names, joined by a model to decode a code column:
    # LEFT JOIN lv1.codes('R1002') AS cont_type ON cont_type.minor_cd = btrim(s.cont_type_cd).
    # A body in quotes, not RETURN/BEGIN ATOMIC: it is resolved when a query uses it, so it may be
    # created before lv1.code_master exists and does not pin that table. Not STRICT (that would
    # stop the inlining); STABLE, as it reads a table.
    "codes": (
        "(major text)",
        "RETURNS TABLE (minor_cd text, minor_nm text) LANGUAGE sql STABLE PARALLEL SAFE "
        "AS $$ SELECT c.minor_cd, c.minor_nm FROM lv1.code_master AS c WHERE c.major_cd = major $$",
    ),
    # An lv1 row's address as lv1ex sends it and keys lv1.address_master (``legacy_address``):
    # addr1 and addr2 joined by one space, runs of white space as one ('' is NULL). The same rule
    # as lv1ex.address_texts, so a model finds the row lv1ex wrote for its address.
    "legacy_address": (
        "(addr1 text, addr2 text)",
        "RETURNS text LANGUAGE sql IMMUTABLE PARALLEL SAFE "
        "RETURN NULLIF(btrim(regexp_replace(concat_ws(' ', addr1, addr2), '\\s+', ' ', 'g')), '')",
    ),
    # The refined addresses of lv1.address_master (lv1ex) a model joins on legacy_address:
    # street = Kakao's address (road, else lot), then the building's name, 동 and 호 where known;
    # postal_code = the road address's. Only trusted answers: "found", or "found_shortened" for a
    # building (the words dropped were its 동/호, kept in building_dong / building_ho); other
    # dropped words were details the refined text would lose. A SQL function, so that PostgreSQL
    # inlines it and a day's rows look their addresses up by the table's unique index (a PL/pgSQL
    # one returned every trusted row to each join: ``benchmarks.refined_addresses``). Its body
    # depends on whether the table exists yet (a new Data Hub, lv1ex never run):
    # ``_refined_addresses_body``, chosen each time the functions are created.
    "refined_addresses": (
        "()",
        "RETURNS TABLE (legacy_address text, street text, postal_code text) LANGUAGE sql STABLE PARALLEL SAFE "
        "AS $$ {body} $$",
    ),
}

# The tables a set-returning function reads, for the lineage of the models that join it
# (``transforms.models``): a model joining lv1.codes(...) is downstream of lv1.code_master.
FUNCTION_READS: dict[str, tuple[str, str]] = {
    "codes": (SCHEMA, "code_master"),
    "refined_addresses": (SCHEMA, "address_master"),
}
# Of those, the tables a model reads only when they are there: a writer that failed or did not
# run is no reason to skip the model (it keeps the ERP's address), though it runs after them.
OPTIONAL_READS: frozenset[tuple[str, str]] = frozenset({(SCHEMA, "address_master")})


def ensure_functions(conn: Connection) -> None:
    """Create or replace the functions, in the caller's transaction. Runs that start at the same
    time take turns (an advisory lock), as concurrent CREATE OR REPLACE of one function fails."""
    preparer = conn.dialect.identifier_preparer
    conn.execute(sa.schema.CreateSchema(SCHEMA, if_not_exists=True))
    conn.execute(sa.select(sa.func.pg_advisory_xact_lock(sa.func.hashtext(f"{SCHEMA} functions"))))
    # lv1.codes reads a model's table, which the first run has not built yet.
    conn.execute(sa.select(sa.func.set_config("check_function_bodies", "off", True)))
    for name, (signature, definition) in FUNCTIONS.items():
        if name == "refined_addresses":
            definition = definition.format(body=_refined_addresses_body(conn))
        qualified = f"{preparer.quote_schema(SCHEMA)}.{preparer.quote(name)}"
        conn.exec_driver_sql(f"CREATE OR REPLACE FUNCTION {qualified}{signature} {definition}")


# lv1.refined_addresses' rows once lv1.address_master exists (see FUNCTIONS above).
TRUSTED_ADDRESSES = (
    "SELECT m.legacy_address, "
    "concat_ws(' ', m.address_name, m.building_name, m.building_dong || '동', m.building_ho || '호'), m.zone_no "
    "FROM lv1.address_master AS m "
    "WHERE m.address_name IS NOT NULL "
    "AND (m.status = 'found' OR (m.status = 'found_shortened' AND m.building_name IS NOT NULL))"
)


def _refined_addresses_body(conn: Connection) -> str:
    """The trusted rows of lv1.address_master, or no row while the table does not exist (the
    models then keep the ERP's addresses). Chosen when the functions are (re)created, which each
    model step does before its models, so lv2's step sees the table lv1ex's steps wrote before it."""
    if conn.execute(sa.select(sa.func.to_regclass(f"{SCHEMA}.address_master"))).scalar() is None:
        return "SELECT NULL::text, NULL::text, NULL::text WHERE false"
    return TRUSTED_ADDRESSES
