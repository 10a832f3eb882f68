"""Bodyfriend Data Hub: the legacy ERP copied and refined level by level as Dagster assets."""

import warnings

# Dagster features the platform uses on purpose, which Dagster marks beta or preview: a backfill
# policy on the partitioned assets (a range is one run) and partitioned asset checks. Filtered
# here, once for the whole package; pytest.ini says the same for the tests (pytest resets the
# filters around each test).
for _message in (r".*backfill_policy.*", r"Specifying a partitions_def on an AssetCheckSpec.*"):
    warnings.filterwarnings("ignore", message=_message)
