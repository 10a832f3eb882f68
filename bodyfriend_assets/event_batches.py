"""Event batches stored in a few statements, so a range run of years plans in seconds.

Before the first step of a run over a partition range, Dagster writes one "materialization
planned" event per asset and partition (79 assets x 1,065 days is about 84,000) and one "check
planned" event per check. Those per-partition events are what the UI's partition status reads
(a partition in progress, or failed with its run), so they are kept, one each. What changes is
how they are stored: dagster-postgres writes a batch of them one by one (an INSERT, a NOTIFY and
an asset-table upsert each, about 9 ms apiece here), while this storage writes the batch as one
multi-row INSERT and then updates each asset's row once, with the last of its events, the row the
one-by-one path leaves behind. The rows go as one statement executed for many parameter sets
(compiled once; a multi-row VALUES clause is recompiled for each batch, which cost more than the
database's work), and a check's planned rows, one per partition, share one serialized event
rather than each serializing its own. Dagster hands a storage such batches only when
``DAGSTER_EVENT_BATCH_SIZE`` is set in the process that creates the run (its planned events) or
runs the step (a range output's materializations, then stored by dagster-postgres's own batch path
in one INSERT). The platform sets it by default (``event_batch_size.py``) where it can: in
every process that loads the definitions (``dagster asset materialize``, ``dagster job execute``,
run workers and their steps) and in the webserver and daemon ``bodyfriend-serve`` starts, which
create the runs of the UI and of schedules and sensors.
"""

from __future__ import annotations

from collections.abc import Sequence

from dagster._core.event_api import EventLogEntry
from dagster._core.events import DagsterEventType
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus
from dagster._core.storage.event_log.schema import AssetCheckExecutionsTable, SqlEventLogStorageTable
from dagster._serdes import serialize_value
from dagster_postgres.event_log import PostgresEventLogStorage

from bodyfriend_assets.kept_connections import KeptConnections

PLANNED_EVENTS = frozenset(
    {DagsterEventType.ASSET_MATERIALIZATION_PLANNED, DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED}
)
ROWS_PER_INSERT = 1_000  # bounds one statement's size whatever the batch


class BatchedEventLogStorage(KeptConnections, PostgresEventLogStorage):
    """dagster-postgres's event log, storing a batch of planned events in a few statements,
    remembering which of its tables exist, and able to keep its connection (kept_connections.py)."""

    def __init__(self, *args, **kwargs):
        self._tables_found: set[str] = set()
        super().__init__(*args, **kwargs)

    def has_table(self, table_name: str) -> bool:
        """dagster-postgres asks the database for every event it stores (whether the asset check
        and asset tag tables exist), each time on a connection of its own while the event's own
        is open. A table found stays found for the storage's life: Dagster's migrations add tables,
        and none drops one under a running process."""
        if table_name not in self._tables_found and super().has_table(table_name):
            self._tables_found.add(table_name)
        return table_name in self._tables_found

    def store_event_batch(self, events: Sequence[EventLogEntry]) -> None:
        if not events or any(event.dagster_event_type not in PLANNED_EVENTS for event in events):
            super().store_event_batch(events)
            return
        event_ids: list[int] = []
        for start in range(0, len(events), ROWS_PER_INSERT):
            chunk = events[start : start + ROWS_PER_INSERT]
            insert = SqlEventLogStorageTable.insert().returning(
                SqlEventLogStorageTable.c.id, sort_by_parameter_order=True
            )
            with self._connect() as conn:
                inserted = conn.execute(insert, [self._event_to_row(event) for event in chunk])
                event_ids += [int(row[0]) for row in inserted.fetchall()]
        last_of_asset: dict[str, tuple[EventLogEntry, int]] = {}
        for event, event_id in zip(events, event_ids):
            if event.dagster_event_type == DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED:
                self.store_asset_check_event(event, event_id)
            else:
                last_of_asset[event.dagster_event.asset_key.to_string()] = (event, event_id)
        with self.index_transaction() as conn:
            for event, event_id in last_of_asset.values():
                self._store_asset_event(conn, event, event_id)

    def _store_asset_check_evaluation_planned(self, event: EventLogEntry, event_id: int | None) -> None:
        """Dagster's rows (one per partition of the run) with one serialized event for them all."""
        planned = event.dagster_event.event_specific_data
        partitions = planned.partitions_subset.get_partition_keys() if planned.partitions_subset else [None]
        common = dict(
            asset_key=planned.asset_key.to_string(),
            check_name=planned.check_name,
            run_id=event.run_id,
            execution_status=AssetCheckExecutionRecordStatus.PLANNED.value,
            evaluation_event=serialize_value(event),
            evaluation_event_timestamp=self._event_insert_timestamp(event),
            evaluation_event_storage_id=event_id,
        )
        with self.index_connection() as conn:
            conn.execute(AssetCheckExecutionsTable.insert(), [{**common, "partition": key} for key in partitions])
