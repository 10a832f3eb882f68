"""What Salesforce would refuse, as SQL conditions on the staged rows of one object's load.

Each :class:`Rule` is true for a row Salesforce would refuse (or that would leave Salesforce
wrong), with the field and a reason that names the rule, never the value. The load quarantines
such a row whole: it is not written, so the record keeps its previous values in hc and in
Salesforce, and no field Salesforce holds is ever cleared by a value the platform could not use.

The rules, per Salesforce field type (README, "hc", lists the documentation each follows):

- every text type: no longer than the field (Salesforce refuses, never truncates);
- required: not empty;
- email: Salesforce's address syntax, ASCII only (local part of letters, digits and
  ``!#$%&'*+/=?^_`{|}~-``, dots inside; a domain of dot-separated labels);
- url: no white space or control characters;
- phone: Salesforce stores any text, so the org's format is the rule: a Korean number as lv1
  writes it, ``010-1234-5678``, ``02-123-4567``, ``031-123-4567`` or ``1588-1234``;
- picklist: a restricted picklist's values only;
- date: 1700-01-01 to 4000-12-31; datetime (in UTC): 1700-01-01T00:00Z to 4000-12-31T00:00Z;
- numbers: at most ``precision - scale`` digits before the point and ``scale`` after it
  (Salesforce would round the extra digits: a silent change);
- lookups: the parent is in its hc table (loaded earlier in the same step, parents first);
  otherwise the child waits, quarantined as ``parent_quarantined`` or ``parent_missing``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa

from bodyfriend_assets.hc.mapping import EXTERNAL_ID_COLUMN, Field, HcMapping, HcObject, Lookup
from bodyfriend_assets.hc.tables import LOOKUP_COLUMN_LENGTH, hc_table

# (No bounded repetition such as {0,61}: PostgreSQL's regex engine runs it 8x slower; the
# field's 80 characters bound the labels anyway.)
EMAIL_PATTERN = (
    r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$"
)
EMAIL_LOCAL_LENGTH = 64
URL_PATTERN = r"^[^[:space:][:cntrl:]]+$"
# A Korean number as lv1.phone_number writes it: area or mobile prefix, 3-4 digits, 4 digits;
# or a nationwide representative number (15xx, 16xx, 18xx) of 8 digits.
PHONE_PATTERN = r"^((02|0[0-9]{2})-[0-9]{3,4}-[0-9]{4}|1[5-9][0-9]{2}-[0-9]{4})$"
PHONE_FORMAT = "010-1234-5678, 02-123-4567 or 1588-1234"
EARLIEST_DATE = dt.date(1700, 1, 1)
LATEST_DATE = dt.date(4000, 12, 31)
EARLIEST_DATETIME = dt.datetime(1700, 1, 1)
LATEST_DATETIME = dt.datetime(4000, 12, 31)


@dataclass(frozen=True)
class Rule:
    field: str  # the Salesforce field
    kind: str  # too_long | required | invalid_email | ... (counted per kind in the metadata)
    condition: sa.ColumnElement  # true for a row Salesforce would refuse
    reason: sa.ColumnElement  # text, computed per row; never the value itself
    value: sa.ColumnElement


def object_rules(obj: HcObject, mapping: HcMapping, stage: sa.Table, schema: str, held: sa.Table) -> list[Rule]:
    """Every rule of ``obj`` on ``stage`` (its rows under their hc column names)."""
    rules = []
    for field in (obj.external_id_field, *obj.fields):
        column = stage.c[field.hc_column if field.column != EXTERNAL_ID_COLUMN else obj.external_id_column]
        rules += field_rules(field, column)
    for lookup in obj.lookups:
        column = stage.c[mapping.lookup_column(lookup)]
        pseudo = Field(column=lookup.column, field=lookup.field, type="string",
                       length=LOOKUP_COLUMN_LENGTH, required=lookup.required)
        rules += field_rules(pseudo, column)
        if lookup.object != obj.object:  # a self-lookup's parent may come in the same batch
            rules += _parent_rules(lookup, mapping, column, schema, held)
    return rules


def field_rules(field: Field, column) -> list[Rule]:
    rules = []
    as_text = sa.cast(column, sa.Text)
    present = column.is_not(None)
    if field.required:
        empty = column.is_(None)
        if field.is_text:
            empty = sa.or_(empty, sa.func.btrim(as_text) == "")
        rules.append(_rule(field, "required", empty, f"required field {field.label} is empty", as_text))
    if field.is_text:
        length = sa.func.char_length(as_text)
        rules.append(Rule(
            field.field, "too_long", sa.and_(present, length > field.length),
            sa.func.concat(sa.literal("value of ", sa.Text), length,
                           sa.literal(f" characters is too long for {field.label}", sa.Text)),
            as_text,
        ))
    if field.type == "email":
        malformed = sa.or_(
            as_text.regexp_match(EMAIL_PATTERN) == sa.false(),
            sa.func.char_length(sa.func.split_part(as_text, "@", 1)) > EMAIL_LOCAL_LENGTH,
        )
        rules.append(_rule(field, "invalid_email", sa.and_(present, malformed),
                           f"not an e-mail address Salesforce accepts in {field.field}", as_text))
    if field.type == "url":
        rules.append(_rule(field, "invalid_url", sa.and_(present, as_text.regexp_match(URL_PATTERN) == sa.false()),
                           f"a URL with spaces or control characters in {field.field}", as_text))
    if field.type == "phone":
        rules.append(_rule(field, "invalid_phone", sa.and_(present, as_text.regexp_match(PHONE_PATTERN) == sa.false()),
                           f"not a phone number in the org's format ({PHONE_FORMAT}) in {field.field}", as_text))
    if field.values is not None:
        rules.append(_rule(field, "not_in_picklist", sa.and_(present, as_text.not_in(list(field.values))),
                           f"not a value of the restricted picklist {field.field}", as_text))
    if field.type in ("date", "datetime"):
        earliest, latest = (EARLIEST_DATE, LATEST_DATE) if field.type == "date" else (EARLIEST_DATETIME, LATEST_DATETIME)
        outside = sa.or_(column < sa.literal(earliest), column > sa.literal(latest))
        rules.append(_rule(field, "date_out_of_range", sa.and_(present, outside),
                           f"outside Salesforce's range {earliest.isoformat()} to {latest.isoformat()} "
                           f"for {field.label}", as_text))
    if field.is_number:
        number = sa.cast(column, sa.Numeric)
        rules.append(_rule(field, "number_too_large",
                           sa.and_(present, sa.func.abs(number) >= 10 ** (field.precision - field.scale)),
                           f"number too large for {field.label}", as_text))
        rules.append(_rule(field, "too_many_decimals",
                           sa.and_(present, number != sa.func.round(number, field.scale)),
                           f"more than {field.scale} decimal places for {field.label} "
                           "(Salesforce would round it)", as_text))
    return rules


def _parent_rules(lookup: Lookup, mapping: HcMapping, column, schema: str, held: sa.Table) -> list[Rule]:
    """The parent must be in its hc table; a missing one is told apart from one held back."""
    parent = mapping.by_object(lookup.object)
    parent_table = hc_table(parent, mapping, schema)
    absent = sa.and_(
        column.is_not(None),
        ~sa.exists().where(parent_table.c[parent.external_id_column] == column),
    )
    held_back = sa.exists().where(held.c.object == parent.object, held.c.external_id == column)
    pseudo = Field(column=lookup.column, field=lookup.field, type="string", length=LOOKUP_COLUMN_LENGTH)

    def reason(state: str) -> sa.ColumnElement:
        return sa.func.concat(sa.literal(f"parent {parent.object} ", sa.Text), column,
                              sa.literal(f" {state}", sa.Text))

    as_text = sa.cast(column, sa.Text)
    return [
        Rule(pseudo.field, "parent_quarantined", sa.and_(absent, held_back),
             reason("is quarantined, not in hc yet"), as_text),
        Rule(pseudo.field, "parent_missing", sa.and_(absent, ~held_back),
             reason("is not in hc"), as_text),
    ]


def _rule(field: Field, kind: str, condition, reason: str, value) -> Rule:
    return Rule(field.field, kind, condition, sa.literal(reason, sa.Text), value)
