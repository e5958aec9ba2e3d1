"""Manifests the API server must reject, each with the field its error must name.

``BAD_MANIFESTS``: (id, manifest, expected) where ``expected`` is a substring of the API server's
422 message, normally the offending field's path (e.g. ``spec.gpus.count``).

``IMMUTABLE_CHANGES``: (id, original manifest, JSON merge patch of the spec, expected): the
original is created, the patch must be rejected.

``STATUS_IMMUTABLE_CHANGES``: the same for the status subresource (the patch goes to /status
after ``status_first`` was written there).

Plain data (no Kubernetes client): the unit tests also check that the models reject each one.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

API_VERSION = "interconnect.dev/v1alpha1"
GOOD_CREDIT_CODE = "91520100MA6DKP7T4L"
# The same code with its check character changed: right shape, wrong check.
BAD_CHECK_CREDIT_CODE = "91520100MA6DKP7T4M"


class Bad(NamedTuple):
    id: str
    manifest: dict[str, Any]
    expected: str


class Change(NamedTuple):
    id: str
    original: dict[str, Any]
    patch: dict[str, Any]
    expected: str


class StatusChange(NamedTuple):
    id: str
    original: dict[str, Any]
    status_first: dict[str, Any]
    status_patch: dict[str, Any]
    expected: str


def node(name: str = "node-under-test") -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ComputeNode",
        "metadata": {"name": name},
        "spec": {
            "type": "regional",
            "region": "CN-GZ",
            "operatingEntity": {
                "name": "贵州算力网络科技有限公司",
                "creditCode": GOOD_CREDIT_CODE,
                "telecomLicence": "B1-20230417",
                "registeredCapital": "500000000",
            },
            "connection": {
                "secretRef": {"name": "member-gz", "namespace": "interconnect-system"},
                "namespace": "interconnect-work",
            },
        },
    }


def industry_node(name: str = "node-under-test") -> dict[str, Any]:
    obj = node(name)
    obj["spec"].update(type="industry", region="CN-SH", industry="finance", parentNode="sh-regional")
    return obj


def offer(name: str = "offer-under-test") -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ComputeOffer",
        "metadata": {"name": name},
        "spec": {
            "nodeRef": "gz-regional",
            "gpuModel": "NVIDIA-A100-SXM4-80GB",
            "gpuMemoryGiB": 80,
            "cards": 16,
            "price": {"amount": "8.50", "currency": "CNY", "unit": "card-hour"},
        },
    }


def machine_offer(name: str = "offer-under-test") -> dict[str, Any]:
    obj = offer(name)
    obj["spec"]["price"] = {"amount": "152", "currency": "CNY", "unit": "machine-hour", "cardsPerMachine": 8}
    return obj


def job(name: str = "job-under-test") -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ComputeJob",
        "metadata": {"name": name},
        "spec": {
            "gpus": {"count": 2, "models": ["NVIDIA-A100-SXM4-80GB"]},
            "origin": "CN-SH",
            "latencyTier": "5ms",
            "maxPrice": {"amount": "20", "currency": "CNY"},
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "main", "image": "registry.example.cn/ml/train:1.0"}],
                }
            },
        },
    }


def quota(name: str = "quota-under-test") -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ComputeQuota",
        "metadata": {"name": name},
        "spec": {
            "namespace": name,
            "weight": 2,
            "limits": {
                "cards": 32,
                "cardsPerModel": [{"model": "NVIDIA-H800", "cards": 16}],
                "cardsPerVendor": [{"vendor": "huawei", "cards": 8}],
                "pendingJobs": 50,
                "monthlySpend": {"amount": "100000", "currency": "CNY"},
            },
        },
    }


USAGE_UID = "5f0c6a2e-3b9d-4c71-9a52-0d8e7f6b1c24"


def usage(uid: str = USAGE_UID, attempt: int = 1) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "ComputeUsage",
        "metadata": {"name": f"{uid}-{attempt}",
                     "labels": {"interconnect.dev/tenant": "tenant-a", "interconnect.dev/month": "2026-11"}},
        "spec": {
            "tenant": "tenant-a", "jobName": "train", "jobUID": uid, "attempt": attempt, "node": "gz-regional",
            "identityCode": "CIRGZ000001E", "region": "CN-GZ", "offer": "gz-a100",
            "gpuModel": "NVIDIA-A100-SXM4-80GB", "price": {"amount": "8.00", "currency": "CNY", "unit": "card-hour"},
            "cardHours": "2.5", "cost": "20.00", "lostCardHours": "0", "currency": "CNY",
            "startedAt": "2026-11-03T08:00:00Z", "finishedAt": "2026-11-03T09:15:00Z", "month": "2026-11",
            "outcome": "Succeeded",
        },
    }


_DATASHEET = "https://www.nvidia.com/en-us/data-center/h100/"


def accelerator_model(model: str = "NVIDIA-H100-PCIe") -> dict[str, Any]:
    """An AcceleratorModel (named after its model, as the CRD requires) with every figure sourced."""
    return {
        "apiVersion": API_VERSION,
        "kind": "AcceleratorModel",
        "metadata": {"name": model.lower().replace("_", "-")},
        "spec": {
            "model": model,
            "vendor": "nvidia",
            "resource": "nvidia.com/gpu",
            "nodeLabels": [{"nvidia.com/gpu.product": model}],
            "memoryGiB": 80,
            "tflops": {"bf16": "756.5", "fp16": "756.5", "fp32": "51"},
            "interconnect": "NVLink bridge 600 GB/s",
            "boardPowerWatts": 350,
            "sources": {
                "memoryGiB": _DATASHEET,
                "tflops": {"bf16": _DATASHEET, "fp16": _DATASHEET, "fp32": _DATASHEET},
                "interconnect": _DATASHEET,
                "boardPowerWatts": _DATASHEET,
            },
        },
    }


def _set(obj: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``obj`` with the dotted ``path`` set to ``value`` (intermediate objects created)."""
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


