"""Building blocks shared by the v1alpha1 kinds: field types, conditions, prices, the base classes.

Conventions (every model in this package follows them):

- Field and class docstrings are the descriptions ``kubectl explain`` shows.
- An optional field is written ``X | None = None``. In the CRD it is simply not required (no
  ``nullable``): the API server drops an explicit null, and ``has(self.x)`` in a CEL rule means
  "given". Write objects with ``to_api(model)``, which leaves the Nones out; a JSON merge patch
  may still send null to remove a field.
- Defaults live in the models, not in the CRD: the API server stores what the user wrote and the
  operator applies the defaults when it parses an object.
- Money and card-hours are decimal strings, never floats.
- Cross-field rules are CEL ``x-kubernetes-validations`` (``cel()``/``rule()`` below), each with
  a message naming the field, so that the API server rejects a bad object at admission.
"""

from __future__ import annotations

import copy
import datetime as dt
import sys
from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from typing import Annotated, Any, ClassVar, Literal, Self

import pydantic
from kube_custom_resource import schema
from kube_custom_resource.custom_resource import CustomResource, Metadata
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    GetJsonSchemaHandler,
    StringConstraints,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema

from interconnect.core.regions import REGION_CODES, is_region
from interconnect.core.vocabulary import BillingUnit

# --------------------------------------------------------------------------------------------
# JSON schema helpers
# --------------------------------------------------------------------------------------------


def rule(
    expression: str,
    message: str,
    *,
    field_path: str | None = None,
    reason: Literal["FieldValueInvalid", "FieldValueForbidden", "FieldValueRequired"] | None = None,
) -> dict[str, str]:
    """One ``x-kubernetes-validations`` entry (a CEL rule with its message)."""
    out = {"rule": expression, "message": message}
    if field_path is not None:
        out["fieldPath"] = field_path
    if reason is not None:
        out["reason"] = reason
    return out


def cel(*rules: dict[str, str]) -> dict[str, Any]:
    """``json_schema_extra`` carrying CEL rules, for a model config or a Field."""
    return {"x-kubernetes-validations": list(rules)}


def immutable(field: str) -> dict[str, Any]:
    """``json_schema_extra`` making a field immutable once set."""
    return cel(rule("self == oldSelf", f"{field} is immutable"))


