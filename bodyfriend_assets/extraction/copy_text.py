"""Rows as PostgreSQL ``COPY ... FROM STDIN`` text input.

Text format keeps NULL (``\\N``) and the empty string apart, and passes every other character
through after escaping backslash, tab, newline and carriage return, so Korean text, quotes,
commas and trailing spaces arrive byte-identical. PostgreSQL text cannot hold NUL, so NUL
characters are removed and counted (the legacy system also dropped them; here they are reported).
"""

from __future__ import annotations

import datetime as dt
import math
import uuid
from decimal import Decimal

_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r", "\x00": None})


class RowEncoder:
    """Encodes pages of DBAPI rows; counts the NUL characters it had to drop."""

    def __init__(self) -> None:
        self.nul_characters_removed = 0
        self._encoders = {
            str: self._text,
            int: str,
            bool: _boolean,
            float: _float,
            Decimal: str,
            dt.datetime: _datetime,
            dt.date: dt.date.isoformat,
            dt.time: dt.time.isoformat,
            bytes: _bytes,
            bytearray: _bytes,
            memoryview: _bytes,
            uuid.UUID: str,
        }

    def _text(self, value: str) -> str:
        if "\x00" in value:
            self.nul_characters_removed += value.count("\x00")
        return value.translate(_ESCAPES)

    def encode_value(self, value) -> str:
        if value is None:
            return "\\N"
        encoder = self._encoders.get(type(value))
        if encoder is None:
            raise TypeError(f"no COPY encoding for a value of type {type(value).__name__}")
        return encoder(value)

    def encode_page(self, rows) -> bytes:
        """One COPY text chunk for a page of rows (each row a sequence of column values)."""
        encoders = self._encoders
        text = self._text
        lines = []
        append = lines.append
        for row in rows:
            fields = []
            for value in row:
                if value is None:
                    fields.append("\\N")
                elif type(value) is str:
                    fields.append(text(value))
                else:
                    encoder = encoders.get(type(value))
                    if encoder is None:
                        fields.append(self.encode_value(value))
                    else:
                        fields.append(encoder(value))
            append("\t".join(fields))
        append("")
        return "\n".join(lines).encode("utf-8")


def _boolean(value: bool) -> str:
    return "t" if value else "f"


def _float(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return repr(value)


def _datetime(value: dt.datetime) -> str:
    return value.isoformat(sep=" ")


def _bytes(value) -> str:
    # "\\x" + hex is the bytea hex format, with its backslash escaped for COPY text.
    return "\\\\x" + bytes(value).hex()
