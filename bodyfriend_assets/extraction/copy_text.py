"""Rows as PostgreSQL ``COPY ... FROM STDIN`` text input.

Text format keeps NULL (``\\N``) and the empty string apart, and passes every other character
through after escaping backslash, tab, newline and carriage return, so Korean text, quotes,
commas and trailing spaces arrive byte-identical. PostgreSQL text cannot hold NUL, so NUL
characters are removed and counted (the legacy system also dropped them; here they are reported).

This is the per-row Python work of the DBAPI (SQL Server) path, so it is done a column at a time,
with as little Python per value as possible:

- each column gets one converter, chosen once from its lv0 type (or, without types, from the
  Python types found in the column) and applied by a comprehension or ``map``;
- a text column is scanned once, joined, for characters that need escaping; only a column that
  has any is escaped value by value, and then only with ``str.replace`` (no per-character work);
- the fields are laid out row-major in one list, each followed by its separator, and joined once.

Converters are strict (``int.__repr__`` accepts only ints, ``datetime.isoformat`` only datetimes, a
text column only strings): a column holding a value of another type than expected (an unusual
driver) is encoded again value by value, by the value's own type, which handles every supported
type or names the one it cannot.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Callable, Sequence
from decimal import Decimal

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

NULL = "\\N"
# Besides backslash, the characters a text value cannot carry into COPY text as they are.
_CONTROL = ("\t", "\n", "\r", "\x00")
_BOOLEAN = {True: "t", False: "f"}.__getitem__
_SPECIAL_FLOATS = {"nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}


class _Text:
    """Marks a text column: no conversion, escaping where needed."""


TEXT = _Text()
Converter = Callable[[object], str] | _Text | None  # None: value by value, by the value's type


def _float(value: float) -> str:
    text = float.__repr__(value)
    return _SPECIAL_FLOATS.get(text, text)


def _bytes(value) -> str:
    if type(value) not in (bytes, bytearray, memoryview):
        raise TypeError(f"not binary: {type(value).__name__}")
    # "\\x" + hex is the bytea hex format, with its backslash escaped for COPY text.
    return "\\\\x" + bytes(value).hex()


# Strict converters by the Python type of a value (an unbound method accepts its own type only).
_BY_PYTHON_TYPE: dict[type, Callable[[object], str]] = {
    int: int.__repr__,
    bool: _BOOLEAN,
    float: _float,
    Decimal: Decimal.__str__,
    dt.datetime: dt.datetime.isoformat,
    dt.date: dt.date.isoformat,
    dt.time: dt.time.isoformat,
    bytes: _bytes,
    bytearray: _bytes,
    memoryview: _bytes,
    uuid.UUID: uuid.UUID.__str__,
}


def converter_for(lv0_type: sa.types.TypeEngine) -> Converter:
    """The converter for a column of ``lv0_type`` (see ``typemap``); order matters, as several
    SQLAlchemy types subclass others (Float is a Numeric)."""
    if isinstance(lv0_type, sa.String):
        return TEXT
    if isinstance(lv0_type, sa.DateTime):
        return dt.datetime.isoformat
    if isinstance(lv0_type, sa.Date):
        return dt.date.isoformat
    if isinstance(lv0_type, sa.Time):
        return dt.time.isoformat
    if isinstance(lv0_type, sa.Boolean):
        return _BOOLEAN
    if isinstance(lv0_type, sa.Integer):
        return int.__repr__
    if isinstance(lv0_type, sa.Float):
        return _float
    if isinstance(lv0_type, sa.Numeric):
        return Decimal.__str__
    if isinstance(lv0_type, sa.Uuid):
        return uuid.UUID.__str__
    if isinstance(lv0_type, (sa.LargeBinary, postgresql.BYTEA)):
        return _bytes
    return None


def _infer(values: Sequence) -> Converter:
    kinds = set(map(type, values))
    kinds.discard(type(None))
    if kinds == {str}:
        return TEXT
    if len(kinds) == 1:
        return _BY_PYTHON_TYPE.get(kinds.pop())
    return None


class RowEncoder:
    """Encodes pages of DBAPI rows; counts the NUL characters it had to drop.

    ``types``: the lv0 type of each column, in row order, to choose the converters once. Without
    them each page's converters are inferred from the values.
    """

    def __init__(self, types: Sequence[sa.types.TypeEngine] | None = None) -> None:
        self.nul_characters_removed = 0
        self._converters = None if types is None else [converter_for(t) for t in types]

    def encode_page(self, rows: Sequence[Sequence]) -> bytes:
        """One COPY text chunk for a page of rows (each row a sequence of column values)."""
        return self.encode_rows(rows).encode("utf-8")

    def encode_rows(self, rows: Sequence[Sequence]) -> str:
        """The COPY text lines of ``rows``, each ending in a newline, as one string."""
        if not rows:
            return ""
        columns = list(zip(*rows))
        width = len(columns)
        converters = self._converters or [_infer(values) for values in columns]
        if len(converters) != width:
            raise ValueError(f"rows have {width} columns, the encoder was given {len(converters)} types")
        # Every field followed by its separator: a tab, or a newline after the row's last field.
        fields: list = [None] * (2 * len(rows) * width)
        fields[1::2] = (["\t"] * (width - 1) + ["\n"]) * len(rows)
        for position, (convert, values) in enumerate(zip(converters, columns)):
            fields[2 * position :: 2 * width] = self._encode_column(convert, values)
        return "".join(fields)

    def _encode_column(self, convert: Converter, values: Sequence) -> Sequence[str]:
        try:
            if convert is TEXT:
                return self._text_column(values)
            if convert is not None:
                return [NULL if value is None else convert(value) for value in values]
        except (TypeError, ValueError, KeyError, AttributeError):
            pass  # a value of another type than the column's: encode value by value
        return [self.encode_value(value) for value in values]

    def _text_column(self, values: Sequence) -> Sequence[str]:
        nulls = values.count(None)
        fields = [NULL if value is None else value for value in values] if nulls else values
        joined = "".join(fields)  # TypeError unless every value is a string (or NULL)
        # The only backslashes allowed are those of the NULL markers.
        if joined.count("\\") == nulls and not any(char in joined for char in _CONTROL):
            return fields
        if "\x00" in joined:
            self.nul_characters_removed += joined.count("\x00")
            return [NULL if value is None else _escape(value.replace("\x00", "")) for value in values]
        return [NULL if value is None else _escape(value) for value in values]

    def encode_value(self, value) -> str:
        """One value as a COPY field, chosen by the value's type."""
        if value is None:
            return NULL
        if type(value) is str:
            if "\x00" in value:
                self.nul_characters_removed += value.count("\x00")
                value = value.replace("\x00", "")
            return _escape(value)
        encoder = _BY_PYTHON_TYPE.get(type(value))
        if encoder is None:
            raise TypeError(f"no COPY encoding for a value of type {type(value).__name__}")
        return encoder(value)


def _escape(text: str) -> str:
    # str.replace returns the string itself when the character is absent, at memchr speed.
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
