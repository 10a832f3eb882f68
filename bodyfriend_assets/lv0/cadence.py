"""Tables read on some days only (the catalog's ``load_days``): what their other days show.

The old platform copied ``R_CRM_INFO`` only on days 1, 8, 15, 22 and 29. Such a table is a
snapshot, so on its other days ("off days") lv0 simply keeps the last load: the nightly run does
not read the source, and the partition is materialized without a load, its metadata saying so
(``skipped``, ``rows_read`` 0) and its checks passing with "not a load day" instead of comparing
anything. The partition view in the UI then shows every day and why nothing was read, the layers
above run on what lv0 holds, the freshness alert finds the table up to date, and ``dag_log``
(which records loads, as the old DAGs did) writes no row for the table's DAGs that day.
"""

from __future__ import annotations

from collections.abc import Sequence

from bodyfriend_assets.catalog import LegacyTable
from bodyfriend_assets.partitions import NOT_LOADED


def load_partitions(entry: LegacyTable, partitions: Sequence[str]) -> list[str]:
    """The partitions of ``partitions`` whose run reads ``entry`` (all of them without load_days)."""
    return [key for key in partitions if entry.loads_partition(key)]


def off_day_reason(entry: LegacyTable) -> str:
    days = ", ".join(str(day) for day in entry.load_days or ())
    return f"not a load day (load_days {days}: lv0 keeps the last load)"


def off_day_metadata(entry: LegacyTable) -> dict:
    """The metadata of an off day's materialization and checks."""
    return {NOT_LOADED: off_day_reason(entry), "rows_read": 0, "rows_changed": 0}