def _del(obj: dict[str, Any], path: str) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    *parents, last = path.split(".")
    cursor: Any = out
    for key in parents:
        cursor = cursor[int(key)] if isinstance(cursor, list) else cursor[key]
    del cursor[last]
    return out


def _gpu_limit(obj: dict[str, Any], value: Any, where: str = "limits", list_name: str = "containers") -> dict[str, Any]:
    return _set(obj, f"spec.template.spec.{list_name}.0.resources.{where}", {"nvidia.com/gpu": value, "cpu": "4"})


_init = _set(job(), "spec.template.spec.initContainers", [{"name": "fetch", "image": "busybox"}])
_A100 = "NVIDIA-A100-SXM4-80GB"

# The workload policy: pod templates that escape their container (issue 10), and offers' registries.
_POD = "spec.template.spec"
_C0 = "spec.template.spec.containers[0]"
_I0 = "spec.template.spec.initContainers[0]"


def _sc(obj: dict[str, Any], key: str, value: Any, list_name: str = "containers") -> dict[str, Any]:
    """``obj`` with ``securityContext.<key>`` of the first container of ``list_name`` set to ``value``."""
    return _set(obj, f"{_POD}.{list_name}.0.securityContext.{key}", value)


WORKLOAD_ESCAPES: list[Bad] = [
    Bad("job-privileged", _sc(job(), "privileged", True), f"{_C0}.securityContext.privileged"),
    Bad(
        "job-privilege-escalation",
        _sc(job(), "allowPrivilegeEscalation", True),
        f"{_C0}.securityContext.allowPrivilegeEscalation",
    ),
    Bad("job-init-privileged", _sc(_init, "privileged", True, "initContainers"), f"{_I0}.securityContext.privileged"),
    Bad("job-host-network", _set(job(), f"{_POD}.hostNetwork", True), f"{_POD}.hostNetwork"),
    Bad("job-host-pid", _set(job(), f"{_POD}.hostPID", True), f"{_POD}.hostPID"),
    Bad("job-host-ipc", _set(job(), f"{_POD}.hostIPC", True), f"{_POD}.hostIPC"),
    Bad(
        "job-host-path",
        _set(job(), f"{_POD}.volumes", [{"name": "root", "hostPath": {"path": "/"}}]),
        f"{_POD}.volumes[0].hostPath",
    ),
    Bad(
        "job-host-port",
        _set(job(), f"{_POD}.containers.0.ports", [{"containerPort": 22}, {"containerPort": 80, "hostPort": 80}]),
        f"{_C0}.ports[1].hostPort",
    ),
    Bad(
        "job-capability-sys-admin",
        _sc(job(), "capabilities", {"add": ["SYS_ADMIN"], "drop": ["ALL"]}),
        f"{_C0}.securityContext.capabilities.add[0]",
    ),
    Bad(
        "job-init-capability-net-admin",
        _sc(_init, "capabilities", {"add": ["NET_BIND_SERVICE", "NET_ADMIN"]}, "initContainers"),
        f"{_I0}.securityContext.capabilities.add[1]",
    ),
    Bad("job-container-run-as-root", _sc(job(), "runAsUser", 0), f"{_C0}.securityContext.runAsUser"),
    Bad(
        "job-pod-run-as-root",
        _set(job(), f"{_POD}.securityContext", {"runAsUser": 0, "fsGroup": 0}),
        f"{_POD}.securityContext.runAsUser",
    ),
    Bad(
        "job-pod-run-as-non-root-false",
        _set(job(), f"{_POD}.securityContext", {"runAsNonRoot": False}),
        f"{_POD}.securityContext.runAsNonRoot",
    ),
    Bad("job-service-account-name", _set(job(), f"{_POD}.serviceAccountName", "default"), f"{_POD}.serviceAccountName"),
    Bad("job-service-account-deprecated", _set(job(), f"{_POD}.serviceAccount", "admin"), f"{_POD}.serviceAccount"),
    Bad(
        "job-automount-token",
        _set(job(), f"{_POD}.automountServiceAccountToken", True),
        f"{_POD}.automountServiceAccountToken",
    ),
    Bad(
        "job-projected-token",
        _set(
            job(),
            f"{_POD}.volumes",
            [{"name": "token", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}],
        ),
        f"{_POD}.volumes[0].projected.sources[0].serviceAccountToken",
    ),
    Bad("job-proc-mount-unmasked", _sc(job(), "procMount", "Unmasked"), f"{_C0}.securityContext.procMount"),
    Bad(
        "job-selinux-type",
        _set(job(), f"{_POD}.securityContext", {"seLinuxOptions": {"type": "spc_t"}}),
        f"{_POD}.securityContext.seLinuxOptions.type",
    ),
    Bad(
        "job-selinux-user",
        _sc(job(), "seLinuxOptions", {"user": "system_u", "level": "s0"}),
        f"{_C0}.securityContext.seLinuxOptions.user",
    ),
    Bad(
        "job-seccomp-unconfined",
        _sc(job(), "seccompProfile", {"type": "Unconfined"}),
        f"{_C0}.securityContext.seccompProfile.type",
    ),
    Bad(
        "job-apparmor-unconfined",
        _set(job(), f"{_POD}.securityContext", {"appArmorProfile": {"type": "Unconfined"}}),
        f"{_POD}.securityContext.appArmorProfile.type",
    ),
    Bad(
        "job-unsafe-sysctl",
        _set(job(), f"{_POD}.securityContext", {"sysctls": [{"name": "kernel.msgmax", "value": "65536"}]}),
        f"{_POD}.securityContext.sysctls[0].name",
    ),
    Bad(
        "job-host-process",
        _sc(job(), "windowsOptions", {"hostProcess": True}),
        f"{_C0}.securityContext.windowsOptions.hostProcess",
    ),
    Bad(
        "job-ephemeral-containers",
        _set(job(), f"{_POD}.ephemeralContainers", [{"name": "debug", "image": "busybox"}]),
        f"{_POD}.ephemeralContainers",
    ),
    Bad(
        "offer-registry-with-path",
        _set(offer(), "spec.allowedRegistries", ["registry.example.cn/ml"]),
        "spec.allowedRegistries[0]",
    ),
    Bad(
        "offer-registry-with-scheme",
        _set(offer(), "spec.allowedRegistries", ["https://registry.example.cn"]),
        "spec.allowedRegistries[0]",
    ),
    Bad(
        "offer-registry-without-dot",
        _set(offer(), "spec.allowedRegistries", ["docker.io", "registry"]),
        "spec.allowedRegistries[1]",
    ),
    Bad(
        "offer-registry-duplicate",
        _set(offer(), "spec.allowedRegistries", ["registry.example.cn", "registry.example.cn"]),
        "spec.allowedRegistries[1]",
    ),
]

