"""The API models: examples parse, valid objects round-trip, bad ones are refused like the CRD refuses them."""

from __future__ import annotations

import datetime as dt
import json
import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from interconnect.api.v1alpha1 import (
    KINDS,
    ComputeJob,
    ComputeNode,
    ComputeOffer,
    Condition,
    Price,
    Resource,
    find_condition,
    is_condition_true,
    set_condition,
    to_api,
)
from interconnect.api.v1alpha1.common import AMOUNT_PATTERN, QUANTITY_PATTERN
from interconnect.api.v1alpha1.job import FailurePolicy
from interconnect.core.credit_code import CHARSET, make_credit_code
from interconnect.core.identity import issue_identity_code
from interconnect.core.regions import REGION_CODES
from interconnect.core.vocabulary import Industry, JobPhase, LatencyTier
from interconnect.generate.crds import crd_objects
from tests.integration.bad_manifests import BAD_MANIFESTS, IMMUTABLE_CHANGES

ROOT = Path(__file__).resolve().parents[3]
EXAMPLES = sorted((ROOT / "deploy" / "examples").glob("*.yaml"))
BY_KIND: dict[str, type[Resource]] = {kind.KIND: kind for kind in KINDS}
SCHEMAS = {
    obj["spec"]["names"]["kind"]: obj["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for obj in crd_objects().values()
}
UTC = dt.UTC


def example_objects() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in EXAMPLES:
        with path.open(encoding="utf-8") as fh:
            out.extend(doc for doc in yaml.safe_load_all(fh) if doc)
    return out


# --------------------------------------------------------------------------------------------
# A small checker of the CRD schema's own keywords (types, enums, patterns, bounds, required,
# sets). The real API server is exercised by tests/integration; this one keeps the models and
# the generated schema honest with each other in every unit run.
# --------------------------------------------------------------------------------------------


def schema_errors(schema: dict[str, Any], value: Any, path: str = "") -> list[str]:
    errors: list[str] = []
    kind = schema.get("type")
    python_type = {"object": dict, "array": list, "string": str, "boolean": bool}.get(kind or "")
    if schema.get("x-kubernetes-int-or-string"):
        if isinstance(value, bool) or not isinstance(value, int | str):
            return [f"{path}: must be an integer or a string"]
    elif kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return [f"{path}: must be an integer"]
    elif python_type is not None and (
        not isinstance(value, python_type) or isinstance(value, bool) != (kind == "boolean")
    ):
        return [f"{path}: must be of type {kind}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} not in enum")
    if isinstance(value, str):
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if len(value) > schema.get("maxLength", len(value)) or len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: length {len(value)} out of bounds")
        if schema.get("format") == "date-time":
            try:
                dt.datetime.fromisoformat(value)
            except ValueError:
                errors.append(f"{path}: {value!r} is not a date-time")
    if kind == "integer" and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        errors.append(f"{path}: {value} out of bounds")
    if isinstance(value, list):
        if len(value) > schema.get("maxItems", len(value)) or len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: {len(value)} items out of bounds")
        if schema.get("x-kubernetes-list-type") == "set" and len(set(map(json.dumps, value))) != len(value):
            errors.append(f"{path}: duplicate entries in a set")
        for i, item in enumerate(value):
            errors += schema_errors(schema["items"], item, f"{path}[{i}]")
    if isinstance(value, dict):
        errors += [f"{path}.{key}: required" for key in schema.get("required", []) if key not in value]
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(properties[key], item, f"{path}.{key}")
            elif isinstance(extra, dict):
                errors += schema_errors(extra, item, f"{path}.{key}")
            elif not schema.get("x-kubernetes-preserve-unknown-fields"):
                errors.append(f"{path}.{key}: unknown field (the API server would prune it)")
    return errors


def assert_conforms(obj: Resource) -> None:
    wire = to_api(obj)
    body = {k: v for k, v in wire.items() if k in ("spec", "status")}
    assert schema_errors(SCHEMAS[obj.KIND], body) == []
    json.dumps(wire)  # JSON all the way down


# --------------------------------------------------------------------------------------------
# Strategies for valid objects, in wire form
# --------------------------------------------------------------------------------------------

names = st.from_regex(r"[a-z]([a-z0-9-]{0,20}[a-z0-9])?", fullmatch=True)
gpu_models = st.sampled_from(["NVIDIA-A100-SXM4-80GB", "NVIDIA-H100-80GB-HBM3", "NVIDIA-H800", "NVIDIA-L40S"])
amounts = st.from_regex(AMOUNT_PATTERN, fullmatch=True)
positive_amounts = amounts.filter(lambda s: Decimal(s) > 0)
quantities = st.from_regex(QUANTITY_PATTERN, fullmatch=True)
currencies = st.sampled_from(["CNY", "USD", "HKD"])
times = st.datetimes(min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2040, 1, 1), timezones=st.just(UTC))
wire_times = times.map(lambda t: t.replace(microsecond=0).isoformat().replace("+00:00", "Z"))
credit_codes = st.builds(
    lambda a, b, c: make_credit_code(a + b + c),
    st.text(CHARSET, min_size=2, max_size=2),
    st.text("0123456789", min_size=6, max_size=6),
    st.text(CHARSET, min_size=9, max_size=9),
)
reasons = st.from_regex(r"[A-Z][A-Za-z]{0,15}", fullmatch=True)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


