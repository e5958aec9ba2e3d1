"""The hub's accelerator catalogue: AcceleratorModel objects over the built-in models."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from interconnect.core import accelerators
from interconnect.services.catalogue import AcceleratorCatalogue

SOURCE = "https://example.cn/datasheet"


class Nodes:
    """Stands in for `Members`: counts how often the members' nodes are listed again."""

    def __init__(self) -> None:
        self.resyncs = 0

    def resync_nodes(self) -> None:
        self.resyncs += 1


@pytest.fixture(autouse=True)
def built_in() -> Iterator[None]:
    yield
    accelerators.use(accelerators.CATALOGUE)


def ascend(bf16: str | None = "320", name: str = "Ascend910B3") -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": name, "vendor": "huawei", "resource": "huawei.com/Ascend910",
        "nodeLabels": [{"accelerator": "huawei-Ascend910",
                        "node.kubernetes.io/npu.chip.name": name.removeprefix("Ascend")}],
        "memoryGiB": 64, "sources": {"resource": SOURCE, "nodeLabels": SOURCE, "memoryGiB": SOURCE}}
    if bf16:
        spec["tflops"] = {"bf16": bf16}
        spec["sources"]["tflops"] = {"bf16": SOURCE}
    return {"apiVersion": "interconnect.dev/v1alpha1", "kind": "AcceleratorModel",
            "metadata": {"name": name.lower()}, "spec": spec}


def test_an_object_overrides_a_built_in_model_and_deleting_it_restores_it() -> None:
    nodes, woken = Nodes(), []
    catalogue = AcceleratorCatalogue(nodes, lambda: woken.append(1))  # type: ignore[arg-type]
    assert accelerators.compute_rate("Ascend910B3") is None, "no published figure built in"
    catalogue.changed(ascend())
    rate = accelerators.compute_rate("Ascend910B3")
    assert rate is not None and rate.pflops_per_card_hour == Decimal("0.32")
    assert (nodes.resyncs, len(woken)) == (1, 1), "members' nodes listed again, placement woken"
    catalogue.changed(ascend())
    assert nodes.resyncs == 1, "the same object again changes nothing"
    catalogue.deleted("ascend910b3")
    assert accelerators.compute_rate("Ascend910B3") is None
    assert accelerators.in_use() == accelerators.CATALOGUE


def test_a_new_model_is_added_and_its_nodes_are_recognised() -> None:
    catalogue = AcceleratorCatalogue(Nodes(), lambda: None)  # type: ignore[arg-type]
    catalogue.changed(ascend(name="Ascend910C01"))
    labels = {"accelerator": "huawei-Ascend910", "node.kubernetes.io/npu.chip.name": "910C01"}
    assert accelerators.model_of_node(labels) == "Ascend910C01"
    assert accelerators.resource_of("Ascend910C01") == "huawei.com/Ascend910"


def test_an_object_the_model_refuses_is_left_out() -> None:
    catalogue = AcceleratorCatalogue(Nodes(), lambda: None)  # type: ignore[arg-type]
    bad = ascend()
    del bad["spec"]["sources"]["tflops"]  # a figure without its source
    catalogue.changed(bad)
    assert accelerators.in_use() == accelerators.CATALOGUE
