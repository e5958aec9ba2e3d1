"""The accelerator catalogue: every figure has its source, names and resources are what Kubernetes
accepts, a node's labels denote the right model for each vendor, and PFLOPS-hours are exact."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interconnect.core import accelerators as acc
from interconnect.core.accelerators import (
    CATALOGUE,
    AcceleratorModel,
    MissingFigure,
    Precision,
    Vendor,
    by_name,
    catalogue_errors,
    catalogue_of,
    merge_catalogue,
    model_for_node_labels,
    models_of_vendor,
    object_name,
    pflops_hours,
    resource_names,
)

MODELS = list(CATALOGUE.values())
IDS = [m.name for m in MODELS]
# Kubernetes' own rules (apimachinery validation.IsQualifiedName and the extended-resource check),
# written out again here rather than imported, so that a mistake in the module is caught.
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_every_figure_has_a_source(model: AcceleratorModel) -> None:
    for path in model.figures():
        assert path in model.sources, f"{model.name}: {path} has no source"
    for path, url in model.sources.items():
        assert path in acc.SOURCE_FIELDS, path
        assert re.match(r"^https?://\S+$", url), (model.name, path, url)


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_every_missing_figure_says_why(model: AcceleratorModel) -> None:
    """A figure left out is a decision: the notes say why (no source, or sources disagree)."""
    for path in acc.FIGURE_FIELDS:
        if path not in model.figures():
            assert model.notes.get(path), f"{model.name}: {path} is missing without a note"


def test_names_are_unique_and_spelt_as_label_values() -> None:
    assert list(CATALOGUE) == sorted(m.name for m in MODELS)
    assert len({m.name for m in MODELS}) == len(MODELS)
    assert len({object_name(m.name) for m in MODELS}) == len(MODELS), "object names collide"
    for model in MODELS:
        assert QUALIFIED_NAME.match(model.name), model.name
    with pytest.raises(ValueError, match="catalogued twice"):
        catalogue_of([MODELS[0], MODELS[0]])


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_resource_names_are_valid_extended_resource_names(model: AcceleratorModel) -> None:
    prefix, slash, name = model.resource.partition("/")
    assert slash and DNS_SUBDOMAIN.match(prefix) and len(prefix) <= 253, model.resource
    assert QUALIFIED_NAME.match(name), model.resource
    assert prefix != "kubernetes.io" and not prefix.endswith(".kubernetes.io")
    assert acc.extended_resource_error(model.resource) is None


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_node_labels_are_valid_labels(model: AcceleratorModel) -> None:
    assert model.node_labels
    for labels in model.node_labels:
        assert labels
        for key, value in labels.items():
            assert acc.label_error(key, value) is None, (key, value)


def test_the_issue_s_models_and_resources_are_seeded() -> None:
    expected = {
        "NVIDIA-A100-SXM4-80GB": (Vendor.NVIDIA, "nvidia.com/gpu"),
        "NVIDIA-A800-SXM4-80GB": (Vendor.NVIDIA, "nvidia.com/gpu"),
        "NVIDIA-H100-80GB-HBM3": (Vendor.NVIDIA, "nvidia.com/gpu"),
        "NVIDIA-H800": (Vendor.NVIDIA, "nvidia.com/gpu"),
        "NVIDIA-H20": (Vendor.NVIDIA, "nvidia.com/gpu"),
        "NVIDIA-L40S": (Vendor.NVIDIA, "nvidia.com/gpu"),
        "Ascend910B3": (Vendor.HUAWEI, "huawei.com/Ascend910"),
        "MLU370-X8": (Vendor.CAMBRICON, "cambricon.com/mlu"),
        "MLU590-M9": (Vendor.CAMBRICON, "cambricon.com/mlu"),
        "Z100": (Vendor.HYGON, "hygon.com/dcu"),
    }
    for name, (vendor, resource) in expected.items():
        model = by_name(name)
        assert model is not None, name
        assert (model.vendor, model.resource) == (vendor, resource)
    assert resource_names() == {"nvidia.com/gpu", "huawei.com/Ascend910", "cambricon.com/mlu", "hygon.com/dcu"}
    assert {m.name for m in models_of_vendor("huawei")} == {"Ascend910B2", "Ascend910B3", "Ascend910B4"}
    assert by_name("NVIDIA-B200") is None


def test_published_figures() -> None:
    """The figures themselves, as docs/accelerators.md tabulates them (a change here is a change there)."""
    a100 = CATALOGUE["NVIDIA-A100-SXM4-80GB"]
    assert (a100.memory_gib, a100.board_power_watts, a100.interconnect) == (80, 400, "NVLink 600 GB/s")
    assert dict(a100.tflops) == {Precision.BF16: Decimal(312), Precision.FP16: Decimal(312), Precision.FP32:
                                 Decimal("19.5")}
    h100 = CATALOGUE["NVIDIA-H100-80GB-HBM3"]
    assert h100.tflops_at("bf16") == Decimal("989.5") and h100.board_power_watts == 700
    assert CATALOGUE["NVIDIA-H800"].interconnect == "NVLink 400 GB/s"
    h20 = CATALOGUE["NVIDIA-H20"]
    assert (h20.memory_gib, h20.tflops_at(Precision.FP16), h20.tflops_at(Precision.BF16)) == (96, Decimal(148), None)
    assert CATALOGUE["NVIDIA-L40S"].tflops_at(Precision.BF16) == Decimal("362.05")
    mlu370 = CATALOGUE["MLU370-X8"]
    assert (mlu370.memory_gib, mlu370.tflops_at("bf16"), mlu370.board_power_watts) == (48, Decimal(96), 250)
    assert [CATALOGUE[f"Ascend910B{v}"].memory_gib for v in (2, 3, 4)] == [64, 64, 32]


def test_no_two_models_are_denoted_by_the_same_labels() -> None:
    assert catalogue_errors(CATALOGUE) == []
    twin = AcceleratorModel(name="Twin", vendor=Vendor.NVIDIA, resource="nvidia.com/gpu",
                            node_labels=({"nvidia.com/gpu.product": "NVIDIA-H20"},))
    assert catalogue_errors(merge_catalogue(CATALOGUE, [twin])) != []


# --------------------------------------------------------------------------------------------
# Which model a member's node holds
# --------------------------------------------------------------------------------------------

NODE = {"kubernetes.io/hostname": "gpu-1", "kubernetes.io/arch": "amd64"}


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB", "nvidia.com/gpu.memory": "81920"},
         "NVIDIA-A100-SXM4-80GB"),
        ({"nvidia.com/gpu.product": "NVIDIA-H20"}, "NVIDIA-H20"),
        ({"nvidia.com/gpu.product": "NVIDIA-L40S"}, "NVIDIA-L40S"),
        ({"accelerator": "huawei-Ascend910", "node.kubernetes.io/npu.chip.name": "910B3",
          "accelerator-type": "module-910b-8"}, "Ascend910B3"),
        ({"accelerator": "huawei-Ascend910", "node.kubernetes.io/npu.chip.name": "910B4"}, "Ascend910B4"),
        ({"Model": "MLU370-X8", "DriverVersion": "v5.10.29"}, "MLU370-X8"),
        ({"Model": "MLU590-M9"}, "MLU590-M9"),
        ({"hygon.com/dcu": "true", "hygon.com/dcu.name": "Z100", "hygon.com/dcu.vram": "32G"}, "Z100"),
    ],
    ids=["nvidia-a100", "nvidia-h20", "nvidia-l40s", "huawei-910b3", "huawei-910b4", "cambricon-mlu370",
         "cambricon-mlu590", "hygon-z100"],
)
def test_a_node_s_labels_denote_its_model(labels: dict[str, str], expected: str) -> None:
    model = model_for_node_labels({**NODE, **labels})
    assert model is not None and model.name == expected


@pytest.mark.parametrize(
    "labels",
    [
        {},
        {"nvidia.com/gpu.product": "NVIDIA-B200"},
        {"accelerator": "huawei-Ascend910"},  # the family, not the chip
        {"accelerator": "huawei-Ascend910", "node.kubernetes.io/npu.chip.name": "910B1"},  # not catalogued
        {"node.kubernetes.io/npu.chip.name": "910B3"},  # without the device plugin's label
        {"hygon.com/dcu.name": "Z100"},  # without hygon.com/dcu=true
        {"Model": "mlu370-x8"},  # values are case-sensitive
    ],
)
def test_labels_of_no_catalogued_model_denote_none(labels: dict[str, str]) -> None:
    assert model_for_node_labels({**NODE, **labels}) is None


def test_the_most_specific_alternative_wins_then_the_name() -> None:
    family = AcceleratorModel(name="Ascend910-any", vendor=Vendor.HUAWEI, resource="huawei.com/Ascend910",
                              node_labels=({"accelerator": "huawei-Ascend910"},))
    catalogue = merge_catalogue(CATALOGUE, [family])
    chip = {"accelerator": "huawei-Ascend910", "node.kubernetes.io/npu.chip.name": "910B2"}
    assert model_for_node_labels(chip, catalogue) == CATALOGUE["Ascend910B2"]
    assert model_for_node_labels({"accelerator": "huawei-Ascend910"}, catalogue) == family
    a = AcceleratorModel(name="A", vendor=Vendor.CAMBRICON, resource="cambricon.com/mlu", node_labels=({"x": "1"},))
    b = AcceleratorModel(name="B", vendor=Vendor.CAMBRICON, resource="cambricon.com/mlu", node_labels=({"y": "1"},))
    assert model_for_node_labels({"x": "1", "y": "1"}, catalogue_of([b, a])) == a


# --------------------------------------------------------------------------------------------
# The hub admin's overrides
# --------------------------------------------------------------------------------------------


def test_an_override_replaces_the_entry_whole_and_a_new_name_adds_a_model() -> None:
    ascend = CATALOGUE["Ascend910B3"]
    figures = AcceleratorModel(
        name="Ascend910B3", vendor=Vendor.HUAWEI, resource=ascend.resource, node_labels=ascend.node_labels,
        memory_gib=64, tflops={Precision.BF16: Decimal("313")},
        sources={"memoryGiB": "https://example.cn/datasheet.pdf", "tflops.bf16": "https://example.cn/datasheet.pdf"},
    )
    extra = AcceleratorModel(name="NVIDIA-H100-PCIe", vendor=Vendor.NVIDIA, resource="nvidia.com/gpu",
                             node_labels=({"nvidia.com/gpu.product": "NVIDIA-H100-PCIe"},))
    merged = merge_catalogue(CATALOGUE, [figures, extra])
    assert merged["Ascend910B3"] is figures and merged["Ascend910B3"].notes == {}
    assert merged["NVIDIA-H100-PCIe"] is extra
    assert len(merged) == len(CATALOGUE) + 1
    assert CATALOGUE["Ascend910B3"] is ascend, "the built-in catalogue is not changed"
    assert pflops_hours(8, 1, merged["Ascend910B3"], "bf16") == Decimal("2.504")


# --------------------------------------------------------------------------------------------
# What a catalogue entry may not be
# --------------------------------------------------------------------------------------------


def entry(**changes: object) -> AcceleratorModel:
    fields: dict[str, object] = {
        "name": "Test-Model", "vendor": "nvidia", "resource": "nvidia.com/gpu",
        "node_labels": ({"nvidia.com/gpu.product": "Test-Model"},),
        "memory_gib": 80, "tflops": {"bf16": "100"},
        "sources": {"memoryGiB": "https://example.com/a", "tflops.bf16": "https://example.com/b"},
    }
    fields.update(changes)
    return AcceleratorModel(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"resource": "gpu"}, "resource"),
        ({"resource": "kubernetes.io/gpu"}, "resource"),
        ({"resource": "example.kubernetes.io/gpu"}, "resource"),
        ({"resource": "NVIDIA.com/gpu"}, "resource"),
        ({"node_labels": ()}, "nodeLabels"),
        ({"node_labels": ({},)}, "nodeLabels[0]"),
        ({"node_labels": ({"bad key!": "x"},)}, "nodeLabels[0]"),
        ({"node_labels": ({"k": "a b"},)}, "nodeLabels[0]"),
        ({"memory_gib": 0}, "memoryGiB"),
        ({"board_power_watts": -1}, "boardPowerWatts"),
        ({"tflops": {"bf16": "0"}}, "tflops.bf16"),
        ({"sources": {"memoryGiB": "https://example.com/a"}}, "sources.tflops.bf16"),
        ({"sources": {"memoryGiB": "datasheet", "tflops.bf16": "https://example.com/b"}}, "sources.memoryGiB"),
        ({"sources": {"memoryGiB": "https://e.com/a", "tflops.bf16": "https://e.com/b", "price": "https://e.com"}},
         "sources"),
        ({"notes": {"colour": "green"}}, "notes"),
        ({"interconnect": " "}, "interconnect"),
        ({"interconnect": "NVLink"}, "sources.interconnect"),
        ({"name": "Not a label value"}, "name"),
    ],
)
def test_a_bad_entry_is_refused_naming_the_field(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=re.escape(field)):
        entry(**changes)


def test_tflops_are_never_floats() -> None:
    with pytest.raises(TypeError, match="never floats"):
        entry(tflops={"bf16": 312.0})
    assert entry().tflops_at("bf16") == Decimal(100)


def test_an_entry_is_read_only() -> None:
    model = CATALOGUE["NVIDIA-A100-SXM4-80GB"]
    with pytest.raises(AttributeError):
        model.memory_gib = 40  # type: ignore[misc]
    with pytest.raises(TypeError):
        model.sources["memoryGiB"] = "https://example.com"  # type: ignore[index]
    with pytest.raises(TypeError):
        model.node_labels[0]["x"] = "y"  # type: ignore[index]
    assert hash(model) == hash(model.name)


def test_object_names_are_the_model_in_lower_case() -> None:
    assert object_name("NVIDIA-A100-SXM4-80GB") == "nvidia-a100-sxm4-80gb"
    assert object_name("K100_AI") == "k100-ai"
    assert object_name("Ascend910B3") == "ascend910b3"


# --------------------------------------------------------------------------------------------
# PFLOPS-hours
# --------------------------------------------------------------------------------------------


def test_pflops_hours_is_cards_times_hours_times_tflops_over_a_thousand() -> None:
    h100 = CATALOGUE["NVIDIA-H100-80GB-HBM3"]
    assert pflops_hours(8, Decimal("2.5"), h100, Precision.BF16) == Decimal("19.79")
    assert pflops_hours(1, 1, CATALOGUE["NVIDIA-L40S"], "fp16") == Decimal("0.36205")
    assert pflops_hours(3, Decimal("0.000000000001"), CATALOGUE["NVIDIA-A100-SXM4-80GB"], "fp32") == Decimal(
        "5.85E-14")
    assert pflops_hours(0, Decimal(5), h100, "bf16") == 0
    mlu = CATALOGUE["MLU370-X8"]
    assert pflops_hours(16, 10, mlu, "bf16") == Decimal("15.36")


def test_pflops_hours_never_guesses_a_missing_figure() -> None:
    with pytest.raises(MissingFigure, match="NVIDIA-H20 has no sourced bf16"):
        pflops_hours(8, 1, CATALOGUE["NVIDIA-H20"], "bf16")
    with pytest.raises(MissingFigure):
        pflops_hours(8, 1, CATALOGUE["Ascend910B3"], Precision.FP16)
    with pytest.raises(ValueError):
        pflops_hours(8, 1, CATALOGUE["NVIDIA-H20"], "fp8")


@pytest.mark.parametrize(("cards", "hours"), [(-1, Decimal(1)), (1, Decimal(-1)), (1, Decimal("NaN"))])
def test_pflops_hours_refuses_negative_usage(cards: int, hours: Decimal) -> None:
    with pytest.raises(ValueError):
        pflops_hours(cards, hours, CATALOGUE["NVIDIA-H100-80GB-HBM3"], "bf16")


def test_pflops_hours_takes_no_floats() -> None:
    with pytest.raises(TypeError):
        pflops_hours(1, 0.1, CATALOGUE["NVIDIA-H100-80GB-HBM3"], "bf16")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        pflops_hours(1.0, 1, CATALOGUE["NVIDIA-H100-80GB-HBM3"], "bf16")  # type: ignore[arg-type]


SOURCED = [(m, p) for m in MODELS for p in Precision if m.tflops_at(p) is not None]


@given(
    st.sampled_from(SOURCED),
    st.integers(min_value=0, max_value=100_000),
    st.decimals(min_value=0, max_value=10**9, places=12, allow_nan=False, allow_infinity=False),
)
def test_pflops_hours_is_exact(case: tuple[AcceleratorModel, Precision], cards: int, hours: Decimal) -> None:
    model, precision = case
    tflops = model.tflops_at(precision)
    assert tflops is not None
    exact = Fraction(cards) * Fraction(hours) * Fraction(tflops) / 1000
    assert Fraction(pflops_hours(cards, hours, model, precision)) == exact
