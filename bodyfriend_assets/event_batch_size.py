"""Dagster's switch for handing events to the storage in batches, on by default in the platform.

Dagster stores events one by one unless ``DAGSTER_EVENT_BATCH_SIZE`` is set in the process that
creates the run (its "planned" events, one per asset and partition) or runs the step (a range
output's materializations). Set, those go to the storage as batches: the planned ones written by
the platform's event log in a few statements (``event_batches.py``), the materializations by
dagster-postgres in one INSERT. The processes that load the definitions and the webserver and
daemon ``bodyfriend-serve`` starts call ``store_events_in_batches``. Only ``os`` here: the
definitions import this, and the storage classes cost most of a second to import.
"""

from __future__ import annotations

import os

EVENT_BATCH_SIZE_VAR = "DAGSTER_EVENT_BATCH_SIZE"  # read by Dagster at each event, not at import
EVENT_BATCH_SIZE = 1_000  # events held before a batch is stored: bounds memory, not speed


def store_events_in_batches() -> None:
    """Have Dagster hand this process's event batches to the storage whole, unless the environment
    already sets the batch size (``DAGSTER_EVENT_BATCH_SIZE=0`` stores every event one by one)."""
    os.environ.setdefault(EVENT_BATCH_SIZE_VAR, str(EVENT_BATCH_SIZE))