class SchemaExtra:
    """Annotation that adds keywords to a type's JSON schema (where ``Field`` cannot go)."""

    def __init__(self, **keywords: Any) -> None:
        self.keywords = keywords

    def __get_pydantic_json_schema__(self, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler.resolve_ref_schema(handler(core_schema))
        json_schema.update(self.keywords)
        return json_schema

    def __hash__(self) -> int:
        return hash(repr(sorted(self.keywords.items())))


#: Keywords of apiextensions.k8s.io/v1 JSONSchemaProps that a structural schema may use here.
ALLOWED_KEYWORDS = frozenset(
    {
        "description", "type", "format", "maximum", "exclusiveMaximum", "minimum",
        "exclusiveMinimum", "maxLength", "minLength", "pattern", "maxItems", "minItems",
        "multipleOf", "enum", "maxProperties", "minProperties", "required", "items", "properties",
        "additionalProperties", "nullable", "x-kubernetes-preserve-unknown-fields",
        "x-kubernetes-int-or-string", "x-kubernetes-list-map-keys", "x-kubernetes-list-type",
        "x-kubernetes-map-type", "x-kubernetes-validations", "x-kubernetes-embedded-resource",
    }
)  # fmt: skip
_DROPPED_KEYWORDS = frozenset({"title", "default"})


def _merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``base`` (a referenced or non-null schema) with the keywords written beside it on top.

    The field's own description wins over the class docstring; CEL rules accumulate.
    """
    merged = dict(base)
    for key, value in overlay.items():
        if key == "x-kubernetes-validations":
            merged[key] = [*merged.get(key, []), *value]
        else:
            merged[key] = value
    return merged


def _one_line_paragraphs(text: str) -> str:
    """Docstring text with each paragraph on one line (kubectl explain wraps it itself)."""
    paragraphs = (" ".join(p.split()) for p in text.strip().split("\n\n"))
    return "\n\n".join(p for p in paragraphs if p)


def structural(json_schema: dict[str, Any]) -> dict[str, Any]:
    """A pydantic JSON schema turned into a Kubernetes structural schema.

    Inlines ``$ref``s, turns ``X | None`` into plain (not required, not nullable) ``X``, drops
    titles and defaults, and refuses anything a structural schema cannot hold.
    """
    definitions: dict[str, Any] = json_schema.get("$defs", {})

    def walk(node: dict[str, Any], path: str) -> dict[str, Any]:
        node = dict(node)
        if "$ref" in node:
            ref = node.pop("$ref").removeprefix("#/$defs/")
            node = _merge(definitions[ref], node)
        if "allOf" in node and len(node["allOf"]) == 1:
            node = _merge(node.pop("allOf")[0], node)
        if "anyOf" in node:
            choices = [c for c in node["anyOf"] if c.get("type") != "null"]
            if len(choices) != 1:
                raise ValueError(f"{path}: a union is not a structural schema: {node['anyOf']}")
            del node["anyOf"]
            return walk(_merge(choices[0], node), path)
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key in _DROPPED_KEYWORDS or key == "$defs":
                continue
            if key not in ALLOWED_KEYWORDS:
                raise ValueError(f"{path}: keyword {key!r} has no place in a CRD schema")
            if key == "properties":
                out[key] = {name: walk(sub, f"{path}.{name}") for name, sub in value.items()}
            elif key == "items":
                out[key] = walk(value, f"{path}[]")
            elif key == "additionalProperties":
                if not isinstance(value, dict):
                    if value is True:
                        continue
                    raise ValueError(f"{path}: additionalProperties: false is not structural")
                out[key] = walk(value, f"{path}.*")
            elif key == "description":
                out[key] = _one_line_paragraphs(value)
            elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
                raise ValueError(f"{path}: use ge/le rather than gt/lt")
            else:
                out[key] = copy.deepcopy(value)
        if "type" not in out and not (
            out.get("x-kubernetes-preserve-unknown-fields") or out.get("x-kubernetes-int-or-string")
        ):
            raise ValueError(f"{path}: every schema needs a type")
        return out

    return walk(json_schema, "")


# --------------------------------------------------------------------------------------------
# Base classes
# --------------------------------------------------------------------------------------------


_FIELDS_SETS: dict[frozenset[str], set[str]] = {}
"""One set per distinct combination of fields set (a few hundred at most: the schema bounds it)."""


SHARED_STRING_LENGTH = 64
"""Strings up to this long are shared (interned) in kept models and status dictionaries: the
same node, offer, region, currency, reason and phase names repeat in thousands of jobs, each a
copy of its own as parsed from JSON (50 to 110 bytes each). Longer ones are mostly unique."""


_UNIQUE_FIELDS = frozenset({"uid", "name", "resource_version", "resourceVersion", "generate_name", "generateName",
                            "pod", "member_job_name", "memberJobName"})
"""Fields (as models and as the wire name them) whose values are (nearly) each object's own:
sharing them would only add a table entry."""


def _shared(field: str | None, value: Any) -> Any:
    """`value` shared when it is a short string of a field whose values repeat across objects."""
    if type(value) is str and len(value) <= SHARED_STRING_LENGTH and field not in _UNIQUE_FIELDS:
        return sys.intern(value)
    return value


def shared_fields_set(fields_set: set[str]) -> set[str]:
    """The one set kept for this combination of fields (never to be changed in place)."""
    return _FIELDS_SETS.setdefault(frozenset(fields_set), fields_set)


def _share(model: pydantic.BaseModel) -> None:
    fields_set = model.__pydantic_fields_set__
    shared = shared_fields_set(fields_set)
    if shared is not fields_set:
        object.__setattr__(model, "__pydantic_fields_set__", shared)
    values = model.__dict__
    for name, value in values.items():
        values[name] = _shared(name, value)


def shared_strings(value: Any, field: str | None = None) -> Any:
    """``value`` (a wire-form dict, list or scalar) with its short repeated strings shared, in
    place for dicts and lists: what is kept per job for as long as it lives."""
    if isinstance(value, dict):
        for key, item in value.items():
            value[key] = shared_strings(item, key)
    elif isinstance(value, list):
        value[:] = [shared_strings(item, field) for item in value]
    else:
        return _shared(field, value)
    return value


class SharedFieldsSet(pydantic.BaseModel):
    """Models whose instances share their ``__pydantic_fields_set__``.

    pydantic gives every instance its own set of the fields that were set; a set of five names or
    more takes 728 bytes, more than the instance's own dict, and a ComputeJob is a few dozen
    instances (its conditions, metadata, spec, pod template). With 50,000 jobs in memory that was
    a quarter of the operator's state. The sets are the same for most instances, so after
    validation each instance takes the shared one; an assignment (which adds the field to the
    set in place) first gives the instance a copy of its own.
    """

    @pydantic.model_validator(mode="after")
    def _share_fields_set(self) -> Any:
        _share(self)
        return self

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        """pydantic's copy, which gives the copy a set of its own (the operator copies every job
        it keeps), sharing the set again."""
        copied = super().model_copy(update=update, deep=deep)
        _share(copied)
        return copied

    def __setattr__(self, name: str, value: Any) -> None:
        fields_set = self.__pydantic_fields_set__
        if _FIELDS_SETS.get(frozenset(fields_set)) is fields_set:
            object.__setattr__(self, "__pydantic_fields_set__", set(fields_set))
        super().__setattr__(name, value)


class Model(SharedFieldsSet, schema.BaseModel):
    """Base of every model in the API: camelCase on the wire, docstrings as descriptions."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        """pydantic's model_dump, by alias unless told otherwise (typed, unlike the base's)."""
        kwargs.setdefault("by_alias", True)
        return BaseModel.model_dump(self, **kwargs)

    def model_dump_json(self, **kwargs: Any) -> str:
        kwargs.setdefault("by_alias", True)
        return BaseModel.model_dump_json(self, **kwargs)


class ObjectMeta(SharedFieldsSet, Metadata):
    """The object's metadata (not part of the CRD schema; the API server owns it)."""

    generation: int | None = None


