"""AcceleratorModel: one entry of the accelerator catalogue (cluster-scoped, short name ``accel``).

The operator ships a catalogue (``interconnect.core.accelerators.CATALOGUE``); AcceleratorModel
objects on the hub extend it (a new model) or override it (an object whose ``spec.model`` is a
built-in model replaces that entry whole). ``deploy/accelerators.yaml`` is the built-in catalogue
as objects, generated from the code, for a hub admin who wants to see or start from it.

Why a kind rather than a ConfigMap with a schema:

- Admission validation, with the field named. A ConfigMap holds strings; a bad figure in it is
  found by the operator at its next read, logged, and the entry dropped or the whole map refused.
  The API server refuses a bad AcceleratorModel at ``kubectl apply``, naming the field
  (``spec.sources.memoryGiB: Required value``, ``spec.resource: Invalid value``), with the same
  rules the operator's models apply.
- ``kubectl get acceleratormodels`` (or ``kubectl get interconnect``) lists the catalogue with its
  vendor, resource, memory, BF16 TFLOPS and power as columns, and ``kubectl explain`` documents
  every field; a ConfigMap shows one opaque key.
- RBAC per object kind: who may change what the network sells and how it is measured is granted
  on ``acceleratormodels`` alone, not on ConfigMaps of a namespace (which also hold other
  configuration), and the audit log records each change to each model.
- One object per model: two admins editing two models do not conflict over one document, and
  ``metadata.name`` (the model, lower case) makes a second entry for the same model impossible.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, ClassVar

from kube_custom_resource.custom_resource import Scope
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from interconnect.core import accelerators as catalogue
from interconnect.core.accelerators import Precision, Vendor
from interconnect.core.vocabulary import API_VERSION

from .common import (
    LABEL_VALUE,
    Model,
    Resource,
    cel,
    immutable,
    must_be_positive,
    positive_decimal_rule,
    rule,
)

#: A figure in TFLOPS: a decimal string (never a YAML float), up to 7 integer digits and 4 decimals.
TFLOPS_PATTERN = r"^(0|[1-9][0-9]{0,6})(\.[0-9]{1,4})?$"
URL_PATTERN = r"^https?://[^\s]+$"
#: An extended resource name: a DNS subdomain, "/", and a name of at most 63 characters.
RESOURCE_PATTERN = (
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$"
)

ModelName = Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=LABEL_VALUE)]
"""An accelerator model as its node label spells it, e.g. NVIDIA-A100-SXM4-80GB or MLU370-X8."""
Url = Annotated[str, StringConstraints(min_length=8, max_length=2048, pattern=URL_PATTERN)]
"""An http(s) URL."""
LabelValue = Annotated[str, StringConstraints(max_length=63, pattern=LABEL_VALUE)]


TflopsBf16 = Annotated[
    str,
    StringConstraints(max_length=12, pattern=TFLOPS_PATTERN),
    AfterValidator(must_be_positive),
    Field(json_schema_extra=cel(positive_decimal_rule("tflops.bf16"))),
]
TflopsFp16 = Annotated[
    str,
    StringConstraints(max_length=12, pattern=TFLOPS_PATTERN),
    AfterValidator(must_be_positive),
    Field(json_schema_extra=cel(positive_decimal_rule("tflops.fp16"))),
]
TflopsFp32 = Annotated[
    str,
    StringConstraints(max_length=12, pattern=TFLOPS_PATTERN),
    AfterValidator(must_be_positive),
    Field(json_schema_extra=cel(positive_decimal_rule("tflops.fp32"))),
]


def _valid_resource(name: str) -> str:
    error = catalogue.extended_resource_error(name)
    if error is not None:
        raise ValueError(error)
    return name


ResourceName = Annotated[
    str,
    StringConstraints(min_length=3, max_length=317, pattern=RESOURCE_PATTERN),
    AfterValidator(_valid_resource),
    Field(
        json_schema_extra=cel(
            rule(
                "!(self.startsWith('kubernetes.io/') || self.contains('.kubernetes.io/'))",
                "resource must not be in the kubernetes.io domain (an extended resource has its vendor's domain, "
                "e.g. nvidia.com/gpu)",
            ),
        )
    ),
]
"""An extended resource name: a vendor's domain and a name, e.g. nvidia.com/gpu."""


