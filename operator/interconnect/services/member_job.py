"""The batch/v1 Job a ComputeJob becomes on its member: a pure function of job and placement.

The name is derived from the ComputeJob's UID and the attempt, so creating it again after a
retry or an operator restart finds the same Job (adopt, never duplicate).

The pod template is re-checked against the workload policy before anything is built (defence
in depth: the CRD and the models refuse an escaping template first); the pod is then built from
an allow-list of fields, never copied; and every pod gets the restricted Pod Security Standard's
settings where the template leaves them out, so that it is admitted in the member's dispatch
namespace (which enforces `restricted`, or `baseline`). The Service environment variables of
the member are switched off (``enableServiceLinks: false``): they list the member's Services.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable, Mapping
from typing import Any

from interconnect.adapters.member import ATTEMPT, JOB_UID, MANAGED_BY, MANAGED_BY_VALUE, OFFER
from interconnect.api.v1alpha1 import ComputeJob
from interconnect.core.accelerators import accelerator_resources, node_selector_of, resource_of
from interconnect.core.accelerators import by_name as accelerator_model
from interconnect.core.capacity import effective_request
from interconnect.core.vocabulary import GPU_RESOURCE
from interconnect.core.workload_policy import (
    CONTAINER_FIELDS,
    POD_SPEC_FIELDS,
    Toleration,
    WorkloadPolicyError,
    accelerator_violations,
    check_template,
)

ANNOTATION_PREFIX = "interconnect.dev/"
DEFAULT_TERMINATION_GRACE_SECONDS = 30
"""Kubernetes' default terminationGracePeriodSeconds."""


def member_job_name(job_uid: str, attempt: int) -> str:
    return f"ic-{job_uid}-{attempt}"


