"""SQL Server (and stand-in PostgreSQL) column types -> lv0 PostgreSQL column types.

| source type                                        | lv0 type                 |
|----------------------------------------------------|--------------------------|
| NVARCHAR, VARCHAR, CHAR, NCHAR, TEXT, NTEXT, XML   | text (padding kept as is) |
| DATETIME, DATETIME2, SMALLDATETIME                 | timestamp (naive KST)    |
| DATETIMEOFFSET                                     | timestamptz              |
| DATE / TIME                                        | date / time              |
| DECIMAL(p,s), NUMERIC(p,s)                         | numeric(p,s)             |
| MONEY / SMALLMONEY                                 | numeric(19,4) / (10,4)   |
| TINYINT, SMALLINT / INT / BIGINT                   | smallint / integer / bigint |
| BIT                                                | boolean                  |
| FLOAT / REAL                                       | double precision / real  |
| UNIQUEIDENTIFIER                                   | uuid                     |
| VARBINARY, BINARY, IMAGE                           | bytea                    |

Character columns become ``text``: the source already enforced their lengths, and a fixed
``char(n)`` in PostgreSQL would change how trailing spaces compare and cast, while lv0 keeps the
value exactly as the source returned it. Anything else is refused with the table and column named,
rather than guessed.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects import mssql, postgresql


class UnsupportedColumnType(TypeError):
    pass


def lv0_type(source_type: sa.types.TypeEngine, *, table: str, column: str) -> sa.types.TypeEngine:
    t = source_type
    # Order matters: several SQLAlchemy types subclass others (MONEY is not Numeric, but
    # SMALLDATETIME is a DateTime, BIT is a Boolean, and so on).
    if isinstance(t, (mssql.MONEY,)):
        return sa.Numeric(19, 4)
    if isinstance(t, (mssql.SMALLMONEY,)):
        return sa.Numeric(10, 4)
    if isinstance(t, (mssql.UNIQUEIDENTIFIER, sa.Uuid, postgresql.UUID)):
        return postgresql.UUID(as_uuid=True)
    if isinstance(t, (sa.LargeBinary, sa.types._Binary, mssql.IMAGE, postgresql.BYTEA)):
        return postgresql.BYTEA()
    if isinstance(t, (sa.Boolean, mssql.BIT)):
        return sa.Boolean()
    if isinstance(t, mssql.DATETIMEOFFSET) or (isinstance(t, sa.DateTime) and t.timezone):
        return sa.DateTime(timezone=True)
    if isinstance(t, sa.DateTime):
        return sa.DateTime(timezone=False)
    if isinstance(t, sa.Date):
        return sa.Date()
    if isinstance(t, sa.Time):
        return sa.Time()
    if isinstance(t, (sa.SmallInteger, mssql.TINYINT)):
        return sa.SmallInteger()
    if isinstance(t, sa.BigInteger):
        return sa.BigInteger()
    if isinstance(t, sa.Integer):
        return sa.Integer()
    if isinstance(t, (sa.REAL, postgresql.REAL)):
        return sa.REAL()
    if isinstance(t, sa.Float):
        return postgresql.DOUBLE_PRECISION()
    if isinstance(t, sa.Numeric):
        if t.precision is not None:
            return sa.Numeric(t.precision, t.scale or 0)
        return sa.Numeric()
    if isinstance(t, (sa.String, mssql.XML)):
        return sa.Text()
    raise UnsupportedColumnType(
        f"{table}.{column}: source type {t!r} has no lv0 mapping; add it to "
        "bodyfriend_assets/extraction/typemap.py"
    )


def estimated_width(source_type: sa.types.TypeEngine) -> int:
    """A generous guess of the bytes one value of ``source_type`` takes in COPY text, from its
    declared size; it only sizes a load's first page (later pages follow the rows read)."""
    t = source_type
    length = getattr(t, "length", None)
    if isinstance(t, (sa.String, mssql.XML)):
        # Up to three UTF-8 bytes a character (Korean); MAX, TEXT and XML have no length.
        return min(3 * length, UNBOUNDED_WIDTH) if length else UNBOUNDED_WIDTH
    if isinstance(t, (sa.LargeBinary, sa.types._Binary, mssql.IMAGE, postgresql.BYTEA)):
        return min(2 * length + 3, UNBOUNDED_WIDTH) if length else UNBOUNDED_WIDTH
    if isinstance(t, sa.Numeric) and getattr(t, "precision", None) and not isinstance(t, sa.Float):
        return t.precision + 2
    return 36  # dates and times, numbers, uuids


UNBOUNDED_WIDTH = 8000
