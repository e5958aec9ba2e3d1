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
from interconnect.core.capacity import effective_request
from interconnect.core.vocabulary import GPU_PRODUCT_LABEL, GPU_RESOURCE
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
    template = job.spec.template.model_dump(mode="json", by_alias=True, exclude_none=True)
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


def _set_gpus(pod_spec: dict[str, Any], gpus: int) -> None:
    """Every replica holds ``gpus`` cards: where the template names them (already checked to make
    an effective request of exactly ``gpus``), else on the first container."""
    named = effective_request(pod_spec.get("containers") or [], pod_spec.get("initContainers") or [])
    if named == gpus:
        return
    resources = pod_spec["containers"][0].setdefault("resources", {})
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
