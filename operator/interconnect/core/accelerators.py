"""The accelerator catalogue: every model the network sells, with published figures and their sources.

One entry per accelerator model: its vendor, the extended resource its device plugin advertises
(``nvidia.com/gpu``, ``huawei.com/Ascend910``, ...), the node labels by which a member's node says
which model it holds, and the figures that make cards of different models comparable: memory,
dense TFLOPS per precision, interconnect and typical board power. Every figure carries the URL it
was read from (``sources``, keyed by the API's field path: ``memoryGiB``, ``tflops.bf16``, ...);
a figure no public source gives is left out (None) and ``notes`` says why, rather than guessed.
``docs/accelerators.md`` is the table with its sources; ``deploy/accelerators.yaml`` is this
catalogue as AcceleratorModel objects, generated from it.

The catalogue shipped here is the default. The hub admin extends or overrides it with
AcceleratorModel objects (``merge_catalogue``): an object with the name of a built-in model
replaces that entry whole, any other name adds a model.

Figures are ``Decimal``, not ``float``: a model's TFLOPS multiply card-hours, which the metering
already keeps as exact decimals, into the PFLOPS-hours that are billed and compared across
vendors (``pflops_hours``); published figures such as 362.05 or 19.5 have no exact binary
representation, and a float product would differ in the last digits between a quote, a bill and
a recomputation. Memory and power are whole numbers as vendors publish them.

Pure: no I/O. Not yet used by placement, dispatch or metering (issue 18 wires it in).
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Context, Decimal, InvalidOperation
from types import MappingProxyType

from interconnect.core.vocabulary import GPU_PRODUCT_LABEL, GPU_RESOURCE


class Vendor(enum.StrEnum):
    """Who makes the accelerator (quotas and reports group by it)."""

    NVIDIA = "nvidia"
    HUAWEI = "huawei"
    CAMBRICON = "cambricon"
    HYGON = "hygon"


class Precision(enum.StrEnum):
    """A precision for which a model's dense (no sparsity) TFLOPS are catalogued."""

    BF16 = "bf16"
    FP16 = "fp16"
    FP32 = "fp32"


# Field paths, as the AcceleratorModel API spells them: the keys of `sources` and `notes`.
RESOURCE = "resource"
NODE_LABELS = "nodeLabels"
MEMORY_GIB = "memoryGiB"
INTERCONNECT = "interconnect"
BOARD_POWER_WATTS = "boardPowerWatts"


def tflops_field(precision: Precision) -> str:
    """The field path of a precision's TFLOPS, e.g. ``tflops.bf16``."""
    return f"tflops.{precision.value}"


FIGURE_FIELDS: tuple[str, ...] = (
    MEMORY_GIB,
    *(tflops_field(p) for p in Precision),
    INTERCONNECT,
    BOARD_POWER_WATTS,
)
"""The figures a model may have: each one it has needs a source."""
SOURCE_FIELDS: tuple[str, ...] = (RESOURCE, NODE_LABELS, *FIGURE_FIELDS)
"""Every field a source may be given for (the resource name and node labels too)."""

# Kubernetes' rules for an extended resource name (a qualified name with a domain prefix, outside
# kubernetes.io) and for label keys and values.
_DNS_SUBDOMAIN = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_QUALIFIED_NAME = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
EXTENDED_RESOURCE_PATTERN = rf"^{_DNS_SUBDOMAIN}/{_QUALIFIED_NAME}$"
LABEL_KEY_PATTERN = rf"^({_DNS_SUBDOMAIN}/)?{_QUALIFIED_NAME}$"
LABEL_VALUE_PATTERN = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
_EXTENDED_RESOURCE = re.compile(EXTENDED_RESOURCE_PATTERN)
_LABEL_KEY = re.compile(LABEL_KEY_PATTERN)
_LABEL_VALUE = re.compile(LABEL_VALUE_PATTERN)
_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")


def extended_resource_error(name: str) -> str | None:
    """Why ``name`` is not a valid extended resource name (None if it is)."""
    if not _EXTENDED_RESOURCE.match(name):
        return f"{name!r} is not a domain-prefixed resource name such as nvidia.com/gpu"
    prefix, _, local = name.partition("/")
    if len(prefix) > 253 or len(local) > 63:
        return f"{name!r}: the prefix may have 253 characters and the name 63"
    if prefix == "kubernetes.io" or prefix.endswith(".kubernetes.io"):
        return f"{name!r}: the kubernetes.io domain is reserved, an extended resource is not in it"
    return None