def label_value(text: str) -> str:
    """A label-safe rendering (63 characters, alphanumeric at both ends)."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]", "-", text)[:63]
    return cleaned.strip("-_.") or "x"


def build_member_job(
    job: ComputeJob,
    *,
    attempt: int,
    namespace: str,
    offer: str,
    gpu_model: str,
    node_selector: dict[str, str],
    trace: dict[str, str],
    allowed_tolerations: Iterable[Mapping[str, Any]] = (),
    max_termination_grace: int | None = None,
) -> dict[str, Any]:
    """The member Job for one attempt of ``job`` placed on ``offer``.

    The pod is built from an allow-list (`POD_SPEC_FIELDS`, `CONTAINER_FIELDS`), never copied:
    a field the models do not know never reaches a member. ``trace`` holds annotations that lead
    back to the hub (node, identity code, price); ``allowed_tolerations`` are the offer's: any
    other toleration is dropped (placement already kept the job off offers that lack one).
    Raises `WorkloadPolicyError` (naming each field) if the template breaks the workload policy.
    """
    uid = job.metadata.uid or ""
    labels = {
        MANAGED_BY: MANAGED_BY_VALUE,
        JOB_UID: uid,
        ATTEMPT: str(attempt),
        OFFER: label_value(offer),
    }
    annotations = {
        f"{ANNOTATION_PREFIX}job-namespace": job.metadata.namespace or "",
        f"{ANNOTATION_PREFIX}job-name": job.metadata.name,
        f"{ANNOTATION_PREFIX}offer": offer,
        **{f"{ANNOTATION_PREFIX}{k}": v for k, v in trace.items()},
    }
    template = job.spec.template.as_api()
    check_template(template)
    violations = accelerator_violations(template["spec"], job.spec.gpus.count)
    if violations:
        raise WorkloadPolicyError(violations)
    pod_meta = {
        key: dict(value) for key, value in (template.get("metadata") or {}).items() if key in ("labels", "annotations")
    }
    # The operator's own keys last: nothing the tenant wrote can stand for them.
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **labels}
    pod_meta["annotations"] = {**(pod_meta.get("annotations") or {}), **annotations}
    pod_spec = allowed_pod_spec(template["spec"])
    pod_spec.setdefault("restartPolicy", "Never")
    pod_spec["enableServiceLinks"] = False
    if max_termination_grace is not None:
        grace = pod_spec.get("terminationGracePeriodSeconds", DEFAULT_TERMINATION_GRACE_SECONDS)
        pod_spec["terminationGracePeriodSeconds"] = min(int(grace), max_termination_grace)
    restrict(pod_spec)
    _keep_tolerations(pod_spec, allowed_tolerations)
    resource = resource_of(gpu_model)
    _set_gpus(pod_spec, job.spec.gpus.count, resource)
    _tell_the_model(pod_spec, pod_meta, gpu_model, resource)
    pod_spec["nodeSelector"] = {**(pod_spec.get("nodeSelector") or {}), **node_selector,
                                **node_selector_of(gpu_model)}
    spec: dict[str, Any] = {
        "completions": job.spec.replicas,
        "parallelism": job.spec.replicas,
        "backoffLimit": job.spec.backoff_limit if job.spec.backoff_limit is not None else 0,
        "template": {"metadata": pod_meta, "spec": pod_spec},
    }
    if job.spec.active_deadline_seconds is not None:
        spec["activeDeadlineSeconds"] = job.spec.active_deadline_seconds
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": member_job_name(uid, attempt),
            "namespace": namespace,
            "labels": labels,
            "annotations": annotations,
        },
        "spec": spec,
    }


def allowed_pod_spec(template_spec: Mapping[str, Any]) -> dict[str, Any]:
    """A deep copy of the allow-listed fields of a pod spec and of each of its containers."""
    out = {key: copy.deepcopy(value) for key, value in template_spec.items() if key in POD_SPEC_FIELDS}
    for list_name in ("containers", "initContainers"):
        if list_name in out:
            out[list_name] = [{k: v for k, v in container.items() if k in CONTAINER_FIELDS}
                              for container in out[list_name]]
    return out


def _keep_tolerations(pod_spec: dict[str, Any], allowed: Iterable[Mapping[str, Any]]) -> None:
    permitted = {Toleration.of(t) for t in allowed}
    kept = [t for t in pod_spec.get("tolerations") or [] if Toleration.of(t) in permitted]
    if kept:
        pod_spec["tolerations"] = kept
    else:
        pod_spec.pop("tolerations", None)


def _set_gpus(pod_spec: dict[str, Any], gpus: int, resource: str = GPU_RESOURCE) -> None:
    """Every replica holds ``gpus`` cards of ``resource`` (the placed model's device-plugin
    resource): where the template names cards (as ``nvidia.com/gpu``, already checked to make an
    effective request of exactly ``gpus``), renamed to ``resource``, else on the first container.
    Any other accelerator resource the template names is dropped: the offer decides the card."""
    containers = [*(pod_spec.get("initContainers") or []), *(pod_spec.get("containers") or [])]
    named = effective_request(pod_spec.get("containers") or [], pod_spec.get("initContainers") or [])
    for container in containers:
        for key in ("limits", "requests"):
            values = (container.get("resources") or {}).get(key)
            if not values:
                continue
            for other in accelerator_resources():
                if other != GPU_RESOURCE:
                    values.pop(other, None)
            if GPU_RESOURCE in values and resource != GPU_RESOURCE:
                values[resource] = values.pop(GPU_RESOURCE)
    if named == gpus:
        return
    resources = pod_spec["containers"][0].setdefault("resources", {})
    resources.setdefault("limits", {})[resource] = str(gpus)
    if resource in (resources.get("requests") or {}):
        resources["requests"][resource] = str(gpus)


MODEL_ENV = "INTERCONNECT_ACCELERATOR_MODEL"
VENDOR_ENV = "INTERCONNECT_ACCELERATOR_VENDOR"
RESOURCE_ENV = "INTERCONNECT_ACCELERATOR_RESOURCE"
MODEL_LABEL = "interconnect.dev/accelerator-model"
VENDOR_LABEL = "interconnect.dev/accelerator-vendor"


def _tell_the_model(pod_spec: dict[str, Any], pod_meta: dict[str, Any], gpu_model: str, resource: str) -> None:
    """Which card the pod got, so that one image can pick its runtime (CUDA, CANN, Neuware,
    DTK): in every container's environment and in the pod's labels. The operator's values win
    over the template's."""
    model = accelerator_model(gpu_model)
    vendor = model.vendor.value if model is not None else "nvidia"
    env = {MODEL_ENV: gpu_model, VENDOR_ENV: vendor, RESOURCE_ENV: resource}
    for list_name in ("initContainers", "containers"):
        for container in pod_spec.get(list_name) or []:
            kept = [e for e in container.get("env") or [] if e.get("name") not in env]
            container["env"] = [*kept, *({"name": k, "value": v} for k, v in env.items())]
    pod_meta["labels"] = {**pod_meta.get("labels", {}), MODEL_LABEL: label_value(gpu_model), VENDOR_LABEL: vendor}


#: Capabilities every container drops (the restricted profile requires ALL).
DROP_ALL = "ALL"
RUNTIME_DEFAULT = {"type": "RuntimeDefault"}


def restrict(pod_spec: dict[str, Any]) -> None:
    """Fill in the restricted Pod Security Standard's settings the pod spec leaves out (in place).

    The pod never mounts a service-account token of the member. Each container and init container
    runs as non-root, without privilege escalation, with ALL capabilities dropped (NET_BIND_SERVICE
    may still be added back) and, unless the pod or the container names a profile, the
    RuntimeDefault seccomp profile. What the template says explicitly is kept: the workload policy
    has already refused whatever would break the profile.
    """
    pod_spec["automountServiceAccountToken"] = False
    pod_seccomp = (pod_spec.get("securityContext") or {}).get("seccompProfile")
    for list_name in ("initContainers", "containers"):
        for container in pod_spec.get(list_name) or []:
            context = container.get("securityContext") or {}
            container["securityContext"] = context
            context.setdefault("runAsNonRoot", True)
            context.setdefault("allowPrivilegeEscalation", False)
            capabilities = context.get("capabilities") or {}
            context["capabilities"] = capabilities
            drop = list(capabilities.get("drop") or [])
            if DROP_ALL not in drop:
                drop.append(DROP_ALL)
            capabilities["drop"] = drop
            if pod_seccomp is None and "seccompProfile" not in context:
                context["seccompProfile"] = dict(RUNTIME_DEFAULT)
