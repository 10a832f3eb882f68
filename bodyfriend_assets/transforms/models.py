"""SQL models: one ``.sql`` file per lv1/lv2 table, read and validated when definitions load.

A model file is a PostgreSQL SELECT preceded by a header of ``--`` comment lines. Free lines
describe the table (the asset's description); ``field: value`` lines say what the SQL cannot:

    -- Service receipts, cleaned: phones decrypted and normalised, codes decoded.
    --
    -- key: receipt_no                       columns that identify a row (comma-separated)
    -- mode: incremental                     incremental (upsert the partition's rows) | full
    -- driving: lv0.r_service_receipt        incremental: the table whose _partition selects rows
    -- lookback_days: 1                      incremental: also re-read this many days before
    -- source: RENTAL.R_SERVICE_RECEIPT      the legacy table it derives from (for the dag_id)
    -- dag_id: lv0_dag_RENTAL.R_SERVICE_RECEIPT   optional; derived from ``source`` otherwise
    -- index: cust_no                        optional, repeatable: an extra index on the table
    -- references: cust_no -> lv2.account.external_id   optional, repeatable: a referential check

The model's upstream tables are not declared: they are the ``schema.table`` references of the
SQL, found with sqlglot. Every reference must be schema-qualified, and must name a table some
asset produces (checked by :func:`bodyfriend_assets.transforms.assets.build_sql_assets`).
A join of a set-returning function of ``transforms.functions`` (``lv1.codes('R1002')``) counts as
reading the table that function reads (``lv1.code_master``).

An incremental model filters its driving table with the bound parameters ``:partition_start``
and ``:partition_end`` (inclusive ``'YYYY-MM-DD'`` strings, compared to ``_partition``) and
returns a ``_partition`` column, which downstream incremental models filter in turn.
``:partition_start`` is the run's first partition minus ``lookback_days``: lv0 files a row
committed late (inside its look-back) under its own, earlier day, so a model re-reads that day.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Literal

import sqlglot
from sqlglot import exp
from sqlglot.errors import ParseError

from bodyfriend_assets.catalog import IDENTIFIER
from bodyfriend_assets.transforms.functions import FUNCTION_READS
from bodyfriend_assets.transforms.functions import SCHEMA as FUNCTION_SCHEMA

LAYERS = ("lv1", "lv2")
PARTITION_COLUMN = "_partition"
PARTITION_PARAMETERS = ("partition_start", "partition_end")
# A model's table is also staged as a temporary table with a longer name; both must fit in 63.
MAX_NAME_LENGTH = 63 - len("__incoming")

_FIELDS = {"key", "mode", "driving", "lookback_days", "source", "dag_id", "index", "references"}
_REPEATABLE = {"index", "references"}
_FIELD_LINE = re.compile(r"^([a-z_]+)\s*:\s*(.*)$")
_TABLE_NAME = re.compile(r"^([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)$")
_REFERENCE = re.compile(
    r"^([a-z_][a-z0-9_]*)\s*->\s*([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)\.([a-z_][a-z0-9_]*)$"
)
_SOURCE = re.compile(r"^[A-Za-z0-9_]+\.[A-Za-z0-9_]+$")
# The names sqlalchemy.text() binds (its TextClause._bind_params_regex). Note that ':x::date' is
# not a parameter to it; models write CAST(:x AS date).
_BIND_PARAMETER = re.compile(r"(?<![:\w\\]):(\w+)(?![:\w])")


class ModelError(ValueError):
    """A model file is invalid; the message names the file and what is wrong."""


@dataclass(frozen=True)
class Reference:
    """``column -> schema.table.column``: every non-NULL ``column`` must exist in the target."""

    column: str
    table: tuple[str, str]
    target_column: str

    @property
    def check_name(self) -> str:
        return f"{self.column}_references_{self.table[1]}"


@dataclass(frozen=True)
class SqlModel:
    """One lv1/lv2 table: its SELECT and what the header declares about it."""

    layer: str
    name: str
    path: Path
    sql: str
    description: str
    key: tuple[str, ...]
    mode: Literal["incremental", "full"]
    upstream: frozenset[tuple[str, str]]  # (schema, table) the SQL reads
    driving: tuple[str, str] | None = None
    lookback_days: int = 0
    source: str | None = None
    dag_id: str | None = None
    indexes: tuple[tuple[str, ...], ...] = ()
    references: tuple[Reference, ...] = ()
    parameters: frozenset[str] = field(default_factory=frozenset)
    returned: frozenset[str] | None = None  # the columns the SELECT returns; None when a '*' hides them

    @property
    def table(self) -> tuple[str, str]:
        return (self.layer, self.name)

    @property
    def qualified_name(self) -> str:
        return f"{self.layer}.{self.name}"

    @property
    def file(self) -> str:
        """``lv1/r_goods.sql``: the file as a reader finds it in the repository."""
        return _label(self.path)

    @property
    def code_version(self) -> str:
        """Changes whenever the file does, so the UI shows which materializations are stale."""
        return hashlib.sha256(self.sql.encode("utf-8")).hexdigest()[:16]


def load_layer(folder: Path, layer: str) -> tuple[SqlModel, ...]:
    """Every ``*.sql`` file of ``folder`` as a model of ``layer``, sorted by name."""
    if layer not in LAYERS:
        raise ModelError(f"{folder}: unknown layer {layer!r}; expected one of {LAYERS}")
    return tuple(parse_model(path, layer) for path in sorted(Path(folder).glob("*.sql")))


def parse_model(path: Path, layer: str) -> SqlModel:
    """Read and validate one model file; raise :class:`ModelError` naming it."""
    label = _label(path)
    name = path.stem
    if not IDENTIFIER.match(name) or name != name.lower() or len(name) > MAX_NAME_LENGTH:
        raise ModelError(
            f"{label}: the file name must be a lower-case SQL identifier of at most "
            f"{MAX_NAME_LENGTH} characters (it names the table {layer}.<name>)"
        )
    text = path.read_text(encoding="utf-8")
    fields, description = _header(text, label)
    sql = text.strip().rstrip(";").rstrip()

    upstream, parameters, returned = _read_sql(sql, label)
    if (layer, name) in upstream:
        raise ModelError(f"{label}: the model reads its own table {layer}.{name}")

    if "key" not in fields:
        raise ModelError(f"{label}: the header must declare '-- key: <column>[, <column>...]'")
    key = _columns(fields["key"][0], label, "key")
    mode = fields.get("mode", [""])[0]
    if mode not in ("incremental", "full"):
        raise ModelError(f"{label}: '-- mode:' must be 'incremental' or 'full', not {mode!r}")

    driving = None
    lookback_days = 0
    if mode == "incremental":
        if "driving" not in fields:
            raise ModelError(
                f"{label}: an incremental model must declare '-- driving: <schema>.<table>', the "
                "table whose _partition selects the rows to upsert"
            )
        driving = _table_name(fields["driving"][0], label, "driving")
        if driving not in upstream:
            raise ModelError(f"{label}: the driving table {'.'.join(driving)} is not read by the SQL")
        missing = [p for p in PARTITION_PARAMETERS if p not in parameters]
        if missing:
            raise ModelError(
                f"{label}: an incremental model must filter its driving table with "
                f":partition_start and :partition_end (missing: {', '.join(':' + p for p in missing)})"
            )
        if "lookback_days" in fields:
            value = fields["lookback_days"][0]
            if not value.isdigit() or int(value) > 31:
                raise ModelError(f"{label}: '-- lookback_days:' must be a whole number 0..31, not {value!r}")
            lookback_days = int(value)
    else:
        for only_incremental in ("driving", "lookback_days"):
            if only_incremental in fields:
                raise ModelError(f"{label}: '-- {only_incremental}:' applies to incremental models only")
        if parameters & set(PARTITION_PARAMETERS):
            raise ModelError(
                f"{label}: a full model rebuilds the whole table; it must not filter on "
                ":partition_start / :partition_end (declare '-- mode: incremental')"
            )
    unknown_parameters = parameters - set(PARTITION_PARAMETERS)
    if unknown_parameters:
        raise ModelError(
            f"{label}: unknown bound parameters {sorted(':' + p for p in unknown_parameters)}; "
            "only :partition_start and :partition_end are bound"
        )

    source = fields.get("source", [None])[0]
    if source is not None and not _SOURCE.match(source):
        raise ModelError(f"{label}: '-- source:' must be a legacy table as <DB>.<TABLE>, not {source!r}")
    dag_id = fields.get("dag_id", [None])[0]

    indexes = tuple(_columns(value, label, "index") for value in fields.get("index", []))
    references = []
    for value in fields.get("references", []):
        match = _REFERENCE.match(value)
        if not match:
            raise ModelError(
                f"{label}: '-- references: {value}' must read '<column> -> <schema>.<table>.<column>'"
            )
        column, schema, table, target_column = match.groups()
        references.append(Reference(column, (schema, table), target_column))
        if (schema, table) != (layer, name) and (schema, table) not in upstream:
            raise ModelError(
                f"{label}: the reference to {schema}.{table} names a table the SQL does not read; "
                "a model can only promise the rows it joins"
            )

    if returned is not None:  # unless the SELECT has a '*', its columns are known now
        required = {"key": key, "index": [c for index in indexes for c in index]}
        required["references"] = [r.column for r in references]
        if mode == "incremental":
            required["mode: incremental"] = [PARTITION_COLUMN]
        for field_name, columns in required.items():
            missing = [c for c in columns if c not in returned]
            if missing:
                raise ModelError(
                    f"{label}: '-- {field_name}' needs the column(s) {', '.join(missing)}, "
                    "which the SELECT does not return"
                )

    return SqlModel(
        layer=layer,
        name=name,
        path=path,
        sql=sql,
        description=description,
        key=key,
        mode=mode,
        upstream=frozenset(upstream),
        driving=driving,
        lookback_days=lookback_days,
        source=source,
        dag_id=dag_id,
        indexes=indexes,
        references=tuple(references),
        parameters=frozenset(parameters),
        returned=None if returned is None else frozenset(returned),
    )


def dependency_order(models: tuple[SqlModel, ...] | list[SqlModel]) -> list[SqlModel]:
    """The models, each after every model it reads (ties by layer and name, for stable runs)."""
    by_table = {m.table: m for m in models}
    sorter = TopologicalSorter(
        {m.table: sorted(t for t in m.upstream if t in by_table) for m in models}
    )
    try:
        sorter.prepare()
    except CycleError as err:
        cycle = " -> ".join(_label(by_table[t].path) for t in err.args[1])
        raise ModelError(f"models read each other in a cycle: {cycle}") from None
    ordered = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        ordered.extend(by_table[t] for t in ready)
        sorter.done(*ready)
    return ordered


# -- parsing helpers ---------------------------------------------------------------------------


def _label(path: Path) -> str:
    """``lv1/r_goods.sql``: the file as a reader finds it in the repository."""
    return f"{path.parent.name}/{path.name}"


def _header(text: str, label: str) -> tuple[dict[str, list[str]], str]:
    fields: dict[str, list[str]] = {}
    description: list[str] = []
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped.startswith("--"):
            if stripped:
                break
            continue
        content = stripped[2:].strip()
        match = _FIELD_LINE.match(content)
        if not match:
            description.append(content)
            continue
        name, value = match.group(1), match.group(2).strip()
        if name not in _FIELDS:
            raise ModelError(
                f"{label}: unknown header field {name!r} (known: {', '.join(sorted(_FIELDS))}); "
                "description lines must not start with '<word>:'"
            )
        if name in fields and name not in _REPEATABLE:
            raise ModelError(f"{label}: header field {name!r} is given twice")
        fields.setdefault(name, []).append(value)
    return fields, "\n".join(description).strip()


def _columns(value: str, label: str, field_name: str) -> tuple[str, ...]:
    columns = tuple(c.strip() for c in value.split(","))
    for column in columns:
        if not IDENTIFIER.match(column) or column != column.lower():
            raise ModelError(f"{label}: '-- {field_name}:' names {column!r}, not a lower-case column")
    if len(set(columns)) != len(columns):
        raise ModelError(f"{label}: '-- {field_name}:' repeats a column")
    return columns


def _table_name(value: str, label: str, field_name: str) -> tuple[str, str]:
    match = _TABLE_NAME.match(value)
    if not match:
        raise ModelError(f"{label}: '-- {field_name}:' must be <schema>.<table>, not {value!r}")
    return match.group(1), match.group(2)


def _read_sql(sql: str, label: str) -> tuple[set[tuple[str, str]], set[str], set[str] | None]:
    """The ``(schema, table)`` pairs the SELECT reads, the bound parameters it uses and the names
    of the columns it returns (None when a ``*`` hides them)."""
    try:
        statements = [s for s in sqlglot.parse(sql, read="postgres") if s is not None]
    except ParseError as err:
        raise ModelError(f"{label}: the SQL does not parse: {err}") from None
    if len(statements) != 1 or not isinstance(statements[0], exp.Query):
        raise ModelError(f"{label}: a model is exactly one SELECT statement")
    (statement,) = statements
    ctes = {cte.alias_or_name for cte in statement.find_all(exp.CTE)}
    tables = set()
    for table in statement.find_all(exp.Table):
        if not table.name:  # a set-returning function in FROM: lv1.codes(...), unnest(...)
            reads = FUNCTION_READS.get(table.this.name.lower()) if table.db.lower() == FUNCTION_SCHEMA else None
            if reads:
                tables.add(reads)
            continue
        if not table.db:
            if table.name in ctes:
                continue
            raise ModelError(
                f"{label}: the table {table.name!r} is not schema-qualified; write <schema>.{table.name}"
            )
        if table.catalog:
            raise ModelError(f"{label}: {table.sql()} names a database; models read this database only")
        tables.add((table.db.lower(), table.name.lower()))
    # Found as sqlalchemy.text() finds them, comments and literals included: a stray ':word'
    # anywhere would be bound, so it is reported here rather than failing the run.
    parameters = set(_BIND_PARAMETER.findall(sql))
    returned = set(statement.named_selects)
    if statement.is_star or "*" in returned:
        returned = None
    return tables, parameters, returned