def label_error(key: str, value: str) -> str | None:
    """Why ``key: value`` is not a valid node label (None if it is)."""
    prefix, _, local = key.rpartition("/")
    if not _LABEL_KEY.match(key) or len(prefix) > 253 or len(local) > 63:
        return f"{key!r} is not a label key"
    if len(value) > 63 or not _LABEL_VALUE.match(value):
        return f"{value!r} (label {key}) is not a label value"
    return None


def object_name(model_name: str) -> str:
    """The AcceleratorModel object named after a model: lower case, ``_`` as ``-``.

    Model names are spelt as node labels spell them (upper case, underscores); object names are
    DNS subdomains. One object per model: two names that differ only there are the same model.
    """
    return model_name.lower().replace("_", "-")


FIGURE_CONTEXT = Context(prec=60, traps=[InvalidOperation])
"""Exact for any product of cards, hours and TFLOPS the API admits (none needs 60 digits)."""
_THOUSAND = Decimal(1000)
_PFLOPS_QUANTUM = Decimal(1).scaleb(-12)


def _freeze(mapping: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True, slots=True)
class AcceleratorModel:
    """One accelerator model and its published figures (None: no public source gives it)."""

    name: str
    """As the node label spells it, e.g. NVIDIA-A100-SXM4-80GB (nvidia.com/gpu.product)."""
    vendor: Vendor
    resource: str
    """The extended resource its device plugin advertises, e.g. nvidia.com/gpu."""
    node_labels: tuple[Mapping[str, str], ...]
    """Alternatives: a node whose labels include all of any one of them holds this model."""
    memory_gib: int | None = None
    tflops: Mapping[Precision, Decimal] = field(default_factory=dict)
    """Dense (no sparsity) TFLOPS per precision; a precision left out has no sourced figure."""
    interconnect: str | None = None
    """Card-to-card link as the vendor names it, e.g. "NVLink 600 GB/s" or "PCIe Gen4 x16"."""
    board_power_watts: int | None = None
    """Typical (maximum rated) board power."""
    sources: Mapping[str, str] = field(default_factory=dict)
    """Field path (``memoryGiB``, ``tflops.bf16``, ...) -> URL the figure was read from."""
    notes: Mapping[str, str] = field(default_factory=dict)
    """Field path -> how the figure was read (secondary source, derived) or why it is missing."""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "vendor", Vendor(self.vendor))
        set_(self, "node_labels", tuple(_freeze(labels) for labels in self.node_labels))
        if any(isinstance(v, float) for v in self.tflops.values()):
            raise TypeError(f"accelerator model {self.name!r}: TFLOPS are Decimals or decimal strings, never floats")
        set_(self, "tflops", MappingProxyType({Precision(p): Decimal(v) for p, v in self.tflops.items()}))
        set_(self, "sources", _freeze(self.sources))
        set_(self, "notes", _freeze(self.notes))
        errors = model_errors(self)
        if errors:
            raise ValueError(f"accelerator model {self.name!r}: " + "; ".join(errors))

    def __hash__(self) -> int:
        return hash(self.name)

    def figures(self) -> dict[str, object]:
        """Field path -> figure, for the figures the model has."""
        out: dict[str, object] = {}
        if self.memory_gib is not None:
            out[MEMORY_GIB] = self.memory_gib
        for precision in Precision:
            if precision in self.tflops:
                out[tflops_field(precision)] = self.tflops[precision]
        if self.interconnect is not None:
            out[INTERCONNECT] = self.interconnect
        if self.board_power_watts is not None:
            out[BOARD_POWER_WATTS] = self.board_power_watts
        return out

    def tflops_at(self, precision: Precision | str) -> Decimal | None:
        """Dense TFLOPS at ``precision``, or None when no source gives the figure."""
        return self.tflops.get(Precision(precision))

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether a node with ``labels`` holds this model (any one alternative, all its labels)."""
        return any(all(labels.get(k) == v for k, v in alt.items()) for alt in self.node_labels)


def model_errors(model: AcceleratorModel) -> list[str]:
    """What is wrong with a catalogue entry, each naming the field (empty: nothing)."""
    errors: list[str] = []
    if not _NAME.match(model.name) or len(model.name) > 63:
        errors.append(f"name: {model.name!r} is not spelt as a label value")
    resource_error = extended_resource_error(model.resource)
    if resource_error:
        errors.append(f"{RESOURCE}: {resource_error}")
    if not model.node_labels:
        errors.append(f"{NODE_LABELS}: at least one set of node labels identifies the model")
    for i, labels in enumerate(model.node_labels):
        if not labels:
            errors.append(f"{NODE_LABELS}[{i}]: at least one label")
        errors.extend(f"{NODE_LABELS}[{i}]: {e}" for k, v in labels.items() if (e := label_error(k, v)))
    if model.memory_gib is not None and model.memory_gib <= 0:
        errors.append(f"{MEMORY_GIB}: must be greater than 0")
    if model.board_power_watts is not None and model.board_power_watts <= 0:
        errors.append(f"{BOARD_POWER_WATTS}: must be greater than 0")
    for precision, value in model.tflops.items():
        if not value.is_finite() or value <= 0:
            errors.append(f"{tflops_field(precision)}: must be greater than 0")
    if model.interconnect is not None and not model.interconnect.strip():
        errors.append(f"{INTERCONNECT}: empty (leave it out instead)")
    unknown = sorted(set(model.sources) - set(SOURCE_FIELDS))
    if unknown:
        errors.append(f"sources: no such field {unknown}")
    unknown_notes = sorted(set(model.notes) - set(SOURCE_FIELDS))
    if unknown_notes:
        errors.append(f"notes: no such field {unknown_notes}")
    for path, url in model.sources.items():
        if not url.startswith(("https://", "http://")):
            errors.append(f"sources.{path}: {url!r} is not an http(s) URL")
    errors.extend(f"sources.{path}: the figure has no source" for path in model.figures() if path not in model.sources)
    return errors


Catalogue = Mapping[str, AcceleratorModel]
"""Model name -> model."""


def catalogue_of(models: Iterable[AcceleratorModel]) -> Catalogue:
    """A catalogue from models: names unique, sorted by name, read-only."""
    out: dict[str, AcceleratorModel] = {}
    for model in sorted(models, key=lambda m: m.name):
        if model.name in out:
            raise ValueError(f"accelerator model {model.name!r} is catalogued twice")
        out[model.name] = model
    return MappingProxyType(out)


def merge_catalogue(base: Catalogue, overrides: Iterable[AcceleratorModel]) -> Catalogue:
    """``base`` with each override replacing the model of its name, or added (a hub's catalogue)."""
    merged = dict(base)
    for model in catalogue_of(overrides).values():
        merged[model.name] = model
    return catalogue_of(merged.values())


def by_name(name: str, catalogue: Catalogue | None = None) -> AcceleratorModel | None:
    """The model called ``name`` (as its node label spells it), or None."""
    return (_in_use if catalogue is None else catalogue).get(name)


def model_for_node_labels(labels: Mapping[str, str], catalogue: Catalogue | None = None) -> AcceleratorModel | None:
    """The model a member's node holds, from its labels, or None when no catalogued model matches.

    When several match, the one whose matching alternative names the most labels wins (a chip
    name beats a bare "Ascend 910 family" label), then the first by name: deterministic.
    """
    best: tuple[int, str] | None = None
    found: AcceleratorModel | None = None
    for model in (_in_use if catalogue is None else catalogue).values():
        sizes = [len(alt) for alt in model.node_labels if all(labels.get(k) == v for k, v in alt.items())]
        if not sizes:
            continue
        rank = (-max(sizes), model.name)
        if best is None or rank < best:
            best, found = rank, model
    return found


def resource_names(catalogue: Catalogue | None = None) -> frozenset[str]:
    """Every extended resource a catalogued model is advertised as."""
    return frozenset(m.resource for m in (_in_use if catalogue is None else catalogue).values())


def models_of_vendor(vendor: Vendor | str, catalogue: Catalogue | None = None) -> tuple[AcceleratorModel, ...]:
    """The catalogued models of one vendor, by name."""
    wanted = Vendor(vendor)
    return tuple(m for m in (_in_use if catalogue is None else catalogue).values() if m.vendor == wanted)


class MissingFigure(LookupError):
    """The model has no sourced figure for what was asked (a hub admin may add one)."""


def pflops_hours(cards: int, hours: Decimal | int, model: AcceleratorModel, precision: Precision | str) -> Decimal:
    """Normalised compute: cards x hours x the model's dense TFLOPS at ``precision`` / 1000, exact.

    Raises MissingFigure when the catalogue has no sourced TFLOPS for that precision (never a
    guess), and ValueError for negative cards or hours.
    """
    if isinstance(cards, bool) or not isinstance(cards, int):
        raise TypeError("cards must be an int")
    if isinstance(hours, bool) or not isinstance(hours, Decimal | int):
        raise TypeError("hours must be a Decimal or an int (never a float)")
    hours = Decimal(hours)
    if cards < 0 or not hours.is_finite() or hours < 0:
        raise ValueError(f"cards and hours must not be negative: {cards} cards, {hours} h")
    tflops = model.tflops_at(precision)
    if tflops is None:
        raise MissingFigure(f"{model.name} has no sourced {Precision(precision).value} TFLOPS figure")
    card_hours = FIGURE_CONTEXT.multiply(Decimal(cards), hours)
    return FIGURE_CONTEXT.divide(FIGURE_CONTEXT.multiply(card_hours, tflops), _THOUSAND)


# --------------------------------------------------------------------------------------------
# The seeded catalogue. Every URL below is where the figure was read; docs/accelerators.md has
# the same table with the secondary pages that confirmed figures of vendor PDFs.
# --------------------------------------------------------------------------------------------

_GFD_LABELS = "https://github.com/NVIDIA/k8s-device-plugin/blob/main/docs/gfd_labels.md"
_NVIDIA_PLUGIN = "https://github.com/NVIDIA/k8s-device-plugin"
_A100_DATASHEET = (
    "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/a100/pdf/"
    "nvidia-a100-datasheet-us-nvidia-1758950-r4-web.pdf"
)
_H100_PAGE = "https://www.nvidia.com/en-us/data-center/h100/"
_L40S_PAGE = "https://www.nvidia.com/en-us/data-center/l40s/"
_A800_SPECS = "https://hmc-tech.com/gpu/nvidia-a800-vs-nvidia-t40"
_A800_NVLINK = "https://blog.51cto.com/zhangxueliang/14287061"
_H800_VS_H100 = "https://www.philisun.com/technical-analysis/nvidia-h800-vs-h100-a-technical-deep-dive-into-politically-defined-ai-chips/"
_H20_TWEAKTOWN = (
    "https://www.tweaktown.com/news/95224/"
    "nvidias-tweaked-h20-ai-gpu-enters-mass-production-in-q2-2024-destined-for-china/index.html"
)
_H20_COMPUTE = "https://zangshuxian.com/new/674733024499207168"
_MINDCLUSTER_LABELS = "https://www.hiascend.com/document/detail/zh/mindcluster/730/clustersched/dlug/dlug_api_039.html"
_HAMI_ASCEND = "https://github.com/Project-HAMi/HAMi/blob/master/docs/ascend910b-support.md"
_ASCEND_PLUGIN = "https://github.com/Ascend/ascend-device-plugin/blob/master/src/plugin/pkg/npu/huawei/constants.go"
_CAMBRICON_PLUGIN = "https://github.com/Cambricon/cambricon-k8s-device-plugin/blob/master/device-plugin/README.md"
_CAMBRICON_LABELS = (
    "https://github.com/Cambricon/cambricon-k8s-device-plugin/blob/master/device-plugin/pkg/nodeLabel/nodelabel.go"
)
_MLU370_LAUNCH = "http://www.rencaizhenjiang.com/news/hard/20220324/124384.html"
_MLU370_SPECS = "http://guangxilong.com/c/032129635H022.html"
_BYTEMLPERF = "https://github.com/bytedance/ByteMLPerf"
_HYGON_K8S = (
    "https://developer.sourcefind.cn/document/87ee5c5b-c10d-11f0-b077-0242ac150003"
    "?id=44dc5a98-c8d9-11f0-8db6-0242ac150003"
)

_NVIDIA_SOURCES = {RESOURCE: _NVIDIA_PLUGIN, NODE_LABELS: _GFD_LABELS}
_NVIDIA_LABEL_NOTE = (
    "GPU feature discovery's nvidia.com/gpu.product: the name nvidia-smi reports, spaces as hyphens."
)


def _nvidia(
    name: str,
    *,
    memory_gib: int,
    tflops: Mapping[Precision, Decimal],
    interconnect: str,
    board_power_watts: int | None = None,
    sources: Mapping[str, str],
    notes: Mapping[str, str],
) -> AcceleratorModel:
    return AcceleratorModel(
        name=name,
        vendor=Vendor.NVIDIA,
        resource=GPU_RESOURCE,
        node_labels=({GPU_PRODUCT_LABEL: name},),
        memory_gib=memory_gib,
        tflops=tflops,
        interconnect=interconnect,
        board_power_watts=board_power_watts,
        sources={**_NVIDIA_SOURCES, **sources},
        notes={NODE_LABELS: _NVIDIA_LABEL_NOTE, **notes},
    )


def _all(url: str, *paths: str) -> dict[str, str]:
    return dict.fromkeys(paths, url)


_BF16, _FP16, _FP32 = (tflops_field(p) for p in (Precision.BF16, Precision.FP16, Precision.FP32))
_ASCEND_RESOURCE = "huawei.com/Ascend910"
_ASCEND_LABEL, _ASCEND_CHIP_LABEL = "accelerator", "node.kubernetes.io/npu.chip.name"
_ASCEND_NO_FIGURES = (
    "Huawei publishes no per-chip figure for the 910B variants (its Atlas pages give server totals); "
    "public secondary sources disagree (256 and 320 FP16 TFLOPS are both quoted for \"910B\" without "
    "naming the variant; 256 is the original Ascend 910's published figure), so none is catalogued: a "
    "hub admin adds the figures of their Huawei datasheet with an AcceleratorModel."
)
_ASCEND_NOTES = {
    RESOURCE: "Huawei's Ascend Device Plugin advertises every Ascend 910 chip as huawei.com/Ascend910 "
              "(HAMi's own plugin uses per-chip names such as huawei.com/Ascend910B3 instead).",
    NODE_LABELS: "accelerator=huawei-Ascend910 (set for the device plugin) and "
                 "node.kubernetes.io/npu.chip.name (set by the device plugin from npu-smi's chip name).",
    MEMORY_GIB: "Secondary: HAMi's built-in Ascend device configuration (memoryCapacity, MiB); "
                "Huawei publishes no per-chip figure.",
    _BF16: _ASCEND_NO_FIGURES,
    _FP16: _ASCEND_NO_FIGURES,
    _FP32: _ASCEND_NO_FIGURES,
    INTERCONNECT: "Huawei names HCCS between the processors of its Atlas servers but publishes no per-chip "
                  "figure for the 910B; left out.",
    BOARD_POWER_WATTS: "No vendor figure per chip; secondary sources disagree. Left out.",
}


def _ascend(chip: str, memory_gib: int) -> AcceleratorModel:
    return AcceleratorModel(
        name=f"Ascend{chip}",
        vendor=Vendor.HUAWEI,
        resource=_ASCEND_RESOURCE,
        node_labels=({_ASCEND_LABEL: "huawei-Ascend910", _ASCEND_CHIP_LABEL: chip},),
        memory_gib=memory_gib,
        sources={RESOURCE: _ASCEND_PLUGIN, NODE_LABELS: _MINDCLUSTER_LABELS, MEMORY_GIB: _HAMI_ASCEND},
        notes=_ASCEND_NOTES,
    )


_HYGON_NO_FIGURES = (
    "Hygon publishes no figures for the Z100 on a public page we could read, and no secondary source "
    "we found states them; left out for the hub admin to add from Hygon's datasheet."
)

CATALOGUE: Catalogue = catalogue_of(
    [
        _nvidia(
            "NVIDIA-A100-SXM4-80GB",
            memory_gib=80,
            tflops={Precision.BF16: Decimal("312"), Precision.FP16: Decimal("312"), Precision.FP32: Decimal("19.5")},
            interconnect="NVLink 600 GB/s",
            board_power_watts=400,
            sources=_all(_A100_DATASHEET, MEMORY_GIB, _BF16, _FP16, _FP32, INTERCONNECT, BOARD_POWER_WATTS),
            notes={
                _BF16: "Datasheet: 312 dense (624 with sparsity).",
                _FP16: "Datasheet: 312 dense (624 with sparsity).",
                BOARD_POWER_WATTS: "Datasheet: max TDP 400 W (SXM4).",
            },
        ),
        _nvidia(
            "NVIDIA-A800-SXM4-80GB",
            memory_gib=80,
            tflops={Precision.BF16: Decimal("311.87"), Precision.FP16: Decimal("311.87"),
                    Precision.FP32: Decimal("19.49")},
            interconnect="NVLink 400 GB/s",
            sources={**_all(_A800_SPECS, MEMORY_GIB, _BF16, _FP16, _FP32), INTERCONNECT: _A800_NVLINK},
            notes={
                MEMORY_GIB: "Secondary (no NVIDIA page for the A800 SXM4 could be read).",
                _BF16: "Secondary: hmc-tech's A800 80GB listing, dense tensor rate at the GA100's 1410 MHz "
                       "boost (the figure NVIDIA rounds to 312 for the A100).",
                _FP16: "Secondary, as tflops.bf16.",
                _FP32: "Secondary, as tflops.bf16.",
                INTERCONNECT: "Secondary: the A800 is an A100 with NVLink limited to 400 GB/s.",
                BOARD_POWER_WATTS: "No source read states the A800 SXM4's power; left out.",
            },
        ),
        _nvidia(
            "NVIDIA-H100-80GB-HBM3",
            memory_gib=80,
            tflops={Precision.BF16: Decimal("989.5"), Precision.FP16: Decimal("989.5"), Precision.FP32: Decimal("67")},
            interconnect="NVLink 900 GB/s",
            board_power_watts=700,
            sources=_all(_H100_PAGE, MEMORY_GIB, _BF16, _FP16, _FP32, INTERCONNECT, BOARD_POWER_WATTS),
            notes={
                NODE_LABELS: _NVIDIA_LABEL_NOTE + " The H100 SXM5 reports itself as NVIDIA H100 80GB HBM3.",
                _BF16: "NVIDIA: 1,979 with sparsity, 'one-half lower without sparsity'.",
                _FP16: "NVIDIA: 1,979 with sparsity, 'one-half lower without sparsity'.",
                BOARD_POWER_WATTS: "NVIDIA: max TDP up to 700 W (configurable), H100 SXM.",
            },
        ),
        _nvidia(
            "NVIDIA-H800",
            memory_gib=80,
            tflops={Precision.BF16: Decimal("989.5"), Precision.FP16: Decimal("989.5"), Precision.FP32: Decimal("67")},
            interconnect="NVLink 400 GB/s",
            sources=_all(_H800_VS_H100, MEMORY_GIB, _BF16, _FP16, _FP32, INTERCONNECT),
            notes={
                MEMORY_GIB: "Secondary: 80 GB (SXM), as the H100.",
                _BF16: "Secondary: the H800's low-precision compute is the H100 SXM's (same silicon); the "
                       "figure is NVIDIA's H100 one (1,979 with sparsity, halved).",
                _FP16: "Secondary, as tflops.bf16.",
                _FP32: "Secondary: as the H100 SXM (67).",
                INTERCONNECT: "Secondary: NVLink cut to 400 GB/s (H100: 900 GB/s).",
                BOARD_POWER_WATTS: "No source read states the H800's power; left out.",
            },
        ),
        _nvidia(
            "NVIDIA-H20",
            memory_gib=96,
            tflops={Precision.FP16: Decimal("148"), Precision.FP32: Decimal("44")},
            interconnect="NVLink 900 GB/s",
            board_power_watts=400,
            sources={**_all(_H20_TWEAKTOWN, MEMORY_GIB, INTERCONNECT, BOARD_POWER_WATTS),
                     **_all(_H20_COMPUTE, _FP16, _FP32)},
            notes={
                MEMORY_GIB: "Secondary: NVIDIA publishes no public H20 datasheet; 96 GB HBM3.",
                _FP16: "Secondary: 148 dense FP16 (widely reported from NVIDIA's partner specification).",
                _FP32: "Secondary: 44.",
                _BF16: "No source read states the H20's BF16 figure separately; left out (Hopper runs BF16 "
                       "at the FP16 rate, but that is an inference, not a published figure).",
                INTERCONNECT: "Secondary: NVLink 900 GB/s kept from the H100.",
                BOARD_POWER_WATTS: "Secondary: 400 W TDP.",
            },
        ),
        _nvidia(
            "NVIDIA-L40S",
            memory_gib=48,
            tflops={Precision.BF16: Decimal("362.05"), Precision.FP16: Decimal("362.05"),
                    Precision.FP32: Decimal("91.6")},
            interconnect="PCIe Gen4 x16 64 GB/s",
            board_power_watts=350,
            sources=_all(_L40S_PAGE, MEMORY_GIB, _BF16, _FP16, _FP32, INTERCONNECT, BOARD_POWER_WATTS),
            notes={
                MEMORY_GIB: "NVIDIA: 48 GB GDDR6 with ECC.",
                _BF16: "NVIDIA: 362.05 dense (733 with sparsity).",
                _FP16: "NVIDIA: 362.05 dense (733 with sparsity).",
                INTERCONNECT: "No NVLink: PCIe Gen4 x16, 64 GB/s bidirectional.",
                BOARD_POWER_WATTS: "NVIDIA: max power consumption 350 W.",
            },
        ),
        _ascend("910B2", 64),
        _ascend("910B3", 64),
        _ascend("910B4", 32),
        AcceleratorModel(
            name="MLU370-X8",
            vendor=Vendor.CAMBRICON,
            resource="cambricon.com/mlu",
            node_labels=({"Model": "MLU370-X8"},),
            memory_gib=48,
            tflops={Precision.BF16: Decimal("96"), Precision.FP16: Decimal("96"), Precision.FP32: Decimal("32")},
            interconnect="MLU-Link 200 GB/s",
            board_power_watts=250,
            sources={
                RESOURCE: _CAMBRICON_PLUGIN,
                NODE_LABELS: _CAMBRICON_LABELS,
                **_all(_MLU370_SPECS, MEMORY_GIB, _BF16, _FP16, _FP32),
                **_all(_MLU370_LAUNCH, INTERCONNECT, BOARD_POWER_WATTS),
            },
            notes={
                NODE_LABELS: "Cambricon's device plugin labels the node Model=<cndev's product name>.",
                MEMORY_GIB: "Secondary: launch coverage of Cambricon's announcement (March 2022): 48 GB LPDDR5.",
                _BF16: "Secondary, launch coverage: peak 96 (the card has two MLU370 chips).",
                _FP16: "Secondary, launch coverage: peak 96.",
                _FP32: "Secondary, launch coverage: peak 32.",
                INTERCONNECT: "Secondary, launch coverage: 200 GB/s per card over the MLU-Link bridge "
                              "(4 cards per bridge).",
                BOARD_POWER_WATTS: "Secondary, launch coverage: 250 W maximum training power.",
            },
        ),
        AcceleratorModel(
            name="MLU590-M9",
            vendor=Vendor.CAMBRICON,
            resource="cambricon.com/mlu",
            node_labels=({"Model": "MLU590-M9"},),
            sources={RESOURCE: _CAMBRICON_PLUGIN, NODE_LABELS: _BYTEMLPERF},
            notes={
                NODE_LABELS: "Secondary: MLU590-M9 is how cndev names the card (benchmark suites record it; "
                             "MLU590-M9D is a variant, not catalogued).",
                **dict.fromkeys(
                    (MEMORY_GIB, _BF16, _FP16, _FP32, INTERCONNECT, BOARD_POWER_WATTS),
                    "Cambricon publishes no MLU590 figures on a public page we could read, and no "
                    "secondary source we found states them consistently; left out.",
                ),
            },
        ),
        AcceleratorModel(
            name="Z100",
            vendor=Vendor.HYGON,
            resource="hygon.com/dcu",
            node_labels=({"hygon.com/dcu": "true", "hygon.com/dcu.name": "Z100"},),
            sources={RESOURCE: _HYGON_K8S, NODE_LABELS: _HYGON_K8S},
            notes={
                RESOURCE: "Hygon's DCU device plugin registers hygon.com/dcu (HAMi's vDCU plugin uses "
                          "hygon.com/dcunum instead).",
                NODE_LABELS: "Hygon's DCU-Label-Node sets hygon.com/dcu=true and hygon.com/dcu.name=<model>; "
                             "its documentation shows K100_AI, not a Z100 node: check the spelling with "
                             "kubectl get nodes -L hygon.com/dcu.name.",
                **dict.fromkeys(
                    (MEMORY_GIB, _BF16, _FP16, _FP32, INTERCONNECT, BOARD_POWER_WATTS), _HYGON_NO_FIGURES
                ),
            },
        ),
    ]
)
"""The catalogue shipped with the operator (the hub admin's AcceleratorModels override it)."""


def catalogue_errors(catalogue: Catalogue) -> list[str]:
    """Inconsistencies between entries: two models that the same node labels would both denote."""
    errors: list[str] = []
    seen: dict[tuple[tuple[str, str], ...], str] = {}
    for model in catalogue.values():
        for labels in model.node_labels:
            key = tuple(sorted(labels.items()))
            if key in seen and seen[key] != model.name:
                errors.append(f"{model.name} and {seen[key]} are both identified by {dict(key)}")
            seen.setdefault(key, model.name)
    return errors


def resource_of(model_name: str, catalogue: Catalogue | None = None) -> str:
    """The extended resource a model's cards are requested as. A model the catalogue does not
    know is taken for an NVIDIA card (nvidia.com/gpu, the device plugin most members run)."""
    model = by_name(model_name, catalogue)
    return model.resource if model is not None else GPU_RESOURCE


def node_selector_of(model_name: str, catalogue: Catalogue | None = None) -> dict[str, str]:
    """Labels that put a pod on a node holding the model: its catalogue entry's first
    alternative, else ``nvidia.com/gpu.product=<model>`` (NVIDIA's feature discovery)."""
    model = by_name(model_name, catalogue)
    return dict(model.node_labels[0]) if model is not None else {GPU_PRODUCT_LABEL: model_name}


def model_of_node(labels: Mapping[str, str], catalogue: Catalogue | None = None) -> str | None:
    """The model a member's node holds: the catalogue's match, else its nvidia.com/gpu.product."""
    model = model_for_node_labels(labels, catalogue)
    return model.name if model is not None else labels.get(GPU_PRODUCT_LABEL)


def accelerator_resources(catalogue: Catalogue | None = None) -> tuple[str, ...]:
    """Every resource that counts as accelerator cards (sorted; nvidia.com/gpu always among them)."""
    return tuple(sorted(resource_names(catalogue) | {GPU_RESOURCE}))


@dataclass(frozen=True, slots=True)
class ComputeRate:
    """How many PFLOPS-hours one card-hour of a model is, at the precision it is counted in."""

    vendor: str
    precision: str
    pflops_per_card_hour: Decimal

    def pflops_hours(self, card_hours: Decimal) -> Decimal:
        """``card_hours`` of this model in PFLOPS-hours, to 12 places (the API's quantities), half even."""
        return (card_hours * self.pflops_per_card_hour).quantize(_PFLOPS_QUANTUM, rounding=ROUND_HALF_EVEN,
                                                                 context=FIGURE_CONTEXT)


DEFAULT_PRECISIONS = (Precision.BF16, Precision.FP16)
"""The precision normalised compute is counted in: BF16, else FP16 where only that is published."""


def compute_rate(model_name: str, catalogue: Catalogue | None = None) -> ComputeRate | None:
    """PFLOPS-hours per card-hour of ``model_name`` (None: not catalogued, or no sourced TFLOPS)."""
    model = by_name(model_name, catalogue)
    if model is None:
        return None
    for precision in DEFAULT_PRECISIONS:
        tflops = model.tflops_at(precision)
        if tflops is not None:
            return ComputeRate(model.vendor.value, precision.value, tflops / _THOUSAND)
    return None


_in_use: Catalogue = CATALOGUE


def in_use() -> Catalogue:
    """The catalogue this process works with: the built-in one, merged with the hub admin's
    AcceleratorModel objects once the operator has read them (`use`). Every helper here takes an
    explicit catalogue; this is only their default."""
    return _in_use


def use(catalogue: Catalogue) -> None:
    """Make ``catalogue`` the default of every helper here (the operator's catalogue watch calls
    it when an AcceleratorModel changes; nothing else should)."""
    global _in_use
    _in_use = catalogue


__all__ = [
    "BOARD_POWER_WATTS",
    "CATALOGUE",
    "FIGURE_FIELDS",
    "INTERCONNECT",
    "MEMORY_GIB",
    "NODE_LABELS",
    "RESOURCE",
    "SOURCE_FIELDS",
    "AcceleratorModel",
    "Catalogue",
    "ComputeRate",
    "MissingFigure",
    "Precision",
    "Vendor",
    "accelerator_resources",
    "by_name",
    "catalogue_errors",
    "catalogue_of",
    "compute_rate",
    "extended_resource_error",
    "in_use",
    "label_error",
    "merge_catalogue",
    "model_errors",
    "model_for_node_labels",
    "model_of_node",
    "models_of_vendor",
    "node_selector_of",
    "object_name",
    "pflops_hours",
    "resource_names",
    "resource_of",
    "tflops_field",
    "use",
]
