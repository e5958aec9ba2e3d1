"""Instances share their set of fields set (memory), and still behave as pydantic's own."""

from __future__ import annotations

from interconnect.api.v1alpha1.common import Condition
from interconnect.api.v1alpha1.node import ComputeNodeStatus

RAW = {"type": "Ready", "status": "True", "reason": "Connected", "lastTransitionTime": "2026-12-01T00:00:00Z"}


def test_instances_validated_alike_share_one_set() -> None:
    a, b = Condition.model_validate(RAW), Condition.model_validate(RAW)
    assert a.__pydantic_fields_set__ is b.__pydantic_fields_set__
    assert a.model_fields_set == {"type", "status", "reason", "last_transition_time"}


def test_an_assignment_changes_only_that_instance() -> None:
    a, b = Condition.model_validate(RAW), Condition.model_validate(RAW)
    a.message = "now set"
    assert "message" in a.model_fields_set
    assert "message" not in b.model_fields_set
    assert "message" not in Condition.model_validate(RAW).model_fields_set
    assert "message" not in b.model_dump(exclude_unset=True)
    assert a.model_dump(exclude_unset=True)["message"] == "now set"


def test_nested_models_share_too_and_a_copy_is_its_own() -> None:
    status = ComputeNodeStatus.model_validate({"conditions": [RAW, RAW]})
    first, second = status.conditions
    assert first.__pydantic_fields_set__ is second.__pydantic_fields_set__
    copied = first.model_copy(update={"message": "copied"})
    assert copied.message == "copied"
    assert "message" not in second.model_fields_set
