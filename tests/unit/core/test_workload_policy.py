"""The workload policy: what a pod template may ask of a member, and where its images come from."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from interconnect.api.v1alpha1 import ComputeJob, ComputeNode, ComputeOffer
from interconnect.core.latency import LatencyTable
from interconnect.core.placement import PlacementSnapshot, RejectReason, place
from interconnect.core.vocabulary import GPU_RESOURCE as GPU
from interconnect.core.workload_policy import (
    ALLOWED_VOLUME_TYPES,
    CONTAINER_FIELDS,
    POD_SPEC_FIELDS,
    SAFE_SYSCTLS,
    Rule,
    Violation,
    WorkloadPolicyError,
    accelerator_violations,
    check_template,
    disallowed_images,
    image_registry,
    pod_spec_violations,
    registry_allowed,
    template_images,
    template_violations,
)
from interconnect.services.translate import job_request, node_view, offer_view
from tests.integration.bad_manifests import ISOLATION_ESCAPES, WORKLOAD_ESCAPES, Bad, job, node, offer

C0 = "spec.template.spec.containers[0]"
POD = "spec.template.spec"


def template(**spec: Any) -> dict[str, Any]:
    """A harmless template (everything a tenant may reasonably set), with ``spec`` on top."""
    base: dict[str, Any] = {
        "metadata": {"labels": {"app": "train"}, "annotations": {"team": "ml"}},
        "spec": {
            "restartPolicy": "Never",
            "hostUsers": False,
            "automountServiceAccountToken": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "fsGroup": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
                "seLinuxOptions": {"type": "container_t", "level": "s0:c123,c456"},
                "sysctls": [{"name": "net.ipv4.tcp_keepalive_time", "value": "60"}],
            },
            "containers": [
                {
                    "name": "main",
                    "image": "registry.example.cn/ml/train:1.0",
                    "ports": [{"containerPort": 8080}, {"containerPort": 80, "hostPort": 0}],
                    "securityContext": {
                        "privileged": False,
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                        "procMount": "Default",
                        "readOnlyRootFilesystem": True,
                        "appArmorProfile": {"type": "RuntimeDefault"},
                        "windowsOptions": {"hostProcess": False},
                    },
                }
            ],
            "initContainers": [{"name": "fetch", "image": "busybox:1.36"}],
            "volumes": [
                {"name": "scratch", "emptyDir": {}},
                {"name": "data", "ephemeral": {"volumeClaimTemplate": {"spec": {"accessModes": ["ReadWriteOnce"]}}}},
                {"name": "meta", "projected": {"sources": [{"downwardAPI": {"items": [
                    {"path": "labels", "fieldRef": {"fieldPath": "metadata.labels"}}]}}]}},
            ],
        },
    }
    base["spec"].update(spec)
    return base


def put(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``obj`` with the dotted ``path`` (list indices as numbers) set to ``value``."""
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    cursor: Any = out
    for key in parents:
        cursor = cursor[int(key)] if isinstance(cursor, list) else cursor.setdefault(key, {})
    if isinstance(cursor, list):
        cursor[int(last)] = value
    else:
        cursor[last] = value
    return out


def test_a_harmless_template_passes() -> None:
    assert template_violations(template()) == []
    check_template(template())
    assert template_violations({"spec": {"containers": [{"name": "main", "image": "busybox"}]}}) == []
    assert template_violations({}) == []


