"""The CRDs in crds/ on a real API server: examples are accepted, bad objects are refused at admission
with an error naming the field, immutable fields stay put, and kubectl shows what users look for."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests.integration.bad_manifests import (
    BAD_MANIFESTS,
    IMMUTABLE_CHANGES,
    PLACED_IMMUTABLE_CHANGES,
    STATUS_IMMUTABLE_CHANGES,
    Bad,
    Change,
    StatusChange,
    accelerator_model,
    job,
    node,
    offer,
    quota,
)

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CRDS_DIR = ROOT / "crds"
EXAMPLES_DIR = ROOT / "deploy" / "examples"
GROUP, VERSION = "interconnect.dev", "v1alpha1"
PLURALS = {
    "ComputeNode": "computenodes",
    "ComputeOffer": "computeoffers",
    "ComputeJob": "computejobs",
    "ComputeQuota": "computequotas",
    "ComputeUsage": "computeusages",
    "AcceleratorModel": "acceleratormodels",
}
NAMESPACE = "crd-validation"
MERGE_PATCH = "application/merge-patch+json"
# CRDs go through the generic custom-objects calls so that the YAML is sent as written, without a
# round trip through the client's typed models.
CRD_API = ("apiextensions.k8s.io", "v1", "customresourcedefinitions")


def _examples() -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for path in sorted(EXAMPLES_DIR.glob("*.yaml")):
        out.extend(doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc)
    return out


def _eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.5)


def _ensure_namespace(api: client.ApiClient, name: str) -> None:
    try:
        client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    except ApiException as e:
        if e.status != 409:
            raise


def _established(api: client.CustomObjectsApi, name: str) -> bool:
    crd = cast(dict[str, Any], api.get_cluster_custom_object(*CRD_API, name))
    conditions = (crd.get("status") or {}).get("conditions") or []
    return any(c["type"] == "Established" and c["status"] == "True" for c in conditions)


class Objects:
    """Create, patch and delete interconnect objects, namespaced or not, as the kind requires."""

    def __init__(self, api: client.ApiClient) -> None:
        self.api = client.CustomObjectsApi(api)

    def create(self, obj: dict[str, Any], *, dry_run: bool = True, namespace: str = NAMESPACE) -> dict[str, Any]:
        plural = PLURALS[obj["kind"]]
        options: dict[str, Any] = {"field_validation": "Strict"}
        if dry_run:
            options["dry_run"] = "All"
        if obj["kind"] == "ComputeJob":
            ns = obj["metadata"].get("namespace", namespace)
            result = self.api.create_namespaced_custom_object(GROUP, VERSION, ns, plural, obj, **options)
        else:
            result = self.api.create_cluster_custom_object(GROUP, VERSION, plural, obj, **options)
        return cast(dict[str, Any], result)

    def patch(
        self, obj: dict[str, Any], patch: dict[str, Any], *, status: bool = False, dry_run: bool = False
    ) -> dict[str, Any]:
        plural, name = PLURALS[obj["kind"]], obj["metadata"]["name"]
        options: dict[str, Any] = {"_content_type": MERGE_PATCH}
        if dry_run:
            options["dry_run"] = "All"
        if obj["kind"] == "ComputeJob":
            ns = obj["metadata"].get("namespace", NAMESPACE)
            if status:
                result = self.api.patch_namespaced_custom_object_status(
                    GROUP, VERSION, ns, plural, name, patch, **options
                )
            else:
                result = self.api.patch_namespaced_custom_object(GROUP, VERSION, ns, plural, name, patch, **options)
        elif status:
            result = self.api.patch_cluster_custom_object_status(GROUP, VERSION, plural, name, patch, **options)
        else:
            result = self.api.patch_cluster_custom_object(GROUP, VERSION, plural, name, patch, **options)
        return cast(dict[str, Any], result)

    def exists(self, obj: dict[str, Any]) -> bool:
        plural, name = PLURALS[obj["kind"]], obj["metadata"]["name"]
        try:
            if obj["kind"] == "ComputeJob":
                ns = obj["metadata"].get("namespace", NAMESPACE)
                self.api.get_namespaced_custom_object(GROUP, VERSION, ns, plural, name)
            else:
                self.api.get_cluster_custom_object(GROUP, VERSION, plural, name)
        except ApiException as e:
            if e.status == 404:
                return False
            raise
        return True

    def delete(self, obj: dict[str, Any]) -> None:
        plural, name = PLURALS[obj["kind"]], obj["metadata"]["name"]
        try:
            if obj["kind"] == "ComputeJob":
                ns = obj["metadata"].get("namespace", NAMESPACE)
                self.api.delete_namespaced_custom_object(GROUP, VERSION, ns, plural, name)
            else:
                self.api.delete_cluster_custom_object(GROUP, VERSION, plural, name)
        except ApiException as e:
            if e.status != 404:
                raise


def _rejection(call: Callable[[], Any]) -> str:
    """The message of the 422 that ``call`` must end in."""
    with pytest.raises(ApiException) as caught:
        call()
    assert caught.value.status == 422, (
        f"expected 422 Unprocessable Entity, got {caught.value.status}: {caught.value.body}"
    )
    message: str = json.loads(caught.value.body or "{}").get("message", "")
    return message


@pytest.fixture(scope="module")
def crds(hub_api: client.ApiClient) -> Iterator[None]:
    """The CRDs from crds/, created or replaced, Established, and enforcing their schema."""
    crd_api = client.CustomObjectsApi(hub_api)
    names: list[str] = []
    for path in sorted(CRDS_DIR.glob("*.yaml")):
        body = yaml.safe_load(path.read_text(encoding="utf-8"))
        name = body["metadata"]["name"]
        names.append(name)
        try:
            current = cast(dict[str, Any], crd_api.get_cluster_custom_object(*CRD_API, name))
        except ApiException as e:
            if e.status != 404:
                raise
            crd_api.create_cluster_custom_object(*CRD_API, body)
        else:
            body["metadata"]["resourceVersion"] = current["metadata"]["resourceVersion"]
            crd_api.replace_cluster_custom_object(*CRD_API, name, body)
    assert len(names) == len(PLURALS)
    for name in names:
        _eventually(functools.partial(_established, crd_api, name), f"CRD {name} to be Established")
    _ensure_namespace(hub_api, NAMESPACE)
    for ns in {o["metadata"]["namespace"] for o in _examples() if "namespace" in o["metadata"]}:
        _ensure_namespace(hub_api, ns)
    objects = Objects(hub_api)
    # A replaced CRD's new schema reaches the handler shortly after: wait until a CEL rule bites.
    probe = next(c for c in BAD_MANIFESTS if c.id == "node-industry-on-regional")

    def enforcing() -> bool:
        try:
            objects.create(node("probe-valid"))
            objects.create(probe.manifest)
        except ApiException as e:
            return e.status == 422 and probe.expected in (e.body or "")
        return False

    _eventually(enforcing, "the CRD schema to be enforced")
    yield


@pytest.fixture
def objects(hub_api: client.ApiClient, crds: None) -> Objects:
    return Objects(hub_api)


@pytest.fixture
def created(objects: Objects) -> Iterator[Callable[[dict[str, Any]], dict[str, Any]]]:
    """Create objects for real; delete them after the test."""
    made: list[dict[str, Any]] = []

    def create(obj: dict[str, Any]) -> dict[str, Any]:
        objects.delete(obj)
        _eventually(lambda: not objects.exists(obj), f"{obj['metadata']['name']} to be gone", timeout=30)
        result = objects.create(obj, dry_run=False)
        made.append(obj)
        return result

    yield create
    for obj in made:
        objects.delete(obj)


@pytest.mark.parametrize("example", _examples(), ids=lambda o: f"{o['kind']}/{o['metadata']['name']}")
def test_example_is_accepted(objects: Objects, example: dict[str, Any]) -> None:
    # A name of its own: the e2e market uses the examples' node names on the same hub.
    example = json.loads(json.dumps(example))
    example["metadata"]["name"] = f"{example['metadata']['name']}-x"[:63]
    if example["kind"] == "ComputeQuota":
        example["spec"]["namespace"] = example["metadata"]["name"]  # a quota is named after its tenant
    if example["kind"] == "AcceleratorModel":  # an entry is named after its model
        example["spec"]["model"] = f"{example['spec']['model']}-x"
    if example["kind"] == "ComputeUsage":  # a record is named after its job's UID and attempt
        example["spec"]["jobUID"] += "-x"
        example["metadata"]["name"] = f"{example['spec']['jobUID']}-{example['spec']['attempt']}"
    result = objects.create(example)
    # Nothing the example says is pruned (Strict field validation would have refused it anyway).
    assert result["spec"] == example["spec"]


@pytest.mark.parametrize("case", BAD_MANIFESTS, ids=lambda c: c.id)
def test_bad_manifest_is_rejected_naming_the_field(objects: Objects, case: Bad) -> None:
    manifest = json.loads(json.dumps(case.manifest))
    manifest["metadata"]["name"] = f"bad-{case.id}"[:63]
    message = _rejection(lambda: objects.create(manifest))
    assert case.expected in message, message


@pytest.mark.parametrize("case", IMMUTABLE_CHANGES, ids=lambda c: c.id)
def test_immutable_field_cannot_change(
    objects: Objects, created: Callable[[dict[str, Any]], dict[str, Any]], case: Change
) -> None:
    created(case.original)
    message = _rejection(lambda: objects.patch(case.original, case.patch))
    assert case.expected in message, message
    assert "immutable" in message


@pytest.mark.parametrize("case", PLACED_IMMUTABLE_CHANGES, ids=lambda c: c.id)
def test_what_decides_placement_and_price_is_fixed_once_placed(
    objects: Objects, created: Callable[[dict[str, Any]], dict[str, Any]], case: Change
) -> None:
    created(case.original)
    objects.patch(case.original, {"status": {"attempts": 1}}, status=True)
    message = _rejection(lambda: objects.patch(case.original, case.patch))
    assert case.expected in message, message
    assert "immutable once the job has been placed" in message


@pytest.mark.parametrize("case", PLACED_IMMUTABLE_CHANGES, ids=lambda c: c.id)
def test_a_job_never_placed_may_still_change_what_would_place_it(
    objects: Objects, created: Callable[[dict[str, Any]], dict[str, Any]], case: Change
) -> None:
    """Raising maxPrice as `kubectl compute explain` suggests, widening the tier or the policy."""
    created(case.original)
    objects.patch(case.original, case.patch)


@pytest.mark.parametrize("case", STATUS_IMMUTABLE_CHANGES, ids=lambda c: c.id)
def test_identity_code_never_changes(
    objects: Objects, created: Callable[[dict[str, Any]], dict[str, Any]], case: StatusChange
) -> None:
    created(case.original)
    objects.patch(case.original, case.status_first, status=True)
    objects.patch(case.original, case.status_first, status=True)  # writing the same code again is fine
    message = _rejection(lambda: objects.patch(case.original, case.status_patch, status=True))
    assert case.expected in message, message


@pytest.mark.parametrize(
    ("obj", "patch"),
    [
        (node("mutable-node"), {"spec": {"cordoned": True}}),
        (offer("mutable-offer"), {"spec": {"cards": 32, "price": {"amount": "9.25"}}}),
        (job("mutable-job"), {"spec": {"priority": 10, "budget": {"amount": "30", "currency": "CNY"},
                                       "expectedHours": "2", "failurePolicy": {"rePlace": "Never"}}}),
        (quota("mutable-quota"), {"spec": {"weight": 3, "limits": {"cards": 64, "pendingJobs": 10}}}),
        (accelerator_model("NVIDIA-H100-PCIe-mutable"),
         {"spec": {"boardPowerWatts": 300, "tflops": {"fp32": "51.2"}, "notes": {"boardPowerWatts": "capped"}}}),
    ],
    ids=["node-cordon", "offer-cards-and-price", "job-priority-budget-hours-policy", "quota-weight-and-limits",
         "accelerator-figures"],
)
def test_mutable_fields_can_change(
    objects: Objects, created: Callable[[dict[str, Any]], dict[str, Any]], obj: dict[str, Any], patch: dict[str, Any]
) -> None:
    created(obj)
    result = objects.patch(obj, patch)
    for key, value in patch["spec"].items():
        if isinstance(value, dict):
            assert value.items() <= result["spec"][key].items()
        else:
            assert result["spec"][key] == value


def _kubectl(hub_kubeconfig: Path, cache: Path, *args: str) -> subprocess.CompletedProcess[str]:
    kubectl = os.environ.get("KUBECTL", "kubectl")
    return subprocess.run(
        [kubectl, *args, "--kubeconfig", str(hub_kubeconfig), "--cache-dir", str(cache)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _words(text: str) -> str:
    return " ".join(text.split())


def test_kubectl_explain_shows_the_model_docstrings(crds: None, hub_kubeconfig: Path, tmp_path: Path) -> None:
    crd = yaml.safe_load((CRDS_DIR / "computejobs.interconnect.dev.yaml").read_text(encoding="utf-8"))
    gpus = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"]["gpus"]
    wanted = [_words(gpus["description"]), _words(gpus["properties"]["count"]["description"])]
    output = ""

    def explained() -> bool:
        nonlocal output
        result = _kubectl(hub_kubeconfig, tmp_path, "explain", "computejob.spec.gpus")
        output = _words(result.stdout)
        return result.returncode == 0 and all(text in output for text in wanted)

    # The OpenAPI document the API server publishes catches up with a new CRD after a moment.
    _eventually(explained, f"kubectl explain to show {wanted} (last output: {output!r})")
    assert "count <integer> -required-" in output


def test_kubectl_get_shows_the_columns_and_the_category(
    crds: None, created: Callable[[dict[str, Any]], dict[str, Any]], hub_kubeconfig: Path, tmp_path: Path
) -> None:
    created(job("columns-job"))
    result = _kubectl(hub_kubeconfig, tmp_path, "get", "cjob", "-n", NAMESPACE)
    assert result.returncode == 0, result.stderr
    header = result.stdout.splitlines()[0].split()
    assert header == ["NAME", "PHASE", "NODE", "GPUS", "TIER", "PRICE", "CARD-HOURS", "AGE"]
    assert "columns-job" in result.stdout
    everything = _kubectl(hub_kubeconfig, tmp_path, "get", "interconnect", "-A")
    assert everything.returncode == 0, everything.stderr
    assert "computejob.interconnect.dev/columns-job" in everything.stdout