BAD_MANIFESTS: list[Bad] = [
    # --- ComputeNode -----------------------------------------------------------------------
    Bad("node-missing-spec", _del(node(), "spec"), "spec: Required value"),
    Bad("node-missing-type", _del(node(), "spec.type"), "spec.type"),
    Bad("node-type-unknown", _set(node(), "spec.type", "provincial"), "spec.type"),
    Bad("node-region-unknown", _set(node(), "spec.region", "CN-XX"), "spec.region"),
    Bad("node-region-lowercase", _set(node(), "spec.region", "cn-gz"), "spec.region"),
    Bad("node-region-number", _set(node(), "spec.region", 52), "spec.region"),
    Bad("node-industry-on-regional", _set(node(), "spec.industry", "finance"), "spec.industry"),
    Bad("node-industry-missing", _del(industry_node(), "spec.industry"), "spec.industry"),
    Bad("node-industry-unknown", _set(industry_node(), "spec.industry", "mining"), "spec.industry"),
    Bad("node-parent-missing", _del(industry_node(), "spec.parentNode"), "spec.parentNode"),
    Bad("node-parent-on-regional", _set(node(), "spec.parentNode", "sh-regional"), "spec.parentNode"),
    Bad("node-parent-bad-name", _set(industry_node(), "spec.parentNode", "SH Regional"), "spec.parentNode"),
    Bad(
        "node-credit-code-short",
        _set(node(), "spec.operatingEntity.creditCode", GOOD_CREDIT_CODE[:17]),
        "spec.operatingEntity.creditCode",
    ),
    Bad(
        "node-credit-code-letter-i",
        _set(node(), "spec.operatingEntity.creditCode", "91520100MA6DKI7T4L"),
        "spec.operatingEntity.creditCode",
    ),
    Bad(
        "node-credit-code-lowercase",
        _set(node(), "spec.operatingEntity.creditCode", GOOD_CREDIT_CODE.lower()),
        "spec.operatingEntity.creditCode",
    ),
    # A wrong check character has the right shape: the API server admits it (CEL's cost
    # estimator will not take the GB 32100 check), the operator rejects it as NotEligible.
    Bad("node-missing-operating-entity", _del(node(), "spec.operatingEntity"), "spec.operatingEntity"),
    Bad("node-entity-empty-name", _set(node(), "spec.operatingEntity.name", ""), "spec.operatingEntity.name"),
    Bad(
        "node-licence-with-space",
        _set(node(), "spec.operatingEntity.telecomLicence", "B1 2023"),
        "spec.operatingEntity.telecomLicence",
    ),
    Bad(
        "node-capital-float",
        _set(node(), "spec.operatingEntity.registeredCapital", 5.0e8),
        "spec.operatingEntity.registeredCapital",
    ),
    Bad(
        "node-capital-zero",
        _set(node(), "spec.operatingEntity.registeredCapital", "0"),
        "spec.operatingEntity.registeredCapital",
    ),
    Bad(
        "node-capital-negative",
        _set(node(), "spec.operatingEntity.registeredCapital", "-100"),
        "spec.operatingEntity.registeredCapital",
    ),
    Bad("node-missing-connection", _del(node(), "spec.connection"), "spec.connection"),
    Bad(
        "node-secret-name-invalid",
        _set(node(), "spec.connection.secretRef.name", "Member_GZ"),
        "spec.connection.secretRef.name",
    ),
    Bad(
        "node-secret-missing-namespace",
        _del(node(), "spec.connection.secretRef.namespace"),
        "spec.connection.secretRef.namespace",
    ),
    Bad(
        "node-work-namespace-invalid",
        _set(node(), "spec.connection.namespace", "Interconnect Work"),
        "spec.connection.namespace",
    ),
    Bad("node-cordoned-string", _set(node(), "spec.cordoned", "yes"), "spec.cordoned"),
    Bad("node-pue-below-one", _set(node(), "spec.energy", {"pue": "0.9"}), "spec.energy.pue"),
    Bad("node-pue-number", _set(node(), "spec.energy", {"pue": 1.2}), "spec.energy.pue"),
    Bad(
        "node-green-share-over-one",
        _set(node(), "spec.energy", {"greenShares": [{"month": "2026-11", "fraction": "1.2", "source": "PPA"}]}),
        "spec.energy.greenShares[0].fraction",
    ),
    Bad(
        "node-green-share-without-source",
        _set(node(), "spec.energy", {"greenShares": [{"month": "2026-11", "fraction": "0.5"}]}),
        "spec.energy.greenShares[0].source",
    ),
    Bad(
        "node-green-share-month-twice",
        _set(node(), "spec.energy", {"greenShares": [{"month": "2026-11", "fraction": "0.5", "source": "a"},
                                                     {"month": "2026-11", "fraction": "0.6", "source": "b"}]}),
        "spec.energy.greenShares[1]",
    ),
    Bad("node-grid-region-unknown", _set(node(), "spec.energy", {"gridRegion": "CN-XX"}), "spec.energy.gridRegion"),
    # --- ComputeOffer ----------------------------------------------------------------------
    Bad("offer-missing-node-ref", _del(offer(), "spec.nodeRef"), "spec.nodeRef"),
    Bad("offer-price-float", _set(offer(), "spec.price.amount", 8.5), "spec.price.amount"),
    Bad("offer-price-negative", _set(offer(), "spec.price.amount", "-1"), "spec.price.amount"),
    Bad("offer-price-five-decimals", _set(offer(), "spec.price.amount", "8.12345"), "spec.price.amount"),
    Bad("offer-price-exponent", _set(offer(), "spec.price.amount", "1e3"), "spec.price.amount"),
    Bad("offer-price-leading-zero", _set(offer(), "spec.price.amount", "08.5"), "spec.price.amount"),
    Bad("offer-currency-lowercase", _set(offer(), "spec.price.currency", "cny"), "spec.price.currency"),
    Bad("offer-unit-unknown", _set(offer(), "spec.price.unit", "gpu-hour"), "spec.price.unit"),
    Bad(
        "offer-machine-hour-without-cards-per-machine",
        _del(machine_offer(), "spec.price.cardsPerMachine"),
        "spec.price.cardsPerMachine",
    ),
    Bad(
        "offer-card-hour-with-cards-per-machine",
        _set(offer(), "spec.price.cardsPerMachine", 8),
        "spec.price.cardsPerMachine",
    ),
    Bad("offer-cards-zero", _set(offer(), "spec.cards", 0), "spec.cards"),
    Bad("offer-cards-not-whole-machines", _set(machine_offer(), "spec.cards", 12), "spec.cards"),
    Bad(
        "offer-valid-until-before-from",
        _set(_set(offer(), "spec.validFrom", "2026-06-01T00:00:00Z"), "spec.validUntil", "2026-05-01T00:00:00Z"),
        "spec.validUntil",
    ),
    Bad(
        "offer-valid-until-equals-from",
        _set(_set(offer(), "spec.validFrom", "2026-06-01T00:00:00Z"), "spec.validUntil", "2026-06-01T00:00:00Z"),
        "spec.validUntil",
    ),
    Bad("offer-valid-from-not-a-time", _set(offer(), "spec.validFrom", "next monday"), "spec.validFrom"),
    Bad("offer-memory-zero", _set(offer(), "spec.gpuMemoryGiB", 0), "spec.gpuMemoryGiB"),
    Bad("offer-gpu-model-with-space", _set(offer(), "spec.gpuModel", "NVIDIA A100"), "spec.gpuModel"),
    Bad(
        "offer-match-label-not-string",
        _set(offer(), "spec.nodeSelector.matchLabels", {"gpus": 8}),
        "spec.nodeSelector.matchLabels",
    ),
    # --- ComputeJob ------------------------------------------------------------------------
    Bad("job-missing-gpus", _del(job(), "spec.gpus"), "spec.gpus"),
    Bad("job-gpu-count-zero", _set(job(), "spec.gpus.count", 0), "spec.gpus.count"),
    Bad("job-gpu-count-too-many", _set(job(), "spec.gpus.count", 65), "spec.gpus.count"),
    Bad("job-gpu-count-string", _set(job(), "spec.gpus.count", "2"), "spec.gpus.count"),
    Bad("job-gpu-model-duplicate", _set(job(), "spec.gpus.models", [_A100, _A100]), "spec.gpus.models[1]"),
    Bad(
        "job-gpu-models-too-many",
        _set(job(), "spec.gpus.models", [f"model-{i}" for i in range(17)]),
        "spec.gpus.models",
    ),
    Bad("job-min-memory-zero", _set(job(), "spec.gpus.minMemoryGiB", 0), "spec.gpus.minMemoryGiB"),
    Bad("job-replicas-zero", _set(job(), "spec.replicas", 0), "spec.replicas"),
    Bad("job-origin-unknown", _set(job(), "spec.origin", "CN-XX"), "spec.origin"),
    Bad("job-missing-origin", _del(job(), "spec.origin"), "spec.origin"),
    Bad("job-tier-unknown", _set(job(), "spec.latencyTier", "10ms"), "spec.latencyTier"),
    Bad("job-max-price-float", _set(job(), "spec.maxPrice.amount", 20.0), "spec.maxPrice.amount"),
    Bad("job-missing-max-price", _del(job(), "spec.maxPrice"), "spec.maxPrice"),
    Bad("job-max-price-missing-currency", _del(job(), "spec.maxPrice.currency"), "spec.maxPrice.currency"),
    Bad(
        "job-budget-currency-mismatch",
        _set(job(), "spec.budget", {"amount": "500", "currency": "USD"}),
        "spec.budget.currency",
    ),
    Bad("job-budget-zero", _set(job(), "spec.budget", {"amount": "0.0", "currency": "CNY"}), "spec.budget.amount"),
    Bad("job-expected-hours-zero", _set(job(), "spec.expectedHours", "0"), "spec.expectedHours"),
    Bad("job-expected-hours-float", _set(job(), "spec.expectedHours", 2.5), "spec.expectedHours"),
    Bad("job-min-green-share-over-one", _set(job(), "spec.placement", {"minGreenShare": "1.5"}),
        "spec.placement.minGreenShare"),
    Bad("job-prefer-unknown", _set(job(), "spec.placement", {"prefer": "cleanest"}), "spec.placement.prefer"),
    Bad("job-price-band-without-greener", _set(job(), "spec.placement", {"priceBandPercent": 5}),
        "spec.placement.priceBandPercent"),
    Bad("job-price-band-over-100", _set(job(), "spec.placement", {"prefer": "greener", "priceBandPercent": 150}),
        "spec.placement.priceBandPercent"),
    Bad(
        "job-region-allowed-and-denied",
        _set(job(), "spec.placement", {"allowedRegions": ["CN-SH", "CN-GZ"], "deniedRegions": ["CN-GZ"]}),
        "spec.placement.deniedRegions",
    ),
    Bad(
        "job-industry-allowed-and-denied",
        _set(job(), "spec.placement", {"allowedIndustries": ["finance"], "deniedIndustries": ["finance"]}),
        "spec.placement.deniedIndustries",
    ),
    Bad(
        "job-node-allowed-and-denied",
        _set(job(), "spec.placement", {"allowedNodes": ["sh-regional"], "deniedNodes": ["sh-regional"]}),
        "spec.placement.deniedNodes",
    ),
    Bad(
        "job-placement-region-unknown",
        _set(job(), "spec.placement", {"allowedRegions": ["CN-ZZ"]}),
        "spec.placement.allowedRegions[0]",
    ),
    Bad(
        "job-placement-region-duplicate",
        _set(job(), "spec.placement", {"deniedRegions": ["CN-HK", "CN-HK"]}),
        "spec.placement.deniedRegions[1]",
    ),
    Bad(
        "job-placement-industry-unknown",
        _set(job(), "spec.placement", {"deniedIndustries": ["mining"]}),
        "spec.placement.deniedIndustries[0]",
    ),
    Bad("job-priority-too-high", _set(job(), "spec.priority", 5000), "spec.priority"),
    Bad("job-gpu-limit-conflict", _gpu_limit(job(), 4), "spec.template.spec.containers"),
    Bad("job-gpu-request-conflict-string", _gpu_limit(job(), "1", where="requests"), "spec.template.spec.containers"),
    Bad(
        "job-init-container-gpu-conflict",
        _gpu_limit(_init, 8, list_name="initContainers"),
        "spec.template.spec.initContainers",
    ),
    Bad(
        "job-template-without-containers", _del(job(), "spec.template.spec.containers"), "spec.template.spec.containers"
    ),
    Bad(
        "job-template-empty-containers",
        _set(job(), "spec.template.spec.containers", []),
        "spec.template.spec.containers",
    ),
    Bad("job-missing-template", _del(job(), "spec.template"), "spec.template"),
    Bad(
        "job-container-without-name",
        _del(job(), "spec.template.spec.containers.0.name"),
        "spec.template.spec.containers[0].name",
    ),
    Bad("job-active-deadline-zero", _set(job(), "spec.activeDeadlineSeconds", 0), "spec.activeDeadlineSeconds"),
    Bad("job-backoff-negative", _set(job(), "spec.backoffLimit", -1), "spec.backoffLimit"),
    Bad(
        "job-replace-never-with-seconds",
        _set(job(), "spec.failurePolicy", {"rePlace": "Never", "rePlaceAfterSeconds": 60}),
        "spec.failurePolicy.rePlaceAfterSeconds",
    ),
    Bad(
        "job-replace-policy-unknown",
        _set(job(), "spec.failurePolicy", {"rePlace": "Always"}),
        "spec.failurePolicy.rePlace",
    ),
    # ComputeQuota
    Bad("quota-missing-namespace", _del(quota(), "spec.namespace"), "spec.namespace"),
    Bad("quota-name-not-namespace", _set(quota(), "spec.namespace", "another-tenant"), "spec.namespace"),
    Bad("quota-namespace-not-a-label", _set(quota(), "spec.namespace", "Team.A"), "spec.namespace"),
    Bad("quota-weight-zero", _set(quota(), "spec.weight", 0), "spec.weight"),
    Bad("quota-weight-too-high", _set(quota(), "spec.weight", 10001), "spec.weight"),
    Bad("quota-cards-negative", _set(quota(), "spec.limits.cards", -1), "spec.limits.cards"),
    Bad("quota-pending-negative", _set(quota(), "spec.limits.pendingJobs", -5), "spec.limits.pendingJobs"),
    Bad(
        "quota-model-over-total",
        _set(quota(), "spec.limits.cardsPerModel", [{"model": "NVIDIA-H800", "cards": 64}]),
        "spec.limits.cardsPerModel",
    ),
    Bad(
        "quota-model-duplicate",
        _set(
            quota(),
            "spec.limits.cardsPerModel",
            [{"model": "NVIDIA-H800", "cards": 8}, {"model": "NVIDIA-H800", "cards": 4}],
        ),
        "spec.limits.cardsPerModel[1]",
    ),
    Bad(
        "quota-model-missing-cards",
        _set(quota(), "spec.limits.cardsPerModel", [{"model": "NVIDIA-H800"}]),
        "spec.limits.cardsPerModel[0].cards",
    ),
    Bad(
        "quota-vendor-over-total",
        _set(quota(), "spec.limits.cardsPerVendor", [{"vendor": "huawei", "cards": 64}]),
        "spec.limits.cardsPerVendor",
    ),
    Bad(
        "quota-vendor-unknown",
        _set(quota(), "spec.limits.cardsPerVendor", [{"vendor": "intel", "cards": 4}]),
        "spec.limits.cardsPerVendor[0].vendor",
    ),
    Bad(
        "quota-vendor-duplicate",
        _set(quota(), "spec.limits.cardsPerVendor",
             [{"vendor": "huawei", "cards": 8}, {"vendor": "huawei", "cards": 4}]),
        "spec.limits.cardsPerVendor[1]",
    ),
    Bad(
        "quota-spend-float",
        _set(quota(), "spec.limits.monthlySpend", {"amount": 1000.0, "currency": "CNY"}),
        "spec.limits.monthlySpend.amount",
    ),
    Bad(
        "quota-spend-missing-currency",
        _set(quota(), "spec.limits.monthlySpend", {"amount": "1000"}),
        "spec.limits.monthlySpend.currency",
    ),
    Bad(
        "quota-spend-currency-lowercase",
        _set(quota(), "spec.limits.monthlySpend", {"amount": "1000", "currency": "cny"}),
        "spec.limits.monthlySpend.currency",
    ),
    # ComputeUsage
    Bad("usage-currency-not-the-prices", _set(usage(), "spec.currency", "USD"), "spec.currency"),
    Bad("usage-cost-float", _set(usage(), "spec.cost", 20.0), "spec.cost"),
    Bad("usage-month-not-a-month", _set(usage(), "spec.month", "2026-13"), "spec.month"),
    Bad("usage-missing-finished-at", _del(usage(), "spec.finishedAt"), "spec.finishedAt"),
    Bad("usage-attempt-zero", _set(usage(USAGE_UID, 0), "spec.attempt", 0), "spec.attempt"),
]
BAD_MANIFESTS += WORKLOAD_ESCAPES