ESCAPES: list[tuple[str, str, Any, str, str]] = [
    ("privileged", "spec.containers.0.securityContext.privileged", True, f"{C0}.securityContext.privileged",
     Rule.PRIVILEGED),
    ("escalation", "spec.containers.0.securityContext.allowPrivilegeEscalation", True,
     f"{C0}.securityContext.allowPrivilegeEscalation", Rule.PRIVILEGE_ESCALATION),
    ("host-network", "spec.hostNetwork", True, f"{POD}.hostNetwork", Rule.HOST_NETWORK),
    ("host-pid", "spec.hostPID", True, f"{POD}.hostPID", Rule.HOST_PID),
    ("host-ipc", "spec.hostIPC", True, f"{POD}.hostIPC", Rule.HOST_IPC),
    ("host-path", "spec.volumes.1", {"name": "root", "hostPath": {"path": "/"}}, f"{POD}.volumes[1].hostPath",
     Rule.HOST_PATH),
    ("nfs", "spec.volumes.0", {"name": "n", "nfs": {"server": "x", "path": "/"}}, f"{POD}.volumes[0].nfs",
     Rule.VOLUME_TYPE),
    ("host-port", "spec.containers.0.ports.1.hostPort", 80, f"{C0}.ports[1].hostPort", Rule.HOST_PORT),
    ("sys-admin", "spec.containers.0.securityContext.capabilities.add", ["NET_BIND_SERVICE", "SYS_ADMIN"],
     f"{C0}.securityContext.capabilities.add[1]", Rule.CAPABILITY),
    ("container-root", "spec.containers.0.securityContext.runAsUser", 0, f"{C0}.securityContext.runAsUser",
     Rule.RUN_AS_ROOT),
    ("pod-root", "spec.securityContext.runAsUser", 0, f"{POD}.securityContext.runAsUser", Rule.RUN_AS_ROOT),
    ("pod-non-root-false", "spec.securityContext.runAsNonRoot", False, f"{POD}.securityContext.runAsNonRoot",
     Rule.RUN_AS_NON_ROOT),
    ("container-non-root-false", "spec.containers.0.securityContext.runAsNonRoot", False,
     f"{C0}.securityContext.runAsNonRoot", Rule.RUN_AS_NON_ROOT),
    ("proc-mount", "spec.containers.0.securityContext.procMount", "Unmasked", f"{C0}.securityContext.procMount",
     Rule.PROC_MOUNT),
    ("selinux-type", "spec.securityContext.seLinuxOptions.type", "spc_t",
     f"{POD}.securityContext.seLinuxOptions.type", Rule.SELINUX_TYPE),
    ("selinux-user", "spec.containers.0.securityContext.seLinuxOptions", {"user": "system_u"},
     f"{C0}.securityContext.seLinuxOptions.user", Rule.SELINUX_USER),
    ("selinux-role", "spec.securityContext.seLinuxOptions.role", "sysadm_r",
     f"{POD}.securityContext.seLinuxOptions.role", Rule.SELINUX_ROLE),
    ("seccomp", "spec.containers.0.securityContext.seccompProfile", {"type": "Unconfined"},
     f"{C0}.securityContext.seccompProfile.type", Rule.SECCOMP),
    ("apparmor", "spec.securityContext.appArmorProfile", {"type": "Unconfined"},
     f"{POD}.securityContext.appArmorProfile.type", Rule.APPARMOR),
    ("apparmor-annotation", "metadata.annotations.container.apparmor.security.beta.kubernetes.io/main", "unconfined",
     "spec.template.metadata.annotations[container.apparmor.security.beta.kubernetes.io/main]", Rule.APPARMOR),
    ("sysctl", "spec.securityContext.sysctls.0.name", "kernel.msgmax", f"{POD}.securityContext.sysctls[0].name",
     Rule.SYSCTL),
    ("host-process", "spec.containers.0.securityContext.windowsOptions.hostProcess", True,
     f"{C0}.securityContext.windowsOptions.hostProcess", Rule.HOST_PROCESS),
    ("pod-host-process", "spec.securityContext.windowsOptions", {"hostProcess": True},
     f"{POD}.securityContext.windowsOptions.hostProcess", Rule.HOST_PROCESS),
    ("service-account", "spec.serviceAccountName", "default", f"{POD}.serviceAccountName", Rule.SERVICE_ACCOUNT),
    ("service-account-old", "spec.serviceAccount", "admin", f"{POD}.serviceAccount",
     Rule.SERVICE_ACCOUNT_DEPRECATED),
    ("automount", "spec.automountServiceAccountToken", True, f"{POD}.automountServiceAccountToken",
     Rule.AUTOMOUNT_TOKEN),
    ("token-projection", "spec.volumes.2.projected.sources.0", {"serviceAccountToken": {"path": "t"}},
     f"{POD}.volumes[2].projected.sources[0].serviceAccountToken", Rule.TOKEN_PROJECTION),
    ("ephemeral", "spec.ephemeralContainers", [{"name": "debug", "image": "busybox"}],
     f"{POD}.ephemeralContainers", Rule.EPHEMERAL_CONTAINERS),
    ("init-privileged", "spec.initContainers.0.securityContext", {"privileged": True},
     "spec.template.spec.initContainers[0].securityContext.privileged", Rule.PRIVILEGED),
    ("init-host-port", "spec.initContainers.0.ports", [{"containerPort": 22, "hostPort": 2222}],
     "spec.template.spec.initContainers[0].ports[0].hostPort", Rule.HOST_PORT),
]  # fmt: skip


