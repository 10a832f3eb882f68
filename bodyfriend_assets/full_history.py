"""The first full-history load: every layer, every day from the first partition to yesterday, one run.

A new installation does this once, and a re-load after an incident again. It is the nightly job
(``daily_data_hub``: lv0, lv1, lv2, hc, with their checks) over a partition range, launched
through the instance on the code location of ``workspace.yaml`` as ``bodyfriend demo`` launches
a night, so it is a run like any other in the UI, and every asset's every partition of the range
is marked materialized there, one event each.

What makes years of days affordable is how those per-partition events are stored. Dagster writes
a range run's events one by one unless ``DAGSTER_EVENT_BATCH_SIZE`` is set; set, it hands the
storage batches: the planned events before the first step (one per asset and partition), stored
in a few statements by the platform's event log (``event_batches.py``), and each asset's
per-partition materializations, stored by dagster-postgres in one INSERT. This command sets it
for itself and the processes it starts (code server, run worker, steps).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date

import dagster as dg

from bodyfriend_assets.automation import daily_job
from bodyfriend_assets.event_batch_size import store_events_in_batches
from bodyfriend_assets.launch import launch_and_wait, partition_tags
from bodyfriend_assets.partitions import START_DATE

RUN_LOGS = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}


FIRST_PARTITION = date.fromisoformat(START_DATE)


def load_history(
    instance: dg.DagsterInstance,
    start: date,
    end: date,
    *,
    on_launch: Callable[[dg.DagsterRun], None] = lambda run: None,
) -> dg.DagsterRun:
    """Launch ``daily_data_hub`` over ``start..end`` (KST days) as one run and wait for it."""
    if end < start:
        raise ValueError(f"load-history: the last day {end} is before the first {start}")
    if start < FIRST_PARTITION:
        raise ValueError(f"load-history: {start} is before the first partition, {FIRST_PARTITION}")
    store_events_in_batches()
    return launch_and_wait(
        instance, daily_job.name, partition_tags(start.isoformat(), end.isoformat()),
        run_config=RUN_LOGS, on_launch=on_launch,
    )
