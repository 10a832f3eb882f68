"""The lv2 -> Salesforce mapping (``objects.yaml``), typed and validated when definitions load.

One :class:`HcObject` per Salesforce object: the lv2 table that feeds it, its external-ID
field, and per lv2 column the Salesforce field it feeds, with the field's type, length (text),
precision and scale (numbers), whether it is required and, for a restricted picklist, the
values Salesforce accepts. Lookups name the lv2 column holding the parent's external id, the
lookup field and the parent object; Heroku Connect resolves them through the relationship
column ``<lookup>__r__<parent external id field>`` (``account__r__bf_external_id__c``).

A bad entry fails with :class:`HcMappingError`, naming the object and the field at fault.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import cache
from graphlib import CycleError, TopologicalSorter
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, ValidationError, field_validator, model_validator

from bodyfriend_assets.catalog import read_yaml

MAPPING_PATH = Path(__file__).with_name("objects.yaml")
DEFAULT_EXTERNAL_ID_FIELD = "BF_External_ID__c"
EXTERNAL_ID_COLUMN = "external_id"  # the lv2 convention: every lv2 table keys on it
EXTERNAL_ID_LENGTH = 255  # Salesforce's longest external-ID text field
POSTGRES_IDENTIFIER_LENGTH = 63

TextType = Literal["string", "textarea", "email", "phone", "url", "picklist"]
FieldType = Literal[
    "string", "textarea", "email", "phone", "url", "picklist",
    "boolean", "date", "datetime", "currency", "double", "percent", "int",
]
TEXT_TYPES = frozenset(TextType.__args__)
NUMBER_TYPES = frozenset({"currency", "double", "percent", "int"})
# The fixed lengths Salesforce gives some text types (a declared length must not exceed them).
FIXED_LENGTHS = {"email": 80, "phone": 40, "picklist": 255, "url": 255}
MAX_TEXT_LENGTH = 131072

_API_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)*(?:__c)?$")
_COLUMN = re.compile(r"^[a-z_][a-z0-9_]*$")


class HcMappingError(ValueError):
    """The mapping is invalid; the message names the object and the field at fault."""


def _api_name(value: str) -> str:
    if not _API_NAME.match(value):
        raise ValueError(f"{value!r} is not a Salesforce API name")
    if len(value) > POSTGRES_IDENTIFIER_LENGTH - len("__r__") - len(DEFAULT_EXTERNAL_ID_FIELD):
        raise ValueError(f"{value!r} is too long to name a Heroku Connect column")
    return value


def _column(value: str) -> str:
    if not _COLUMN.match(value):
        raise ValueError(f"{value!r} is not a lower-case lv2 column name")
    return value


class Field(BaseModel):
    """lv2 ``column`` -> Salesforce ``field`` (hc column ``field.lower()``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    field: str
    type: FieldType
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    required: bool = False
    values: tuple[str, ...] | None = None  # a restricted picklist's values

    @field_validator("column")
    @classmethod
    def _check_column(cls, value: str) -> str:
        return _column(value)

    @field_validator("field")
    @classmethod
    def _check_field(cls, value: str) -> str:
        return _api_name(value)

    @model_validator(mode="after")
    def _fits_type(self) -> Field:
        if self.type in TEXT_TYPES:
            fixed = FIXED_LENGTHS.get(self.type)
            if self.length is None and fixed is None:
                raise ValueError(f"{self.field}: a {self.type} field needs a length")
            length = self.length if self.length is not None else fixed
            if not 0 < length <= (fixed or MAX_TEXT_LENGTH):
                raise ValueError(f"{self.field}: length {length} is out of range for a {self.type} field")
            object.__setattr__(self, "length", length)
        elif self.length is not None:
            raise ValueError(f"{self.field}: only text fields have a length")
        if self.type in NUMBER_TYPES:
            precision = self.precision if self.precision is not None else 18
            scale = self.scale if self.scale is not None else 0
            if not (0 < precision <= 18 and 0 <= scale <= precision):
                raise ValueError(f"{self.field}: precision {precision}, scale {scale} are out of range")
            object.__setattr__(self, "precision", precision)
            object.__setattr__(self, "scale", scale)
        elif self.precision is not None or self.scale is not None:
            raise ValueError(f"{self.field}: only number fields have a precision and scale")
        if self.values is not None:
            if self.type != "picklist":
                raise ValueError(f"{self.field}: only a picklist has values")
            if not self.values or len(set(self.values)) != len(self.values):
                raise ValueError(f"{self.field}: the picklist values must be given, each once")
            too_long = [v for v in self.values if len(v) > (self.length or 255)]
            if too_long:
                raise ValueError(f"{self.field}: picklist values longer than the field: {too_long}")
        if self.required and self.type == "boolean":
            raise ValueError(f"{self.field}: a checkbox is never empty; it cannot be 'required'")
        return self

    @property
    def hc_column(self) -> str:
        return self.field.lower()

    @property
    def is_text(self) -> bool:
        return self.type in TEXT_TYPES

    @property
    def is_number(self) -> bool:
        return self.type in NUMBER_TYPES

    @property
    def label(self) -> str:
        """``BillingStreet (textarea(255))``: the field as reasons and errors name it."""
        if self.is_text:
            return f"{self.field} ({self.type}({self.length}))"
        if self.is_number:
            return f"{self.field} ({self.type}({self.precision},{self.scale}))"
        return f"{self.field} ({self.type})"


class Lookup(BaseModel):
    """lv2 ``column`` (the parent's external id) -> lookup ``field`` to ``object``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    column: str
    field: str
    object: str
    required: bool = False

    @field_validator("column")
    @classmethod
    def _check_column(cls, value: str) -> str:
        return _column(value)

    @field_validator("object")
    @classmethod
    def _check_object(cls, value: str) -> str:
        return _api_name(value)

    @field_validator("field")
    @classmethod
    def _lookup_name(cls, value: str) -> str:
        _api_name(value)
        if not (value.endswith("Id") or value.endswith("__c")):
            raise ValueError(f"{value!r}: a lookup field ends in 'Id' (standard) or '__c' (custom)")
        return value

    @property
    def relationship(self) -> str:
        """``Account`` for AccountId, ``Opportunity`` for Opportunity__c (relationship Opportunity__r)."""
        return self.field[: -len("__c")] if self.field.endswith("__c") else self.field[: -len("Id")]

    def hc_column(self, parent_external_id: str) -> str:
        """The relationship external-ID column: ``account__r__bf_external_id__c``."""
        return f"{self.relationship.lower()}__r__{parent_external_id.lower()}"


class HcObject(BaseModel):
    """One Salesforce object fed from one lv2 table."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    object: str
    source: str
    external_id: str = DEFAULT_EXTERNAL_ID_FIELD
    fields: tuple[Field, ...]
    lookups: tuple[Lookup, ...] = ()
    delete_column: str | None = None
    # Keep a field's value edited in Salesforce until the ERP changes it (:mod:`.salesforce_edits`).
    keep_salesforce_edits: bool = False

    @field_validator("object", "external_id")
    @classmethod
    def _check_names(cls, value: str) -> str:
        return _api_name(value)

    @field_validator("source")
    @classmethod
    def _check_source(cls, value: str) -> str:
        return _column(value)

    @model_validator(mode="after")
    def _distinct(self) -> HcObject:
        if not self.external_id.endswith("__c"):
            raise ValueError(f"{self.external_id}: an external-ID field is a custom field (…__c)")
        columns = [self.external_id.lower(), *(f.hc_column for f in self.fields)]
        columns += [lookup.field.lower() for lookup in self.lookups]
        repeated = sorted({c for c in columns if columns.count(c) > 1})
        if repeated:
            raise ValueError(f"Salesforce fields mapped twice: {repeated}")
        sources = [EXTERNAL_ID_COLUMN, *(f.column for f in self.fields), *(lk.column for lk in self.lookups)]
        if self.delete_column:
            sources.append(_column(self.delete_column))
        repeated = sorted({c for c in sources if sources.count(c) > 1})
        if repeated:
            raise ValueError(f"lv2 columns mapped twice: {repeated}")
        return self

    @property
    def table(self) -> str:
        """The Heroku Connect table: the API name in lower case (``service_receipt__c``)."""
        return self.object.lower()

    @property
    def external_id_column(self) -> str:
        return self.external_id.lower()

    @property
    def external_id_field(self) -> Field:
        """The external id as a field: required, text, checked like any other before writing."""
        return Field(
            column=EXTERNAL_ID_COLUMN, field=self.external_id, type="string",
            length=EXTERNAL_ID_LENGTH, required=True,
        )

    @property
    def parents(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(lookup.object for lookup in self.lookups if lookup.object != self.object))


class HcMapping(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    objects: tuple[HcObject, ...]

    @model_validator(mode="after")
    def _consistent(self) -> HcMapping:
        names = [o.object for o in self.objects]
        tables = [o.table for o in self.objects]
        sources = [o.source for o in self.objects]
        for what, values in (("objects", names), ("hc tables", tables), ("lv2 sources", sources)):
            repeated = sorted({v for v in values if values.count(v) > 1})
            if repeated:
                raise ValueError(f"{what} given twice: {repeated}")
        for obj in self.objects:
            for lookup in obj.lookups:
                if lookup.object not in names:
                    raise ValueError(f"{obj.object}.{lookup.field}: looks up {lookup.object}, which is not mapped")
        self.ordered()  # no cycle
        return self

    def by_object(self, name: str) -> HcObject:
        for obj in self.objects:
            if obj.object == name:
                return obj
        raise KeyError(f"no hc object {name!r}")

    def by_source(self, source: str) -> HcObject:
        for obj in self.objects:
            if obj.source == source:
                return obj
        raise KeyError(f"no hc object fed from lv2.{source}")

    def lookup_column(self, lookup: Lookup) -> str:
        return lookup.hc_column(self.by_object(lookup.object).external_id)

    def ordered(self) -> list[HcObject]:
        """Parents before children (ties by the file's order): Account and Product2 before Opportunity."""
        position = {o.object: i for i, o in enumerate(self.objects)}
        sorter = TopologicalSorter({o.object: o.parents for o in self.objects})
        try:
            sorter.prepare()
        except CycleError as err:
            raise ValueError(f"objects look each other up in a cycle: {' -> '.join(err.args[1])}") from None
        ordered = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready(), key=position.__getitem__)
            ordered.extend(self.by_object(name) for name in ready)
            sorter.done(*ready)
        return ordered


def parse_mapping(document: dict) -> HcMapping:
    """Validate a mapping document (the parsed YAML); raise :class:`HcMappingError` naming the entry."""
    if not isinstance(document, dict) or not isinstance(document.get("objects"), list):
        raise HcMappingError("the hc mapping must be a mapping with an 'objects' list")
    unknown = set(document) - {"defaults", "objects"}
    if unknown:
        raise HcMappingError(f"unknown top-level keys in the hc mapping: {sorted(unknown)}")
    defaults = document.get("defaults") or {}
    objects = []
    for position, raw in enumerate(document["objects"], start=1):
        label = f"#{position} ({raw.get('object', '?')})" if isinstance(raw, dict) else f"#{position}"
        if not isinstance(raw, dict):
            raise HcMappingError(f"hc object {label}: must be a mapping")
        try:
            objects.append(HcObject.model_validate({**defaults, **raw}))
        except ValidationError as err:
            raise HcMappingError(f"hc object {label}: {_problems(err, raw)}") from None
    try:
        return HcMapping(objects=tuple(objects))
    except ValidationError as err:
        raise HcMappingError(f"hc mapping: {_problems(err, {})}") from None


def _problems(err: ValidationError, raw: dict) -> str:
    problems = []
    for error in err.errors():
        location = list(error["loc"])
        # fields.3.length -> fields[3] (Name).length: name the Salesforce field at fault
        if len(location) >= 2 and location[0] in ("fields", "lookups") and isinstance(location[1], int):
            entries = raw.get(location[0]) or []
            entry = entries[location[1]] if location[1] < len(entries) else {}
            name = entry.get("field") if isinstance(entry, dict) else None
            location[1] = f"[{location[1]}]" + (f" ({name})" if name else "")
        where = ".".join(str(p) for p in location).replace(".[", "[") or "entry"
        problems.append(f"{where}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(problems)


@cache
def load_mapping(path: Path = MAPPING_PATH) -> HcMapping:
    return parse_mapping(read_yaml(path))


def check_against_models(mapping: HcMapping, models: Iterable) -> dict[str, object]:
    """Every object's source is an lv2 model and every mapped column one its SELECT returns (the
    models' ``returned``, read when they were parsed).

    Returns ``{object name: model}``; raises :class:`HcMappingError` naming object and column."""
    by_name = {model.name: model for model in models}
    found = {}
    for obj in mapping.objects:
        model = by_name.get(obj.source)
        if model is None:
            raise HcMappingError(f"hc object {obj.object}: its source lv2.{obj.source} is not an lv2 model")
        returned = model.returned
        needed = [EXTERNAL_ID_COLUMN, *(f.column for f in obj.fields), *(lk.column for lk in obj.lookups)]
        if obj.delete_column:
            needed.append(obj.delete_column)
        if returned is not None:
            missing = [c for c in needed if c not in returned]
            if missing:
                raise HcMappingError(
                    f"hc object {obj.object}: lv2.{obj.source} ({model.file}) returns no column "
                    f"{', '.join(missing)}"
                )
        found[obj.object] = model
    return found