def _escape(path: str, value: Any) -> dict[str, Any]:
    if path.startswith("metadata.annotations."):
        out = template()
        out["metadata"]["annotations"][path.removeprefix("metadata.annotations.")] = value
        return out
    return put(template(), path, value)


@pytest.mark.parametrize(("case", "path", "value", "field", "rule"), ESCAPES, ids=[e[0] for e in ESCAPES])
def test_each_escape_is_named_at_its_field(case: str, path: str, value: Any, field: str, rule: str) -> None:
    bad = _escape(path, value)
    assert template_violations(bad) == [Violation(field, rule)]
    with pytest.raises(WorkloadPolicyError) as caught:
        check_template(bad)
    assert str(caught.value) == f"{field}: {rule}"
    assert caught.value.violations == (Violation(field, rule),)


def test_every_violation_is_reported_at_once() -> None:
    bad = template(hostNetwork=True, hostPID=True, serviceAccountName="admin")
    bad["spec"]["containers"][0]["securityContext"].update(privileged=True, runAsUser=0)
    fields = [v.field for v in template_violations(bad)]
    assert fields == [
        f"{POD}.hostNetwork",
        f"{POD}.hostPID",
        f"{POD}.serviceAccountName",
        f"{C0}.securityContext.privileged",
        f"{C0}.securityContext.runAsUser",
    ]


def test_the_prefix_is_the_callers() -> None:
    spec = {"containers": [{"name": "a", "securityContext": {"privileged": True}}]}
    assert [str(v) for v in pod_spec_violations(spec, "pod.spec")] == [
        f"pod.spec.containers[0].securityContext.privileged: {Rule.PRIVILEGED}"
    ]


def test_explicitly_safe_values_pass() -> None:
    spec = {
        "hostNetwork": False,
        "hostPID": False,
        "hostIPC": False,
        "hostUsers": True,
        "serviceAccountName": "",
        "ephemeralContainers": [],
        "securityContext": {"runAsUser": 1, "seLinuxOptions": {"type": ""}, "seccompProfile": {"type": "Localhost"}},
        "volumes": [{"name": v, v: {}} for v in sorted(ALLOWED_VOLUME_TYPES)],
        "containers": [{"name": "a", "securityContext": {"runAsUser": 65534, "capabilities": {"add": []}}}],
    }
    assert pod_spec_violations(spec) == []


def test_malformed_values_do_not_crash_the_check() -> None:
    spec: dict[str, Any] = {
        "containers": "nope",
        "volumes": [None, 3, {"name": "x"}],
        "securityContext": ["x"],
        "initContainers": [{"securityContext": None, "ports": [None]}],
    }
    assert pod_spec_violations(spec) == []


@given(
    st.sampled_from(ESCAPES),
    st.integers(min_value=0, max_value=5),
    st.sampled_from(["containers", "initContainers"]),
)
def test_container_escapes_name_the_container_they_are_in(
    escape: tuple[str, str, Any, str, str], index: int, list_name: str
) -> None:
    """An escape written into the index-th container of either list is reported there, and only there."""
    _, path, value, field, rule = escape
    if not path.startswith("spec.containers.0."):
        return
    spec = template()["spec"]
    harmless = copy.deepcopy(spec["containers"][0])
    spec[list_name] = [copy.deepcopy(harmless) for _ in range(index + 1)]
    bad = put({"spec": spec}, path.replace("containers.0", f"{list_name}.{index}"), value)
    assert template_violations(bad) == [Violation(field.replace("containers[0]", f"{list_name}[{index}]"), rule)]


