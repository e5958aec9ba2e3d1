"""crds/ is generated from the models, is a structural schema, and shows what users look for."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from interconnect.api.v1alpha1.job import GpuRequest
from interconnect.generate import crds as crdgen

ROOT = Path(__file__).resolve().parents[3]
CRDS_DIR = ROOT / "crds"
RENDERED = crdgen.render_crds()
OBJECTS = {name: yaml.safe_load(text) for name, text in RENDERED.items()}
BY_KIND = {obj["spec"]["names"]["kind"]: obj for obj in OBJECTS.values()}


def schema_of(kind: str) -> dict[str, Any]:
    schema: dict[str, Any] = BY_KIND[kind]["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def walk(schema: dict[str, Any], path: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, sub in schema.get("properties", {}).items():
        yield from walk(sub, f"{path}.{name}")
    if isinstance(schema.get("items"), dict):
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}.*")


ALL_NODES = [(kind, path, node) for kind in BY_KIND for path, node in walk(schema_of(kind))]


def test_committed_crds_match_the_models() -> None:
    committed = {p.name: p.read_text(encoding="utf-8") for p in CRDS_DIR.glob("*.yaml")}
    assert sorted(committed) == sorted(RENDERED), "run `python -m interconnect crds`"
    for name, text in RENDERED.items():
        assert committed[name] == text, f"crds/{name} is stale: run `python -m interconnect crds`"


def test_check_mode_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert crdgen.main(["--output-dir", str(tmp_path)]) == 0
    assert crdgen.main(["--check", "--output-dir", str(tmp_path)]) == 0
    target = tmp_path / "computejobs.interconnect.dev.yaml"
    target.write_text(target.read_text(encoding="utf-8").replace("maxItems: 16", "maxItems: 17", 1), encoding="utf-8")
    (tmp_path / "stale.interconnect.dev.yaml").write_text("{}\n", encoding="utf-8")
    capsys.readouterr()
    assert crdgen.main(["--check", "--output-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    diff_lines = out.splitlines()
    assert any(line.startswith("-") and line.strip().endswith("maxItems: 17") for line in diff_lines)
    assert any(line.startswith("+") and line.strip().endswith("maxItems: 16") for line in diff_lines)
    assert "stale.interconnect.dev.yaml: not generated" in out
    assert crdgen.main(["--output-dir", str(tmp_path)]) == 0
    assert not (tmp_path / "stale.interconnect.dev.yaml").exists()
    assert crdgen.main(["--check", "--output-dir", str(tmp_path)]) == 0


def test_rendering_is_deterministic() -> None:
    assert crdgen.render_crds() == RENDERED


@pytest.mark.parametrize(("kind", "path", "node"), ALL_NODES, ids=[f"{k}{p}" for k, p, _ in ALL_NODES])
def test_structural(kind: str, path: str, node: dict[str, Any]) -> None:
    assert "$ref" not in node and "$defs" not in node and "definitions" not in node
    assert "const" not in node
    assert "default" not in node, "defaults are applied by the models, not the API server"
    for key in ("anyOf", "oneOf", "allOf", "not"):
        assert key not in node, f"{key} is not used here (and anyOf with null is never structural)"
    assert node.get("additionalProperties", {}) is not False
    if node.get("x-kubernetes-int-or-string"):
        assert "type" not in node
    else:
        assert node.get("type") in {"object", "array", "string", "integer", "boolean", "number"}, (
            "every schema has a type"
        )
    if node.get("type") == "array":
        assert "maxItems" in node, "bounded lists keep CEL cost estimates low"
    if "x-kubernetes-list-type" in node:
        assert node["x-kubernetes-list-type"] in {"set", "map", "atomic"}
        if node["x-kubernetes-list-type"] == "map":
            assert set(node["x-kubernetes-list-map-keys"]) <= set(node["items"]["required"])
    if node.get("type") == "object" and "properties" in node:
        assert set(node.get("required", [])) <= set(node["properties"])


@pytest.mark.parametrize(("kind", "path", "node"), ALL_NODES, ids=[f"{k}{p}" for k, p, _ in ALL_NODES])
def test_every_field_has_a_description(kind: str, path: str, node: dict[str, Any]) -> None:
    if path.endswith(("[]", ".*")):
        return  # items and map values are described by their field
    assert node.get("description"), f"{kind}{path} has no description for kubectl explain"
    assert "\n" not in node["description"].replace("\n\n", ""), "paragraphs are one line each"


def test_every_cel_rule_has_a_message() -> None:
    rules = [(kind, path, r) for kind, path, node in ALL_NODES for r in node.get("x-kubernetes-validations", [])]
    assert len(rules) >= 20
    for kind, path, r in rules:
        assert r.get("message") or r.get("messageExpression"), (kind, path, r)
        if "fieldPath" in r:
            target = path + r["fieldPath"]
            assert any(p == target for k, p, _ in ALL_NODES if k == kind), f"fieldPath {target} is not a field"


def test_cel_strings_that_rules_read_are_bounded() -> None:
    # Strings compared or scanned by CEL rules carry maxLength or an enum.
    for kind, path, node in ALL_NODES:
        if node.get("type") == "string" and node.get("x-kubernetes-validations"):
            assert "maxLength" in node or "enum" in node, (kind, path)


def test_kubectl_explain_shows_the_model_docstrings() -> None:
    gpus = schema_of("ComputeJob")["properties"]["spec"]["properties"]["gpus"]
    assert gpus["description"].startswith("GPUs each replica needs")
    count_doc = GpuRequest.model_fields["count"].description
    assert count_doc and gpus["properties"]["count"]["description"] == count_doc
    assert "member cluster" in schema_of("ComputeNode")["description"]


def test_names_scopes_categories_and_subresources() -> None:
    expected = {
        "ComputeNode": ("Cluster", ["cnode"], "computenodes"),
        "ComputeOffer": ("Cluster", ["coffer"], "computeoffers"),
        "ComputeJob": ("Namespaced", ["cjob"], "computejobs"),
        "ComputeQuota": ("Cluster", ["cq"], "computequotas"),
        "ComputeUsage": ("Cluster", ["cusage"], "computeusages"),
        "AcceleratorModel": ("Cluster", ["accel"], "acceleratormodels"),
    }
    assert set(BY_KIND) == set(expected)
    for kind, (scope, short, plural) in expected.items():
        crd = BY_KIND[kind]
        assert crd["metadata"]["name"] == f"{plural}.interconnect.dev"
        assert crd["spec"]["group"] == "interconnect.dev"
        assert crd["spec"]["scope"] == scope
        assert crd["spec"]["names"]["shortNames"] == short
        assert crd["spec"]["names"]["plural"] == plural
        assert crd["spec"]["names"]["categories"] == ["interconnect"]
        [version] = crd["spec"]["versions"]
        assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
        # A ComputeUsage is all spec, written once, and an AcceleratorModel is the hub admin's data
        # with nothing observed about it: no status to write apart.
        no_status = kind in ("ComputeUsage", "AcceleratorModel")
        assert version["subresources"] == ({} if no_status else {"status": {}})


def columns(kind: str) -> dict[str, str]:
    version = BY_KIND[kind]["spec"]["versions"][0]
    return {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"] if not c.get("priority")}


def test_printer_columns() -> None:
    assert columns("ComputeJob") == {
        "Phase": ".status.phase",
        "Node": ".status.placement.node",
        "GPUs": ".spec.gpus.count",
        "Tier": ".spec.latencyTier",
        "Price": ".status.placement.price.amount",
        "Card-Hours": ".status.usage.cardHours",
        "Age": ".metadata.creationTimestamp",
    }
    node = columns("ComputeNode")
    assert node["Identity"] == ".status.identityCode"
    assert node["Ready"] == '.status.conditions[?(@.type=="Ready")].status'
    assert {"Type", "Region"} <= set(node)
    offer = columns("ComputeOffer")
    assert (offer["Node"], offer["Model"], offer["Free"], offer["Total"], offer["Price"]) == (
        ".spec.nodeRef",
        ".spec.gpuModel",
        ".status.cardsFree",
        ".status.cardsTotal",
        ".spec.price.amount",
    )
    quota = columns("ComputeQuota")
    assert (quota["Namespace"], quota["Cards"], quota["Card-Limit"], quota["Pending"]) == (
        ".spec.namespace",
        ".status.cardsInUse",
        ".spec.limits.cards",
        ".status.pendingJobs",
    )
    assert (quota["Spent"], quota["Budget"]) == (".status.spentThisMonth.amount", ".spec.limits.monthlySpend.amount")
    assert columns("ComputeUsage") == {
        "Tenant": ".spec.tenant",
        "Node": ".spec.node",
        "Month": ".spec.month",
        "Card-Hours": ".spec.cardHours",
        "Cost": ".spec.cost",
        "Currency": ".spec.currency",
        "Outcome": ".spec.outcome",
        "Age": ".metadata.creationTimestamp",
    }
    assert columns("AcceleratorModel") == {
        "Model": ".spec.model",
        "Vendor": ".spec.vendor",
        "Resource": ".spec.resource",
        "Memory": ".spec.memoryGiB",
        "BF16": ".spec.tflops.bf16",
        "Power": ".spec.boardPowerWatts",
        "Age": ".metadata.creationTimestamp",
    }


def test_printer_column_paths_exist() -> None:
    for kind in BY_KIND:
        for column in BY_KIND[kind]["spec"]["versions"][0]["additionalPrinterColumns"]:
            path = column["jsonPath"].split("[")[0]
            if path.startswith(".metadata"):
                continue
            node = schema_of(kind)
            for part in path.strip(".").split("."):
                node = node["properties"][part] if "properties" in node else node["items"]["properties"][part]


def test_region_is_an_enum_and_credit_code_shape_is_checked_at_admission() -> None:
    spec = schema_of("ComputeNode")["properties"]["spec"]
    assert "CN-GZ" in spec["properties"]["region"]["enum"]
    credit = spec["properties"]["operatingEntity"]["properties"]["creditCode"]
    assert credit["pattern"] == "^[0-9A-HJ-NPQRTUWXY]{2}[0-9]{6}[0-9A-HJ-NPQRTUWXY]{10}$"
    # The check character is left to the models: CEL's cost estimator refuses the GB 32100 sum.
    assert "x-kubernetes-validations" not in credit


def test_immutable_fields() -> None:
    def rules(node: dict[str, Any]) -> list[str]:
        return [r["rule"] for r in node.get("x-kubernetes-validations", [])]

    job = schema_of("ComputeJob")["properties"]["spec"]["properties"]
    node = schema_of("ComputeNode")["properties"]["spec"]["properties"]
    for field in (job["gpus"], job["origin"], node["type"], node["region"]):
        assert "self == oldSelf" in rules(field)
    # What decides placement and price is fixed once placed: root-level rules that read the status.
    root = [r for r in schema_of("ComputeJob").get("x-kubernetes-validations", [])]
    fixed = {r["fieldPath"] for r in root if "oldSelf.status.attempts == 0" in r["rule"]}
    assert fixed == {f".spec.{f}" for f in ("replicas", "template", "maxPrice", "priceBasis", "latencyTier",
                                           "placement", "backoffLimit", "activeDeadlineSeconds")}
    for mutable in ("priority", "budget", "expectedHours", "failurePolicy", "replicas", "maxPrice"):
        assert "self == oldSelf" not in rules(job[mutable])


def test_prices_are_strings() -> None:
    offer = schema_of("ComputeOffer")["properties"]["spec"]["properties"]["price"]["properties"]
    assert offer["amount"]["type"] == "string"
    assert offer["amount"]["pattern"] == r"^(0|[1-9][0-9]{0,9})(\.[0-9]{1,4})?$"
    job = schema_of("ComputeJob")["properties"]["status"]["properties"]["usage"]["properties"]
    assert job["cardHours"]["type"] == job["cost"]["type"] == "string"


def test_the_hub_chart_ships_the_same_crds() -> None:
    """files/crds/, which templates/crds.yaml renders (tests/unit/charts/test_chart_crds.py)."""
    from pathlib import Path

    from interconnect.generate.crds import CHART_CRDS, render_crds

    chart = Path(__file__).resolve().parents[3] / CHART_CRDS
    for name, text in render_crds().items():
        assert (chart / name).read_text(encoding="utf-8") == text, f"{name}: run `python -m interconnect crds`"


def test_a_quota_is_named_after_its_namespace_and_its_limits_are_optional() -> None:
    schema = schema_of("ComputeQuota")
    [root_rule] = schema["x-kubernetes-validations"]
    assert root_rule["rule"] == "self.metadata.name == self.spec.namespace"
    spec = schema["properties"]["spec"]
    assert spec["required"] == ["namespace"]
    assert "self == oldSelf" in [r["rule"] for r in spec["properties"]["namespace"]["x-kubernetes-validations"]]
    limits = spec["properties"]["limits"]
    assert "required" not in limits
    assert limits["properties"]["monthlySpend"]["properties"]["amount"]["type"] == "string"
    per_model = limits["properties"]["cardsPerModel"]
    assert (per_model["x-kubernetes-list-type"], per_model["x-kubernetes-list-map-keys"]) == ("map", ["model"])
    month = schema["properties"]["status"]["properties"]["spentThisMonth"]["properties"]["month"]
    assert month["pattern"] == r"^[0-9]{4}-(0[1-9]|1[0-2])$"


def test_a_usage_record_is_immutable() -> None:
    schema = schema_of("ComputeUsage")
    # No rule on the name: concatenating with metadata.name is beyond CEL's cost budget (the model
    # checks it, and the operator is the only writer).
    assert "x-kubernetes-validations" not in schema
    spec = schema["properties"]["spec"]
    assert "self == oldSelf" in [r["rule"] for r in spec["x-kubernetes-validations"]], "the whole spec"
    assert set(spec["required"]) >= {"tenant", "jobName", "jobUID", "attempt", "node", "offer", "price", "cardHours",
                                     "cost", "currency", "finishedAt", "month", "outcome"}
    for field in ("cardHours", "cost", "lostCardHours"):
        assert spec["properties"][field]["type"] == "string"
    assert spec["properties"]["month"]["pattern"] == r"^[0-9]{4}-(0[1-9]|1[0-2])$"
    assert "status" not in schema["properties"]


def test_an_accelerator_model_needs_a_source_for_every_figure_and_is_named_after_its_model() -> None:
    schema = schema_of("AcceleratorModel")
    [root_rule] = schema["x-kubernetes-validations"]
    assert root_rule["rule"] == "self.metadata.name == self.spec.model.lowerAscii().replace('_', '-')"
    spec = schema["properties"]["spec"]
    assert spec["required"] == ["model", "vendor", "resource", "nodeLabels"]
    assert spec["properties"]["vendor"]["enum"] == ["nvidia", "huawei", "cambricon", "hygon"]
    assert spec["properties"]["nodeLabels"]["minItems"] == 1
    assert spec["properties"]["nodeLabels"]["items"]["minProperties"] == 1
    needs = {r["fieldPath"]: r["rule"] for r in spec["x-kubernetes-validations"]}
    assert set(needs) == {".sources.memoryGiB", ".sources.tflops.bf16", ".sources.tflops.fp16",
                          ".sources.tflops.fp32", ".sources.interconnect", ".sources.boardPowerWatts"}
    assert needs[".sources.memoryGiB"] == "!has(self.memoryGiB) || (has(self.sources) && has(self.sources.memoryGiB))"
    for precision in ("bf16", "fp16", "fp32"):
        assert spec["properties"]["tflops"]["properties"][precision]["type"] == "string", "never a YAML float"
