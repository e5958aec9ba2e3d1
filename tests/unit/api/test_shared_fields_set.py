"""Instances share their set of fields set (memory), and still behave as pydantic's own."""

from __future__ import annotations

from interconnect.api.v1alpha1 import ComputeJob
from interconnect.api.v1alpha1.common import SHARED_STRING_LENGTH, Condition, shared_strings
from interconnect.api.v1alpha1.node import ComputeNodeStatus
from tests.e2e.market import job_manifest

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


def test_copies_of_alike_instances_share_again_and_stay_apart_from_the_original() -> None:
    a, b = Condition.model_validate(RAW), Condition.model_validate(RAW)
    a_copy, b_copy = a.model_copy(update={"message": "x"}), b.model_copy(update={"message": "y"})
    assert a_copy.__pydantic_fields_set__ is b_copy.__pydantic_fields_set__
    assert "message" in a_copy.model_fields_set
    assert "message" not in a.model_fields_set  # the original's (shared) set was not changed
    a_copy.observed_generation = 3  # an assignment to the copy gives it a set of its own
    assert "observed_generation" in a_copy.model_fields_set
    assert "observed_generation" not in b_copy.model_fields_set


def test_the_kinds_share_their_sets() -> None:
    first = ComputeJob.model_validate(job_manifest("a", "team-a", gpus=1, origin="CN-GZ", tier="20ms", max_price="9"))
    second = ComputeJob.model_validate(job_manifest("b", "team-b", gpus=2, origin="CN-BJ", tier="5ms", max_price="8"))
    assert first.__pydantic_fields_set__ is second.__pydantic_fields_set__
    assert first.spec.__pydantic_fields_set__ is second.spec.__pydantic_fields_set__


def test_short_repeated_strings_are_shared_and_values_kept() -> None:
    def fresh(text: str) -> str:
        return "".join(list(text))  # a new object with the same value

    long_text = "x" * (SHARED_STRING_LENGTH + 1)
    one = shared_strings({"node": fresh("member-1"), "price": {"currency": fresh("CNY")},
                          "attempts": [fresh("member-1")], "message": fresh(long_text), "cards": 2})
    two = shared_strings({"node": fresh("member-1"), "price": {"currency": fresh("CNY")},
                          "attempts": [fresh("member-1")], "message": fresh(long_text), "cards": 2})
    assert one == two == {"node": "member-1", "price": {"currency": "CNY"}, "attempts": ["member-1"],
                          "message": long_text, "cards": 2}
    assert one["node"] is two["node"] is one["attempts"][0]
    assert one["price"]["currency"] is two["price"]["currency"]
    assert one["message"] is not two["message"]  # long ones are mostly unique: left alone
    names = [shared_strings({"memberJobName": fresh("ic-1-1")}) for _ in range(2)]
    assert names[0] == names[1] and names[0]["memberJobName"] is not names[1]["memberJobName"]  # each job's own
    first = Condition.model_validate({**RAW, "reason": fresh("Connected")})
    second = Condition.model_validate({**RAW, "reason": fresh("Connected")})
    assert first.reason is second.reason
