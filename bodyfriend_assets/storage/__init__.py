"""Storage in the Data Hub: how data enters and leaves its tables through Python.

- ``copy_writer``: the one COPY path into a Data Hub table, inside the caller's transaction. The
  lv0 loads (``extraction.lv0_writer``) and the IO manager both write through it.
- ``io_manager``: ``DataHubIOManager``, Dagster's storage seam for Python assets: an upstream table
  read as a lazy stream of pandas DataFrames of bounded size, an output stream of DataFrames
  written by COPY, atomically per partition window.

(Nothing is imported here: ``extraction`` imports ``copy_writer`` while ``io_manager`` imports
``extraction``.)
"""