@given(st.lists(st.sampled_from(SAFE_SYSCTLS), max_size=4), st.text(min_size=1, max_size=20))
def test_only_safe_sysctls(safe: list[str], other: str) -> None:
    sysctls = [{"name": n, "value": "1"} for n in safe]
    assert pod_spec_violations({"securityContext": {"sysctls": sysctls}}) == []
    unsafe = [*sysctls, {"name": other, "value": "1"}]
    expected = [] if other in SAFE_SYSCTLS else [Violation(f"x.securityContext.sysctls[{len(safe)}].name", Rule.SYSCTL)]
    assert pod_spec_violations({"securityContext": {"sysctls": unsafe}}, "x") == expected


# --------------------------------------------------------------------------------------------
# Registries
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "registry"),
    [
        ("busybox", "docker.io"),
        ("busybox:1.36", "docker.io"),
        ("library/busybox", "docker.io"),
        ("docker.io/library/busybox:latest", "docker.io"),
        ("index.docker.io/library/busybox", "docker.io"),
        ("user/app:1.0", "docker.io"),
        ("user/app@sha256:" + "a" * 64, "docker.io"),
        ("registry.example.cn/ml/train:1.0", "registry.example.cn"),
        ("Registry.Example.CN/ml/train", "registry.example.cn"),
        ("registry.example.cn:5000/ml/train", "registry.example.cn:5000"),
        ("localhost/app", "localhost"),
        ("localhost:5000/app:dev", "localhost:5000"),
        ("nvcr.io/nvidia/pytorch:24.01-py3", "nvcr.io"),
        ("ghcr.io/org/app", "ghcr.io"),
        ("myhost:5000/app", "myhost:5000"),
        ("", ""),
    ],
)
def test_image_registry(image: str, registry: str) -> None:
    assert image_registry(image) == registry


hosts = st.from_regex(r"[a-z0-9]{1,10}(\.[a-z0-9]{1,10}){1,3}(:[0-9]{1,5})?", fullmatch=True)
components = st.from_regex(r"[a-z0-9]+([._-][a-z0-9]+)*", fullmatch=True)
suffixes = st.sampled_from(["", ":latest", ":1.0", "@sha256:" + "0" * 64, ":v2@sha256:" + "f" * 64])


@given(hosts, st.lists(components, min_size=1, max_size=3), suffixes)
def test_a_first_component_with_a_dot_or_port_is_the_registry(host: str, path: list[str], suffix: str) -> None:
    image = f"{host}/{'/'.join(path)}{suffix}"
    expected = "docker.io" if host == "index.docker.io" else host
    assert image_registry(image) == expected
    assert registry_allowed(image_registry(image), [host.upper()])


dotless = st.from_regex(r"[a-z0-9]+([_-][a-z0-9]+)*", fullmatch=True)


@given(dotless, st.lists(components, max_size=2), suffixes)
def test_a_reference_without_a_registry_is_on_docker_hub(first: str, rest: list[str], suffix: str) -> None:
    """No '.', no ':' and not localhost before the first '/': the image is on Docker Hub."""
    if first == "localhost" and rest:
        return
    assert image_registry(f"{'/'.join([first, *rest])}{suffix}") == "docker.io"


def test_template_images_lists_every_container() -> None:
    t = template(ephemeralContainers=[{"name": "dbg", "image": "evil.example.com/x"}])
    t["spec"]["containers"].append({"name": "side"})
    assert template_images(t) == [
        (f"{C0}.image", "registry.example.cn/ml/train:1.0"),
        ("spec.template.spec.containers[1].image", ""),
        ("spec.template.spec.initContainers[0].image", "busybox:1.36"),
        ("spec.template.spec.ephemeralContainers[0].image", "evil.example.com/x"),
    ]


def test_disallowed_images() -> None:
    t = template()
    assert disallowed_images(t, []) == []
    assert disallowed_images(t, ["registry.example.cn", "docker.io"]) == []
    assert disallowed_images(t, ["registry.example.cn", "index.docker.io"]) == []
    bad = disallowed_images(t, ["registry.example.cn"])
    assert bad == [
        Violation(
            "spec.template.spec.initContainers[0].image",
            "image 'busybox:1.36' is not from an allowed registry (registry.example.cn)",
        )
    ]
    assert [v.field for v in disallowed_images(t, ["registry.example.cn:5000"])] == [
        f"{C0}.image",
        "spec.template.spec.initContainers[0].image",
    ]
    assert not registry_allowed("", ["docker.io"])