# The accelerator catalogue (issue 18): a bad entry is refused at admission, naming the field.
_ACCEL = accelerator_model()
ACCELERATOR_MODELS: list[Bad] = [
    Bad("accel-vendor-unknown", _set(_ACCEL, "spec.vendor", "amd"), "spec.vendor"),
    Bad("accel-vendor-missing", _del(_ACCEL, "spec.vendor"), "spec.vendor"),
    Bad("accel-resource-without-domain", _set(_ACCEL, "spec.resource", "gpu"), "spec.resource"),
    Bad("accel-resource-upper-case-domain", _set(_ACCEL, "spec.resource", "NVIDIA.com/gpu"), "spec.resource"),
    Bad("accel-resource-kubernetes-io", _set(_ACCEL, "spec.resource", "kubernetes.io/gpu"), "spec.resource"),
    Bad("accel-resource-sub-kubernetes-io", _set(_ACCEL, "spec.resource", "gpu.kubernetes.io/card"),
        "spec.resource"),
    Bad("accel-no-node-labels", _set(_ACCEL, "spec.nodeLabels", []), "spec.nodeLabels"),
    Bad("accel-node-labels-missing", _del(_ACCEL, "spec.nodeLabels"), "spec.nodeLabels"),
    Bad("accel-empty-label-set", _set(_ACCEL, "spec.nodeLabels", [{}]), "spec.nodeLabels[0]"),
    Bad("accel-label-value-with-space", _set(_ACCEL, "spec.nodeLabels", [{"nvidia.com/gpu.product": "H100 PCIe"}]),
        "spec.nodeLabels[0]"),
    Bad("accel-memory-zero", _set(_ACCEL, "spec.memoryGiB", 0), "spec.memoryGiB"),
    Bad("accel-memory-string", _set(_ACCEL, "spec.memoryGiB", "80Gi"), "spec.memoryGiB"),
    Bad("accel-bf16-zero", _set(_ACCEL, "spec.tflops.bf16", "0"), "spec.tflops.bf16"),
    Bad("accel-fp16-float", _set(_ACCEL, "spec.tflops.fp16", 756.5), "spec.tflops.fp16"),
    Bad("accel-fp32-negative", _set(_ACCEL, "spec.tflops.fp32", "-51"), "spec.tflops.fp32"),
    Bad("accel-power-zero", _set(_ACCEL, "spec.boardPowerWatts", 0), "spec.boardPowerWatts"),
    Bad("accel-memory-without-source", _del(_ACCEL, "spec.sources.memoryGiB"), "spec.sources.memoryGiB"),
    Bad("accel-bf16-without-source", _del(_ACCEL, "spec.sources.tflops.bf16"), "spec.sources.tflops.bf16"),
    Bad("accel-figures-without-any-source", _del(_ACCEL, "spec.sources"), "spec.sources.memoryGiB"),
    Bad("accel-power-without-source", _del(_ACCEL, "spec.sources.boardPowerWatts"), "spec.sources.boardPowerWatts"),
    Bad("accel-interconnect-without-source", _del(_ACCEL, "spec.sources.interconnect"), "spec.sources.interconnect"),
    Bad("accel-source-not-a-url", _set(_ACCEL, "spec.sources.memoryGiB", "the datasheet"), "spec.sources.memoryGiB"),
    Bad("accel-name-not-the-model", _set(_ACCEL, "metadata.name", "h100"), "spec.model"),
]
BAD_MANIFESTS += ACCELERATOR_MODELS


