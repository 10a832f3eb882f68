"""What the fork server of a run's steps imports before it forks the first step.

Every step process is forked from it (``definitions.step_executor``), so whatever it has imported
a step has for free, and whatever it has not, every step imports again. Besides the definitions, a
step builds the run's Dagster instance from the instance's configuration (dagster.yaml): its
storage, launcher, coordinator, scheduler and compute-log classes, which pull in Dagster's storage
layer, dagster-postgres, alembic and the daemon's modules. Imported here once, they are not
imported again by each step (about 0.6 s of a step's start on an idle machine). Only imports:
nothing here connects to a database or reads the environment.

What the fork server has imported is set aside from the garbage collector (``long_lived.py``)
twice: once Dagster is imported, so that the definitions' import does not walk it again at every
full collection, and before the first fork, so that the steps inherit it set aside.
"""

import dagster._core.instance.factory  # noqa: F401
import dagster._core.run_coordinator  # noqa: F401
import dagster._core.scheduler  # noqa: F401
import dagster._core.storage.defs_state.blob_storage_state_storage  # noqa: F401
import dagster._core.storage.legacy_storage  # noqa: F401
import dagster._core.secrets.env_file  # noqa: F401
import dagster._core.storage.local_compute_log_manager  # noqa: F401
import psycopg2.extras  # noqa: F401
import upath.implementations.local  # noqa: F401

from bodyfriend_assets.long_lived import keep_for_life

keep_for_life()  # Dagster and the modules above

import bodyfriend_assets.instance_storage  # noqa: E402, F401
import bodyfriend_assets.run_launcher  # noqa: E402, F401
from bodyfriend_assets.definitions import defs  # noqa: E402

defs.get_repository_def()  # validated and cached once, for every step to find ready
keep_for_life()  # what the steps inherit, set aside before the first fork (long_lived.py)
