"""The in-database layers above lv0: lv1 (cleaned) and lv2 (modeled), as SQL files.

Every lv1/lv2 table is one ``.sql`` file beside its layer (``bodyfriend_assets/lv1/<table>.sql``):
a SELECT with a short header saying what the SQL cannot (key, incremental or full, ...; see
:mod:`.models`). Adding a model is adding a file. Its upstream assets are the tables its SQL
reads, so the asset graph shows the true lineage legacy -> lv0 -> lv1 -> lv2 with no hand-kept
dependency list.

- :mod:`.models` reads and validates the files (sqlglot finds the tables each one reads);
- :mod:`.refresh` refreshes one table inside PostgreSQL: upsert of a partition's rows, or a
  rebuild swapped in atomically;
- :mod:`.checks` the key and referential checks every model gets;
- :mod:`.assets` turns each layer's models into one subsettable multi-asset, run as one step
  (``lv1_models``, ``lv2_models``).
"""

from bodyfriend_assets.transforms.assets import STEP_NAMES, build_model_steps, build_sql_assets, model_key
from bodyfriend_assets.transforms.models import ModelError, SqlModel, load_layer

__all__ = ["STEP_NAMES", "ModelError", "SqlModel", "build_model_steps", "build_sql_assets", "load_layer", "model_key"]
