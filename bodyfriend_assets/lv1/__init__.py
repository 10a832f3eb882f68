"""lv1: the legacy tables cleaned, one ``.sql`` model per table (``lv1.<table>``).

One model for each table the old platform refined (its ``lv1.func_daily_*`` functions), named
after the table (``r_order_contract``) or, where the old function named it otherwise, after the
function (``code_master`` from B_MAJOR + B_MINOR, ``svc_type_big/mid/sml`` from
R_PROD_SYMPTOM_HDR/DTL/SML). The original business rules are lost; these are the rules every
model applies, column by column, so that they are easy to find and to change (each is an SQL
function, ``lv1.clean_text``, ``lv1.yes_no``, ``lv1.yyyymmdd_date``, ``lv1.phone_number`` and
``lv1.codes``, defined once in ``bodyfriend_assets/transforms/functions.py``; keys are only trimmed):

- text is trimmed (``btrim``: CHAR padding and stray spaces), and an empty string becomes NULL:
  in the ERP '' and NULL both mean "not known" (``lv1.clean_text(s.remark)``);
- ``..._YN`` flags become booleans ('Y' true, 'N' false, anything else NULL);
- ``..._DT`` 'YYYYMMDD' strings become dates; a value that is not a real date becomes NULL;
- each code column ``<x>_cd`` keeps its code and gains ``<x>_nm``, its name in the code book
  (``lv1.code_master``, from B_MAJOR/B_MINOR), via the B_MAJOR the column draws from:
  ``LEFT JOIN lv1.codes('R1002') AS cont_type ON cont_type.minor_cd = btrim(s.cont_type_cd)``;
- phone numbers are written ``010-1234-5678`` / ``02-123-4567`` / ``1588-1234`` when their
  digits have the shape of a Korean number, and kept as typed otherwise (the hc rules refuse
  them; a NULL would clear the phone in Salesforce); R_SERVICE_RECEIPT's are the decrypted ones (DEC_TEL_NO,
  DEC_HAND_TEL_NO, decrypted on the source), never the ciphertext;
- a key seen more than once (keys that differ only by padding) keeps its newest version, by
  UPDT_DT;
- the audit columns (INSRT_/UPDT_ user and time) are kept, and incremental models carry lv0's
  ``_partition``, the Korean day the row last changed, which lv2 models filter on.

The ERP's incremental tables (contracts, service receipts, customers, ...) are incremental
models: a run upserts the rows its partitions changed. The others are rebuilt in full.
"""

from pathlib import Path

from bodyfriend_assets.transforms import load_layer

LAYER = "lv1"

models = load_layer(Path(__file__).parent, LAYER)