class Resource(SharedFieldsSet, CustomResource, abstract=True):  # type: ignore[metaclass, call-arg]
    """Base of the three kinds: a raw object from the API validates into one of these."""

    model_config = ConfigDict(use_attribute_docstrings=True)

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        """pydantic's model_dump, by alias unless told otherwise (typed, unlike the base's)."""
        kwargs.setdefault("by_alias", True)
        return BaseModel.model_dump(self, **kwargs)

    def model_dump_json(self, **kwargs: Any) -> str:
        kwargs.setdefault("by_alias", True)
        return BaseModel.model_dump_json(self, **kwargs)

    metadata: ObjectMeta
    """Standard object metadata."""

    #: Filled in by each kind.
    KIND: ClassVar[str]
    PLURAL: ClassVar[str]

    @classmethod
    def __get_pydantic_json_schema__(cls, core_schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler.resolve_ref_schema(handler(core_schema))
        # apiVersion, kind and metadata are the API server's, not the CRD schema's.
        for key in ("apiVersion", "kind", "metadata"):
            json_schema.get("properties", {}).pop(key, None)
            if key in json_schema.get("required", []):
                json_schema["required"].remove(key)
        return json_schema

    @classmethod
    def model_json_schema(cls, *args: Any, include_defaults: bool = False, **kwargs: Any) -> dict[str, Any]:
        """The structural schema for the CRD (``include_defaults`` is accepted and ignored)."""
        raw: dict[str, Any] = BaseModel.model_json_schema.__func__(cls, *args, **kwargs)  # type: ignore[attr-defined]
        return structural(raw)


def to_api(model: BaseModel) -> dict[str, Any]:
    """The wire form of a model (camelCase, JSON types, without the fields that are None)."""
    return model.model_dump(mode="json", by_alias=True, exclude_none=True)


# --------------------------------------------------------------------------------------------
# Field types
# --------------------------------------------------------------------------------------------

DNS1123_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS1123_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
#: A price or budget: up to 10 integer digits and 4 decimals, no sign, no exponent, no float.
AMOUNT_PATTERN = r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,4})?$"
#: A measured quantity in status (card-hours, cost): more room and more decimals.
QUANTITY_PATTERN = r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,12})?$"  # card-hours to 1e-12 h (3.6 ns of one card)
CURRENCY_PATTERN = r"^[A-Z]{3}$"

