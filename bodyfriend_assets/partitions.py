"""Daily partitions in Korean time, and the naive local window a partition covers on the source.

The legacy ERP stores naive Korea Standard Time, so a partition's window is expressed the same
way before it reaches a source query.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from dagster import DailyPartitionsDefinition, FreshnessPolicy, TimeWindow

KST = ZoneInfo("Asia/Seoul")
START_DATE = "2024-01-01"

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