def _valid_label_sets(sets: list[dict[str, str]]) -> list[dict[str, str]]:
    for labels in sets:
        for key, value in labels.items():
            error = catalogue.label_error(key, value)
            if error is not None:
                raise ValueError(error)
    return sets


NodeLabelSet = Annotated[dict[str, LabelValue], Field(min_length=1, max_length=8)]


class TflopsFigures(Model):
    """Dense (no sparsity) peak TFLOPS per precision, as decimal strings, e.g. "312". A precision
    left out has no published figure (no PFLOPS-hours can be computed at it for this model)."""

    bf16: TflopsBf16 | None = None
    """BF16 TFLOPS, dense (the vendor's sparse figure halved where it only gives that)."""
    fp16: TflopsFp16 | None = None
    """FP16 TFLOPS, dense."""
    fp32: TflopsFp32 | None = None
    """FP32 TFLOPS (not TF32)."""


class TflopsSources(Model):
    """Where each TFLOPS figure was read."""

    bf16: Url | None = None
    """URL of the BF16 figure."""
    fp16: Url | None = None
    """URL of the FP16 figure."""
    fp32: Url | None = None
    """URL of the FP32 figure."""


class FigureSources(Model):
    """Where each figure (and the resource name and node labels) was read: a URL per field, the
    vendor's datasheet where there is one. Every figure given needs its source."""

    resource: Url | None = None
    """URL documenting the device plugin's resource name."""
    node_labels: Url | None = None
    """URL documenting the node labels."""
    memory_gib: Url | None = Field(default=None, alias="memoryGiB")
    """URL of the memory figure."""
    tflops: TflopsSources | None = None
    """URLs of the TFLOPS figures."""
    interconnect: Url | None = None
    """URL of the interconnect."""
    board_power_watts: Url | None = None
    """URL of the board power figure."""


def _needs_source(figure: str, source: str) -> dict[str, str]:
    checks = ["has(self.sources)"]
    path = "self.sources"
    for part in source.split("."):
        path += f".{part}"
        checks.append(f"has({path})")
    guard = ["!has(self.tflops)", f"!has(self.{figure})"] if figure.startswith("tflops.") else [f"!has(self.{figure})"]
    return rule(
        f"{' || '.join(guard)} || ({' && '.join(checks)})",
        f"sources.{source} is required when {figure} is set (every figure carries the URL it was read from)",
        field_path=f".sources.{source}",
        reason="FieldValueRequired",
    )


_FIGURE_SOURCES = [
    ("memoryGiB", "memoryGiB"),
    *((f"tflops.{p.value}", f"tflops.{p.value}") for p in Precision),
    ("interconnect", "interconnect"),
    ("boardPowerWatts", "boardPowerWatts"),
]


