"""When an old DAG completed, read from the Dagster instance's history.

The old DAGs wrote ``dag_log`` only when they succeeded. Here a DAG id stands for some assets
(:func:`bodyfriend_assets.compat.dag_ids.dag_work`: the assets carrying it, or a stand-in's work),
and it completed on a Korean day when every one of them had, that day, a materialization whose
blocking checks passed. Its ``completion_datetime`` is the latest such materialization of the
day among them: the moment the last of its work was done. So ``lv1_dag_RENTAL.R_GOODS`` (lv2 and hc
``product2``) is not written on a day when lv2 succeeded and hc failed, nor when hc was written
but failed ``external_id_unique``.

A materialization that loaded nothing (metadata ``skipped``: a table's off day, see the catalog's
``load_days``) completes nothing: the old DAG did not run that day and wrote no row.

A materialization *passed its blocking checks* unless, in the run that produced it, a blocking
check of that asset failed or was planned and never reported (the step died after writing).
Materializations reported outside a run have no checks and count.

Both readers of the history use this module: the ``dag_log_mirror`` sensor for the days its new
records touch (:func:`completions_on`) and the backfill for the whole history
(:func:`history_completions`, ``bodyfriend dag-log-backfill``, and the sensor's refill of a
dropped or emptied table).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, datetime, time, timedelta, timezone

import dagster as dg
from dagster._core.events import DagsterEventType

from bodyfriend_assets.partitions import NOT_LOADED

# Korea Standard Time, as the old code wrote it: UTC+9, no daylight saving (none since 1988).
KST = timezone(timedelta(hours=9), "KST")

Completion = tuple[str, datetime]  # (dag_id, naive KST time)


def completion_kst(timestamp: float) -> datetime:
    """An event timestamp (seconds since the epoch) as naive Korean local time."""
    return datetime.fromtimestamp(timestamp, KST).replace(tzinfo=None)


def blocking_checks_of(assets: Iterable[object]) -> frozenset[dg.AssetCheckKey]:
    """The blocking checks declared by a list of asset and check definitions."""
    keys = set()
    for item in assets:
        if isinstance(item, dg.AssetsDefinition):
            keys.update(spec.key for spec in item.check_specs if spec.blocking)
    return frozenset(keys)


class CheckOutcomes:
    """Which assets of a run failed (or never reported) a blocking check; one query per run."""

    def __init__(self, instance: dg.DagsterInstance, blocking: frozenset[dg.AssetCheckKey]):
        self._instance = instance
        self._blocking = blocking
        self._failed_by_run: dict[str, frozenset[dg.AssetKey]] = {}

    def failed_assets(self, run_id: str) -> frozenset[dg.AssetKey]:
        if not run_id:
            return frozenset()
        if run_id not in self._failed_by_run:
            planned: set[dg.AssetCheckKey] = set()
            passed: set[dg.AssetCheckKey] = set()
            failed: set[dg.AssetKey] = set()
            records = self._instance.get_records_for_run(
                run_id,
                of_type={DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED, DagsterEventType.ASSET_CHECK_EVALUATION},
            ).records
            for record in records:
                event = record.event_log_entry.dagster_event
                data = event.event_specific_data if event else None
                if event is None or data is None:
                    continue
                if event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
                    planned.add(data.asset_check_key)
                elif data.blocking or data.asset_check_key in self._blocking:
                    (passed.add(data.asset_check_key) if data.passed else failed.add(data.asset_key))
            failed.update(key.asset_key for key in planned & self._blocking if key not in passed)
            self._failed_by_run[run_id] = frozenset(failed)
        return self._failed_by_run[run_id]

    def passed(self, record: dg.EventLogRecord) -> bool:
        return record.asset_key not in self.failed_assets(record.run_id)


def loaded(record: dg.EventLogRecord) -> bool:
    """Whether a materialization did its work (an off day's did not: ``NOT_LOADED``)."""
    materialization = record.asset_materialization
    return materialization is None or NOT_LOADED not in materialization.metadata


def compose(
    work: Mapping[str, frozenset[dg.AssetKey]],
    latest: Mapping[tuple[dg.AssetKey, date], datetime],
    touched: Iterable[tuple[str, date]],
) -> list[Completion]:
    """The completions of the touched (dag_id, day): those whose every asset has a passing
    materialization that day (``latest``: (asset, day) -> its latest), at the last of them."""
    completions = []
    for dag_id, day in sorted(set(touched)):
        moments = [latest.get((key, day)) for key in work[dag_id]]
        if moments and all(m is not None for m in moments):
            completions.append((dag_id, max(moments)))
    return completions


def latest_passing_on(
    instance: dg.DagsterInstance, key: dg.AssetKey, day: date, outcomes: CheckOutcomes, page_size: int = 100,
    *, off_days: bool = False,
) -> datetime | None:
    """The latest materialization of ``key`` on Korean ``day`` that passed its blocking checks
    (``off_days``: an off day's, which loaded nothing, counts too)."""
    # Storage ids do not follow event time (a run's events are stamped when made, stored when
    # committed; reported events may carry any time): every record of the day is read.
    start = datetime.combine(day, time(), KST).timestamp()
    latest = None
    cursor = None
    while True:
        result = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=key, after_timestamp=start - 1, before_timestamp=start + 86400 + 1),
            limit=page_size,
            cursor=cursor,
            ascending=True,
        )
        for record in result.records:
            moment = completion_kst(record.timestamp)
            if (
                moment.date() == day and (latest is None or moment > latest)
                and (off_days or loaded(record)) and outcomes.passed(record)
            ):
                latest = moment
        if not result.has_more:
            return latest
        cursor = result.cursor


def completions_on(
    instance: dg.DagsterInstance,
    work: Mapping[str, frozenset[dg.AssetKey]],
    touched: Iterable[tuple[str, date]],
    outcomes: CheckOutcomes,
) -> list[Completion]:
    """The completions of the touched (dag_id, Korean day), read from the instance."""
    touched = set(touched)
    latest: dict[tuple[dg.AssetKey, date], datetime] = {}
    for dag_id, day in touched:
        for key in work[dag_id]:
            if (key, day) not in latest:
                moment = latest_passing_on(instance, key, day, outcomes)
                if moment is not None:
                    latest[(key, day)] = moment
    return compose(work, latest, touched)


def history_completions(
    instance: dg.DagsterInstance,
    work: Mapping[str, frozenset[dg.AssetKey]],
    outcomes: CheckOutcomes,
    *,
    page_size: int = 1000,
) -> tuple[int, list[Completion]]:
    """Every completion in the instance's whole history: (materializations read, completions)."""
    latest: dict[tuple[dg.AssetKey, date], datetime] = {}
    count = 0
    for key in sorted({k for keys in work.values() for k in keys}, key=lambda k: k.to_user_string()):
        after = 0
        while True:
            page = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_storage_id=after), limit=page_size, ascending=True
            ).records
            count += len(page)
            for record in page:
                if loaded(record) and outcomes.passed(record):
                    moment = completion_kst(record.timestamp)
                    if moment > latest.get((key, moment.date()), datetime.min):
                        latest[(key, moment.date())] = moment
            if len(page) < page_size:
                break
            after = page[-1].storage_id
    days = {day for _, day in latest}
    touched = [(dag_id, day) for dag_id in work for day in days]
    return count, compose(work, latest, touched)
