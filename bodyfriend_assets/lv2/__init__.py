"""lv2: the modeled layer, one ``.sql`` model per table (``lv2.<table>``), shaped like the
Salesforce objects the hc layer loads through Heroku Connect.

One table per Salesforce object: ``account`` (Account, from V_CUSTOMER), ``lead`` (Lead, from
R_EXPERIENCE_RESERVATION), ``opportunity`` (Opportunity, from R_ORDER_CONTRACT with
R_ORDER_CONTRACT_ADD, the customer and the product), ``product2`` (Product2, from R_GOODS), and
the custom objects for service receipts and evaluations, shipping information and evaluations,
contract cancel and move receipts, lounge visits and promotions; ``bbs_map`` (the lounges, from
V_SALES_LOUNGE), ``exhibition_visit_customer`` (a lounge visit's visitor) and
``experience_reservation_customer`` (the person who reserved a product experience).

Conventions, so that an hc load is a rename and nothing more:

- ``external_id`` is the ERP key of the row (as text), the object's external id;
- a lookup to another object is ``<object>_external_id`` holding that object's external id
  (``account_external_id`` = CUST_NO), so Heroku Connect resolves it by external id;
- columns are named after the Salesforce field they feed, in snake case (``billing_street``,
  ``stage_name``, ``close_date``); picklist values are the ERP's code names;
- ``erp_updated_at`` is the source row's UPDT_DT; incremental models carry ``_partition``, the
  latest day any of the row's sources changed, so a load can pick up what a day changed.
"""

from pathlib import Path

from bodyfriend_assets.transforms import load_layer

LAYER = "lv2"

models = load_layer(Path(__file__).parent, LAYER)