ObjectName = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=DNS1123_SUBDOMAIN)]
"""The name of an object (DNS-1123 subdomain)."""
NamespaceName = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=DNS1123_LABEL)]
GpuModelName = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=LABEL_VALUE)]
"""A GPU model as the nvidia.com/gpu.product node label spells it, e.g. NVIDIA-A100-SXM4-80GB."""
Amount = Annotated[str, StringConstraints(max_length=15, pattern=AMOUNT_PATTERN)]
Quantity = Annotated[str, StringConstraints(max_length=28, pattern=QUANTITY_PATTERN)]
Currency = Annotated[str, StringConstraints(min_length=3, max_length=3, pattern=CURRENCY_PATTERN)]
ShortText = Annotated[str, StringConstraints(max_length=1024)]


def _check_region(code: str) -> str:
    if not is_region(code):
        raise ValueError(f"{code!r} is not an ISO 3166-2:CN code such as 'CN-GZ'")
    return code


RegionCode = Annotated[str, AfterValidator(_check_region), SchemaExtra(enum=list(REGION_CODES))]
"""An ISO 3166-2:CN provincial-level code, e.g. CN-GZ (Guizhou) or CN-SH (Shanghai)."""


def unique_by(key: str) -> Callable[[list[Any]], list[Any]]:
    """A list-map's validator: refuses a second entry with the same `key` (field of each entry),
    as the API server does for x-kubernetes-list-map-keys, with the key named."""

    def check(items: list[Any]) -> list[Any]:
        seen: set[Any] = set()
        for item in items:
            value = getattr(item, key)
            if value in seen:
                raise ValueError(f"duplicate entry for {key} {value!r}")
            seen.add(value)
        return items

    return check


def positive_decimal_rule(field: str) -> dict[str, str]:
    """A decimal string (already matching its pattern) is positive iff it has a non-zero digit."""
    return rule("self.matches('[1-9]')", f"{field} must be greater than 0")


def must_be_positive(value: str) -> str:
    """Validator twin of ``positive_decimal_rule``."""
    if not any(c in "123456789" for c in value):
        raise ValueError("must be greater than 0")
    return value


def decimal(value: str) -> Decimal:
    """A decimal string of the API as a Decimal (exact; never a float)."""
    return Decimal(value)


# --------------------------------------------------------------------------------------------
# Money
# --------------------------------------------------------------------------------------------


class MonetaryAmount(Model):
    """An amount of money: a decimal string and an ISO 4217 currency."""

    amount: Amount
    """Decimal string, e.g. "12.5" (up to 10 integer digits and 4 decimals; never a YAML float)."""
    currency: Currency
    """ISO 4217 currency code, three upper-case letters, e.g. CNY."""