# --------------------------------------------------------------------------------------------
# The API models re-check the template (the operator never takes an escaping template for valid)
# --------------------------------------------------------------------------------------------

JOB_ESCAPES = [c for c in WORKLOAD_ESCAPES if c.manifest["kind"] == "ComputeJob"]


def test_there_are_at_least_twenty_escapes() -> None:
    assert len(WORKLOAD_ESCAPES) >= 20
    assert len(JOB_ESCAPES) >= 20


@pytest.mark.parametrize("case", JOB_ESCAPES, ids=lambda c: c.id)
def test_the_operator_names_the_same_field_as_the_api_server(case: Bad) -> None:
    """core.workload_policy reports each escaping template at the field the CRD's rule names."""
    fields = [v.field for v in template_violations(case.manifest["spec"]["template"])]
    assert fields == [case.expected]
    with pytest.raises(ValidationError) as caught:
        ComputeJob.model_validate(case.manifest)
    assert case.expected in str(caught.value)


def test_a_harmless_template_round_trips_through_the_model() -> None:
    """Typed fields keep their API spelling (hostPID, seLinuxOptions, ...); fields outside the
    allow-list are not kept (the API server refuses them with strict field validation, or prunes)."""
    manifest = job()
    manifest["spec"]["template"] = template(hostPID=False, hostIPC=False, hostNetwork=False, dnsPolicy="Default")
    parsed = ComputeJob.model_validate(manifest)
    assert parsed.spec.template.as_api() == manifest["spec"]["template"]
    manifest["spec"]["template"]["spec"]["someFutureField"] = {"x": 1}
    manifest["spec"]["template"]["spec"]["containers"][0]["someFutureField"] = True
    parsed = ComputeJob.model_validate(manifest)
    dumped = parsed.spec.template.as_api()
    assert "someFutureField" not in dumped["spec"]
    assert "someFutureField" not in dumped["spec"]["containers"][0]
    assert parsed.spec.template.images == ("registry.example.cn/ml/train:1.0", "busybox:1.36")


def test_snake_case_spellings_are_caught_too() -> None:
    """The models accept field names as well as aliases: the re-check sees what the operator would send."""
    manifest = job()
    manifest["spec"]["template"]["spec"]["host_network"] = True
    with pytest.raises(ValidationError, match=r"spec\.template\.spec\.hostNetwork"):
        ComputeJob.model_validate(manifest)


@pytest.mark.parametrize(
    "registries",
    [["registry.example.cn"], ["docker.io", "localhost", "localhost:5000", "myhost:5000", "10.0.0.7:5000"], []],
)
def test_offer_allowed_registries(registries: list[str]) -> None:
    manifest = offer()
    manifest["spec"]["allowedRegistries"] = registries
    assert ComputeOffer.model_validate(manifest).spec.allowed_registries == registries


def test_an_offer_restricted_to_other_registries_does_not_get_the_job() -> None:
    """From the API objects through translate to placement: the reason names the image and the registries."""
    hub_node = ComputeNode.model_validate(node("gz-regional"))
    cn_only = offer("gz-cn-only")
    cn_only["spec"]["allowedRegistries"] = ["registry.example.cn"]
    cn_only["spec"]["price"]["amount"] = "1"
    anywhere = offer("gz-anywhere")
    manifest = job("train")
    manifest["metadata"].update(namespace="tenant-a", uid="u-1", creationTimestamp="2026-03-01T08:00:00Z")
    manifest["spec"].update(origin="CN-GZ", latencyTier="20ms")
    manifest["spec"]["template"]["spec"]["initContainers"] = [{"name": "fetch", "image": "busybox:1.36"}]
    request = job_request(ComputeJob.model_validate(manifest))
    assert request.images == ("registry.example.cn/ml/train:1.0", "busybox:1.36")
    offers = [offer_view(ComputeOffer.model_validate(o), cards_total=16, cards_free=16) for o in (cn_only, anywhere)]
    assert offers[0].allowed_registries == frozenset({"registry.example.cn"})
    snapshot = PlacementSnapshot.of(
        [node_view(hub_node, registered=True, ready=True)],
        offers,
        LatencyTable.default(),
        dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC),
    )
    decision = place(request, snapshot)
    assert decision.chosen is not None and decision.chosen.offer == "gz-anywhere"
    (rejection,) = decision.rejected
    assert (rejection.offer, rejection.reason) == ("gz-cn-only", RejectReason.IMAGE_REGISTRY_NOT_ALLOWED)
    assert rejection.message == (
        "image busybox:1.36 is from registry docker.io; the offer allows only registry.example.cn"
    )