def _vol(volume: dict[str, Any]) -> dict[str, Any]:
    return _set(job(), f"{_POD}.volumes", [{"name": "v", **volume}])


def _env(source: dict[str, Any], list_name: str = "containers", base: dict[str, Any] | None = None) -> dict[str, Any]:
    return _set(base or job(), f"{_POD}.{list_name}.0.env", [{"name": "X", "valueFrom": source}])


_HUB_TOKEN = {"name": "interconnect-hub-token", "key": "token"}
_GPU1 = {"limits": {"nvidia.com/gpu": 2}}
_SIDECAR = {"name": "side", "image": "busybox", "restartPolicy": "Always"}

# Tenant isolation on a member (issue 20): nothing that names an object of the member, chooses
# where or before whom the pod runs, or reaches past the pod. One field each, named.
ISOLATION_ESCAPES: list[Bad] = [
    Bad("job-volume-secret", _vol({"secret": {"secretName": "interconnect-hub-token"}}), f"{_POD}.volumes[0].secret"),
    Bad("job-volume-configmap", _vol({"configMap": {"name": "kube-root-ca.crt"}}), f"{_POD}.volumes[0].configMap"),
    Bad(
        "job-volume-pvc",
        _vol({"persistentVolumeClaim": {"claimName": "other-tenant-data"}}),
        f"{_POD}.volumes[0].persistentVolumeClaim",
    ),
    Bad("job-volume-csi", _vol({"csi": {"driver": "secrets-store.csi.k8s.io"}}), f"{_POD}.volumes[0].csi"),
    Bad("job-volume-image", _vol({"image": {"reference": "evil.example/tools:1"}}), f"{_POD}.volumes[0].image"),
    Bad("job-volume-nfs", _vol({"nfs": {"server": "10.0.0.2", "path": "/"}}), f"{_POD}.volumes[0].nfs"),
    Bad(
        "job-projected-secret",
        _vol({"projected": {"sources": [{"secret": {"name": "interconnect-hub-token"}}]}}),
        f"{_POD}.volumes[0].projected.sources[0].secret",
    ),
    Bad(
        "job-projected-configmap",
        _vol({"projected": {"sources": [{"configMap": {"name": "kube-root-ca.crt"}}]}}),
        f"{_POD}.volumes[0].projected.sources[0].configMap",
    ),
    Bad(
        "job-projected-trust-bundle",
        _vol({"projected": {"sources": [{"clusterTrustBundle": {"name": "x", "path": "ca"}}]}}),
        f"{_POD}.volumes[0].projected.sources[0].clusterTrustBundle",
    ),
    Bad("job-env-secret-key-ref", _env({"secretKeyRef": _HUB_TOKEN}), f"{_C0}.env[0].valueFrom.secretKeyRef"),
    Bad(
        "job-env-configmap-key-ref",
        _env({"configMapKeyRef": {"name": "cfg", "key": "k"}}),
        f"{_C0}.env[0].valueFrom.configMapKeyRef",
    ),
    Bad(
        "job-init-env-secret-key-ref",
        _env({"secretKeyRef": _HUB_TOKEN}, "initContainers", _init),
        f"{_I0}.env[0].valueFrom.secretKeyRef",
    ),
    Bad(
        "job-env-from-secret",
        _set(job(), f"{_POD}.containers.0.envFrom", [{"secretRef": {"name": "interconnect-hub-token"}}]),
        f"{_C0}.envFrom",
    ),
    Bad(
        "job-volume-devices",
        _set(job(), f"{_POD}.containers.0.volumeDevices", [{"name": "v", "devicePath": "/dev/xvda"}]),
        f"{_C0}.volumeDevices",
    ),
    Bad(
        "job-container-resource-claims",
        _set(job(), f"{_POD}.containers.0.resources", {"claims": [{"name": "gpu"}]}),
        f"{_C0}.resources.claims",
    ),
    Bad("job-node-name", _set(job(), f"{_POD}.nodeName", "gpu-node-1"), f"{_POD}.nodeName"),
    Bad(
        "job-priority-class",
        _set(job(), f"{_POD}.priorityClassName", "system-node-critical"),
        f"{_POD}.priorityClassName",
    ),
    Bad("job-pod-priority", _set(job(), f"{_POD}.priority", 2000001000), f"{_POD}.priority"),
    Bad("job-preemption-policy", _set(job(), f"{_POD}.preemptionPolicy", "PreemptLowerPriority"),
        f"{_POD}.preemptionPolicy"),
    Bad("job-runtime-class", _set(job(), f"{_POD}.runtimeClassName", "unconfined-runc"), f"{_POD}.runtimeClassName"),
    Bad("job-scheduler-name", _set(job(), f"{_POD}.schedulerName", "my-scheduler"), f"{_POD}.schedulerName"),
    Bad(
        "job-image-pull-secrets",
        _set(job(), f"{_POD}.imagePullSecrets", [{"name": "member-registry-creds"}]),
        f"{_POD}.imagePullSecrets",
    ),
    Bad(
        "job-topology-spread",
        _set(job(), f"{_POD}.topologySpreadConstraints", [{"maxSkew": 1, "topologyKey": "kubernetes.io/hostname",
                                                            "whenUnsatisfiable": "DoNotSchedule"}]),
        f"{_POD}.topologySpreadConstraints",
    ),
    Bad("job-scheduling-gates", _set(job(), f"{_POD}.schedulingGates", [{"name": "hold"}]), f"{_POD}.schedulingGates"),
    Bad(
        "job-pod-resource-claims",
        _set(job(), f"{_POD}.resourceClaims", [{"name": "gpu", "resourceClaimName": "other"}]),
        f"{_POD}.resourceClaims",
    ),
    Bad("job-overhead", _set(job(), f"{_POD}.overhead", {"cpu": "-1"}), f"{_POD}.overhead"),
    Bad("job-readiness-gates", _set(job(), f"{_POD}.readinessGates", [{"conditionType": "x"}]),
        f"{_POD}.readinessGates"),
    Bad("job-pod-level-resources", _set(job(), f"{_POD}.resources", {"limits": {"cpu": "6"}}), f"{_POD}.resources"),
    Bad(
        "job-pod-affinity",
        _set(job(), f"{_POD}.affinity", {"podAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}}),
        f"{_POD}.affinity.podAffinity",
    ),
    Bad(
        "job-pod-anti-affinity",
        _set(job(), f"{_POD}.affinity", {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": []}}),
        f"{_POD}.affinity.podAntiAffinity",
    ),
    Bad(
        "job-tolerate-everything",
        _set(job(), f"{_POD}.tolerations", [{"operator": "Exists"}]),
        f"{_POD}.tolerations[0].key",
    ),
    Bad("job-restart-always", _set(job(), f"{_POD}.restartPolicy", "Always"), f"{_POD}.restartPolicy"),
    Bad(
        "job-label-spoof-job-uid",
        _set(job(), "spec.template.metadata", {"labels": {"interconnect.dev/job-uid": "victim-uid"}}),
        "spec.template.metadata.labels",
    ),
    Bad(
        "job-label-spoof-attempt",
        _set(job(), "spec.template.metadata", {"labels": {"interconnect.dev/attempt": "1"}}),
        "spec.template.metadata.labels",
    ),
    Bad(
        "job-label-spoof-managed-by",
        _set(job(), "spec.template.metadata", {"labels": {"interconnect.dev/managed-by": "interconnect-hub"}}),
        "spec.template.metadata.labels",
    ),
    Bad(
        "job-label-spoof-controller-uid",
        _set(job(), "spec.template.metadata", {"labels": {"batch.kubernetes.io/controller-uid": "x"}}),
        "spec.template.metadata.labels",
    ),
    Bad(
        "job-annotation-spoof-job-name",
        _set(job(), "spec.template.metadata", {"annotations": {"interconnect.dev/job-name": "victim"}}),
        "spec.template.metadata.annotations",
    ),
    Bad(
        "job-sidecar-accelerator-beside-main",
        _set(
            _gpu_limit(job(), 2),
            f"{_POD}.initContainers",
            [{**_SIDECAR, "resources": _GPU1}],
        ),
        "spec.template.spec: Invalid value",
    ),
    Bad(
        "job-two-containers-accelerators",
        _set(
            _gpu_limit(job(), 2),
            f"{_POD}.containers",
            [{"name": "main", "image": "busybox", "resources": _GPU1},
             {"name": "second", "image": "busybox", "resources": _GPU1}],
        ),
        "spec.template.spec: Invalid value",
    ),
    Bad(
        "job-sidecar-accelerator-wrong-count",
        _set(job(), f"{_POD}.initContainers", [{**_SIDECAR, "resources": {"limits": {"nvidia.com/gpu": 8}}}]),
        "spec.initContainers",
    ),
]
BAD_MANIFESTS += ISOLATION_ESCAPES

#: Fields outside the allow-list: the API server refuses them under strict field validation
#: (kubectl's default) and prunes them otherwise; the operator's models never carry them.
UNKNOWN_FIELDS: list[Bad] = [
    Bad("job-unknown-pod-field", _set(job(), f"{_POD}.hostNetworkPlease", True),
        'unknown field "spec.template.spec.hostNetworkPlease"'),
    Bad("job-unknown-container-field", _set(job(), f"{_POD}.containers.0.devices", ["/dev/nvidia0"]),
        'unknown field "spec.template.spec.containers[0].devices"'),
]

IMMUTABLE_CHANGES: list[Change] = [
    Change("job-gpus-count", job("immutable-job-count"), {"spec": {"gpus": {"count": 4}}}, "spec.gpus"),
    Change(
        "job-gpus-models", job("immutable-job-models"), {"spec": {"gpus": {"models": ["NVIDIA-H800"]}}}, "spec.gpus"
    ),
    Change("job-origin", job("immutable-job-origin"), {"spec": {"origin": "CN-GZ"}}, "spec.origin"),
    Change(
        "node-type",
        node("immutable-node-type"),
        {"spec": {"type": "industry", "industry": "finance", "parentNode": "sh-regional"}},
        "spec.type",
    ),
    Change("node-region", node("immutable-node-region"), {"spec": {"region": "CN-SH"}}, "spec.region"),
    Change(
        "node-industry", industry_node("immutable-node-industry"), {"spec": {"industry": "healthcare"}}, "spec.industry"
    ),
    Change("offer-node-ref", offer("immutable-offer-node"), {"spec": {"nodeRef": "sh-regional"}}, "spec.nodeRef"),
    Change("quota-namespace", quota("immutable-quota"), {"spec": {"namespace": "another-tenant"}}, "spec.namespace"),
    Change("usage-cost", usage("c0ffee00-0000-4000-8000-00000000cafe"), {"spec": {"cost": "0.01"}}, "spec"),
    Change("usage-outcome", usage("c0ffee00-0000-4000-8000-00000000cafe", 2), {"spec": {"outcome": "Failed"}},
           "spec"),
    Change("accelerator-model", accelerator_model("NVIDIA-H100-PCIe-immutable"),
           {"spec": {"model": "NVIDIA-H100-PCIe-other"}}, "spec.model"),
]


#: What decides placement and price is fixed once the job has been placed (issue 21): each original
#: is created, its status gets ``attempts: 1`` (as the operator writes it), then the patch must fail.
PLACED_IMMUTABLE_CHANGES: list[Change] = [
    Change("job-replicas", _set(job("immutable-job-replicas"), "spec.replicas", 2), {"spec": {"replicas": 8}},
           "spec.replicas"),
    Change("job-replicas-added", job("immutable-job-replicas-added"), {"spec": {"replicas": 1}}, "spec.replicas"),
    Change(
        "job-template",
        job("immutable-job-template"),
        {"spec": {"template": {"spec": {"containers": [{"name": "main", "image": "other:2"}]}}}},
        "spec.template",
    ),
    Change("job-max-price", job("immutable-job-max-price"), {"spec": {"maxPrice": {"amount": "99"}}}, "spec.maxPrice"),
    Change("job-latency-tier", job("immutable-job-tier"), {"spec": {"latencyTier": "20ms"}}, "spec.latencyTier"),
    Change(
        "job-placement-added",
        job("immutable-job-placement"),
        {"spec": {"placement": {"allowedRegions": ["CN-GZ"]}}},
        "spec.placement",
    ),
    Change("job-backoff-limit", job("immutable-job-backoff"), {"spec": {"backoffLimit": 6}}, "spec.backoffLimit"),
]

STATUS_IMMUTABLE_CHANGES: list[StatusChange] = [
    StatusChange(
        "node-identity-code",
        node("immutable-node-identity"),
        {"status": {"identityCode": "CIRGZ000001E"}},
        {"status": {"identityCode": "CIRGZ000002F"}},
        "status.identityCode",
    ),
]

__all__ = [
    "ACCELERATOR_MODELS",
    "BAD_MANIFESTS",
    "IMMUTABLE_CHANGES",
    "ISOLATION_ESCAPES",
    "PLACED_IMMUTABLE_CHANGES",
    "STATUS_IMMUTABLE_CHANGES",
    "UNKNOWN_FIELDS",
    "WORKLOAD_ESCAPES",
    "Bad",
    "Change",
    "StatusChange",
    "accelerator_model",
    "industry_node",
    "job",
    "machine_offer",
    "node",
    "offer",
    "quota",
]