class AcceleratorModelSpec(Model):
    """The model, who makes it, how members' nodes advertise it, and its figures with their sources."""

    model_config = ConfigDict(json_schema_extra=cel(*(_needs_source(f, s) for f, s in _FIGURE_SOURCES)))

    model: Annotated[ModelName, Field(json_schema_extra=immutable("model"))]
    """The model as its node label spells it, e.g. NVIDIA-A100-SXM4-80GB (nvidia.com/gpu.product),
    Ascend910B3 or MLU370-X8: what offers, jobs and quotas name. metadata.name is this in lower
    case with _ as -. A built-in model of that name is replaced by this object. Immutable."""
    vendor: Vendor
    """nvidia, huawei, cambricon or hygon."""
    resource: ResourceName
    """The extended resource the vendor's device plugin advertises, e.g. nvidia.com/gpu,
    huawei.com/Ascend910, cambricon.com/mlu, hygon.com/dcu: what a member pod asks for."""
    node_labels: Annotated[
        list[NodeLabelSet], AfterValidator(_valid_label_sets), Field(min_length=1, max_length=8)
    ]
    """How a member's node says it holds this model: one or more alternatives, each a set of
    labels that must all be present, e.g. [{"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}] or
    [{"accelerator": "huawei-Ascend910", "node.kubernetes.io/npu.chip.name": "910B3"}]. Label keys
    are checked by the operator (the API server checks the values)."""
    memory_gib: Annotated[int, Field(ge=1, le=4096)] | None = Field(default=None, alias="memoryGiB")
    """Memory of one card, in GiB. Omitted: not published."""
    tflops: TflopsFigures | None = None
    """Dense peak TFLOPS per precision."""
    interconnect: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = None
    """Card-to-card link as the vendor names it, e.g. "NVLink 600 GB/s", "HCCS", "PCIe Gen4 x16"."""
    board_power_watts: Annotated[int, Field(ge=1, le=10_000)] | None = None
    """Typical (maximum rated) board power, in watts."""
    sources: FigureSources = Field(default_factory=FigureSources)
    """The URL each figure was read from: required for every figure given."""
    notes: Annotated[
        dict[str, Annotated[str, StringConstraints(max_length=1024)]], Field(max_length=16)
    ] = Field(default_factory=dict)
    """How a figure was read or why it is missing, by field (memoryGiB, tflops.bf16, ...), e.g.
    "secondary source: the vendor publishes no datasheet"."""

    @model_validator(mode="after")
    def _every_figure_has_a_source(self) -> AcceleratorModelSpec:
        errors = catalogue.model_errors(self.to_core(check=False))
        sourced = [e for e in errors if e.startswith("sources.") or e.startswith("notes:")]
        if sourced:
            raise ValueError("; ".join(sourced))
        return self

    def to_core(self, *, check: bool = True) -> catalogue.AcceleratorModel:
        """The catalogue entry (``check=False``: without re-validating, for the validator itself)."""
        sources: dict[str, str] = {}
        for path, url in (
            (catalogue.RESOURCE, self.sources.resource),
            (catalogue.NODE_LABELS, self.sources.node_labels),
            (catalogue.MEMORY_GIB, self.sources.memory_gib),
            (catalogue.INTERCONNECT, self.sources.interconnect),
            (catalogue.BOARD_POWER_WATTS, self.sources.board_power_watts),
        ):
            if url is not None:
                sources[path] = url
        tflops: dict[Precision, Decimal] = {}
        for precision in Precision:
            figure = getattr(self.tflops, precision.value, None) if self.tflops else None
            if figure is not None:
                tflops[precision] = Decimal(figure)
            url = getattr(self.sources.tflops, precision.value, None) if self.sources.tflops else None
            if url is not None:
                sources[catalogue.tflops_field(precision)] = url
        fields = {
            "name": self.model,
            "vendor": self.vendor,
            "resource": self.resource,
            "node_labels": tuple(self.node_labels),
            "memory_gib": self.memory_gib,
            "tflops": tflops,
            "interconnect": self.interconnect,
            "board_power_watts": self.board_power_watts,
            "sources": sources,
            "notes": self.notes,
        }
        if check:
            return catalogue.AcceleratorModel(**fields)  # type: ignore[arg-type]
        model = object.__new__(catalogue.AcceleratorModel)
        for key, value in fields.items():
            object.__setattr__(model, key, value)
        return model