def put(target: dict[str, Any], key: str, value: Any) -> None:
    if value is not None:
        target[key] = value


@st.composite
def conditions(draw: st.DrawFn) -> list[dict[str, Any]]:
    types = draw(st.lists(st.sampled_from(["Ready", "Registered", "Available", "Placed"]), unique=True, max_size=4))
    out = []
    for type_ in types:
        condition = {
            "type": type_,
            "status": draw(st.sampled_from(["True", "False", "Unknown"])),
            "reason": draw(reasons),
            "message": draw(st.text(max_size=40)),
            "lastTransitionTime": draw(wire_times),
        }
        put(condition, "observedGeneration", draw(maybe(st.integers(0, 10**6))))
        out.append(condition)
    return out


@st.composite
def prices(draw: st.DrawFn) -> dict[str, Any]:
    price: dict[str, Any] = {"amount": draw(amounts), "currency": draw(currencies)}
    if draw(st.booleans()):
        price.update(unit="machine-hour", cardsPerMachine=draw(st.integers(1, 64)))
    else:
        price["unit"] = "card-hour"
    return price


@st.composite
def node_objects(draw: st.DrawFn) -> dict[str, Any]:
    node_type = draw(st.sampled_from(["regional", "industry"]))
    region = draw(st.sampled_from(REGION_CODES))
    spec: dict[str, Any] = {
        "type": node_type,
        "region": region,
        "operatingEntity": {
            "name": draw(st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=40)),
            "creditCode": draw(credit_codes),
            "telecomLicence": draw(st.from_regex(r"[A-Z][0-9A-Z.]{0,3}-[0-9]{8}", fullmatch=True)),
            "registeredCapital": draw(st.from_regex(r"[1-9][0-9]{0,12}(\.[0-9]{1,2})?", fullmatch=True)),
        },
        "connection": {
            "secretRef": {"name": draw(names), "namespace": draw(names)},
            "namespace": draw(names),
        },
    }
    put(spec["connection"]["secretRef"], "key", draw(maybe(st.sampled_from(["kubeconfig", "config.yaml"]))))
    put(spec, "cordoned", draw(maybe(st.booleans())))
    if node_type == "industry":
        spec["industry"] = draw(st.sampled_from([i.value for i in Industry]))
        spec["parentNode"] = draw(names)
    status: dict[str, Any] = {}
    if draw(st.booleans()):
        put(status, "identityCode", issue_identity_code(node_type, region, draw(st.integers(1, 999999))))
        status["conditions"] = draw(conditions())
        models = draw(st.lists(gpu_models, unique=True, max_size=3))
        status["capacity"] = [
            {
                "model": m,
                "total": draw(st.integers(0, 512)),
                "allocatable": draw(st.integers(0, 512)),
                "inUse": draw(st.integers(0, 512)),
            }
            for m in models
        ]
        put(status, "lastHeartbeatTime", draw(maybe(wire_times)))
        put(status, "observedGeneration", draw(maybe(st.integers(0, 1000))))
    obj = {"apiVersion": "interconnect.dev/v1alpha1", "kind": "ComputeNode", "metadata": {"name": draw(names)}}
    obj["spec"] = spec
    if status:
        obj["status"] = status
    return obj


