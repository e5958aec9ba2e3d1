"""The batch/v1 Job a ComputeJob becomes on its member: a pure function of job and placement.

The name is derived from the ComputeJob's UID and the attempt, so creating it again after a
retry or an operator restart finds the same Job (adopt, never duplicate).

The pod template is re-checked against the workload policy before anything is built (defence
in depth: the CRD and the models refuse an escaping template first), and every pod gets the
restricted Pod Security Standard's settings where the template leaves them out, so that it is
admitted in the member's dispatch namespace (which enforces `restricted`, or `baseline`).
"""

from __future__ import annotations

import copy
import re
from typing import Any

from interconnect.adapters.member import ATTEMPT, JOB_UID, MANAGED_BY, MANAGED_BY_VALUE, OFFER
from interconnect.api.v1alpha1 import ComputeJob
from interconnect.core.vocabulary import GPU_PRODUCT_LABEL, GPU_RESOURCE
from interconnect.core.workload_policy import check_template

ANNOTATION_PREFIX = "interconnect.dev/"


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
) -> dict[str, Any]:
    """The member Job for one attempt of ``job`` placed on ``offer``.

    ``trace`` holds annotations that lead back to the hub (node, identity code, price).
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
    template = job.spec.template.model_dump(mode="json", by_alias=True, exclude_none=True)
    check_template(template)
    pod_meta = copy.deepcopy(template.get("metadata") or {})
    pod_meta["labels"] = {**(pod_meta.get("labels") or {}), **labels}
    pod_meta["annotations"] = {**(pod_meta.get("annotations") or {}), **annotations}
    pod_spec = copy.deepcopy(template["spec"])
    pod_spec.setdefault("restartPolicy", "Never")
    restrict(pod_spec)
    _set_gpus(pod_spec, job.spec.gpus.count)
    pod_spec["nodeSelector"] = {**(pod_spec.get("nodeSelector") or {}), **node_selector,
                                GPU_PRODUCT_LABEL: gpu_model}
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


def _set_gpus(pod_spec: dict[str, Any], gpus: int) -> None:
    """Every replica holds ``gpus`` cards: on the container that asks for them, else the first."""
    containers = pod_spec["containers"]
    holder = next(
        (c for c in containers if GPU_RESOURCE in ((c.get("resources") or {}).get("limits") or {})),
        containers[0],
    )
    for container in containers:
        resources = container.setdefault("resources", {})
        for key in ("limits", "requests"):
            values = resources.get(key)
            if values and GPU_RESOURCE in values and container is not holder:
                del values[GPU_RESOURCE]
    resources = holder.setdefault("resources", {})
    resources.setdefault("limits", {})[GPU_RESOURCE] = str(gpus)
    if GPU_RESOURCE in (resources.get("requests") or {}):
        resources["requests"][GPU_RESOURCE] = str(gpus)


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
