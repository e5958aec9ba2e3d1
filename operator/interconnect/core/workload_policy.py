"""What a ComputeJob's pod template may ask of a member: the workload policy (pure, no I/O).

A tenant's pod runs on someone else's cluster, so the template may not reach out of its
container: no privileged mode, no host namespaces, no host paths or ports, no capabilities
beyond the Pod Security Standards' `restricted` set, no root, no service-account token of the
member. The rules follow the `restricted` profile of Pod Security Admission (a superset of
`baseline`), which the member chart enforces on the dispatch namespace as well:

 - ``privileged``, ``allowPrivilegeEscalation``, ``windowsOptions.hostProcess``: never true;
 - ``hostNetwork``, ``hostPID``, ``hostIPC``: never true (``hostUsers: false`` is welcome);
 - ``hostPath`` volumes, and volume types outside the restricted list: refused;
 - ``ports[].hostPort``: unset or 0;
 - ``capabilities.add``: NET_BIND_SERVICE only;
 - ``runAsUser: 0`` and ``runAsNonRoot: false``, at pod or container level: refused;
 - ``procMount``: Default only; ``seLinuxOptions``: the container types, no user or role;
 - ``seccompProfile``/``appArmorProfile`` type Unconfined (and the AppArmor annotation): refused;
 - ``securityContext.sysctls``: the safe set only;
 - ``serviceAccountName``/``serviceAccount``, ``automountServiceAccountToken: true`` and projected
   ``serviceAccountToken`` sources: refused (the operator sets automountServiceAccountToken: false);
 - ``ephemeralContainers``: refused.

Containers and init containers are checked alike. Every violation names the exact field
(``spec.template.spec.containers[0].securityContext.privileged``) and the rule it breaks; the
messages are the ones the CRD's CEL rules give, so the API server and the operator say the same.

Images: `image_registry` reads the registry of an image reference the way Docker does, and
`disallowed_images` lists the images of a template outside an offer's allowed registries.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from interconnect.core.capacity import is_sidecar
from interconnect.core.vocabulary import GPU_RESOURCE

#: Capabilities a container may add (Pod Security Standards, restricted).
ALLOWED_CAPABILITIES: frozenset[str] = frozenset({"NET_BIND_SERVICE"})
#: Sysctls a pod may set (Pod Security Standards, baseline: the namespaced, safe ones).
SAFE_SYSCTLS: tuple[str, ...] = (
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
)
#: SELinux types a pod or container may ask for (Pod Security Standards, baseline).
ALLOWED_SELINUX_TYPES: tuple[str, ...] = (
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
)
#: Volume types a pod may use: the restricted profile's list less every type that names an object
#: of the member (secret, configMap, persistentVolumeClaim) or its storage drivers (csi).
ALLOWED_VOLUME_TYPES: frozenset[str] = frozenset({"downwardAPI", "emptyDir", "ephemeral", "projected"})
#: Sources a projected volume may combine: the pod's own metadata only.
ALLOWED_PROJECTION_SOURCES: frozenset[str] = frozenset({"downwardAPI"})
#: The pod spec fields a member Job is built from (the allow-list; anything else never reaches a
#: member). Each is either harmless or checked below.
POD_SPEC_FIELDS: frozenset[str] = frozenset({
    "containers", "initContainers", "volumes", "securityContext", "restartPolicy",
    "terminationGracePeriodSeconds", "activeDeadlineSeconds", "dnsPolicy", "dnsConfig", "hostname",
    "subdomain", "setHostnameAsFQDN", "shareProcessNamespace", "nodeSelector", "affinity", "tolerations",
    "hostAliases", "hostUsers", "os", "enableServiceLinks", "automountServiceAccountToken",
})
#: The container fields a member Job is built from.
CONTAINER_FIELDS: frozenset[str] = frozenset({
    "name", "image", "command", "args", "workingDir", "ports", "env", "resources", "volumeMounts",
    "livenessProbe", "readinessProbe", "startupProbe", "lifecycle", "terminationMessagePath",
    "terminationMessagePolicy", "imagePullPolicy", "securityContext", "stdin", "stdinOnce", "tty",
    "restartPolicy", "resizePolicy",
})
#: Label and annotation prefixes a tenant may not write: the operator recognises its own Jobs and
#: pods by them (a pod carrying another job's uid would be metered to that job), and the Job
#: controller matches its pods by its own.
RESERVED_KEY_PREFIXES: tuple[str, ...] = ("interconnect.dev/", "batch.kubernetes.io/")
RESERVED_KEYS: frozenset[str] = frozenset({"controller-uid", "job-name"})
#: Restart policies a Job's pods may have (batch/v1 refuses Always).
JOB_RESTART_POLICIES: tuple[str, ...] = ("Never", "OnFailure")
#: The profile types that switch confinement off (seccomp and AppArmor).
UNCONFINED = "Unconfined"
APPARMOR_ANNOTATION_PREFIX = "container.apparmor.security.beta.kubernetes.io/"
#: The container lists of a pod spec, in the order they are checked.
CONTAINER_LISTS: tuple[str, ...] = ("containers", "initContainers", "ephemeralContainers")

DOCKER_HUB = "docker.io"


class Rule:
    """The rules' messages: the CRD's CEL rules and the operator's checks share them."""

    PRIVILEGED = "privileged containers are not allowed"
    PRIVILEGE_ESCALATION = "allowPrivilegeEscalation must be false or unset"
    HOST_PROCESS = "Windows host processes are not allowed"
    HOST_NETWORK = "the host's network namespace is not allowed (hostNetwork must be false or unset)"
    HOST_PID = "the host's PID namespace is not allowed (hostPID must be false or unset)"
    HOST_IPC = "the host's IPC namespace is not allowed (hostIPC must be false or unset)"
    HOST_PATH = "hostPath volumes are not allowed"
    HOST_PORT = "hostPort is not allowed (must be 0 or unset)"
    CAPABILITY = "only NET_BIND_SERVICE may be added to capabilities"
    RUN_AS_ROOT = "running as root (runAsUser 0) is not allowed"
    RUN_AS_NON_ROOT = "runAsNonRoot must be true or unset"
    PROC_MOUNT = "procMount must be Default or unset"
    SELINUX_TYPE = (
        "seLinuxOptions.type must be one of container_t, container_init_t, container_kvm_t, container_engine_t"
    )
    SELINUX_USER = "seLinuxOptions.user may not be set"
    SELINUX_ROLE = "seLinuxOptions.role may not be set"
    SECCOMP = "seccompProfile type Unconfined is not allowed"
    APPARMOR = "appArmorProfile type Unconfined is not allowed"
    SYSCTL = "only safe sysctls are allowed: " + ", ".join(SAFE_SYSCTLS)
    SERVICE_ACCOUNT = "pods run without a service account of the member: serviceAccountName may not be set"
    SERVICE_ACCOUNT_DEPRECATED = "pods run without a service account of the member: serviceAccount may not be set"
    AUTOMOUNT_TOKEN = "automountServiceAccountToken must be false or unset (the operator sets it to false)"
    TOKEN_PROJECTION = "projected serviceAccountToken volumes are not allowed"
    EPHEMERAL_CONTAINERS = "ephemeralContainers are not allowed"
    VOLUME_TYPE = "volume type is not allowed; allowed: " + ", ".join(sorted(ALLOWED_VOLUME_TYPES))
    PROJECTION_SOURCE = "projected volumes may only project downwardAPI (no secret, configMap or token of the member)"
    NODE_NAME = "nodeName may not be set: the member's scheduler places the pod"
    PRIORITY_CLASS = "priorityClassName may not be set: priority is granted by the hub (ComputeQuota spec.maxPriority)"
    PRIORITY = "priority may not be set: priority is granted by the hub (ComputeQuota spec.maxPriority)"
    PREEMPTION_POLICY = "preemptionPolicy may not be set"
    RUNTIME_CLASS = "runtimeClassName may not be set: the member chooses the runtime"
    SCHEDULER_NAME = "schedulerName may not be set: the member's default scheduler places the pod"
    IMAGE_PULL_SECRETS = "imagePullSecrets may not be set: they name the member's Secrets (an offer may provide one)"
    POD_AFFINITY = "podAffinity may not be set: pods may not seek other tenants' pods"
    POD_ANTI_AFFINITY = "podAntiAffinity may not be set: pods may not probe other tenants' pods"
    TOPOLOGY_SPREAD = "topologySpreadConstraints may not be set: their selectors count other tenants' pods"
    SCHEDULING_GATES = "schedulingGates may not be set"
    RESOURCE_CLAIMS = "resourceClaims may not be set: they name the member's objects"
    OVERHEAD = "overhead may not be set: it belongs to the member's RuntimeClass"
    READINESS_GATES = "readinessGates may not be set"
    POD_RESOURCES = "pod-level resources may not be set: containers carry the requests"
    ENV_FROM = "envFrom may not be set: it reads the member's Secrets and ConfigMaps"
    SECRET_KEY_REF = "secretKeyRef may not be used: the member's Secrets are not the tenant's"
    CONFIG_MAP_KEY_REF = "configMapKeyRef may not be used: the member's ConfigMaps are not the tenant's"
    FILE_KEY_REF = "fileKeyRef may not be used"
    VOLUME_DEVICES = "volumeDevices may not be set: no block devices of the member"
    CONTAINER_CLAIMS = "resources.claims may not be set: they name the member's objects"
    RESERVED_LABEL = (
        "labels under interconnect.dev/ and batch.kubernetes.io/ (and controller-uid, job-name) are the operator's"
    )
    RESERVED_ANNOTATION = "annotations under interconnect.dev/ and batch.kubernetes.io/ are the operator's"
    RESTART_POLICY = "restartPolicy must be Never or OnFailure (a Job's pods may not restart Always)"
    POD_FIELD = "this pod field is not dispatched to members; allowed: " + ", ".join(sorted(POD_SPEC_FIELDS))
    CONTAINER_FIELD = "this container field is not dispatched to members; allowed: " + ", ".join(
        sorted(CONTAINER_FIELDS)
    )
    ACCELERATOR_HOLDERS = (
        "at most one of the containers and sidecars (initContainers with restartPolicy Always) may ask for "
        "accelerators: the pod's effective request must equal gpus.count"
    )