@st.composite
def offer_objects(draw: st.DrawFn) -> dict[str, Any]:
    price = draw(prices())
    per_machine = price.get("cardsPerMachine", 1)
    spec: dict[str, Any] = {
        "nodeRef": draw(names),
        "gpuModel": draw(gpu_models),
        "gpuMemoryGiB": draw(st.integers(1, 4096)),
        "cards": per_machine * draw(st.integers(1, 100000 // per_machine)),
        "price": price,
    }
    window = sorted(draw(st.lists(wire_times, min_size=2, max_size=2, unique=True)))
    if draw(st.booleans()):
        spec["validFrom"], spec["validUntil"] = window
    elif draw(st.booleans()):
        spec[draw(st.sampled_from(["validFrom", "validUntil"]))] = window[0]
    if draw(st.booleans()):
        spec["nodeSelector"] = {"matchLabels": draw(st.dictionaries(names, names, max_size=3))}
    obj: dict[str, Any] = {
        "apiVersion": "interconnect.dev/v1alpha1",
        "kind": "ComputeOffer",
        "metadata": {"name": draw(names)},
        "spec": spec,
    }
    if draw(st.booleans()):
        total, reserved, in_use = (draw(st.integers(0, 1000)) for _ in range(3))
        obj["status"] = {
            "cardsTotal": total,
            "cardsReserved": reserved,
            "cardsInUse": in_use,
            "cardsFree": max(total - reserved - in_use, 0),
            "conditions": draw(conditions()),
            "observedGeneration": draw(st.integers(0, 100)),
        }
    return obj


@st.composite
def job_objects(draw: st.DrawFn) -> dict[str, Any]:
    count = draw(st.integers(1, 64))
    currency = draw(currencies)
    gpus: dict[str, Any] = {"count": count}
    put(gpus, "models", draw(maybe(st.lists(gpu_models, unique=True, max_size=4))))
    put(gpus, "minMemoryGiB", draw(maybe(st.integers(1, 4096))))
    container: dict[str, Any] = {"name": draw(names), "image": "registry.example.cn/ml/app:1.0", "args": ["--x"]}
    explicit = draw(st.sampled_from([None, count, str(count)]))
    if explicit is not None:
        container["resources"] = {"limits": {"nvidia.com/gpu": explicit, "memory": "64Gi"}}
    spec: dict[str, Any] = {
        "gpus": gpus,
        "origin": draw(st.sampled_from(REGION_CODES)),
        "latencyTier": draw(st.sampled_from([t.value for t in LatencyTier])),
        "maxPrice": {"amount": draw(amounts), "currency": currency},
        "template": {
            "metadata": {"labels": {"app": "x"}},
            "spec": {"restartPolicy": "Never", "containers": [container]},
        },
    }
    put(spec, "replicas", draw(maybe(st.integers(1, 1024))))
    put(spec, "priority", draw(maybe(st.integers(-1000, 1000))))
    if draw(st.booleans()):
        spec["budget"] = {"amount": draw(positive_amounts), "currency": currency}
    put(spec, "expectedHours", draw(maybe(positive_amounts)))
    if draw(st.booleans()):
        shuffled = draw(st.permutations(REGION_CODES))
        cut = draw(st.integers(0, 6))
        industries = draw(st.permutations([i.value for i in Industry]))
        nodes = draw(st.lists(names, unique=True, max_size=6))
        spec["placement"] = {
            "allowedRegions": list(shuffled[:cut]),
            "deniedRegions": list(shuffled[cut : cut + 3]),
            "allowedIndustries": industries[:2],
            "deniedIndustries": industries[2:4],
            "allowedNodes": nodes[:3],
            "deniedNodes": nodes[3:],
        }
    put(spec, "activeDeadlineSeconds", draw(maybe(st.integers(1, 10**6))))
    put(spec, "backoffLimit", draw(maybe(st.integers(0, 100))))
    put(
        spec,
        "failurePolicy",
        draw(
            st.sampled_from(
                [
                    None,
                    {},
                    {"rePlace": "Never"},
                    {"rePlaceAfterSeconds": 30},
                    {"rePlace": "OnNodeLost", "rePlaceAfterSeconds": 0},
                ]
            )
        ),
    )
    obj: dict[str, Any] = {
        "apiVersion": "interconnect.dev/v1alpha1",
        "kind": "ComputeJob",
        "metadata": {"name": draw(names), "namespace": draw(names), "uid": "0b7a5e0e-1c2d-4e5f-8a9b-0c1d2e3f4a5b"},
        "spec": spec,
    }
    if draw(st.booleans()):
        node, region = draw(names), draw(st.sampled_from(REGION_CODES))
        attempts = draw(st.integers(0, 3))
        obj["status"] = {
            "phase": draw(st.sampled_from([p.value for p in JobPhase])),
            "placement": {
                "node": node,
                "identityCode": issue_identity_code("regional", region, draw(st.integers(1, 999999))),
                "offer": draw(names),
                "price": draw(prices()),
                "tier": draw(st.sampled_from([t.value for t in LatencyTier])),
                "region": region,
                "gpuModel": draw(gpu_models),
                "placedAt": draw(wire_times),
            },
            "memberJob": {"cluster": node, "namespace": "interconnect-work", "name": f"cj-{attempts}", "uid": "u-1"},
            "attempts": attempts,
            "attemptHistory": [
                {
                    "attempt": i + 1,
                    "node": node,
                    "memberJobName": f"cj-{i + 1}",
                    "startedAt": draw(wire_times),
                    "outcome": draw(st.sampled_from(["Succeeded", "Failed", "NodeLost"])),
                    "cardHours": draw(quantities),
                }
                for i in range(attempts)
            ],
            "usage": {"cardHours": draw(quantities), "cost": draw(quantities), "currency": currency},
            "conditions": draw(conditions()),
            "unschedulable": {
                "summary": "0/2 offers fit: 1 PriceAboveMax, 1 TierNotMet",
                "reasons": [{"reason": "PriceAboveMax", "count": 1}, {"reason": "TierNotMet", "count": 1}],
                "candidates": [{"offer": "a", "node": "n", "reason": "price 30 above maxPrice 20"}],
            },
            "observedGeneration": draw(st.integers(0, 100)),
        }
    return obj


def wire_subset(given: Any, produced: Any, path: str = "") -> None:
    """Everything the user wrote comes back out of the model unchanged (defaults may be added)."""
    if isinstance(given, dict):
        assert isinstance(produced, dict), path
        for key, value in given.items():
            assert key in produced, f"{path}.{key} lost"
            wire_subset(value, produced[key], f"{path}.{key}")
    elif isinstance(given, list):
        assert isinstance(produced, list) and len(produced) == len(given), path
        for i, (a, b) in enumerate(zip(given, produced, strict=True)):
            wire_subset(a, b, f"{path}[{i}]")
    elif isinstance(given, str) and isinstance(produced, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT[\d:.]+Z", given):
        assert dt.datetime.fromisoformat(given) == dt.datetime.fromisoformat(produced), path
    elif isinstance(given, int) and isinstance(produced, str):  # int-or-string quantities come back as strings
        assert str(given) == produced, path
    else:
        assert given == produced, path


def check_round_trip(obj: dict[str, Any]) -> None:
    kind = BY_KIND[obj["kind"]]
    model = kind.model_validate(obj)
    assert kind.model_validate(model.model_dump()) == model
    assert kind.model_validate(to_api(model)) == model
    assert kind.model_validate_json(json.dumps(to_api(model)), strict=True) == model
    wire_subset({k: v for k, v in obj.items() if k in ("spec", "status")}, to_api(model))
    assert_conforms(model)


SLOW = settings(max_examples=60, suppress_health_check=[HealthCheck.too_slow])


@SLOW
@given(node_objects())
def test_node_round_trip(obj: dict[str, Any]) -> None:
    check_round_trip(obj)


@SLOW
@given(offer_objects())
def test_offer_round_trip(obj: dict[str, Any]) -> None:
    check_round_trip(obj)


@SLOW
@given(job_objects())
def test_job_round_trip(obj: dict[str, Any]) -> None:
    check_round_trip(obj)


@pytest.mark.parametrize("obj", example_objects(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_examples_parse_round_trip_and_conform(obj: dict[str, Any]) -> None:
    check_round_trip(obj)


def test_examples_cover_every_kind_and_node_type() -> None:
    objects = example_objects()
    assert {o["kind"] for o in objects} == set(BY_KIND)
    nodes = [ComputeNode.model_validate(o) for o in objects if o["kind"] == "ComputeNode"]
    assert {(n.spec.type.value, n.spec.region) for n in nodes} >= {("regional", "CN-GZ"), ("regional", "CN-SH")}
    finance = [n for n in nodes if n.spec.industry == Industry.FINANCE]
    assert finance and finance[0].spec.parent_node in {n.metadata.name for n in nodes if n.spec.region == "CN-SH"}
    offers = [ComputeOffer.model_validate(o) for o in objects if o["kind"] == "ComputeOffer"]
    assert {o.spec.node_ref for o in offers} <= {n.metadata.name for n in nodes}


# --------------------------------------------------------------------------------------------
# The models refuse what the API server refuses
# --------------------------------------------------------------------------------------------


def _loc(error: Any) -> str:
    out = ""
    for part in error["loc"]:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out.lstrip(".")


@pytest.mark.parametrize("case", BAD_MANIFESTS, ids=lambda c: c.id)
def test_models_refuse_each_bad_manifest_at_the_same_field(case: Any) -> None:
    """The operator never takes for valid what the API server refuses, and says where."""
    field = case.expected.split(":")[0]
    with pytest.raises(ValidationError) as caught:
        BY_KIND[case.manifest["kind"]].model_validate_json(json.dumps(case.manifest), strict=True)
    locations = [_loc(e) for e in caught.value.errors()]
    # A pydantic model validator reports on the object, a field validator on the field.
    assert any(
        field == loc or field.startswith(loc + ".") or field.startswith(loc + "[") or loc.startswith(field)
        for loc in locations
    ), (
        field,
        locations,
    )


@pytest.mark.parametrize("case", IMMUTABLE_CHANGES, ids=lambda c: c.id)
def test_immutable_change_originals_are_valid(case: Any) -> None:
    BY_KIND[case.original["kind"]].model_validate(case.original)


def test_bad_manifests_are_many_and_distinct() -> None:
    assert len(BAD_MANIFESTS) >= 45
    assert len({c.id for c in BAD_MANIFESTS}) == len(BAD_MANIFESTS)
    assert len({json.dumps(c.manifest, sort_keys=True) for c in BAD_MANIFESTS}) == len(BAD_MANIFESTS)


# --------------------------------------------------------------------------------------------
# Helpers the operator uses
# --------------------------------------------------------------------------------------------


def test_raw_api_object_with_server_metadata_validates() -> None:
    raw = json.loads(json.dumps(next(o for o in example_objects() if o["kind"] == "ComputeJob")))
    raw["metadata"].update(
        uid="7d1f0c7e-0000-4000-8000-000000000001",
        generation=3,
        resourceVersion="12345",
        creationTimestamp="2026-03-01T08:00:00Z",
        managedFields=[{"manager": "kubectl", "operation": "Update"}],
    )
    job = ComputeJob.model_validate(raw)
    assert job.metadata.generation == 3
    assert job.metadata.namespace == "tenant-a"
    assert job.status.phase is None and job.status.attempts == 0
    assert job.spec.total_cards == 16
    assert job.spec.gpus.min_memory_gib == 80


def test_defaults_are_applied_when_parsing() -> None:
    objects = example_objects()
    job = ComputeJob.model_validate(next(o for o in objects if o["metadata"]["name"] == "nightly-batch-inference"))
    assert (job.spec.replicas, job.spec.priority, job.spec.gpus.models) == (1, 0, [])
    node = ComputeNode.model_validate(next(o for o in objects if o["metadata"]["name"] == "sh-regional"))
    assert node.spec.cordoned is False
    assert node.spec.connection.secret_ref.key == "kubeconfig"


def test_failure_policy_defaults() -> None:
    assert FailurePolicy().re_place_after() == 120
    assert FailurePolicy(rePlaceAfterSeconds=5).re_place_after() == 5
    assert FailurePolicy(rePlace="Never").re_place_after() is None


def test_price_per_card_hour_is_exact() -> None:
    assert Price(amount="152", currency="CNY", unit="machine-hour", cardsPerMachine=8).per_card_hour() == Decimal("19")
    assert Price(amount="8.50", currency="CNY", unit="card-hour").per_card_hour() == Decimal("8.50")


def test_credit_code_check_character_is_verified_by_the_model() -> None:
    obj = next(o for o in example_objects() if o["kind"] == "ComputeNode")
    obj = json.loads(json.dumps(obj))
    obj["spec"]["operatingEntity"]["creditCode"] = obj["spec"]["operatingEntity"]["creditCode"][:-1] + "0"
    with pytest.raises(ValidationError, match="check character"):
        ComputeNode.model_validate(obj)


def test_to_api_leaves_out_unset_optionals() -> None:
    job = ComputeJob.model_validate(next(o for o in example_objects() if o["kind"] == "ComputeJob"))
    wire = to_api(job)
    assert "budget" in wire["spec"] and "failurePolicy" not in wire["spec"]
    assert "placement" not in wire["status"]


# --------------------------------------------------------------------------------------------
# set_condition
# --------------------------------------------------------------------------------------------

T0 = dt.datetime(2026, 3, 1, 8, 0, 0, tzinfo=UTC)


def test_set_condition_adds_then_keeps_transition_time_while_status_holds() -> None:
    first = set_condition([], "Ready", True, "Heartbeat", "ok", 1, T0)
    assert first == [
        Condition(
            type="Ready", status="True", reason="Heartbeat", message="ok", observedGeneration=1, lastTransitionTime=T0
        )
    ]
    later = T0 + dt.timedelta(minutes=5)
    second = set_condition(first, "Ready", "True", "Heartbeat", "still ok", 2, later)
    assert second[0].last_transition_time == T0
    assert (second[0].message, second[0].observed_generation) == ("still ok", 2)
    third = set_condition(
        second, "Ready", False, "HeartbeatMissed", "no answer", 2, later + dt.timedelta(seconds=1, microseconds=7)
    )
    assert third[0].status == "False"
    assert third[0].last_transition_time == later + dt.timedelta(seconds=1)  # stored to the second
    assert first[0].message == "ok"  # inputs are not modified


def test_set_condition_keeps_others_in_order() -> None:
    conditions = set_condition([], "Registered", True, "Issued", "", None, T0)
    conditions = set_condition(conditions, "Ready", False, "Connecting", "", None, T0)
    conditions = set_condition(conditions, "Registered", True, "Issued", "again", None, T0 + dt.timedelta(hours=1))
    assert [c.type for c in conditions] == ["Registered", "Ready"]
    assert find_condition(conditions, "Ready") is not None
    assert is_condition_true(conditions, "Registered") and not is_condition_true(conditions, "Ready")
    assert not is_condition_true(conditions, "Missing")


def test_set_condition_refuses_naive_time() -> None:
    with pytest.raises(ValueError, match="aware"):
        set_condition([], "Ready", True, "R", "", None, dt.datetime(2026, 1, 1))


@given(st.lists(st.tuples(st.sampled_from(["Ready", "Registered"]), st.booleans()), min_size=1, max_size=30))
def test_set_condition_transition_time_is_that_of_the_last_change(updates: list[tuple[str, bool]]) -> None:
    conditions: list[Condition] = []
    last_change: dict[str, dt.datetime] = {}
    current: dict[str, bool] = {}
    for step, (type_, status) in enumerate(updates):
        now = T0 + dt.timedelta(seconds=step)
        if current.get(type_) != status:
            last_change[type_] = now
            current[type_] = status
        conditions = set_condition(conditions, type_, status, "Reason", "", step, now)
    assert sorted(c.type for c in conditions) == sorted(current)
    for condition in conditions:
        assert condition.last_transition_time == last_change[condition.type]
        assert condition.status == str(current[condition.type])


def test_a_usage_record_is_named_after_its_attempt() -> None:
    """The API server cannot check it (beyond CEL's cost budget): the model does, and the operator
    is the only writer."""
    from tests.integration.bad_manifests import _set, usage

    with pytest.raises(ValidationError, match=r"spec\.jobUID"):
        BY_KIND["ComputeUsage"].model_validate(_set(usage(), "spec.attempt", 2))
