"""The catalog of legacy tables: one validated entry per source table.

Everything else (legacy source assets, lv0 assets, the extraction plan, demo data) is derived
from these entries, so a new table is one entry in ``legacy_tables.yaml``. The file is validated
when definitions load; a bad entry fails with a message naming it.
"""

from __future__ import annotations

import re
from datetime import date, timedelta
from functools import cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

CATALOG_PATH = Path(__file__).with_name("legacy_tables.yaml")

# Names that reach SQL as identifiers. They are quoted by SQLAlchemy as well; the pattern keeps
# the catalog to plain ERP-style names so a typo cannot become something else.
IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


class CatalogError(ValueError):
    """A catalog entry is invalid; the message names the entry and the field."""


def _identifier(value: str) -> str:
    if not isinstance(value, str) or not IDENTIFIER.match(value):
        raise ValueError(f"{value!r} is not a plain SQL identifier (letters, digits, underscore)")
    return value


class SourceExpression(BaseModel):
    """A column computed on the source, ``<function>(<argument>) AS <name>``.

    The function lives in the table's own database (``RENTAL.dbo.FN_DEC`` on SQL Server, the
    stand-in's ``rental.fn_dec`` elsewhere).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    function: str
    argument: str

    _names = field_validator("name", "function", "argument")(_identifier)


class LegacyTable(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    database: str
    table: str
    schema_: str = Field("dbo", alias="schema")
    keys: tuple[str, ...]
    mode: Literal["incremental", "snapshot"]
    cursor: str | None = None
    lookback_minutes: int = Field(180, ge=0, le=7 * 24 * 60)
    page_size: int = Field(20000, ge=1, le=1_000_000)
    large: bool = False
    expressions: tuple[SourceExpression, ...] = ()
    # Days of the month (KST) whose nightly run reads the table; None: every day (``loads_partition``).
    load_days: tuple[int, ...] | None = None

    _names = field_validator("database", "table", "schema_", "cursor")(
        lambda v: v if v is None else _identifier(v)
    )

    @field_validator("keys")
    @classmethod
    def _keys(cls, keys: tuple[str, ...]) -> tuple[str, ...]:
        if not keys:
            raise ValueError("at least one key column is required")
        for key in keys:
            _identifier(key)
        if len({k.lower() for k in keys}) != len(keys):
            raise ValueError(f"key columns repeat: {list(keys)}")
        return keys

    @field_validator("load_days", mode="before")
    @classmethod
    def _load_days(cls, days: object) -> object:
        if days is None:
            return None
        if not isinstance(days, (list, tuple)) or not days:
            raise ValueError("must be a non-empty list of days of the month, e.g. [1, 8, 15, 22, 29]")
        for day in days:
            if isinstance(day, bool) or not isinstance(day, int) or not 1 <= day <= 31:
                raise ValueError(f"{day!r} is not a day of the month (a whole number from 1 to 31)")
        if len(set(days)) != len(days):
            raise ValueError(f"days repeat: {list(days)}")
        return tuple(sorted(days))

    @model_validator(mode="after")
    def _mode_fits_cursor(self) -> LegacyTable:
        if self.mode == "incremental" and self.cursor is None:
            raise ValueError("an incremental table needs a cursor column")
        if self.mode == "snapshot" and self.cursor is not None:
            raise ValueError("a snapshot table reads the whole table; remove its cursor")
        if self.cursor is not None and self.cursor.lower() in {k.lower() for k in self.keys}:
            raise ValueError("the cursor column must not also be a key column")
        if self.load_days is not None and self.mode != "snapshot":
            # An incremental load reads only its partition's changes: the off days' would be lost.
            raise ValueError(
                "load_days: only a snapshot table can skip days (an incremental one would miss "
                "the changes of its off days)"
            )
        names = [e.name.lower() for e in self.expressions]
        if len(set(names)) != len(names):
            raise ValueError(f"expression names repeat: {names}")
        return self

    @property
    def qualified_name(self) -> str:
        """``RENTAL.R_ORDER_CONTRACT``: the name the old DAGs and operators use."""
        return f"{self.database}.{self.table}"

    @property
    def source_schema(self) -> str:
        """Schema of the stand-in (non SQL Server) source: the database name in lower case."""
        return self.database.lower()

    @property
    def name(self) -> str:
        """Lower-case table name: the lv0 table and the last part of every asset key."""
        return self.table.lower()

    def loads_partition(self, partition: str) -> bool:
        """Whether the nightly run of daily ``partition`` reads the table: the run of Korean day N
        (launched at 00:10) loads partition N-1, as the old DAG's midnight run of day N copied the
        table as it stood at the end of N-1."""
        if self.load_days is None:
            return True
        return (date.fromisoformat(partition) + timedelta(days=1)).day in self.load_days

    @property
    def key_columns(self) -> tuple[str, ...]:
        return tuple(k.lower() for k in self.keys)

    @property
    def cursor_column(self) -> str | None:
        return self.cursor.lower() if self.cursor else None


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    tables: tuple[LegacyTable, ...]

    def by_name(self, name: str) -> LegacyTable:
        """Look a table up by its lower-case name (``r_order_contract``) or ``DB.TABLE``."""
        for table in self.tables:
            if name.lower() in (table.name, table.qualified_name.lower()):
                return table
        raise KeyError(f"no catalog entry for {name!r}")


def parse_catalog(document: dict) -> Catalog:
    """Validate a catalog document (the parsed YAML); raise CatalogError naming the bad entry."""
    if not isinstance(document, dict) or not isinstance(document.get("tables"), list):
        raise CatalogError("the catalog must be a mapping with a 'tables' list")
    unknown = set(document) - {"defaults", "tables"}
    if unknown:
        raise CatalogError(f"unknown top-level catalog keys: {sorted(unknown)}")
    defaults = document.get("defaults") or {}
    tables = []
    for position, raw in enumerate(document["tables"], start=1):
        label = _entry_label(raw, position)
        if not isinstance(raw, dict):
            raise CatalogError(f"catalog entry {label}: must be a mapping")
        try:
            tables.append(LegacyTable.model_validate({**defaults, **raw}))
        except ValidationError as err:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'entry'}: {e['msg']}" for e in err.errors()
            )
            raise CatalogError(f"catalog entry {label}: {problems}") from None
    seen: dict[str, str] = {}
    for table in tables:
        if table.name in seen:
            raise CatalogError(
                f"catalog entries {seen[table.name]} and {table.qualified_name} would both "
                f"write lv0.{table.name}"
            )
        seen[table.name] = table.qualified_name
    return Catalog(tables=tuple(tables))


def _entry_label(raw: object, position: int) -> str:
    if isinstance(raw, dict) and raw.get("table"):
        return f"#{position} ({raw.get('database', '?')}.{raw['table']})"
    return f"#{position}"


# libyaml's parser where PyYAML was built with it: the same safe loading, several times faster
# than the pure-Python one (whose parsing of the catalog and the hc mapping was a sixth of the
# definitions' import, in every process that loads them: the run's, its fork server, the code server).
_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path) -> object:
    """A YAML file's content, loaded safely (plain data only)."""
    with open(path, encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_SAFE_LOADER)  # noqa: S506 (a safe loader)


@cache
def load_catalog(path: Path = CATALOG_PATH) -> Catalog:
    return parse_catalog(read_yaml(path))
