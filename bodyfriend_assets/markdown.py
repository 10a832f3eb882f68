"""Descriptions are Markdown in the Dagster UI: code in them is quoted, so it shows as written.

Unquoted, ``lv1/__init__.py`` renders as "lv1/**init**.py" and a ``*`` starts emphasis. Descriptions
written in code quote their names with backticks directly; :func:`quote_code` does it for prose
written elsewhere (the header lines of a ``.sql`` model).
"""

from __future__ import annotations

import re

# A path or dotted name (``lv1/__init__.py``, ``RENTAL.dbo.R_GOODS``, ``lv0.r_goods``) or an
# identifier with an underscore (``external_id``, ``__init__``), outside existing backticks.
# "e.g." and "3.4" are not code: every part of a dotted word has two letters or more.
_CODE = re.compile(
    r"`[^`]*`"
    r"|(?<![\w`])[A-Za-z_]\w*(?:[./][A-Za-z_]\w*)*(?![\w`])"
)


def _is_code(word: str) -> bool:
    if "_" in word or "/" in word:
        return True
    parts = word.split(".")
    return len(parts) > 1 and all(len(part) > 1 for part in parts)


def quote_code(text: str) -> str:
    """``text`` with each path, dotted name and snake_case identifier in backticks."""
    def quote(match: re.Match) -> str:
        word = match.group(0)
        if word.startswith("`") or not _is_code(word):
            return word
        return f"`{word}`"

    return _CODE.sub(quote, text)
