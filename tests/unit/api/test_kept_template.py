"""A job's pod template is validated as the PodTemplate model and kept as its compact JSON."""

from __future__ import annotations

import copy
from typing import Any

import pydantic
import pytest

from interconnect.api.v1alpha1 import ComputeJob
from interconnect.api.v1alpha1.job import KeptTemplate
from interconnect.core.workload_policy import Toleration
from tests.integration.bad_manifests import job


def manifest_with(template: dict[str, Any]) -> dict[str, Any]:
    manifest = job("train")
    manifest["spec"]["template"] = template
    return manifest


TEMPLATE = {
    "metadata": {"labels": {"app": "train"}, "annotations": {"note": "x"}},
    "spec": {
        "initContainers": [{"name": "fetch", "image": "busybox:1.36"}],
        "containers": [{"name": "train", "image": "registry.example.cn/ml/train:1.0",
                        "env": [{"name": "EPOCHS", "value": "3"}]}],
        "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}],
    },
}


def test_what_placement_reads_is_at_hand_and_the_whole_template_comes_back() -> None:
    kept = ComputeJob.model_validate(manifest_with(copy.deepcopy(TEMPLATE))).spec.template
    assert isinstance(kept, KeptTemplate)
    assert kept.images == ("registry.example.cn/ml/train:1.0", "busybox:1.36")
    assert kept.tolerations == frozenset({Toleration("dedicated", "Equal", "gpu", "NoSchedule")})
    assert kept.as_api() == TEMPLATE


def test_a_dumped_job_validates_again_to_an_equal_one() -> None:
    first = ComputeJob.model_validate(manifest_with(copy.deepcopy(TEMPLATE)))
    again = ComputeJob.model_validate(first.model_dump(mode="json", exclude_none=True))
    assert again == first
    assert again.spec.template == first.spec.template and hash(again.spec.template) == hash(first.spec.template)
    assert first.model_dump_json()  # serialises as JSON too


def test_a_template_the_policy_refuses_is_refused_on_the_way_in() -> None:
    bad = copy.deepcopy(TEMPLATE)
    bad["spec"]["hostNetwork"] = True
    with pytest.raises(pydantic.ValidationError) as caught:
        ComputeJob.model_validate(manifest_with(bad))
    assert "hostNetwork" in str(caught.value)