class AcceleratorModel(  # type: ignore[call-arg]
    Resource,
    scope=Scope.CLUSTER,
    kind="AcceleratorModel",
    plural_name="acceleratormodels",
    short_names=["accel"],
    printer_columns=[
        {"name": "Model", "type": "string", "jsonPath": ".spec.model"},
        {"name": "Vendor", "type": "string", "jsonPath": ".spec.vendor"},
        {"name": "Resource", "type": "string", "jsonPath": ".spec.resource"},
        {"name": "Memory", "type": "integer", "jsonPath": ".spec.memoryGiB", "description": "GiB per card"},
        {"name": "BF16", "type": "string", "jsonPath": ".spec.tflops.bf16", "description": "dense TFLOPS"},
        {"name": "Power", "type": "integer", "jsonPath": ".spec.boardPowerWatts", "description": "watts"},
        {"name": "FP16", "type": "string", "jsonPath": ".spec.tflops.fp16", "priority": 1},
        {"name": "FP32", "type": "string", "jsonPath": ".spec.tflops.fp32", "priority": 1},
        {"name": "Interconnect", "type": "string", "jsonPath": ".spec.interconnect", "priority": 1},
    ],
):
    """An accelerator model the network sells: vendor, the device plugin's resource, the node
    labels that identify it, memory, dense TFLOPS per precision, interconnect and board power,
    each figure with the URL it was read from. Extends the operator's built-in catalogue, or
    overrides the entry of the same model. Named after the model (lower case, _ as -)."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra=cel(
            rule(
                "self.metadata.name == self.spec.model.lowerAscii().replace('_', '-')",
                "metadata.name must be spec.model in lower case with _ as - (one AcceleratorModel per model)",
                field_path=".spec.model",
            )
        ),
    )

    KIND: ClassVar[str] = "AcceleratorModel"
    PLURAL: ClassVar[str] = "acceleratormodels"

    api_version: str = API_VERSION
    kind: str = "AcceleratorModel"
    spec: AcceleratorModelSpec
    """The model, its resource and labels, its figures and their sources."""

    @field_validator("spec")
    @classmethod
    def _named_after_the_model(cls, spec: AcceleratorModelSpec, info: ValidationInfo) -> AcceleratorModelSpec:
        metadata = info.data.get("metadata")
        if metadata is not None and metadata.name != catalogue.object_name(spec.model):
            raise ValueError("metadata.name must be spec.model in lower case with _ as - (one AcceleratorModel per "
                             "model)")
        return spec

    def to_core(self) -> catalogue.AcceleratorModel:
        """The catalogue entry this object defines."""
        return self.spec.to_core()

    @classmethod
    def from_core(cls, model: catalogue.AcceleratorModel) -> AcceleratorModel:
        """The object for a catalogue entry (how ``deploy/accelerators.yaml`` is generated)."""

        def source(path: str) -> str | None:
            return model.sources.get(path)

        tflops = {p.value: format(v, "f") for p, v in model.tflops.items()}
        tflops_sources = {p.value: url for p in Precision if (url := source(catalogue.tflops_field(p)))}
        spec = {
            "model": model.name,
            "vendor": model.vendor.value,
            "resource": model.resource,
            "nodeLabels": [dict(labels) for labels in model.node_labels],
            "memoryGiB": model.memory_gib,
            "tflops": tflops or None,
            "interconnect": model.interconnect,
            "boardPowerWatts": model.board_power_watts,
            "sources": {
                "resource": source(catalogue.RESOURCE),
                "nodeLabels": source(catalogue.NODE_LABELS),
                "memoryGiB": source(catalogue.MEMORY_GIB),
                "tflops": tflops_sources or None,
                "interconnect": source(catalogue.INTERCONNECT),
                "boardPowerWatts": source(catalogue.BOARD_POWER_WATTS),
            },
            "notes": dict(model.notes),
        }
        return cls.model_validate(
            {"apiVersion": API_VERSION, "kind": "AcceleratorModel",
             "metadata": {"name": catalogue.object_name(model.name)}, "spec": spec}
        )


__all__ = [
    "AcceleratorModel",
    "AcceleratorModelSpec",
    "FigureSources",
    "TflopsFigures",
    "TflopsSources",
]
