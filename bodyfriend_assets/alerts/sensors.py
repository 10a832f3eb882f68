"""The three alerts, as Dagster sensors: a failed run, a failed blocking check, a stale table.

Nobody watched the night before; the old DAGs e-mailed the team on failure. Each sensor mails the
table(s), the partition, the error and a link to the run (or the asset) in the UI (:mod:`.mail`):

- ``alert_on_run_failure`` (``run_failure_sensor``): every failed run of the instance, once (the
  run status sensor's own cursor), with each failed step and its error.
- ``alert_on_failed_blocking_check``: every failed evaluation of a blocking check, once, read from
  the instance's event log after a cursor. A check evaluation's storage id can be committed after
  a higher one was read (concurrent runs), so, as in ``dag_log_mirror``, the cursor only settles
  past records older than ``SETTLE_SECONDS`` and remembers the younger ones it has read. All the
  failures a tick finds go out in one mail, so a mail is sent whole or (the tick fails) not at all.
- ``alert_on_stale_tables``: at 07:00 KST, once a day, every watched table that has no
  materialization that Korean day whose blocking checks passed, in one mail.

On a first start the first two sensors begin at the instance's latest event: they do not mail
the history.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime, timedelta
from datetime import time as clock_time

import dagster as dg
from dagster._core.events import DagsterEventType

from bodyfriend_assets.alerts.mail import Alert, send_alert, ui_url
from bodyfriend_assets.compat.completions import KST, CheckOutcomes, latest_passing_on

RUN_FAILURE = "alert_on_run_failure"
FAILED_CHECK = "alert_on_failed_blocking_check"
STALE_TABLES = "alert_on_stale_tables"
DEADLINE = clock_time(7, 0)  # KST: the night's tables must be fresh by then
SETTLE_SECONDS = 300
PAGE_SIZE = 500
LISTED = 30  # assets named in a run failure mail; the rest are counted
PARTITION_TAG = "dagster/partition"
RANGE_TAGS = ("dagster/asset_partition_range_start", "dagster/asset_partition_range_end")


def _partition_of_run(run: dg.DagsterRun) -> str:
    tags = run.tags
    if PARTITION_TAG in tags:
        return tags[PARTITION_TAG]
    if all(tag in tags for tag in RANGE_TAGS):
        return f"{tags[RANGE_TAGS[0]]}...{tags[RANGE_TAGS[1]]}"
    return "none (unpartitioned run)"


def _names(keys: Iterable[dg.AssetKey]) -> str:
    names = sorted(k.to_user_string() for k in keys)
    return ", ".join(names[:LISTED]) + (f" and {len(names) - LISTED} more" if len(names) > LISTED else "")


def _root_cause(error) -> str:
    while error.cause is not None:  # Dagster wraps the step's own exception
        error = error.cause
    return error.message.strip()


def tables_not_written(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetKey]:
    """The assets a run planned to materialize and did not."""
    def keys(event_type: DagsterEventType) -> set[dg.AssetKey]:
        records = instance.get_records_for_run(run_id, of_type=event_type).records
        return {r.event_log_entry.dagster_event.asset_key for r in records}

    return sorted(
        keys(DagsterEventType.ASSET_MATERIALIZATION_PLANNED) - keys(DagsterEventType.ASSET_MATERIALIZATION),
        key=lambda k: k.to_user_string(),
    )


def run_failure_alert(
    run: dg.DagsterRun,
    failure: dg.DagsterEvent | None,
    step_failures: Sequence[dg.DagsterEvent],
    not_written: Sequence[dg.AssetKey],
) -> Alert:
    partition = _partition_of_run(run)
    lines = [
        f"Run {run.run_id} of {run.job_name} failed.",
        f"Partition: {partition}",
        f"Tables not written: {_names(not_written) or 'none'}",
        f"Run in the UI: {ui_url(f'runs/{run.run_id}')}",
        "",
    ]
    for event in step_failures:
        error = event.step_failure_data.error if event.step_failure_data else None
        lines.append(f"Step {event.step_key} failed: {_root_cause(error) if error else event.message}")
    if failure is not None and failure.message:
        lines.append(f"Run failure: {failure.message}")
    return Alert(subject=f"[bodyfriend] run failed: {run.job_name}, partition {partition}", body="\n".join(lines) + "\n")


def build_run_failure_alert() -> dg.SensorDefinition:
    @dg.run_failure_sensor(
        name=RUN_FAILURE,
        monitor_all_code_locations=True,
        default_status=dg.DefaultSensorStatus.RUNNING,
        minimum_interval_seconds=30,
        description=(
            "E-mails every failed run once: its partition, the tables it did not write, its failed "
            "steps and their errors, a link to the run."
        ),
    )
    def _alert(context: dg.RunFailureSensorContext) -> None:
        run = context.dagster_run
        alert = run_failure_alert(
            run, context.failure_event, context.get_step_failure_events(),
            tables_not_written(context.instance, run.run_id),
        )
        send_alert(alert, context.log)

    return _alert


# -- failed blocking checks -----------------------------------------------------------------


def _check_failure_lines(instance: dg.DagsterInstance, record: dg.EventLogRecord) -> list[str]:
    evaluation = record.event_log_entry.dagster_event.event_specific_data
    run = instance.get_run_by_id(record.run_id) if record.run_id else None
    partition = evaluation.partition or (_partition_of_run(run) if run else "none")
    return [
        f"Table {evaluation.asset_key.to_user_string()}: blocking check {evaluation.check_name} failed",
        f"  Partition: {partition}",
        f"  Error: {evaluation.description or 'the check failed (no description)'}",
        f"  Run in the UI: {ui_url(f'runs/{record.run_id}') if record.run_id else 'reported outside a run'}",
    ]


def build_failed_check_alert(
    blocking_checks: frozenset[dg.AssetCheckKey] = frozenset(),
    *,
    clock: Callable[[], float] = time.time,
) -> dg.SensorDefinition:
    """``alert_on_failed_blocking_check``: ``blocking_checks`` adds checks whose evaluations may not
    say they are blocking (Dagster marks those declared in ``check_specs``)."""

    @dg.sensor(
        name=FAILED_CHECK,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="E-mails every failed blocking check once: the table, the partition, the check's message, a link to the run.",
    )
    def _alert(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        now = clock()  # before any read: see the module docstring
        storage = context.instance.event_log_storage
        if context.cursor is None:
            latest = storage.get_event_records(
                dg.EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION), limit=1, ascending=False
            )
            start = latest[0].storage_id if latest else 0
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"started: alerts on check evaluations after event {start}"),
                cursor=json.dumps({"settled": start, "seen": []}),
            )
        cursor = json.loads(context.cursor)
        settled, seen = int(cursor["settled"]), set(cursor["seen"])
        records: list[dg.EventLogRecord] = []
        after = settled
        while True:
            page = storage.get_event_records(
                dg.EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=after),
                limit=PAGE_SIZE,
                ascending=True,
            )
            records.extend(page)
            if len(page) < PAGE_SIZE:
                break
            after = page[-1].storage_id
        failed = []
        for record in records:
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            blocking = evaluation.blocking or evaluation.asset_check_key in blocking_checks
            if record.storage_id not in seen and blocking and not evaluation.passed:
                failed.append(record)
        if failed:
            body = [f"{len(failed)} blocking checks failed; what depends on these tables was not updated.", ""]
            for record in failed:
                body += [*_check_failure_lines(context.instance, record), ""]
            tables = sorted({r.event_log_entry.dagster_event.event_specific_data.asset_key.to_user_string() for r in failed})
            send_alert(Alert(f"[bodyfriend] blocking check failed: {', '.join(tables[:5])}"
                             + (f" and {len(tables) - 5} more" if len(tables) > 5 else ""), "\n".join(body)), context.log)
        horizon = now - SETTLE_SECONDS
        settled = max([settled, *(r.storage_id for r in records if r.timestamp <= horizon)])
        seen = {i for i in seen | {r.storage_id for r in records} if i > settled}
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"{len(records)} check evaluations read, {len(failed)} failed blocking checks alerted"),
            cursor=json.dumps({"settled": settled, "seen": sorted(seen)}),
        )

    return _alert


# -- freshness ------------------------------------------------------------------------------


def build_stale_tables_alert(
    watched: Iterable[dg.AssetKey],
    blocking_checks: frozenset[dg.AssetCheckKey] = frozenset(),
    *,
    clock: Callable[[], float] = time.time,
) -> dg.SensorDefinition:
    """``alert_on_stale_tables`` over the ``watched`` assets (the platform's tables)."""
    watched = sorted(set(watched), key=lambda k: k.to_user_string())

    @dg.sensor(
        name=STALE_TABLES,
        minimum_interval_seconds=60,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "At 07:00 KST, e-mails once the tables with no materialization since 00:00 KST whose "
            "blocking checks passed."
        ),
    )
    def _alert(context: dg.SensorEvaluationContext) -> dg.SkipReason:
        now = datetime.fromtimestamp(clock(), KST)
        today = now.date()
        if now.time() < DEADLINE or context.cursor == today.isoformat():
            return dg.SkipReason(f"next freshness check at {DEADLINE:%H:%M} KST")
        outcomes = CheckOutcomes(context.instance, blocking_checks)
        stale = [key for key in watched if latest_passing_on(context.instance, key, today, outcomes) is None]
        if stale:
            night = (today - timedelta(days=1)).isoformat()
            body = [f"{len(stale)} tables are not fresh at {DEADLINE:%H:%M} KST on {today}.", ""]
            for key in stale:
                last = context.instance.get_latest_materialization_event(key)
                body += [
                    f"Table {key.to_user_string()}, partition {night}:",
                    "  Error: no materialization since 00:00 KST with its blocking checks passed"
                    + (f"; last one {datetime.fromtimestamp(last.timestamp, KST):%Y-%m-%d %H:%M} KST" if last else "; never materialized"),
                    f"  In the UI: {ui_url('assets/' + '/'.join(key.path))}"
                    + (f" (last run {ui_url(f'runs/{last.run_id}')})" if last and last.run_id else ""),
                    "",
                ]
            send_alert(Alert(f"[bodyfriend] {len(stale)} tables not fresh at 07:00 KST on {today}", "\n".join(body)), context.log)
        context.update_cursor(today.isoformat())
        return dg.SkipReason(f"{today}: {len(stale)} of {len(watched)} tables not fresh at {DEADLINE:%H:%M} KST")

    return _alert


def build_alert_sensors(
    watched: Iterable[dg.AssetKey], blocking_checks: frozenset[dg.AssetCheckKey] = frozenset()
) -> list[dg.SensorDefinition]:
    return [
        build_run_failure_alert(),
        build_failed_check_alert(blocking_checks),
        build_stale_tables_alert(watched, blocking_checks),
    ]
