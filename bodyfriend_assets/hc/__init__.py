"""hc: the Heroku Connect tables that sync to Salesforce, loaded from lv2 inside PostgreSQL.

- :mod:`.mapping` the typed lv2 -> Salesforce mapping (``objects.yaml``, pydantic-validated);
- :mod:`.tables` the tables' Heroku Connect shape: ``create_hc_tables`` (development, tests;
  optionally with the ``_trigger_log`` stand-in) and ``verify_hc_tables`` (production);
- :mod:`.rules` what Salesforce would refuse, per field type and lookup, as SQL conditions;
- :mod:`.load` one object's set-based load: stage, quarantine, upsert of changed rows only,
  deletes of the records whose lv2 row is gone;
- :mod:`.sync_errors` the rows Heroku Connect reports Salesforce refused (``_hc_err``), masked;
- :mod:`.salesforce_edits` the fields edited in Salesforce that the load keeps (Product2), and
  bringing them back into lv1 (the old ``hc.func_hc_to_lv1_product``);
- :mod:`.assets` the ``hc/<object>`` assets (one subsettable multi-asset), their checks and the
  ``HerokuConnect`` resource.
"""

from bodyfriend_assets.hc.assets import HerokuConnect, build_hc_assets, hc_key
from bodyfriend_assets.hc.load import HcLoadError, LoadResult, load_object
from bodyfriend_assets.hc.mapping import HcMapping, HcMappingError, HcObject, load_mapping, parse_mapping
from bodyfriend_assets.hc.tables import (
    DEFAULT_SCHEMA,
    HcSchemaError,
    create_hc_tables,
    hc_table,
    verify_hc_tables,
)

__all__ = [
    "DEFAULT_SCHEMA",
    "HcLoadError",
    "HcMapping",
    "HcMappingError",
    "HcObject",
    "HcSchemaError",
    "HerokuConnect",
    "LoadResult",
    "build_hc_assets",
    "create_hc_tables",
    "hc_key",
    "hc_table",
    "load_mapping",
    "load_object",
    "parse_mapping",
    "verify_hc_tables",
]