# --------------------------------------------------------------------------------------------
# Tenant isolation (issue 20): nothing of the member, no scheduling privileges, no spoofed keys
# --------------------------------------------------------------------------------------------

TEMPLATE_ISOLATION = [c for c in ISOLATION_ESCAPES if c.expected.startswith("spec.template.spec.")
                      and ": " not in c.expected and "[0].key" not in c.expected]


def test_there_are_at_least_forty_hostile_templates() -> None:
    assert len(ISOLATION_ESCAPES) + len(WORKLOAD_ESCAPES) >= 40


@pytest.mark.parametrize("case", TEMPLATE_ISOLATION, ids=lambda c: c.id)
def test_each_isolation_escape_is_named_by_the_operator_as_by_the_api_server(case: Bad) -> None:
    fields = [v.field for v in template_violations(case.manifest["spec"]["template"])]
    assert fields == [case.expected]


@pytest.mark.parametrize("key", ["interconnect.dev/job-uid", "interconnect.dev/attempt", "interconnect.dev/managed-by",
                                 "batch.kubernetes.io/controller-uid", "controller-uid", "job-name"])
def test_the_operators_label_keys_are_refused(key: str) -> None:
    violations = template_violations({"metadata": {"labels": {key: "x"}}, "spec": {"containers": [{"name": "c"}]}})
    assert [v.field for v in violations] == [f"spec.template.metadata.labels[{key}]"]


def test_a_tenants_own_labels_and_the_test_beds_annotations_pass() -> None:
    template_ok = {"metadata": {"labels": {"app": "train", "team.example/x": "y"},
                                "annotations": {"testbed.interconnect.dev/run-for": "5s"}},
                   "spec": {"containers": [{"name": "c"}]}}
    assert template_violations(template_ok) == []


def test_fields_outside_the_allow_list_are_named() -> None:
    violations = template_violations({"spec": {"containers": [{"name": "c", "devices": ["/dev/x"]}], "futureField": 1}})
    fields = [v.field for v in violations]
    assert fields == ["spec.template.spec.futureField", "spec.template.spec.containers[0].devices"]


def test_the_allow_lists_hold_nothing_refused() -> None:
    refused_pod = {"nodeName", "priorityClassName", "priority", "runtimeClassName", "schedulerName", "imagePullSecrets",
                   "hostNetwork", "hostPID", "hostIPC", "serviceAccountName", "serviceAccount", "ephemeralContainers",
                   "resourceClaims", "overhead", "topologySpreadConstraints", "schedulingGates", "preemptionPolicy"}
    assert not refused_pod & POD_SPEC_FIELDS
    assert not {"envFrom", "volumeDevices"} & CONTAINER_FIELDS


@pytest.mark.parametrize(
    ("containers", "init", "count", "holders"),
    [
        ([{"name": "a", "resources": {"limits": {GPU: "2"}}}], [], 2, 0),
        ([{"name": "a", "resources": {"limits": {GPU: "2"}}}], [{"name": "s", "restartPolicy": "Always",
                                                                 "resources": {"limits": {GPU: "2"}}}], 2, 1),
        ([{"name": "a", "resources": {"limits": {GPU: "2"}}}, {"name": "b", "resources": {"requests": {GPU: "2"}}}],
         [], 2, 1),
        # An ordinary init container runs alone: it may hold the cards before the main one does.
        ([{"name": "a", "resources": {"limits": {GPU: "2"}}}], [{"name": "i", "resources": {"limits": {GPU: "2"}}}],
         2, 0),
        ([{"name": "a"}], [{"name": "s", "restartPolicy": "Always", "resources": {"limits": {GPU: "2"}}}], 2, 0),
    ],
)
def test_at_most_one_accelerator_holder(containers: list[Any], init: list[Any], count: int, holders: int) -> None:
    violations = accelerator_violations({"containers": containers, "initContainers": init}, count)
    assert len([v for v in violations if v.rule == Rule.ACCELERATOR_HOLDERS]) == holders
