"""AcceleratorModel: the catalogue as objects and back, and the rules the operator applies like the CRD."""

from __future__ import annotations

import copy
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from interconnect.api.v1alpha1 import AcceleratorModel, to_api
from interconnect.core.accelerators import CATALOGUE, Precision, merge_catalogue
from tests.integration.bad_manifests import accelerator_model
from tests.unit.api.test_models import SCHEMAS, schema_errors

MODELS = list(CATALOGUE.values())


@pytest.mark.parametrize("model", MODELS, ids=[m.name for m in MODELS])
def test_every_catalogue_entry_is_a_valid_object_and_comes_back_unchanged(model: Any) -> None:
    obj = AcceleratorModel.from_core(model)
    wire = to_api(obj)
    assert wire["metadata"]["name"] == model.name.lower().replace("_", "-")
    assert schema_errors(SCHEMAS["AcceleratorModel"], {"spec": wire["spec"]}) == []
    again = AcceleratorModel.model_validate(wire)
    assert again.to_core() == model
    if model.tflops:
        assert all(isinstance(v, str) for v in wire["spec"]["tflops"].values()), "decimal strings on the wire"


def test_an_object_overrides_the_built_in_entry_of_its_model() -> None:
    manifest = copy.deepcopy(accelerator_model("Ascend910B3"))
    chip = {"accelerator": "huawei-Ascend910", "node.kubernetes.io/npu.chip.name": "910B3"}
    manifest["spec"].update(vendor="huawei", resource="huawei.com/Ascend910", nodeLabels=[chip])
    override = AcceleratorModel.model_validate(manifest).to_core()
    merged = merge_catalogue(CATALOGUE, [override])
    assert merged["Ascend910B3"].tflops_at(Precision.BF16) == Decimal("756.5")
    assert merged["Ascend910B3"].sources["tflops.bf16"].startswith("https://")


def test_the_example_reads_as_a_catalogue_entry() -> None:
    model = AcceleratorModel.model_validate(accelerator_model()).to_core()
    assert model.name == "NVIDIA-H100-PCIe"
    assert dict(model.tflops) == {Precision.BF16: Decimal("756.5"), Precision.FP16: Decimal("756.5"),
                                  Precision.FP32: Decimal(51)}
    assert model.matches({"nvidia.com/gpu.product": "NVIDIA-H100-PCIe", "other": "x"})


def _errors(manifest: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        AcceleratorModel.model_validate(manifest)
    return str(caught.value)


def test_a_figure_without_its_source_is_refused_naming_the_source() -> None:
    manifest = accelerator_model()
    del manifest["spec"]["sources"]["tflops"]["fp32"]
    assert "sources.tflops.fp32: the figure has no source" in _errors(manifest)


def test_label_keys_are_checked_by_the_model() -> None:
    """The CRD cannot check a map's keys cheaply enough for CEL; the operator's model does."""
    manifest = accelerator_model()
    manifest["spec"]["nodeLabels"] = [{"not a key": "x"}]
    assert "is not a label key" in _errors(manifest)


def test_note_keys_name_fields() -> None:
    manifest = accelerator_model()
    manifest["spec"]["notes"] = {"price": "cheap"}
    assert "notes: no such field" in _errors(manifest)


def test_the_object_is_named_after_its_model() -> None:
    manifest = accelerator_model("K100_AI")
    assert manifest["metadata"]["name"] == "k100-ai"
    AcceleratorModel.model_validate(manifest)
    manifest["metadata"]["name"] = "k100_ai"
    assert "metadata.name must be spec.model in lower case" in _errors(manifest)
