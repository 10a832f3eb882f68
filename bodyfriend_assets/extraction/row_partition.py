"""Which daily partition an incremental lv0 row belongs to: its ``_partition``, by one rule.

- A floating row (a NULL cursor, or one at or after ``FloatingRows.since``, the start of
  tomorrow KST) takes the load's last partition: it is in no day's window yet, and every load
  reads it again.
- A row stamped before the first partition takes the first partition (``partitions.START_DATE``).
- Any other row takes its cursor's date (cursors are naive KST).

The rule is applied in SQL by ``Lv0Load``'s merge and by the lv0 checks' per-day counts
(``RowPartition.sql``), and in Python by the direct first load, which appends the lineage fields
to COPY text (``RowPartition.of``, through ``lineage_text``). Both forms are written here, side
by side, so that a change to the rule is made once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time

import sqlalchemy as sa

from bodyfriend_assets.partitions import FIRST_PARTITION_START, START_DATE


@dataclass(frozen=True)
class FloatingRows:
    """Incremental rows in no partition: a NULL cursor, or one at or after ``since`` (the start
    of tomorrow, KST). Each load reads them; their ``_partition`` is ``partition``, the load's
    last."""

    since: datetime
    partition: str


@dataclass(frozen=True)
class RowPartition:
    """The ``_partition`` rule of one load; ``floating`` is None when the load has no floating
    rows (a NULL cursor then has no partition)."""

    floating: FloatingRows | None = None

    def of(self, cursor: datetime | None) -> str | None:
        """The partition of a row whose cursor is ``cursor`` (a naive timestamp), or None for a
        NULL cursor that no floating rule places."""
        floating = self.floating
        if cursor is None:
            return floating.partition if floating else None
        if floating is not None and cursor >= floating.since:
            return floating.partition
        if cursor < FIRST_PARTITION_START:
            return START_DATE
        return cursor.date().isoformat()

    def splits(self, day: date) -> bool:
        """Whether rows of ``day`` can fall in two partitions: the floating rows start during it
        (not at its midnight), so each row's time decides. On any other day ``of`` gives every
        time of the day the partition of its midnight."""
        since = self.floating.since if self.floating else None
        return since is not None and since.date() == day and since.time() != time.min

    def sql(self, cursor: sa.ColumnElement) -> sa.ColumnElement:
        """The same rule as ``of``, as a SQL expression over the ``cursor`` column."""
        in_a_day = sa.func.to_char(cursor, "YYYY-MM-DD")
        before_first = (cursor < sa.literal(FIRST_PARTITION_START, sa.DateTime()), sa.literal(START_DATE))
        if self.floating is None:
            return sa.case(before_first, else_=in_a_day)
        floating = sa.or_(cursor.is_(None), cursor >= sa.literal(self.floating.since, sa.DateTime()))
        return sa.case((floating, sa.literal(self.floating.partition)), before_first, else_=in_a_day)
