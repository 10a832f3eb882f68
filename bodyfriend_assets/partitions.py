"""Daily partitions in Korean time, and the naive local window a partition covers on the source.

The legacy ERP stores naive Korea Standard Time, so a partition's window is expressed the same
way before it reaches a source query.

Some rows of an incremental table fall in no daily window; they are still loaded:

- a cursor before the first partition (a row last changed in 2019): the first partition's window
  is open at its start, so partition 2024-01-01 holds everything before it;
- a NULL cursor, or one at or after the start of tomorrow (KST, now): "floating" rows, read again
  by every load and placed in the last partition of the load that last changed them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from dagster import DailyPartitionsDefinition, FreshnessPolicy, TimeWindow

KST = ZoneInfo("Asia/Seoul")
START_DATE = "2024-01-01"
FIRST_PARTITION_START = datetime.combine(date.fromisoformat(START_DATE), time.min)  # naive KST

daily_partitions = DailyPartitionsDefinition(start_date=START_DATE, timezone="Asia/Seoul")

# Every asset is refreshed each night for the finished day: by 07:00 KST it must have been
# materialized since midnight KST.
daily_freshness = FreshnessPolicy.cron(
    deadline_cron="0 7 * * *", lower_bound_delta=timedelta(hours=7), timezone="Asia/Seoul"
)


def naive_kst(moment: datetime) -> datetime:
    """The wall-clock time in Seoul, without zone, as the legacy columns hold it."""
    if moment.tzinfo is None:
        return moment
    return moment.astimezone(KST).replace(tzinfo=None)


def naive_window(window: TimeWindow) -> tuple[datetime, datetime]:
    """``[start, end)`` of a partition (or range of partitions) in naive KST."""
    return naive_kst(window.start), naive_kst(window.end)


def start_of_tomorrow(now: datetime | None = None) -> datetime:
    """Midnight at the start of tomorrow in Seoul, naive: a cursor at or after it is in no
    partition yet (a future stamp such as the ERP's ``9999-12-31`` placeholder)."""
    today = (datetime.now(KST) if now is None else now).astimezone(KST).date()
    return datetime.combine(today + timedelta(days=1), time.min)


def last_partition_of(end: datetime) -> str:
    """The key of the last daily partition of a window ending (exclusive) at naive ``end``."""
    return (end - timedelta(days=1)).date().isoformat()


# Metadata key of a materialization that read nothing: a partition a table is not loaded for (an
# off day of its catalog ``load_days``). It records the day as done without a load; dag_log,
# which records loads as the old DAGs did, skips it.
NOT_LOADED = "skipped"
