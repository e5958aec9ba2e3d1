"""The member Job: restricted defaults on every pod, and the workload policy re-checked before dispatch."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interconnect.api.v1alpha1 import ComputeJob
from interconnect.api.v1alpha1.job import KeptTemplate, PodTemplate, SecurityContext
from interconnect.core.workload_policy import Rule, WorkloadPolicyError, pod_spec_violations
from interconnect.services.member_job import build_member_job, member_job_name
from tests.integration.bad_manifests import job

UID = "7d1f0c7e-0000-4000-8000-000000000001"


def compute_job(template_spec: dict[str, Any] | None = None, **spec: Any) -> ComputeJob:
    manifest = job("train")
    manifest["metadata"].update(namespace="tenant-a", uid=UID)
    if template_spec is not None:
        manifest["spec"]["template"]["spec"] = template_spec
    manifest["spec"].update(spec)
    return ComputeJob.model_validate(manifest)


def build(cj: ComputeJob) -> dict[str, Any]:
    return build_member_job(
        cj,
        attempt=2,
        namespace="interconnect-work",
        offer="gz-a100",
        gpu_model="NVIDIA-A100-SXM4-80GB",
        node_selector={"pool": "a100"},
        trace={"node": "gz-regional"},
    )


def pod_spec(cj: ComputeJob) -> dict[str, Any]:
    spec: dict[str, Any] = build(cj)["spec"]["template"]["spec"]
    return spec


def restricted_problems(spec: dict[str, Any]) -> list[str]:
    """What the Pod Security Standard `restricted` would refuse in a pod spec (the parts the operator defaults)."""
    problems: list[str] = []
    pod = spec.get("securityContext") or {}
    if spec.get("automountServiceAccountToken") is not False:
        problems.append("automountServiceAccountToken")
    for list_name in ("initContainers", "containers"):
        for container in spec.get(list_name) or []:
            context = container.get("securityContext") or {}
            name = f"{list_name}/{container['name']}"
            if not context.get("runAsNonRoot", pod.get("runAsNonRoot")):
                problems.append(f"{name}: runAsNonRoot")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}: allowPrivilegeEscalation")
            if "ALL" not in ((context.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{name}: capabilities.drop")
            seccomp = context.get("seccompProfile") or pod.get("seccompProfile") or {}
            if seccomp.get("type") not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{name}: seccompProfile")
    return problems


def test_a_bare_template_gets_the_restricted_defaults() -> None:
    cj = compute_job(
        {
            "containers": [{"name": "main", "image": "registry.example.cn/ml/train:1.0"}],
            "initContainers": [{"name": "fetch", "image": "busybox"}],
        }
    )
    spec = pod_spec(cj)
    assert spec["automountServiceAccountToken"] is False
    for container in [*spec["containers"], *spec["initContainers"]]:
        assert container["securityContext"] == {
            "runAsNonRoot": True,
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "seccompProfile": {"type": "RuntimeDefault"},
        }
    assert restricted_problems(spec) == []
    assert pod_spec_violations(build(cj)["spec"]["template"]["spec"]) == []


def test_what_the_template_says_is_kept() -> None:
    cj = compute_job(
        {
            "automountServiceAccountToken": False,
            "securityContext": {"runAsUser": 1000, "seccompProfile": {"type": "Localhost", "localhostProfile": "p"}},
            "containers": [
                {
                    "name": "main",
                    "image": "registry.example.cn/ml/train:1.0",
                    "securityContext": {
                        "runAsUser": 2000,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["NET_RAW"]},
                    },
                },
                {
                    "name": "side",
                    "image": "registry.example.cn/ml/side:1.0",
                    "securityContext": {
                        "seccompProfile": {"type": "RuntimeDefault"},
                        "allowPrivilegeEscalation": False,
                    },
                },
            ],
        }
    )
    spec = pod_spec(cj)
    main, side = spec["containers"]
    assert spec["securityContext"] == {
        "runAsUser": 1000,
        "seccompProfile": {"type": "Localhost", "localhostProfile": "p"},
    }
    assert main["securityContext"] == {
        "runAsUser": 2000,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["NET_RAW", "ALL"]},
    }
    assert side["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert restricted_problems(spec) == []


def test_the_job_itself_is_not_modified() -> None:
    cj = compute_job()
    before = cj.model_dump()
    build(cj)
    assert cj.model_dump() == before
    assert "securityContext" not in cj.spec.template.as_api()["spec"]["containers"][0]


def test_the_kept_template_cannot_be_changed() -> None:
    """The job keeps its template as validated: no assignment can slip past the check."""
    cj = compute_job()
    with pytest.raises(AttributeError):
        cj.spec.template.images = ("evil.example/x:1",)  # type: ignore[misc]
    copy_ = cj.spec.template.as_api()
    copy_["spec"]["hostNetwork"] = True
    assert "hostNetwork" not in cj.spec.template.as_api()["spec"]


def test_the_rest_of_the_member_job_is_unchanged() -> None:
    manifest = build(compute_job())
    assert manifest["metadata"]["name"] == member_job_name(UID, 2)
    assert manifest["metadata"]["namespace"] == "interconnect-work"
    spec = manifest["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    assert spec["nodeSelector"] == {"pool": "a100", "nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert spec["containers"][0]["resources"] == {"limits": {"nvidia.com/gpu": "2"}}


def test_an_escaping_template_is_refused_before_dispatch() -> None:
    """Defence in depth: a template model changed after parsing (assignment skips its check) and
    kept without validation is refused."""
    cj = compute_job()
    template = PodTemplate.model_validate(cj.spec.template.as_api())
    template.spec.containers[0].security_context = SecurityContext(privileged=True)
    template.spec.host_network = True
    cj = cj.model_copy(update={"spec": cj.spec.model_copy(update={"template": KeptTemplate(template)})})
    with pytest.raises(WorkloadPolicyError) as caught:
        build(cj)
    assert [str(v) for v in caught.value.violations] == [
        f"spec.template.spec.hostNetwork: {Rule.HOST_NETWORK}",
        f"spec.template.spec.containers[0].securityContext.privileged: {Rule.PRIVILEGED}",
    ]


@st.composite
def harmless_contexts(draw: st.DrawFn) -> dict[str, Any]:
    context: dict[str, Any] = {}
    if draw(st.booleans()):
        context["runAsNonRoot"] = True
    if draw(st.booleans()):
        context["runAsUser"] = draw(st.integers(1, 65534))
    if draw(st.booleans()):
        context["allowPrivilegeEscalation"] = False
    if draw(st.booleans()):
        context["capabilities"] = {
            "add": draw(st.lists(st.just("NET_BIND_SERVICE"), max_size=1)),
            "drop": draw(st.lists(st.sampled_from(["ALL", "NET_RAW", "CHOWN"]), unique=True, max_size=2)),
        }
    if draw(st.booleans()):
        context["seccompProfile"] = {"type": draw(st.sampled_from(["RuntimeDefault", "Localhost"]))}
    return context


@st.composite
def harmless_specs(draw: st.DrawFn) -> dict[str, Any]:
    def containers(prefix: str, least: int) -> list[dict[str, Any]]:
        count = draw(st.integers(least, 3))
        out = []
        for i in range(count):
            container: dict[str, Any] = {"name": f"{prefix}{i}", "image": "registry.example.cn/x:1"}
            context = draw(harmless_contexts())
            if context or draw(st.booleans()):
                container["securityContext"] = context
            out.append(container)
        return out

    spec: dict[str, Any] = {"containers": containers("c", 1)}
    init = containers("i", 0)
    if init:
        spec["initContainers"] = init
    if draw(st.booleans()):
        spec["securityContext"] = copy.deepcopy(draw(harmless_contexts().filter(lambda c: "capabilities" not in c)))
    if draw(st.booleans()):
        spec["automountServiceAccountToken"] = False
    return spec


@given(harmless_specs())
def test_every_dispatched_pod_meets_the_restricted_profile(spec: dict[str, Any]) -> None:
    cj = compute_job(spec)
    manifest = build(cj)
    assert restricted_problems(manifest["spec"]["template"]["spec"]) == []
    assert pod_spec_violations(manifest["spec"]["template"]["spec"]) == []


@pytest.mark.parametrize(("asked", "cap", "given"), [(None, 300, 30), (31536000, 300, 300), (10, 300, 10),
                                                     (None, 5, 5), (600, None, 600)])
def test_a_pods_termination_grace_is_capped(asked: int | None, cap: int | None, given: int) -> None:
    """A terminating pod keeps its cards: a tenant cannot ask for a year of grace."""
    spec = {"containers": [{"name": "main", "image": "registry.example.cn/ml/train:1.0"}]}
    if asked is not None:
        spec["terminationGracePeriodSeconds"] = asked
    manifest = build_member_job(compute_job(spec), attempt=1, namespace="ns", offer="o", gpu_model="m",
                                node_selector={}, trace={}, max_termination_grace=cap)
    assert manifest["spec"]["template"]["spec"].get("terminationGracePeriodSeconds", 30) == given


def test_an_ascend_placement_asks_for_ascend_cards_and_tells_the_pod_its_model() -> None:
    cj = compute_job({"containers": [
        {"name": "train", "image": "i", "resources": {"limits": {"nvidia.com/gpu": "2"}},
         "env": [{"name": "INTERCONNECT_ACCELERATOR_MODEL", "value": "forged"}, {"name": "KEEP", "value": "1"}]},
        {"name": "side", "image": "i", "resources": {"limits": {"cambricon.com/mlu": "4"}}}]})
    built = build_member_job(cj, attempt=1, namespace="w", offer="bj-ascend", gpu_model="Ascend910B3",
                             node_selector={}, trace={})
    template = built["spec"]["template"]
    train, side = template["spec"]["containers"]
    assert train["resources"]["limits"] == {"huawei.com/Ascend910": "2"}, "the template's cards, on Ascend"
    assert "cambricon.com/mlu" not in side["resources"]["limits"], "the offer decides the card, not the tenant"
    env = {e["name"]: e["value"] for e in train["env"]}
    assert env == {"KEEP": "1", "INTERCONNECT_ACCELERATOR_MODEL": "Ascend910B3",
                   "INTERCONNECT_ACCELERATOR_VENDOR": "huawei",
                   "INTERCONNECT_ACCELERATOR_RESOURCE": "huawei.com/Ascend910"}
    assert template["metadata"]["labels"]["interconnect.dev/accelerator-vendor"] == "huawei"
    assert template["spec"]["nodeSelector"] == {"accelerator": "huawei-Ascend910",
                                                "node.kubernetes.io/npu.chip.name": "910B3"}


def test_a_template_without_cards_gets_the_model_s_resource_on_its_first_container() -> None:
    cj = compute_job(gpus={"count": 4, "models": ["MLU370-X8"]})
    built = build_member_job(cj, attempt=1, namespace="w", offer="o", gpu_model="MLU370-X8", node_selector={},
                             trace={})
    assert built["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cambricon.com/mlu"] == "4"


def test_an_uncatalogued_model_is_an_nvidia_card() -> None:
    built = build_member_job(compute_job(), attempt=1, namespace="w", offer="o", gpu_model="NVIDIA-B200",
                             node_selector={"pool": "x"}, trace={})
    spec = built["spec"]["template"]["spec"]
    assert spec["nodeSelector"] == {"pool": "x", "nvidia.com/gpu.product": "NVIDIA-B200"}
    assert spec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "2"
