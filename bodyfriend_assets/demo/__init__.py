"""A synthetic stand-in for the legacy ERP (RENTAL and UNIERP5) on PostgreSQL.

The real source is a SQL Server the platform cannot reach from a developer machine or CI. The
stand-in has the same 31 tables as the catalog, as PostgreSQL schemas ``rental`` and ``unierp5``,
with columns typed like their SQL Server originals and data as messy as the ERP's, so that every
layer above it can be built, run and tested without the real system.
"""
