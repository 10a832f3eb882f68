"""The nightly run: every layer materialized for the finished Korean day, upstream first.

One partitioned schedule, running by default whenever the daemon runs (``dagster dev``
included), launches one run at 00:10 KST for the day that just ended. Within that run the asset
graph orders the work (lv0 before the layers that read it); blocking checks stop what depends on
a bad load; the large_tables pool keeps big extractions from overlapping. One run per day keeps
the nightly history readable (one place to look when something failed) and pays Dagster's
per-run overhead once, where per-asset automation would start a run per asset and partition.
"""

import dagster as dg

LAYERS = ("lv0", "lv1", "lv1ex", "lv2", "hc")

daily_job = dg.define_asset_job(
    "daily_data_hub",
    selection=dg.AssetSelection.groups(*LAYERS),
    description="Every Data Hub asset (`lv0`, `lv1`, `lv1ex`, `lv2`, `hc`), with its checks, for one Korean day (KST).",
)

daily_schedule = dg.build_schedule_from_partitioned_job(
    daily_job,
    hour_of_day=0,
    minute_of_hour=10,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Launches `daily_data_hub` at 00:10 KST for the Korean day that just ended.",
)

# public.dependency_manager is rewritten from the lineage, and its check run, every night before
# the data run, so monitoring queries over the old tables see today's graph.
compat_job = dg.define_asset_job(
    "compat_tables",
    selection=dg.AssetSelection.groups("compat"),
    description="The old system's `public.dependency_manager` table, rewritten from the asset lineage (00:05 KST).",
)

compat_schedule = dg.ScheduleDefinition(
    job=compat_job,
    cron_schedule="5 0 * * *",
    execution_timezone="Asia/Seoul",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Launches `compat_tables` at 00:05 KST.",
)