class Price(Model):
    """A price per billing unit."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            rule(
                "!has(self.unit) || self.unit != 'machine-hour' || has(self.cardsPerMachine)",
                "cardsPerMachine is required when unit is machine-hour",
                field_path=".cardsPerMachine",
                reason="FieldValueRequired",
            ),
            rule(
                "!has(self.unit) || self.unit == 'machine-hour' || !has(self.cardsPerMachine)",
                "cardsPerMachine is only allowed when unit is machine-hour",
                field_path=".cardsPerMachine",
                reason="FieldValueForbidden",
            ),
        )
    )

    amount: Amount
    """Decimal string, e.g. "12.5", per unit (up to 10 integer digits and 4 decimals; never a YAML float)."""
    currency: Currency
    """ISO 4217 currency code, three upper-case letters, e.g. CNY."""
    unit: BillingUnit
    """Billing unit: card-hour (one card for one hour) or machine-hour (one machine of
    cardsPerMachine cards for one hour)."""
    cards_per_machine: Annotated[int, Field(ge=1, le=64)] | None = None
    """Cards in one machine: required when unit is machine-hour, forbidden otherwise."""

    @model_validator(mode="after")
    def _cards_per_machine_iff_machine_hour(self) -> Price:
        if self.unit == BillingUnit.MACHINE_HOUR and self.cards_per_machine is None:
            raise ValueError("cardsPerMachine is required when unit is machine-hour")
        if self.unit != BillingUnit.MACHINE_HOUR and self.cards_per_machine is not None:
            raise ValueError("cardsPerMachine is only allowed when unit is machine-hour")
        return self

    def per_card_hour(self) -> Decimal:
        """The price of one card for one hour, exact."""
        amount = Decimal(self.amount)
        if self.unit == BillingUnit.MACHINE_HOUR:
            if not self.cards_per_machine:
                raise ValueError("a machine-hour price needs cardsPerMachine")
            return amount / self.cards_per_machine
        return amount


# --------------------------------------------------------------------------------------------
# Conditions
# --------------------------------------------------------------------------------------------

ConditionStatus = Literal["True", "False", "Unknown"]
CONDITION_TYPE_PATTERN = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])$"
)
CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


class Condition(Model):
    """One aspect of the object's current state (metav1.Condition)."""

    type: Annotated[str, StringConstraints(max_length=316, pattern=CONDITION_TYPE_PATTERN)]
    """Type of condition in CamelCase, e.g. Ready."""
    status: ConditionStatus
    """True, False or Unknown."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The metadata.generation the condition was set for."""
    last_transition_time: AwareDatetime
    """When the condition last changed from one status to another."""
    reason: Annotated[str, StringConstraints(min_length=1, max_length=1024, pattern=CONDITION_REASON_PATTERN)]
    """Programmatic identifier of the reason for the last transition, in CamelCase."""
    message: Annotated[str, StringConstraints(max_length=32768)] = ""
    """Human-readable details about the transition."""


Conditions = Annotated[
    list[Condition],
    Field(
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    ),
]


def _status_str(status: ConditionStatus | bool) -> ConditionStatus:
    if status is True:
        return "True"
    if status is False:
        return "False"
    return status


def set_condition(
    conditions: Sequence[Condition],
    type: str,
    status: ConditionStatus | bool,
    reason: str,
    message: str,
    generation: int | None,
    now: dt.datetime,
) -> list[Condition]:
    """A new list of conditions with ``type`` set (pure; the input is not modified).

    ``lastTransitionTime`` moves to ``now`` (truncated to the second, as the API stores it) only
    when the status changes; reason, message and observedGeneration are always updated. A new
    condition goes at the end; the others keep their order.
    """
    new_status = _status_str(status)
    if now.tzinfo is None:
        raise ValueError("set_condition needs an aware datetime")
    now = now.replace(microsecond=0)
    out: list[Condition] = []
    found = False
    for condition in conditions:
        if condition.type != type:
            out.append(condition.model_copy())
            continue
        found = True
        transition = condition.last_transition_time if condition.status == new_status else now
        out.append(
            Condition(
                type=type,
                status=new_status,
                reason=reason,
                message=message,
                observed_generation=generation,
                last_transition_time=transition,
            )
        )
    if not found:
        out.append(
            Condition(
                type=type,
                status=new_status,
                reason=reason,
                message=message,
                observed_generation=generation,
                last_transition_time=now,
            )
        )
    return out


def find_condition(conditions: Sequence[Condition], type: str) -> Condition | None:
    return next((c for c in conditions if c.type == type), None)


def is_condition_true(conditions: Sequence[Condition], type: str) -> bool:
    condition = find_condition(conditions, type)
    return condition is not None and condition.status == "True"


__all__ = [
    "Amount",
    "Condition",
    "ConditionStatus",
    "Conditions",
    "Currency",
    "GpuModelName",
    "Model",
    "MonetaryAmount",
    "NamespaceName",
    "ObjectMeta",
    "ObjectName",
    "Price",
    "Quantity",
    "RegionCode",
    "Resource",
    "SchemaExtra",
    "cel",
    "decimal",
    "find_condition",
    "immutable",
    "is_condition_true",
    "must_be_positive",
    "positive_decimal_rule",
    "rule",
    "set_condition",
    "structural",
    "to_api",
    "unique_by",
]


def validation_message(exc: pydantic.ValidationError) -> str:
    """Each error as `field.path: what is wrong`, the way the API server words its own."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())[:32000]