@dataclass(frozen=True, slots=True)
class Violation:
    """One rule broken, at one field."""

    field: str
    """The field's full path, e.g. spec.template.spec.containers[0].securityContext.privileged."""
    rule: str
    """What the rule requires, e.g. "privileged containers are not allowed"."""

    def __str__(self) -> str:
        return f"{self.field}: {self.rule}"


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _items(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _security_context(context: Mapping[str, Any], at: str, *, pod: bool) -> Iterator[Violation]:
    """The checks common to a pod's and a container's securityContext (and their own)."""
    if not pod:
        if context.get("privileged") is True:
            yield Violation(f"{at}.privileged", Rule.PRIVILEGED)
        if context.get("allowPrivilegeEscalation") is True:
            yield Violation(f"{at}.allowPrivilegeEscalation", Rule.PRIVILEGE_ESCALATION)
        for i, capability in enumerate(_items(_mapping(context.get("capabilities")).get("add"))):
            if capability not in ALLOWED_CAPABILITIES:
                yield Violation(f"{at}.capabilities.add[{i}]", Rule.CAPABILITY)
        proc_mount = context.get("procMount")
        if proc_mount is not None and proc_mount != "Default":
            yield Violation(f"{at}.procMount", Rule.PROC_MOUNT)
    run_as_user = context.get("runAsUser")
    if run_as_user is not None and not isinstance(run_as_user, bool) and run_as_user == 0:
        yield Violation(f"{at}.runAsUser", Rule.RUN_AS_ROOT)
    if context.get("runAsNonRoot") is False:
        yield Violation(f"{at}.runAsNonRoot", Rule.RUN_AS_NON_ROOT)
    selinux = _mapping(context.get("seLinuxOptions"))
    if selinux.get("type") is not None and selinux.get("type") not in ALLOWED_SELINUX_TYPES:
        yield Violation(f"{at}.seLinuxOptions.type", Rule.SELINUX_TYPE)
    if selinux.get("user"):
        yield Violation(f"{at}.seLinuxOptions.user", Rule.SELINUX_USER)
    if selinux.get("role"):
        yield Violation(f"{at}.seLinuxOptions.role", Rule.SELINUX_ROLE)
    if _mapping(context.get("seccompProfile")).get("type") == UNCONFINED:
        yield Violation(f"{at}.seccompProfile.type", Rule.SECCOMP)
    if _mapping(context.get("appArmorProfile")).get("type") == UNCONFINED:
        yield Violation(f"{at}.appArmorProfile.type", Rule.APPARMOR)
    if _mapping(context.get("windowsOptions")).get("hostProcess") is True:
        yield Violation(f"{at}.windowsOptions.hostProcess", Rule.HOST_PROCESS)
    if pod:
        for i, sysctl in enumerate(_items(context.get("sysctls"))):
            if _mapping(sysctl).get("name") not in SAFE_SYSCTLS:
                yield Violation(f"{at}.sysctls[{i}].name", Rule.SYSCTL)


def _container(container: Mapping[str, Any], at: str) -> Iterator[Violation]:
    yield from _security_context(_mapping(container.get("securityContext")), f"{at}.securityContext", pod=False)
    for i, port in enumerate(_items(container.get("ports"))):
        host_port = _mapping(port).get("hostPort")
        if host_port not in (None, 0):
            yield Violation(f"{at}.ports[{i}].hostPort", Rule.HOST_PORT)
    yield from _env(container, at)
    if container.get("volumeDevices"):
        yield Violation(f"{at}.volumeDevices", Rule.VOLUME_DEVICES)
    if _mapping(container.get("resources")).get("claims"):
        yield Violation(f"{at}.resources.claims", Rule.CONTAINER_CLAIMS)
    for key in sorted(container):
        if key not in CONTAINER_FIELDS and key not in _CONTAINER_FIELDS_CHECKED:
            yield Violation(f"{at}.{key}", Rule.CONTAINER_FIELD)


#: Pod fields refused with a rule of their own (checked before the allow-list; the CRD's CEL rules
#: are made from the same list).
FORBIDDEN_POD_FIELDS: tuple[tuple[str, str], ...] = (
    ("nodeName", Rule.NODE_NAME),
    ("priorityClassName", Rule.PRIORITY_CLASS),
    ("priority", Rule.PRIORITY),
    ("preemptionPolicy", Rule.PREEMPTION_POLICY),
    ("runtimeClassName", Rule.RUNTIME_CLASS),
    ("schedulerName", Rule.SCHEDULER_NAME),
    ("imagePullSecrets", Rule.IMAGE_PULL_SECRETS),
    ("topologySpreadConstraints", Rule.TOPOLOGY_SPREAD),
    ("schedulingGates", Rule.SCHEDULING_GATES),
    ("resourceClaims", Rule.RESOURCE_CLAIMS),
    ("overhead", Rule.OVERHEAD),
    ("readinessGates", Rule.READINESS_GATES),
    ("resources", Rule.POD_RESOURCES),
)
_POD_FIELDS_CHECKED = frozenset(
    {"hostNetwork", "hostPID", "hostIPC", "serviceAccountName", "serviceAccount", "ephemeralContainers"}
    | {key for key, _ in FORBIDDEN_POD_FIELDS}
)
_CONTAINER_FIELDS_CHECKED = frozenset({"envFrom", "volumeDevices"})


def _volume(volume: Mapping[str, Any], at: str) -> Iterator[Violation]:
    if "hostPath" in volume:
        yield Violation(f"{at}.hostPath", Rule.HOST_PATH)
    for key in sorted(volume):
        if key not in ("name", "hostPath") and key not in ALLOWED_VOLUME_TYPES:
            yield Violation(f"{at}.{key}", Rule.VOLUME_TYPE)
    for i, source in enumerate(_items(_mapping(volume.get("projected")).get("sources"))):
        for kind in sorted(_mapping(source)):
            if kind == "serviceAccountToken":
                yield Violation(f"{at}.projected.sources[{i}].serviceAccountToken", Rule.TOKEN_PROJECTION)
            elif kind not in ALLOWED_PROJECTION_SOURCES:
                yield Violation(f"{at}.projected.sources[{i}].{kind}", Rule.PROJECTION_SOURCE)


def _env(container: Mapping[str, Any], at: str) -> Iterator[Violation]:
    if container.get("envFrom"):
        yield Violation(f"{at}.envFrom", Rule.ENV_FROM)
    for i, variable in enumerate(_items(container.get("env"))):
        source = _mapping(_mapping(variable).get("valueFrom"))
        for key, rule in (("secretKeyRef", Rule.SECRET_KEY_REF), ("configMapKeyRef", Rule.CONFIG_MAP_KEY_REF),
                          ("fileKeyRef", Rule.FILE_KEY_REF)):
            if key in source:
                yield Violation(f"{at}.env[{i}].valueFrom.{key}", rule)


def _reserved_key(key: str) -> bool:
    return key in RESERVED_KEYS or key.startswith(RESERVED_KEY_PREFIXES)


def pod_spec_violations(spec: Mapping[str, Any], at: str = "spec.template.spec") -> list[Violation]:
    """Every rule a pod spec (camelCase, as in the API) breaks; empty when it may be dispatched."""
    out: list[Violation] = []
    for key, message in (("hostNetwork", Rule.HOST_NETWORK), ("hostPID", Rule.HOST_PID), ("hostIPC", Rule.HOST_IPC)):
        if spec.get(key) is True:
            out.append(Violation(f"{at}.{key}", message))
    if spec.get("serviceAccountName"):
        out.append(Violation(f"{at}.serviceAccountName", Rule.SERVICE_ACCOUNT))
    if spec.get("serviceAccount"):
        out.append(Violation(f"{at}.serviceAccount", Rule.SERVICE_ACCOUNT_DEPRECATED))
    if spec.get("automountServiceAccountToken") is True:
        out.append(Violation(f"{at}.automountServiceAccountToken", Rule.AUTOMOUNT_TOKEN))
    if _items(spec.get("ephemeralContainers")):
        out.append(Violation(f"{at}.ephemeralContainers", Rule.EPHEMERAL_CONTAINERS))
    for key, message in FORBIDDEN_POD_FIELDS:
        if spec.get(key) not in (None, "", [], {}):
            out.append(Violation(f"{at}.{key}", message))
    affinity = _mapping(spec.get("affinity"))
    for key, message in (("podAffinity", Rule.POD_AFFINITY), ("podAntiAffinity", Rule.POD_ANTI_AFFINITY)):
        if affinity.get(key):
            out.append(Violation(f"{at}.affinity.{key}", message))
    restart = spec.get("restartPolicy")
    if restart is not None and restart not in JOB_RESTART_POLICIES:
        out.append(Violation(f"{at}.restartPolicy", Rule.RESTART_POLICY))
    for key in sorted(spec):
        if key not in POD_SPEC_FIELDS and key not in _POD_FIELDS_CHECKED:
            out.append(Violation(f"{at}.{key}", Rule.POD_FIELD))
    out.extend(_security_context(_mapping(spec.get("securityContext")), f"{at}.securityContext", pod=True))
    for i, volume in enumerate(_items(spec.get("volumes"))):
        out.extend(_volume(_mapping(volume), f"{at}.volumes[{i}]"))
    for list_name in CONTAINER_LISTS:
        for i, container in enumerate(_items(spec.get(list_name))):
            out.extend(_container(_mapping(container), f"{at}.{list_name}[{i}]"))
    return out


def template_violations(template: Mapping[str, Any], at: str = "spec.template") -> list[Violation]:
    """Every rule a pod template (``{"metadata": ..., "spec": ...}``) breaks; empty when it is fine."""
    out: list[Violation] = []
    metadata = _mapping(template.get("metadata"))
    for key in sorted(_mapping(metadata.get("labels"))):
        if _reserved_key(key):
            out.append(Violation(f"{at}.metadata.labels[{key}]", Rule.RESERVED_LABEL))
    annotations = _mapping(metadata.get("annotations"))
    for key in sorted(annotations):
        if key.startswith(RESERVED_KEY_PREFIXES):
            out.append(Violation(f"{at}.metadata.annotations[{key}]", Rule.RESERVED_ANNOTATION))
        if key.startswith(APPARMOR_ANNOTATION_PREFIX) and annotations[key] == "unconfined":
            out.append(Violation(f"{at}.metadata.annotations[{key}]", Rule.APPARMOR))
    out.extend(pod_spec_violations(_mapping(template.get("spec")), f"{at}.spec"))
    return out


@dataclass(frozen=True, slots=True, order=True)
class Toleration:
    """A toleration as offers publish and jobs carry it (how long a NoExecute taint is tolerated
    does not change which taints are tolerated)."""

    key: str
    operator: str = "Equal"
    value: str = ""
    effect: str = ""

    @classmethod
    def of(cls, toleration: Mapping[str, Any]) -> Toleration:
        return cls(str(toleration.get("key") or ""), str(toleration.get("operator") or "Equal"),
                   str(toleration.get("value") or ""), str(toleration.get("effect") or ""))

    def __str__(self) -> str:
        value = f"={self.value}" if self.operator == "Equal" else " Exists"
        return f"{self.key}{value}:{self.effect or '*'}"


def accelerator_violations(
    spec: Mapping[str, Any], count: int, resource: str = GPU_RESOURCE, at: str = "spec.template.spec"
) -> list[Violation]:
    """Where a pod spec's accelerators disagree with ``count`` cards per replica.

    Each explicit request or limit must equal ``count``, and the pod's effective request (the
    Kubernetes rule: app containers and sidecars add up, ordinary init containers run alone)
    must be ``count`` once the operator has set it: so at most one of the app containers and
    sidecars may name the resource. A template naming none gets it on its first container.
    """
    out: list[Violation] = []
    holders: list[str] = []
    want = str(count)
    for list_name in ("containers", "initContainers"):
        for i, container in enumerate(_items(spec.get(list_name))):
            container = _mapping(container)
            resources = _mapping(container.get("resources"))
            named = False
            for key in ("limits", "requests"):
                values = _mapping(resources.get(key))
                if resource in values:
                    named = True
                    if str(values[resource]) != want:
                        out.append(Violation(
                            f"{at}.{list_name}[{i}].resources.{key}[{resource}]",
                            f"an explicit {resource} must equal gpus.count ({want})"))
            if named and (list_name == "containers" or is_sidecar(container)):
                holders.append(f"{at}.{list_name}[{i}]")
    if len(holders) > 1:
        out.append(Violation(holders[1], Rule.ACCELERATOR_HOLDERS))
    return out


class WorkloadPolicyError(ValueError):
    """A pod template that breaks the workload policy (each violation names its field)."""

    def __init__(self, violations: Iterable[Violation]) -> None:
        self.violations = tuple(violations)
        super().__init__("; ".join(map(str, self.violations)))


def check_template(template: Mapping[str, Any], at: str = "spec.template") -> None:
    """Raise `WorkloadPolicyError` naming every violation, if there is any."""
    violations = template_violations(template, at)
    if violations:
        raise WorkloadPolicyError(violations)


# --------------------------------------------------------------------------------------------
# Images and registries
# --------------------------------------------------------------------------------------------


def image_registry(image: str) -> str:
    """The registry host (with its port, if any) an image reference pulls from, lower-cased.

    Docker's rules: the first path component is a registry when it contains a '.' or a ':' or
    is ``localhost``; otherwise the image is on Docker Hub (``docker.io``; ``index.docker.io``
    is the same registry). ``busybox``, ``library/busybox`` and ``user/app:1`` are on docker.io;
    ``registry.example.cn/ml/train:1.0`` is on registry.example.cn; ``localhost:5000/x`` on
    localhost:5000. An empty reference has no registry ("").
    """
    reference = image.strip()
    if not reference:
        return ""
    first, slash, _ = reference.partition("/")
    if not slash or not ("." in first or ":" in first or first == "localhost"):
        return DOCKER_HUB
    return normal_registry(first)


def normal_registry(registry: str) -> str:
    """A registry name as compared: lower-cased, ``index.docker.io`` written ``docker.io``."""
    host = registry.strip().lower()
    return DOCKER_HUB if host == "index.docker.io" else host


def template_images(template: Mapping[str, Any], at: str = "spec.template") -> list[tuple[str, str]]:
    """(field path, image) of every container of the template, containers first, in order."""
    spec = _mapping(template.get("spec"))
    out: list[tuple[str, str]] = []
    for list_name in CONTAINER_LISTS:
        for i, container in enumerate(_items(spec.get(list_name))):
            image = _mapping(container).get("image")
            out.append((f"{at}.spec.{list_name}[{i}].image", image if isinstance(image, str) else ""))
    return out


def registry_allowed(registry: str, allowed_registries: Iterable[str]) -> bool:
    """Whether ``registry`` (as `image_registry` gives it) is one of ``allowed_registries``.

    Host names compare case-insensitively; a port is part of the registry (``r.example.cn`` and
    ``r.example.cn:5000`` are different registries).
    """
    return bool(registry) and normal_registry(registry) in {normal_registry(r) for r in allowed_registries}


def disallowed_images(
    template: Mapping[str, Any], allowed_registries: Iterable[str], at: str = "spec.template"
) -> list[Violation]:
    """The images of ``template`` outside ``allowed_registries`` (none when the list is empty)."""
    allowed = {normal_registry(r) for r in allowed_registries}
    if not allowed:
        return []
    listed = ", ".join(sorted(allowed))
    return [
        Violation(path, f"image {image!r} is not from an allowed registry ({listed})")
        for path, image in template_images(template, at)
        if image_registry(image) not in allowed
    ]


__all__ = [
    "ALLOWED_CAPABILITIES",
    "ALLOWED_PROJECTION_SOURCES",
    "ALLOWED_SELINUX_TYPES",
    "ALLOWED_VOLUME_TYPES",
    "CONTAINER_FIELDS",
    "DOCKER_HUB",
    "FORBIDDEN_POD_FIELDS",
    "POD_SPEC_FIELDS",
    "RESERVED_KEYS",
    "RESERVED_KEY_PREFIXES",
    "SAFE_SYSCTLS",
    "Rule",
    "Toleration",
    "Violation",
    "WorkloadPolicyError",
    "accelerator_violations",
    "check_template",
    "disallowed_images",
    "image_registry",
    "normal_registry",
    "pod_spec_violations",
    "registry_allowed",
    "template_images",
    "template_violations",
]
