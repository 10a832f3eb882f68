"""What Salesforce said: the rows Heroku Connect failed to sync, read back from the hc table.

Heroku Connect marks a row it could not write to Salesforce with ``_hc_lastop = 'FAILED'`` and
puts the reason in ``_hc_err`` (JSON, ``{"op": ..., "src": "SF", "msg": <Salesforce's
message>}``; plain text is read as the message). Salesforce's messages quote the value they
refused (``INVALID_EMAIL_ADDRESS: Email: invalid email address: kim@``), so a report keeps the
status code, the fields the message names and the message with the row's own values, e-mail
addresses and digit runs masked: the external id is the only customer value it shows.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bodyfriend_assets.hc.mapping import HcMapping, HcObject
from bodyfriend_assets.hc.tables import FAILED, hc_table

MASK = "<value>"
_STATUS_CODE = re.compile(r"^\s*([A-Z][A-Z_]{2,})\b")
_EMAIL_LIKE = re.compile(r"\S+@\S*")
_DIGITS = re.compile(r"\d[\d\-.,: ]{2,}\d")
MESSAGE_LENGTH = 300


@dataclass(frozen=True)
class Refusal:
    external_id: str
    operation: str | None
    status_code: str | None
    fields: tuple[str, ...]
    message: str  # masked

    def __str__(self) -> str:
        fields = ", ".join(self.fields) or "no field named"
        return f"{self.external_id}: {self.operation or '?'} {fields}: {self.message}"


def refused_rows(conn: Connection, obj: HcObject, mapping: HcMapping, schema: str,
                 limit: int) -> tuple[int, list[Refusal]]:
    """How many rows of ``obj``'s hc table Salesforce refused, and the first ``limit``, masked."""
    table = hc_table(obj, mapping, schema)
    failed = table.c._hc_lastop == FAILED
    count = conn.execute(sa.select(sa.func.count()).select_from(table).where(failed)).scalar_one()
    mapped = [table.c[f.hc_column] for f in obj.fields]
    rows = conn.execute(
        sa.select(table.c[obj.external_id_column], table.c._hc_err, *mapped)
        .where(failed).order_by(table.c.id).limit(limit)
    ).all()
    names = [f.field for f in obj.fields] + [lk.field for lk in obj.lookups]
    return count, [_refusal(row[0], row[1], row[2:], names) for row in rows]


def _refusal(external_id: str, error: str | None, values, names: list[str]) -> Refusal:
    operation, message = None, error or ""
    try:
        parsed = json.loads(message)
    except ValueError:
        parsed = None
    if isinstance(parsed, dict):
        operation, message = parsed.get("op"), str(parsed.get("msg") or "")
    code = _STATUS_CODE.match(message)
    fields = tuple(n for n in names if re.search(rf"\b{re.escape(n)}\b", message, re.IGNORECASE))
    return Refusal(external_id, operation, code.group(1) if code else None, fields, _masked(message, values))


def _masked(message: str, values) -> str:
    texts = sorted({str(v) for v in values if v is not None and len(str(v)) >= 2}, key=len, reverse=True)
    for text in texts:
        message = message.replace(text, MASK)
    message = _EMAIL_LIKE.sub(MASK, message)
    message = _DIGITS.sub(MASK, message)
    return message[:MESSAGE_LENGTH]
