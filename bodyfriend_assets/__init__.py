"""Bodyfriend Data Hub: the legacy ERP copied and refined level by level as Dagster assets."""
