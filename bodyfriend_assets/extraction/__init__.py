"""The extraction engine: legacy table -> lv0 table, page by page, with bounded memory.

``source`` reflects a legacy table and builds its queries, ``keyset`` pages them on
(cursor, key) without OFFSET, ``copy_text`` turns rows into PostgreSQL COPY input,
``typemap`` chooses lv0 column types, and ``lv0_writer`` makes each load atomic.
``engine.extract_to_lv0`` ties them together for one asset materialization.
"""
