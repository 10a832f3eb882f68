"""The three alerts, as Dagster sensors: a failed run, a failed blocking check, a stale table.

Nobody watched the night before; the old DAGs e-mailed the team on failure. Each sensor mails the
table(s), the partition, the error and a link to the run (or the asset) in the UI (:mod:`.mail`):

- ``alert_on_run_failure``: every failed run of the instance, once, with the tables it did not
  write and each failed step's error;
- ``alert_on_failed_blocking_check``: every failed evaluation of a blocking check, once;
- ``alert_on_stale_tables``: at 07:00 KST, once a day, every watched table that has no
  materialization that Korean day whose blocking checks passed (a table's off day, which loads
  nothing by its catalog ``load_days``, counts as fresh).

The first two read the instance's event log (run failures, check evaluations) after a cursor
(:class:`EventCursor`) that Dagster saves only when the tick returns. Everything a tick finds goes
out in one mail: if the mail cannot be sent the tick fails, the cursor stays, and the next tick
sends it; once sent, the saved cursor never reads it again. (Dagster's ``run_failure_sensor``
moves past a run even when its function failed, so a mail lost to an SMTP outage would never be
resent: hence a plain sensor.) Storage ids can be committed out of order by concurrent runs, so,
as in ``dag_log_mirror``, the cursor only settles past records older than ``SETTLE_SECONDS`` and
remembers the younger ones it has read. On a first start the cursor begins at the latest record:
the history is not mailed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class EventCursor:
    """Records with storage id <= ``settled`` are done; ``seen`` are the done ones above it."""

    settled: int
    seen: frozenset[int] = frozenset()

    @classmethod
    def parse(cls, text: str) -> EventCursor:
        document = json.loads(text)
        return cls(int(document["settled"]), frozenset(int(i) for i in document["seen"]))

    def format(self) -> str:
        return json.dumps({"settled": self.settled, "seen": sorted(self.seen)})

    def read(self, fetch: Callable[[int], Sequence[dg.EventLogRecord]], now: float) -> tuple[list[dg.EventLogRecord], EventCursor]:
        """The records not done yet, and the cursor past them (``now`` taken before reading)."""
        records: list[dg.EventLogRecord] = []
        after = self.settled
        while True:
            page = fetch(after)
            records.extend(page)
            if len(page) < PAGE_SIZE:
                break
            after = page[-1].storage_id
        new = [r for r in records if r.storage_id not in self.seen]
        settled = max([self.settled, *(r.storage_id for r in records if r.timestamp <= now - SETTLE_SECONDS)])
        seen = frozenset(i for i in self.seen | {r.storage_id for r in records} if i > settled)
        return new, EventCursor(settled, seen)


def _event_sensor(
    name: str,
    description: str,
    fetch: Callable[[dg.DagsterInstance, int | None], Sequence[dg.EventLogRecord]],
    alert: Callable[[dg.DagsterInstance, list[dg.EventLogRecord]], Alert | None],
    clock: Callable[[], float],
) -> dg.SensorDefinition:
    """A sensor that mails ``alert(records)`` for the records ``fetch(instance, after)`` returns
    (``after`` None: the latest one only, to start from)."""

    @dg.sensor(name=name, description=description, minimum_interval_seconds=30,
               default_status=dg.DefaultSensorStatus.RUNNING)
    def _sensor(context: dg.SensorEvaluationContext) -> dg.SensorResult:
        now = clock()  # before any read: see the module docstring
        if context.cursor is None:
            latest = fetch(context.instance, None)
            start = EventCursor(latest[0].storage_id if latest else 0)
            return dg.SensorResult(skip_reason=dg.SkipReason(f"started after event {start.settled}"),
                                   cursor=start.format())
        new, cursor = EventCursor.parse(context.cursor).read(lambda after: fetch(context.instance, after), now)
        message = alert(context.instance, new) if new else None
        if message is not None:
            send_alert(message, context.log)
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"{len(new)} new events read; {'mailed: ' + message.subject if message else 'nothing to mail'}"),
            cursor=cursor.format(),
        )

    return _sensor


# -- failed runs ----------------------------------------------------------------------------


def tables_not_written(instance: dg.DagsterInstance, run_id: str) -> list[dg.AssetKey]:
    """The assets a run planned to materialize and did not."""
    def keys(event_type: DagsterEventType) -> set[dg.AssetKey]:
        records = instance.get_records_for_run(run_id, of_type=event_type).records
        return {r.event_log_entry.dagster_event.asset_key for r in records}

    return sorted(
        keys(DagsterEventType.ASSET_MATERIALIZATION_PLANNED) - keys(DagsterEventType.ASSET_MATERIALIZATION),
        key=lambda k: k.to_user_string(),
    )


def run_failure_lines(instance: dg.DagsterInstance, run: dg.DagsterRun, failure_message: str | None) -> list[str]:
    lines = [
        f"Run {run.run_id} of {run.job_name} failed.",
        f"Partition: {_partition_of_run(run)}",
        f"Tables not written: {_names(tables_not_written(instance, run.run_id)) or 'none'}",
        f"Run in the UI: {ui_url(f'runs/{run.run_id}')}",
    ]
    for record in instance.get_records_for_run(run.run_id, of_type=DagsterEventType.STEP_FAILURE).records:
        event = record.event_log_entry.dagster_event
        error = event.step_failure_data.error if event.step_failure_data else None
        lines.append(f"Step {event.step_key} failed: {_root_cause(error) if error else event.message}")
    if failure_message:
        lines.append(f"Run failure: {failure_message}")
    return lines


def _fetch_run_failures(instance: dg.DagsterInstance, after: int | None) -> Sequence[dg.EventLogRecord]:
    return instance.fetch_run_status_changes(
        dg.RunStatusChangeRecordsFilter(event_type=DagsterEventType.RUN_FAILURE, after_storage_id=after),
        limit=1 if after is None else PAGE_SIZE,
        ascending=after is not None,
    ).records


def _run_failure_alert(instance: dg.DagsterInstance, records: list[dg.EventLogRecord]) -> Alert | None:
    body: list[str] = []
    runs = []
    for record in records:
        run = instance.get_run_by_id(record.run_id)
        if run is None:  # deleted since
            continue
        runs.append(run)
        body += [*run_failure_lines(instance, run, record.event_log_entry.dagster_event.message), ""]
    if not runs:
        return None
    if len(runs) == 1:
        subject = f"[bodyfriend] run failed: {runs[0].job_name}, partition {_partition_of_run(runs[0])}"
    else:
        subject = f"[bodyfriend] {len(runs)} runs failed: {', '.join(sorted({r.job_name for r in runs}))}"
    return Alert(subject, "\n".join(body))


def build_run_failure_alert(*, clock: Callable[[], float] = time.time) -> dg.SensorDefinition:
    return _event_sensor(
        RUN_FAILURE,
        "E-mails every failed run once: its partition, the tables it did not write, its failed "
        "steps and their errors, a link to the run.",
        _fetch_run_failures,
        _run_failure_alert,
        clock,
    )


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


def _fetch_check_evaluations(instance: dg.DagsterInstance, after: int | None) -> Sequence[dg.EventLogRecord]:
    return instance.event_log_storage.get_event_records(
        dg.EventRecordsFilter(event_type=DagsterEventType.ASSET_CHECK_EVALUATION, after_cursor=after),
        limit=1 if after is None else PAGE_SIZE,
        ascending=after is not None,
    )


def build_failed_check_alert(
    blocking_checks: frozenset[dg.AssetCheckKey] = frozenset(),
    *,
    clock: Callable[[], float] = time.time,
) -> dg.SensorDefinition:
    """``alert_on_failed_blocking_check``: ``blocking_checks`` adds checks whose evaluations may not
    say they are blocking (Dagster marks those declared in ``check_specs``)."""

    def alert(instance: dg.DagsterInstance, records: list[dg.EventLogRecord]) -> Alert | None:
        failed = []
        for record in records:
            evaluation = record.event_log_entry.dagster_event.event_specific_data
            if (evaluation.blocking or evaluation.asset_check_key in blocking_checks) and not evaluation.passed:
                failed.append(record)
        if not failed:
            return None
        body = [f"{len(failed)} blocking checks failed; what depends on these tables was not updated.", ""]
        for record in failed:
            body += [*_check_failure_lines(instance, record), ""]
        tables = sorted({r.event_log_entry.dagster_event.event_specific_data.asset_key.to_user_string() for r in failed})
        return Alert(f"[bodyfriend] blocking check failed: {', '.join(tables[:5])}"
                     + (f" and {len(tables) - 5} more" if len(tables) > 5 else ""), "\n".join(body))

    return _event_sensor(
        FAILED_CHECK,
        "E-mails every failed blocking check once: the table, the partition, the check's message, a link to the run.",
        _fetch_check_evaluations,
        alert,
        clock,
    )


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
        # An off day's materialization (a table loaded on some days only) is the table up to date.
        stale = [
            key for key in watched
            if latest_passing_on(context.instance, key, today, outcomes, off_days=True) is None
        ]
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
