"""An lv0 row's lineage fields appended to a page's COPY text, so the page can be COPYed straight
into lv0 instead of through a staging table and an upsert (``lv0_writer``, for a first load).

The three fields are the ones ``Lv0Load``'s merge writes in SQL: ``_loaded_at`` and ``_run_id``,
the same on every row, and ``_partition`` from the row's cursor, by the load's ``RowPartition``
(the rule the merge applies in SQL). The rule is worked out once per day the cursors fall on;
only on the day the floating rows start inside (``RowPartition.splits``) is each row's time
compared.

Both readers' COPY text spells a timestamp with its date first (``2024-03-05 10:00:00`` from the
server, ``2024-03-05T10:00:00`` from the DBAPI encoder). A cursor this module cannot place so
(another spelling, a NULL with no floating rule) makes ``append`` return None, and the caller
writes that page the general way, which applies the rule in SQL.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time

from bodyfriend_assets.extraction.copy_text import RowEncoder
from bodyfriend_assets.extraction.row_partition import RowPartition

_NULL = b"\\N"
_DAY = re.compile(rb"(\d{4}-\d\d-\d\d)[ T]?\Z")
_PER_ROW = object()  # a day the rule splits: each row's time decides


class LineageText:
    """Appends ``_loaded_at``, ``_run_id`` and ``_partition`` to every line of COPY text whose
    field ``cursor_position`` of ``width`` is the row's cursor (a naive timestamp or a date)."""

    def __init__(self, loaded_at: datetime, run_id: str, cursor_position: int, width: int,
                 rule: RowPartition):
        self._constant = b"\t" + loaded_at.isoformat().encode() + b"\t" + RowEncoder().encode_value(run_id).encode("utf-8") + b"\t"
        self._rule = rule
        self._position = cursor_position
        self._after = width - 1 - cursor_position  # fields after the cursor
        self._by_day: dict[bytes, object] = {}  # the field's first 11 bytes -> suffix, _PER_ROW or None
        floating = rule.of(None)
        if floating is not None:
            self._by_day[_NULL] = self._suffix(floating)

    def append(self, copy_text: bytes) -> bytes | None:
        """``copy_text`` (whole lines) with the lineage fields at the end of each line, or None."""
        lines = copy_text.split(b"\n")
        lines.pop()  # after the last newline
        position, after = self._position, self._after
        try:  # split off no more fields than needed, from the nearer end of the line
            if position <= after:
                cursors = [line.split(b"\t", position + 1)[position] for line in lines]
            else:
                cursors = [line.rsplit(b"\t", after + 1)[-after - 1] for line in lines]
        except IndexError:  # not a line of this table
            return None
        days = [cursor[:11] for cursor in cursors]
        suffixes = list(map(self._by_day.get, days))
        if None in suffixes:  # a day not seen yet
            for day in set(days) - self._by_day.keys():
                if self._day(day) is None:
                    return None
            suffixes = list(map(self._by_day.get, days))
        if _PER_ROW in suffixes:
            suffixes = [self._one_row(c) if s is _PER_ROW else s
                        for s, c in zip(suffixes, cursors)]
            if None in suffixes:
                return None
        parts: list = [None] * (2 * len(lines))
        parts[0::2] = lines
        parts[1::2] = suffixes
        return b"".join(parts)

    def strip(self, text: bytes) -> bytes:
        """The COPY text ``append`` made ``text`` from, its lineage fields removed again (none of
        them holds a tab: the run id is escaped)."""
        lines = text.split(b"\n")
        lines.pop()
        return b"".join(line.rsplit(b"\t", 3)[0] + b"\n" for line in lines)

    def _day(self, start: bytes) -> object | None:
        """The suffix of every cursor beginning with ``start`` (its first 11 bytes: the day),
        _PER_ROW, or None (not a day)."""
        found = _DAY.match(start)
        if found is None:
            return None
        try:
            day = date.fromisoformat(found.group(1).decode())
        except ValueError:
            return None
        if self._rule.splits(day):
            suffix = _PER_ROW
        else:
            suffix = self._suffix(self._rule.of(datetime.combine(day, time.min)))
        self._by_day[start] = suffix
        return suffix

    def _one_row(self, cursor: bytes) -> bytes | None:
        try:
            stamp = datetime.fromisoformat(cursor.decode())
        except ValueError:
            return None
        if stamp.tzinfo is not None:
            return None
        return self._suffix(self._rule.of(stamp))

    def _suffix(self, partition: str) -> bytes:
        return self._constant + partition.encode() + b"\n"
