"""What lv0 does when a source table's columns change, the same for snapshot and incremental tables.

- a column added in the source is added to lv0 (``ALTER TABLE ... ADD COLUMN``, NULL in the rows
  loaded before);
- a column dropped from the source stays in lv0, NULL in the rows inserted or updated from then on;
- a retyped column is widened in lv0 (``ALTER COLUMN ... TYPE``) when every value of the old type
  fits the new one (integer -> bigint, numeric(10,2) -> numeric(12,2), date -> timestamp, ...),
  kept when the old lv0 type already holds every value of the new one (the source narrowed), and
  otherwise refused: the load fails naming the table, the column and both types.

Every change is reported once (the materialization's ``schema_changes`` and a warning in the run
log), so lv1 hears of a dropped column from lv0, not from ``column s.x does not exist``. A column
kept after the source dropped it says so in its comment (``GONE``), which is how later loads know
it was already reported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Integer types by the decimal digits they hold.
_INTEGER_DIGITS = {"SMALLINT": 5, "INTEGER": 10, "BIGINT": 19}
GONE = "gone from the source"  # how a kept column's comment starts
_NUMERIC = re.compile(r"^NUMERIC(?:\((\d+), *(\d+)\))?$")
# type -> the types whose every value it holds exactly (besides itself and the rules above).
_HOLDS = {
    "DOUBLE PRECISION": {"REAL", "SMALLINT", "INTEGER"},
    "TIMESTAMP WITHOUT TIME ZONE": {"DATE"},
}


class SchemaDriftError(RuntimeError):
    """A source column changed type in a way lv0 cannot follow safely; nothing was written."""


@dataclass
class DriftPlan:
    """The columns to add and widen in lv0, the ones to keep although the source lost them, and
    the report of each change."""

    added: list[str] = field(default_factory=list)
    widened: list[str] = field(default_factory=list)
    gone: list[str] = field(default_factory=list)
    report: list[str] = field(default_factory=list)


def plan_drift(table: str, source: str, existing: dict[str, str], expected: dict[str, str],
               reported_gone: set[str] = frozenset()) -> DriftPlan:
    """Compare lv0's columns (``existing``, name -> compiled type) with the ones the source now
    gives (``expected``); raise :class:`SchemaDriftError` for a change lv0 cannot take.
    ``reported_gone``: kept columns an earlier load already reported."""
    plan = DriftPlan()
    for name, type_ in expected.items():
        if name not in existing:
            plan.added.append(name)
            plan.report.append(f"{name} added ({type_})")
        elif existing[name] != type_:
            if holds(type_, existing[name]):
                plan.widened.append(name)
                plan.report.append(f"{name} widened ({existing[name]} -> {type_})")
            elif holds(existing[name], type_):
                plan.report.append(f"{name} narrowed in the source ({type_}); lv0 keeps {existing[name]}")
            else:
                raise SchemaDriftError(
                    f"{table}: column {name} changed type in {source} from {existing[name]} to {type_}, "
                    f"which cannot be converted safely; migrate {table} by hand (or drop it to reload). "
                    f"Nothing was written"
                )
    for name in existing:
        if name not in expected:
            plan.gone.append(name)
            if name not in reported_gone:
                plan.report.append(f"{name} {GONE}; kept, NULL in new and updated rows")
    return plan


def holds(wide: str, narrow: str) -> bool:
    """Whether every value of PostgreSQL type ``narrow`` converts exactly to type ``wide``."""
    if wide == narrow or narrow in _HOLDS.get(wide, ()):
        return True
    if wide in _INTEGER_DIGITS and narrow in _INTEGER_DIGITS:
        return _INTEGER_DIGITS[wide] >= _INTEGER_DIGITS[narrow]
    numeric = _NUMERIC.match(wide)
    if numeric is None:
        return False
    if numeric.group(1) is None:  # unconstrained numeric holds any number
        return narrow in _INTEGER_DIGITS or _NUMERIC.match(narrow) is not None
    precision, scale = int(numeric.group(1)), int(numeric.group(2))
    if narrow in _INTEGER_DIGITS:
        return precision - scale >= _INTEGER_DIGITS[narrow]
    other = _NUMERIC.match(narrow)
    if other is None or other.group(1) is None:
        return False
    other_precision, other_scale = int(other.group(1)), int(other.group(2))
    return scale >= other_scale and precision - scale >= other_precision - other_scale
