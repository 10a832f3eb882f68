"""Compatibility with the Airflow platform's bookkeeping tables on the Data Hub.

The old system ordered its DAGs through two tables in the Data Hub's ``public`` schema, and other
tools still read them:

- ``public.dependency_manager(asis_dag, tobe_dag)``: which DAGs each DAG waited for. Here the asset
  lineage is the dependency graph; :mod:`.dependency_manager` writes the table from it (the asset
  ``compat/dependency_manager``), keeping rows entered by hand, and checks that every lineage row
  is there (``dependency_manager_matches_lineage``).
- ``public.dag_log(dag_id, completion_date, completion_datetime)``: each DAG's latest success per
  Korean day. :mod:`.completions` says when a DAG completed (all its assets materialized that day
  with their blocking checks passed); :mod:`.dag_log` writes it (the sensor ``dag_log_mirror``,
  with a durable cursor, refilling a lost table) and from the instance's whole history
  (``bodyfriend dag-log-backfill``).

Both are keyed by the old DAG ids (``legacy_to_lv0_RENTAL.R_ORDER_CONTRACT``, ...), which
:mod:`.dag_ids` assigns to assets: from an asset's ``dag_id`` metadata when present, otherwise
derived from its layer and the catalog; the old DAGs no asset carries stand in for the work they
did.
"""
