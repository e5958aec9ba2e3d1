"""ComputeJob: a GPU job a tenant submits to the hub (namespaced: the namespace is the tenant)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, ClassVar, Literal, TypeVar

from kube_custom_resource import schema
from kube_custom_resource.custom_resource import Scope
from pydantic import (
    AfterValidator,
    AwareDatetime,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    StringConstraints,
    model_validator,
)
from pydantic_core import CoreSchema, core_schema

from interconnect.core import identity
from interconnect.core.vocabulary import API_VERSION, GPU_RESOURCE, Industry, JobPhase, LatencyTier
from interconnect.core.workload_policy import (
    ALLOWED_CAPABILITIES,
    ALLOWED_SELINUX_TYPES,
    FORBIDDEN_POD_FIELDS,
    RESERVED_KEY_PREFIXES,
    RESERVED_KEYS,
    SAFE_SYSCTLS,
    UNCONFINED,
    Rule,
    accelerator_violations,
    check_template,
)
from interconnect.core.workload_policy import Toleration as TolerationTerm

from .common import (
    AMOUNT_PATTERN,
    CONDITION_REASON_PATTERN,
    Conditions,
    GpuModelName,
    Model,
    MonetaryAmount,
    NamespaceName,
    ObjectName,
    Price,
    Quantity,
    RegionCode,
    Resource,
    SchemaExtra,
    ShortText,
    cel,
    immutable,
    must_be_positive,
    positive_decimal_rule,
    rule,
    to_api,
)

T = TypeVar("T")

#: The re-place policies of spec.failurePolicy.rePlace.
RE_PLACE_ON_NODE_LOST = "OnNodeLost"
RE_PLACE_NEVER = "Never"
DEFAULT_RE_PLACE_AFTER_SECONDS = 120


def _unique(items: list[T]) -> list[T]:
    seen: list[T] = []
    for item in items:
        if item in seen:
            raise ValueError(f"duplicate entry {item!r}")
        seen.append(item)
    return items


SetOf = Annotated[list[T], AfterValidator(_unique), SchemaExtra(**{"x-kubernetes-list-type": "set"})]
"""A list of unique scalars (x-kubernetes-list-type: set; the API server rejects duplicates)."""


class MinTflops(Model):
    """Least dense (no sparsity) TFLOPS per card, per precision."""

    bf16: Annotated[int, Field(ge=1, le=100000)] | None = None
    """Least dense BF16 TFLOPS per card."""
    fp16: Annotated[int, Field(ge=1, le=100000)] | None = None
    """Least dense FP16 TFLOPS per card."""
    fp32: Annotated[int, Field(ge=1, le=100000)] | None = None
    """Least FP32 TFLOPS per card."""


class GpuRequest(Model):
    """GPUs each replica needs. Immutable."""

    count: Annotated[int, Field(ge=1, le=64)]
    """Cards per replica (1-64). The operator sets the containers' nvidia.com/gpu limits from it."""
    models: Annotated[SetOf[GpuModelName], Field(max_length=16)] = Field(default_factory=list)
    """Acceptable GPU models, as the nvidia.com/gpu.product label spells them, e.g.
    NVIDIA-A100-SXM4-80GB. Empty: any model."""
    min_memory_gib: Annotated[int, Field(ge=1, le=4096)] | None = Field(default=None, alias="minMemoryGiB")
    """Least memory per card, in GiB. Omitted: any."""
    vendors: Annotated[SetOf[Literal["nvidia", "huawei", "cambricon", "hygon"]], Field(max_length=4)] = Field(
        default_factory=list)
    """Acceptable accelerator vendors (the accelerator catalogue's), e.g. [huawei, nvidia]. Empty: any.
    With vendors or minTFLOPS the job asks by capability: the operator writes the chosen model's
    device-plugin resource into the pod and tells it the model (INTERCONNECT_ACCELERATOR_MODEL)."""
    min_tflops: MinTflops | None = Field(default=None, alias="minTFLOPS")
    """Least dense TFLOPS per card at each precision named, from the accelerator catalogue; a model
    without a published figure at that precision does not qualify."""


def _overlap_rule(kind: str) -> dict[str, str]:
    allowed, denied = f"allowed{kind}", f"denied{kind}"
    return rule(
        f"!has(self.{allowed}) || !has(self.{denied}) || !self.{allowed}.exists(x, x in self.{denied})",
        f"{denied} and {allowed} must not share an entry",
        field_path=f".{denied}",
    )


class PlacementPolicy(Model):
    """Where the job may run. Allowed lists restrict (empty: anywhere); denied lists exclude."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            _overlap_rule("Regions"), _overlap_rule("Industries"), _overlap_rule("Nodes"),
            rule("!has(self.priceBandPercent) || (has(self.prefer) && self.prefer == 'greener')",
                 "priceBandPercent is only allowed with prefer: greener", field_path=".priceBandPercent",
                 reason="FieldValueForbidden"),
        )
    )

    allowed_regions: Annotated[SetOf[RegionCode], Field(max_length=34)] = Field(default_factory=list)
    """Run only in these regions (ISO 3166-2:CN codes)."""
    denied_regions: Annotated[SetOf[RegionCode], Field(max_length=34)] = Field(default_factory=list)
    """Never run in these regions."""
    allowed_industries: Annotated[SetOf[Industry], Field(max_length=16)] = Field(default_factory=list)
    """Run only on industry nodes of these industries (regional nodes are then excluded)."""
    denied_industries: Annotated[SetOf[Industry], Field(max_length=16)] = Field(default_factory=list)
    """Never run on industry nodes of these industries."""
    allowed_nodes: Annotated[SetOf[ObjectName], Field(max_length=64)] = Field(default_factory=list)
    """Run only on these ComputeNodes."""
    denied_nodes: Annotated[SetOf[ObjectName], Field(max_length=64)] = Field(default_factory=list)
    """Never run on these ComputeNodes."""
    min_green_share: Annotated[
        str, StringConstraints(max_length=8, pattern=r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$")
    ] | None = None
    """Run only on nodes that declare at least this share of green power for the current month
    (a decimal string from 0 to 1, e.g. "0.8"); other offers are refused with GreenShareTooLow."""
    prefer: Literal["cheapest", "greener"] = "cheapest"
    """cheapest (default): the lowest price wins. greener: among offers at most priceBandPercent
    dearer than the cheapest, the node with the highest green share wins (then the cheapest)."""
    price_band_percent: Annotated[int, Field(ge=0, le=100)] | None = None
    """With prefer: greener, how much dearer than the cheapest fitting offer (in percent of its
    price) a greener one may be. Omitted: 0 (only offers at the same price)."""

    @model_validator(mode="after")
    def _no_overlap(self) -> PlacementPolicy:
        pairs: Sequence[tuple[str, Sequence[Any], Sequence[Any]]] = (
            ("Regions", self.allowed_regions, self.denied_regions),
            ("Industries", self.allowed_industries, self.denied_industries),
            ("Nodes", self.allowed_nodes, self.denied_nodes),
        )
        for kind, allowed, denied in pairs:
            if set(allowed) & set(denied):
                raise ValueError(f"denied{kind} and allowed{kind} must not share an entry")
        if self.price_band_percent is not None and self.prefer != "greener":
            raise ValueError("priceBandPercent is only allowed with prefer: greener")
        return self


QuantityValue = Annotated[schema.IntOrString, SchemaExtra(maxLength=64)]


def _forbidden(field: str, message: str) -> dict[str, str]:
    """A CEL rule on an object: ``field`` (of any type) may not be given."""
    return rule(f"!has(self.{field})", message, field_path=f".{field}", reason="FieldValueForbidden")


class ResourceRequirements(Model):
    """Compute resources of a container (corev1.ResourceRequirements)."""

    model_config = ConfigDict(json_schema_extra=cel(_forbidden("claims", Rule.CONTAINER_CLAIMS)))

    limits: Annotated[dict[str, QuantityValue], Field(max_length=32)] | None = None
    """Resource limits. nvidia.com/gpu, if given, must equal spec.gpus.count."""
    requests: Annotated[dict[str, QuantityValue], Field(max_length=32)] | None = None
    """Resource requests. nvidia.com/gpu, if given, must equal spec.gpus.count."""
    claims: Annotated[list[schema.Dict[str, Any]], Field(max_length=16)] | None = None
    """Not allowed: resource claims name the member's objects."""


# ---------------------------------------------------------------------------------------------
# The workload and its policy: the security-relevant parts of a pod template are typed here, each
# with the CEL rule the API server applies at admission; PodTemplate re-checks the whole template
# with core.workload_policy (which also knows the rules CEL cannot see, e.g. other volume types).
# ---------------------------------------------------------------------------------------------


def _must(expression: str, message: str) -> SchemaExtra:
    """A CEL rule on the field itself: the API server names the field and gives ``message``."""
    return SchemaExtra(**cel(rule(expression, message)))


def _absent(field: str, message: str) -> dict[str, str]:
    """A CEL rule on an object: ``field`` may not be set (or only to an empty string)."""
    return rule(
        f"!has(self.{field}) || self.{field} == ''",
        message,
        field_path=f".{field}",
        reason="FieldValueForbidden",
    )


ShortName = Annotated[str, StringConstraints(max_length=253)]


class SeccompProfile(Model):
    """The seccomp profile (corev1.SeccompProfile): RuntimeDefault or Localhost; Unconfined is refused."""

    model_config = ConfigDict(extra="allow")

    type: Annotated[str, StringConstraints(max_length=32), _must(f"self != '{UNCONFINED}'", Rule.SECCOMP)] | None = None
    """RuntimeDefault (the operator's default) or Localhost. Unconfined is not allowed."""


class AppArmorProfile(Model):
    """The AppArmor profile (corev1.AppArmorProfile): RuntimeDefault or Localhost; Unconfined is refused."""

    model_config = ConfigDict(extra="allow")

    type: Annotated[str, StringConstraints(max_length=32), _must(f"self != '{UNCONFINED}'", Rule.APPARMOR)] | None = (
        None
    )
    """RuntimeDefault or Localhost. Unconfined is not allowed."""


class SELinuxOptions(Model):
    """SELinux labels (corev1.SELinuxOptions): a container type and a level; no user or role."""

    model_config = ConfigDict(
        extra="allow",
        json_schema_extra=cel(_absent("user", Rule.SELINUX_USER), _absent("role", Rule.SELINUX_ROLE)),
    )

    type: (
        Annotated[
            str,
            StringConstraints(max_length=64),
            _must(f"self in {list(ALLOWED_SELINUX_TYPES)!r}", Rule.SELINUX_TYPE),
        ]
        | None
    ) = None
    """container_t, container_init_t, container_kvm_t or container_engine_t."""
    user: ShortName | None = None
    """Not allowed."""
    role: ShortName | None = None
    """Not allowed."""
    level: ShortName | None = None
    """The SELinux level (MCS categories), e.g. s0:c123,c456."""


class WindowsOptions(Model):
    """Windows-specific options (corev1.WindowsSecurityContextOptions); host processes are refused."""

    model_config = ConfigDict(extra="allow")

    host_process: Annotated[bool, _must("!self", Rule.HOST_PROCESS)] | None = None
    """Must be false or unset."""


class Capabilities(Model):
    """Linux capabilities (corev1.Capabilities): drop any, add NET_BIND_SERVICE at most."""

    model_config = ConfigDict(extra="allow")

    add: (
        Annotated[
            list[
                Annotated[
                    str,
                    StringConstraints(max_length=64),
                    _must(f"self in {sorted(ALLOWED_CAPABILITIES)!r}", Rule.CAPABILITY),
                ]
            ],
            Field(max_length=32),
        ]
        | None
    ) = None
    """Capabilities to add: NET_BIND_SERVICE only."""
    drop: Annotated[list[Annotated[str, StringConstraints(max_length=64)]], Field(max_length=64)] | None = None
    """Capabilities to drop. The operator drops ALL when the container does not say."""


_RunAsUser = Annotated[int, Field(ge=0, le=2147483647), _must("self != 0", Rule.RUN_AS_ROOT)]
_RunAsNonRoot = Annotated[bool, _must("self", Rule.RUN_AS_NON_ROOT)]


class SecurityContext(Model):
    """A container's security context (corev1.SecurityContext; fields not listed here are kept).

    The Pod Security Standards' restricted profile applies: the operator fills in
    runAsNonRoot: true, allowPrivilegeEscalation: false, capabilities.drop [ALL] and the
    RuntimeDefault seccomp profile where they are left out."""

    model_config = ConfigDict(extra="allow")

    privileged: Annotated[bool, _must("!self", Rule.PRIVILEGED)] | None = None
    """Must be false or unset."""
    allow_privilege_escalation: Annotated[bool, _must("!self", Rule.PRIVILEGE_ESCALATION)] | None = None
    """Must be false or unset (the operator sets false)."""
    capabilities: Capabilities | None = None
    """Capabilities to add (NET_BIND_SERVICE at most) and drop."""
    run_as_user: _RunAsUser | None = None
    """UID to run as; 0 (root) is not allowed."""
    run_as_non_root: _RunAsNonRoot | None = None
    """Must be true or unset (the operator sets true)."""
    proc_mount: Annotated[str, StringConstraints(max_length=16), _must("self == 'Default'", Rule.PROC_MOUNT)] | None = (
        None
    )
    """Default only."""
    se_linux_options: SELinuxOptions | None = None
    """SELinux labels."""
    seccomp_profile: SeccompProfile | None = None
    """The seccomp profile."""
    app_armor_profile: AppArmorProfile | None = None
    """The AppArmor profile."""
    windows_options: WindowsOptions | None = None
    """Windows options."""


class Sysctl(Model):
    """A namespaced sysctl (corev1.Sysctl): only the safe set is allowed."""

    model_config = ConfigDict(extra="allow")

    name: Annotated[str, StringConstraints(max_length=253), _must(f"self in {list(SAFE_SYSCTLS)!r}", Rule.SYSCTL)]
    """One of the safe sysctls, e.g. net.ipv4.tcp_keepalive_time."""
    value: Annotated[str, StringConstraints(max_length=1024)]
    """Its value."""


class PodSecurityContext(Model):
    """The pod's security context (corev1.PodSecurityContext; fields not listed here are kept)."""

    model_config = ConfigDict(extra="allow")

    run_as_user: _RunAsUser | None = None
    """UID to run as; 0 (root) is not allowed."""
    run_as_non_root: _RunAsNonRoot | None = None
    """Must be true or unset."""
    se_linux_options: SELinuxOptions | None = None
    """SELinux labels."""
    seccomp_profile: SeccompProfile | None = None
    """The seccomp profile."""
    app_armor_profile: AppArmorProfile | None = None
    """The AppArmor profile."""
    windows_options: WindowsOptions | None = None
    """Windows options."""
    sysctls: Annotated[list[Sysctl], Field(max_length=32)] | None = None
    """Sysctls: the safe set only."""


class ContainerPort(Model):
    """A port of a container (corev1.ContainerPort; fields not listed here are kept)."""

    model_config = ConfigDict(extra="allow")

    host_port: Annotated[int, Field(ge=0, le=65535), _must("self == 0", Rule.HOST_PORT)] | None = None
    """Not allowed (0 or unset): pods do not bind the member's host ports."""


class VolumeProjection(Model):
    """One source of a projected volume (corev1.VolumeProjection): downwardAPI only. Secrets,
    ConfigMaps, tokens and trust bundles of the member are not the tenant's."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            rule(
                "!has(self.serviceAccountToken)",
                Rule.TOKEN_PROJECTION,
                field_path=".serviceAccountToken",
                reason="FieldValueForbidden",
            ),
            _forbidden("secret", Rule.PROJECTION_SOURCE),
            _forbidden("configMap", Rule.PROJECTION_SOURCE),
            _forbidden("clusterTrustBundle", Rule.PROJECTION_SOURCE),
        ),
    )

    downward_api: schema.Dict[str, Any] | None = Field(default=None, alias="downwardAPI")
    """The pod's own metadata as files."""
    service_account_token: schema.Dict[str, Any] | None = None
    """Not allowed: pods get no service-account token of the member."""
    secret: schema.Dict[str, Any] | None = None
    """Not allowed."""
    config_map: schema.Dict[str, Any] | None = None
    """Not allowed."""
    cluster_trust_bundle: schema.Dict[str, Any] | None = None
    """Not allowed."""


class ProjectedVolume(Model):
    """A projected volume (corev1.ProjectedVolumeSource)."""

    sources: Annotated[list[VolumeProjection], Field(max_length=32)] | None = None
    """The projected sources: downwardAPI only."""
    default_mode: Annotated[int, Field(ge=0, le=511)] | None = None
    """File mode bits."""


#: Volume types refused with a message of their own (any other unknown type is not in the schema).
_FORBIDDEN_VOLUME_TYPES = ("secret", "configMap", "persistentVolumeClaim", "csi", "image", "nfs")


class Volume(Model):
    """A volume of the pod (corev1.Volume): emptyDir, downwardAPI, ephemeral or projected
    (downwardAPI). Nothing that names an object, a path or a driver of the member."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            rule("!has(self.hostPath)", Rule.HOST_PATH, field_path=".hostPath", reason="FieldValueForbidden"),
            *(_forbidden(kind, Rule.VOLUME_TYPE) for kind in _FORBIDDEN_VOLUME_TYPES),
        ),
    )

    name: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    """Volume name (DNS label)."""
    empty_dir: schema.Dict[str, Any] | None = None
    """Scratch space for the pod's life."""
    downward_api: schema.Dict[str, Any] | None = Field(default=None, alias="downwardAPI")
    """The pod's own metadata as files."""
    ephemeral: schema.Dict[str, Any] | None = None
    """A volume claimed for the pod's life from the member's default storage."""
    projected: ProjectedVolume | None = None
    """A projected volume (downwardAPI sources only)."""
    host_path: schema.Dict[str, Any] | None = None
    """Not allowed: pods do not mount the member's host paths."""
    secret: schema.Dict[str, Any] | None = None
    """Not allowed: the member's Secrets are not the tenant's."""
    config_map: schema.Dict[str, Any] | None = None
    """Not allowed: the member's ConfigMaps are not the tenant's."""
    persistent_volume_claim: schema.Dict[str, Any] | None = None
    """Not allowed: the member's claims are not the tenant's."""
    csi: schema.Dict[str, Any] | None = None
    """Not allowed: the member's storage drivers."""
    image: schema.Dict[str, Any] | None = None
    """Not allowed (an image volume would bypass an offer's allowed registries)."""
    nfs: schema.Dict[str, Any] | None = None
    """Not allowed."""


class EnvVarSource(Model):
    """Where an environment variable's value comes from: the pod's own fields and resources only."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            _forbidden("secretKeyRef", Rule.SECRET_KEY_REF),
            _forbidden("configMapKeyRef", Rule.CONFIG_MAP_KEY_REF),
            _forbidden("fileKeyRef", Rule.FILE_KEY_REF),
        ),
    )

    field_ref: schema.Dict[str, Any] | None = None
    """A field of the pod (downward API), e.g. metadata.name."""
    resource_field_ref: schema.Dict[str, Any] | None = None
    """A resource limit or request of a container."""
    secret_key_ref: schema.Dict[str, Any] | None = None
    """Not allowed."""
    config_map_key_ref: schema.Dict[str, Any] | None = None
    """Not allowed."""
    file_key_ref: schema.Dict[str, Any] | None = None
    """Not allowed."""


class EnvVar(Model):
    """An environment variable (corev1.EnvVar)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    """The variable's name."""
    value: Annotated[str, StringConstraints(max_length=131072)] | None = None
    """Its value."""
    value_from: EnvVarSource | None = None
    """Its source (fieldRef or resourceFieldRef)."""


_Selector = Annotated[dict[str, Annotated[str, StringConstraints(max_length=63)]], Field(max_length=32)]
_Strings = Annotated[list[Annotated[str, StringConstraints(max_length=65536)]], Field(max_length=1024)]
_Loose = schema.Dict[str, Any]


class Container(Model):
    """A container of the pod template (corev1.Container). Only the fields below reach a member:
    anything else is refused by the API server (or pruned, for clients that do not ask for strict
    field validation)."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            _forbidden("envFrom", Rule.ENV_FROM),
            _forbidden("volumeDevices", Rule.VOLUME_DEVICES),
            rule(
                "!has(self.restartPolicy) || self.restartPolicy == 'Always'",
                "restartPolicy of a container may only be Always (a native sidecar, in initContainers)",
                field_path=".restartPolicy",
            ),
        ),
    )

    name: Annotated[str, StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")]
    """Container name (DNS label)."""
    image: Annotated[str, StringConstraints(max_length=1024)] | None = None
    """The image reference, e.g. registry.example.cn/ml/train:1.0 (an offer may restrict the registries)."""
    command: _Strings | None = None
    """The entrypoint."""
    args: _Strings | None = None
    """Arguments to the entrypoint."""
    working_dir: Annotated[str, StringConstraints(max_length=4096)] | None = None
    """The working directory."""
    env: Annotated[list[EnvVar], Field(max_length=1024)] | None = None
    """Environment variables: values, or the pod's own fields (no Secrets or ConfigMaps of the member)."""
    resources: ResourceRequirements | None = None
    """Compute resources. The operator sets nvidia.com/gpu from spec.gpus.count."""
    volume_mounts: Annotated[list[_Loose], Field(max_length=64)] | None = None
    """Where the pod's volumes are mounted."""
    liveness_probe: _Loose | None = None
    """Liveness probe."""
    readiness_probe: _Loose | None = None
    """Readiness probe."""
    startup_probe: _Loose | None = None
    """Startup probe."""
    lifecycle: _Loose | None = None
    """postStart and preStop hooks."""
    termination_message_path: Annotated[str, StringConstraints(max_length=4096)] | None = None
    """Where the container writes its termination message."""
    termination_message_policy: Literal["File", "FallbackToLogsOnError"] | None = None
    """File or FallbackToLogsOnError."""
    image_pull_policy: Literal["Always", "Never", "IfNotPresent"] | None = None
    """Always, Never or IfNotPresent."""
    security_context: SecurityContext | None = None
    """The container's security context (the restricted profile applies)."""
    ports: Annotated[list[ContainerPort], Field(max_length=64)] | None = None
    """Ports the container exposes (no hostPort)."""
    stdin: bool | None = None
    """Keep stdin open."""
    stdin_once: bool | None = None
    """Close stdin after the first attach."""
    tty: bool | None = None
    """Allocate a TTY."""
    restart_policy: Annotated[str, StringConstraints(max_length=16)] | None = None
    """Always, for a native sidecar in initContainers only."""
    resize_policy: Annotated[list[_Loose], Field(max_length=8)] | None = None
    """In-place resize policy."""
    env_from: Annotated[list[_Loose], Field(max_length=64)] | None = None
    """Not allowed: it reads the member's Secrets and ConfigMaps."""
    volume_devices: Annotated[list[_Loose], Field(max_length=64)] | None = None
    """Not allowed."""


class Toleration(Model):
    """A toleration (corev1.Toleration). Only those the chosen offer publishes are dispatched; a
    toleration without a key (tolerating every taint) is refused."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            rule(
                "has(self.key) && self.key != ''",
                "a toleration must name a taint key: tolerating every taint is not allowed",
                field_path=".key",
                reason="FieldValueRequired",
            )
        )
    )

    key: Annotated[str, StringConstraints(max_length=317)] | None = None
    """The taint key."""
    operator: Literal["Exists", "Equal"] | None = None
    """Exists or Equal (default)."""
    value: Annotated[str, StringConstraints(max_length=63)] | None = None
    """The taint value (with Equal)."""
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute", ""] | None = None
    """The taint effect; empty: all."""
    toleration_seconds: int | None = None
    """How long a NoExecute taint is tolerated."""

    @model_validator(mode="after")
    def _names_a_key(self) -> Toleration:
        if not self.key:
            raise ValueError("key: a toleration must name a taint key: tolerating every taint is not allowed")
        return self


class Affinity(Model):
    """Scheduling constraints: node affinity only (pods may not seek or probe other tenants' pods)."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            _forbidden("podAffinity", Rule.POD_AFFINITY),
            _forbidden("podAntiAffinity", Rule.POD_ANTI_AFFINITY),
        )
    )

    node_affinity: _Loose | None = None
    """Node affinity (within the offer's nodes: the operator adds the offer's selector)."""
    pod_affinity: _Loose | None = None
    """Not allowed."""
    pod_anti_affinity: _Loose | None = None
    """Not allowed."""


class PodSpecTemplate(Model):
    """The pod spec (corev1.PodSpec), from an allow-list: only the fields below reach a member.

    The pod runs on someone else's cluster under the Pod Security Standards' restricted profile:
    no privileged mode, host namespaces, hostPath volumes, host ports, added capabilities beyond
    NET_BIND_SERVICE, root user, or service-account token; and nothing that names an object of
    the member (Secrets, ConfigMaps, claims, priority or runtime classes, pull secrets) or
    chooses where or before whom it runs (nodeName, schedulerName, priority)."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            _absent("serviceAccountName", Rule.SERVICE_ACCOUNT),
            _absent("serviceAccount", Rule.SERVICE_ACCOUNT_DEPRECATED),
            rule(
                "!has(self.ephemeralContainers) || size(self.ephemeralContainers) == 0",
                Rule.EPHEMERAL_CONTAINERS,
                field_path=".ephemeralContainers",
                reason="FieldValueForbidden",
            ),
            *(_forbidden(key, message) for key, message in FORBIDDEN_POD_FIELDS),
        ),
    )

    containers: Annotated[list[Container], Field(min_length=1, max_length=16)]
    """The containers (at least one)."""
    init_containers: Annotated[list[Container], Field(max_length=16)] | None = None
    """Init containers (restartPolicy Always: a native sidecar)."""
    restart_policy: Literal["Never", "OnFailure"] | None = None
    """Never (the default) or OnFailure: a Job's pods may not restart Always."""
    volumes: Annotated[list[Volume], Field(max_length=64)] | None = None
    """Volumes: emptyDir, downwardAPI, ephemeral, projected (downwardAPI)."""
    security_context: PodSecurityContext | None = None
    """The pod's security context."""
    termination_grace_period_seconds: Annotated[int, Field(ge=0)] | None = None
    """Seconds between SIGTERM and SIGKILL."""
    active_deadline_seconds: Annotated[int, Field(ge=1)] | None = None
    """Seconds a pod may be active."""
    dns_policy: Literal["ClusterFirst", "Default", "None"] | None = None
    """ClusterFirst, Default or None."""
    dns_config: _Loose | None = None
    """DNS parameters."""
    hostname: Annotated[str, StringConstraints(max_length=63)] | None = None
    """The pod's hostname."""
    subdomain: Annotated[str, StringConstraints(max_length=253)] | None = None
    """The pod's subdomain."""
    set_hostname_as_fqdn: bool | None = Field(default=None, alias="setHostnameAsFQDN")
    """Use the FQDN as the hostname."""
    share_process_namespace: bool | None = None
    """One process namespace for the pod's containers."""
    node_selector: _Selector | None = None
    """Node labels (within the offer's nodes: the operator adds the offer's selector and GPU model)."""
    affinity: Affinity | None = None
    """Node affinity only."""
    tolerations: Annotated[list[Toleration], Field(max_length=32)] | None = None
    """Tolerations: a job is placed only on offers that publish each of them (spec.tolerations)."""
    host_aliases: Annotated[list[_Loose], Field(max_length=64)] | None = None
    """Entries for the pod's /etc/hosts."""
    host_users: bool | None = None
    """false: a user namespace for the pod."""
    os: _Loose | None = None
    """The pod's OS."""
    enable_service_links: bool | None = None
    """The operator sets false: the member's Services are not announced to the pod."""
    host_network: Annotated[bool, _must("!self", Rule.HOST_NETWORK)] | None = None
    """Must be false or unset."""
    host_pid: Annotated[bool, _must("!self", Rule.HOST_PID)] | None = Field(default=None, alias="hostPID")
    """Must be false or unset."""
    host_ipc: Annotated[bool, _must("!self", Rule.HOST_IPC)] | None = Field(default=None, alias="hostIPC")
    """Must be false or unset."""
    service_account_name: ShortName | None = None
    """Not allowed: pods run without a service account of the member."""
    service_account: ShortName | None = None
    """Not allowed (the deprecated spelling of serviceAccountName)."""
    automount_service_account_token: Annotated[bool, _must("!self", Rule.AUTOMOUNT_TOKEN)] | None = None
    """Must be false or unset: the operator sets false."""
    ephemeral_containers: Annotated[list[_Loose], Field(max_length=16)] | None = None
    """Not allowed."""
    node_name: ShortName | None = None
    """Not allowed: the member's scheduler places the pod."""
    priority_class_name: ShortName | None = None
    """Not allowed: priority is granted by the hub (ComputeQuota spec.maxPriority)."""
    priority: int | None = None
    """Not allowed."""
    preemption_policy: Annotated[str, StringConstraints(max_length=32)] | None = None
    """Not allowed."""
    runtime_class_name: ShortName | None = None
    """Not allowed: the member chooses the runtime."""
    scheduler_name: ShortName | None = None
    """Not allowed: the member's default scheduler places the pod."""
    image_pull_secrets: Annotated[list[_Loose], Field(max_length=16)] | None = None
    """Not allowed: they name the member's Secrets."""
    topology_spread_constraints: Annotated[list[_Loose], Field(max_length=16)] | None = None
    """Not allowed: their selectors count other tenants' pods."""
    scheduling_gates: Annotated[list[_Loose], Field(max_length=16)] | None = None
    """Not allowed."""
    resource_claims: Annotated[list[_Loose], Field(max_length=16)] | None = None
    """Not allowed: they name the member's objects."""
    overhead: _Loose | None = None
    """Not allowed."""
    readiness_gates: Annotated[list[_Loose], Field(max_length=16)] | None = None
    """Not allowed."""
    resources: _Loose | None = None
    """Not allowed (pod-level resources): containers carry the requests."""


_Labels = Annotated[dict[str, Annotated[str, StringConstraints(max_length=63)]], Field(max_length=64)]
_Annotations = Annotated[dict[str, Annotated[str, StringConstraints(max_length=65536)]], Field(max_length=64)]
_RESERVED = " || ".join(f"k.startsWith('{p}')" for p in RESERVED_KEY_PREFIXES)


class PodMetadata(Model):
    """Labels and annotations for the pods. Keys under interconnect.dev/ and batch.kubernetes.io/
    are the operator's and the Job controller's, and are refused."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            rule(
                f"!has(self.labels) || self.labels.all(k, !({_RESERVED} || k in {sorted(RESERVED_KEYS)!r}))",
                Rule.RESERVED_LABEL,
                field_path=".labels",
                reason="FieldValueForbidden",
            ),
            rule(
                f"!has(self.annotations) || self.annotations.all(k, !({_RESERVED}))",
                Rule.RESERVED_ANNOTATION,
                field_path=".annotations",
                reason="FieldValueForbidden",
            ),
        )
    )

    labels: _Labels | None = None
    """Labels for the pods."""
    annotations: _Annotations | None = None
    """Annotations for the pods."""


class PodTemplate(Model):
    """The workload: a pod template (corev1.PodTemplateSpec). The member Job runs one pod per replica.

    The operator re-checks the whole template against the workload policy (the restricted Pod
    Security Standard, no service-account token, no object of the member) before it is placed or
    dispatched."""

    metadata: PodMetadata | None = None
    """Labels and annotations for the pods."""
    spec: PodSpecTemplate
    """The pod spec. Its containers' nvidia.com/gpu limits are set by the operator from spec.gpus;
    an explicit different value is rejected."""

    @model_validator(mode="after")
    def _workload_policy(self) -> PodTemplate:
        check_template(to_api(self))
        return self

    def images(self) -> list[str]:
        """The images of the containers and init containers, in order."""
        containers = [*self.spec.containers, *(self.spec.init_containers or [])]
        return [c.image or "" for c in containers]


class KeptTemplate:
    """A pod template that passed `PodTemplate`'s validation, kept as its compact JSON.

    Why not the model itself: pydantic keeps all 40 fields of a PodSpec and 24 of a Container in
    every instance's dict, set or not, so a validated template took 2.6 KiB, a third of what a
    job cost the operator with 50,000 jobs in memory (its JSON: about 200 bytes). The operator
    reads only the images and tolerations (placement) and, once per attempt, the whole template
    (the member Job), which `as_api` parses again. Validated on the way in like the model (the
    CRD schema is the model's); immutable, so nothing can change it after its check.
    """

    __slots__ = ("_json", "images", "tolerations")

    _json: bytes
    images: tuple[str, ...]
    """The images of the containers and init containers, in order."""
    tolerations: frozenset[TolerationTerm]
    """The pods' tolerations, as placement matches them against an offer's."""

    def __init__(self, template: PodTemplate) -> None:
        api = to_api(template)
        object.__setattr__(self, "_json", json.dumps(api, separators=(",", ":")).encode())
        object.__setattr__(self, "images", tuple(template.images()))
        object.__setattr__(self, "tolerations", frozenset(TolerationTerm.of(to_api(t))
                                                          for t in template.spec.tolerations or []))

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable")

    def as_api(self) -> dict[str, Any]:
        """The template in its wire form (camelCase, no nulls): a fresh copy each call."""
        parsed: dict[str, Any] = json.loads(self._json)
        return parsed

    def __eq__(self, other: object) -> bool:
        return isinstance(other, KeptTemplate) and other._json == self._json

    def __hash__(self) -> int:
        return hash(self._json)

    def __repr__(self) -> str:
        return f"KeptTemplate({self._json.decode()})"

    def __copy__(self) -> KeptTemplate:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> KeptTemplate:
        return self

    @classmethod
    def __get_pydantic_core_schema__(cls, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        """Validated (and described in the CRD) as `PodTemplate`; one already kept passes as it is."""

        def validate(value: Any, validate_model: Callable[[Any], PodTemplate]) -> KeptTemplate:
            if isinstance(value, KeptTemplate):
                return value
            return cls(validate_model(value))

        return core_schema.no_info_wrap_validator_function(
            validate,
            handler.generate_schema(PodTemplate),
            serialization=core_schema.plain_serializer_function_ser_schema(cls.as_api),
        )


class FailurePolicy(Model):
    """What the hub does when the node running the job is lost."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            rule(
                "!has(self.rePlace) || self.rePlace != 'Never' || !has(self.rePlaceAfterSeconds)",
                "rePlaceAfterSeconds is not allowed when rePlace is Never",
                field_path=".rePlaceAfterSeconds",
                reason="FieldValueForbidden",
            )
        )
    )

    re_place: Literal["OnNodeLost", "Never"] = "OnNodeLost"
    """OnNodeLost: when the node stops answering, re-place the job elsewhere (new attempt) after
    rePlaceAfterSeconds. Never: fail the job instead. Default: OnNodeLost."""
    re_place_after_seconds: Annotated[int, Field(ge=0, le=86400)] | None = None
    """Grace period before re-placing, in seconds. Default: 120."""

    @model_validator(mode="after")
    def _never_has_no_delay(self) -> FailurePolicy:
        if self.re_place == RE_PLACE_NEVER and self.re_place_after_seconds is not None:
            raise ValueError("rePlaceAfterSeconds is not allowed when rePlace is Never")
        return self

    def re_place_after(self) -> int | None:
        """Seconds to wait before re-placing, or None when the job must not be re-placed."""
        if self.re_place == RE_PLACE_NEVER:
            return None
        if self.re_place_after_seconds is None:
            return DEFAULT_RE_PLACE_AFTER_SECONDS
        return self.re_place_after_seconds


def _gpu_rule(containers: str) -> dict[str, str]:
    path = f"self.template.spec.{containers}"
    gpu = f"'{GPU_RESOURCE}'"

    def clause(kind: str) -> str:
        return (
            f"(!has(c.resources.{kind}) || !({gpu} in c.resources.{kind}) || "
            f"string(c.resources.{kind}[{gpu}]) == string(self.gpus.count))"
        )

    return rule(
        f"!has(self.template) || !has(self.template.spec) || !has({path}) || !has(self.gpus) || "
        "!has(self.gpus.count) || "
        f"{path}.all(c, !has(c.resources) || ({clause('limits')} && {clause('requests')}))",
        f"an explicit {GPU_RESOURCE} limit or request in template.spec.{containers} must equal gpus.count "
        "(the operator sets it from spec.gpus)",
        field_path=f".template.spec.{containers}",
    )


_DeadlineSeconds = Annotated[int, Field(ge=1)]


#: What decides a placement and its price: fixed once the job has been placed (status.attempts > 0),
#: like a Job's template. While it has never been placed, a tenant may still change them (raise
#: maxPrice as `kubectl compute explain` suggests, widen the tier or the placement policy).
FIXED_ONCE_PLACED: tuple[str, ...] = (
    "replicas", "template", "maxPrice", "priceBasis", "latencyTier", "placement", "backoffLimit",
    "activeDeadlineSeconds"
)


def _fixed_once_placed(field: str) -> dict[str, str]:
    """A root-level transition rule: ``spec.<field>`` (its value, or whether it is given) may not
    change once ``status.attempts`` is above 0. Root-level so that it can read the status."""
    same = (f"has(self.spec.{field}) == has(oldSelf.spec.{field}) && "
            f"(!has(self.spec.{field}) || self.spec.{field} == oldSelf.spec.{field})")
    never_placed = "!has(oldSelf.status) || !has(oldSelf.status.attempts) || oldSelf.status.attempts == 0"
    return rule(f"({never_placed}) || ({same})",
                f"{field} is immutable once the job has been placed (status.attempts > 0): delete and create "
                "the job to change it",
                field_path=f".spec.{field}")


def _gpu_holders_rule() -> dict[str, str]:
    """At most one of the containers and sidecars names the accelerator: the pod's effective
    request (containers plus sidecars) is then exactly gpus.count."""
    gpu = f"'{GPU_RESOURCE}'"
    names = (f"has(c.resources) && ((has(c.resources.limits) && {gpu} in c.resources.limits) || "
             f"(has(c.resources.requests) && {gpu} in c.resources.requests))")
    spec = "self.template.spec"
    return rule(
        f"!has(self.template) || !has({spec}) || !has({spec}.containers) || "
        f"size({spec}.containers.filter(c, {names})) + (has({spec}.initContainers) ? "
        f"size({spec}.initContainers.filter(c, has(c.restartPolicy) && c.restartPolicy == 'Always' && {names})) "
        ": 0) <= 1",
        Rule.ACCELERATOR_HOLDERS,
        field_path=".template.spec",
    )


class ComputeJobSpec(Model):
    """What the tenant asks for: GPUs, where, how fast, at what price, and the workload."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            rule(
                "!has(self.budget) || !has(self.budget.currency) || !has(self.maxPrice) || "
                "!has(self.maxPrice.currency) || self.budget.currency == self.maxPrice.currency",
                "budget.currency must equal maxPrice.currency",
                field_path=".budget.currency",
            ),
            rule(
                "!has(self.budget) || !has(self.budget.amount) || self.budget.amount.matches('[1-9]')",
                "budget.amount must be greater than 0",
                field_path=".budget.amount",
            ),
            _gpu_rule("containers"),
            _gpu_rule("initContainers"),
            _gpu_holders_rule(),
        )
    )

    gpus: Annotated[GpuRequest, Field(json_schema_extra=immutable("gpus"))]
    """GPUs each replica needs: count, acceptable models, least memory per card. Immutable."""
    replicas: Annotated[int, Field(ge=1, le=1024)] = 1
    """Pods run at once, each with gpus.count cards, all on the same node. Default: 1. Fixed once placed."""
    origin: Annotated[RegionCode, Field(json_schema_extra=immutable("origin"))]
    """ISO 3166-2:CN code of the region the job is submitted from (latency is measured from there). Immutable."""
    latency_tier: LatencyTier
    """Required latency from origin: 1ms (same city), 5ms (same region), 20ms (national)."""
    max_price: MonetaryAmount
    """The highest price per card-hour the tenant accepts (machine-hour offers are compared per card)."""
    price_basis: Literal["card-hour", "pflops-hour"] = Field(default="card-hour", alias="priceBasis")
    """What "cheapest" means among the offers that fit: price per card-hour (default), or price per
    PFLOPS-hour (card-hours x the model's dense BF16 TFLOPS, else FP16, / 1000, from the accelerator
    catalogue), which compares cards of different vendors by what they compute; offers of models
    without a published figure are then left out. Fixed once placed."""
    budget: MonetaryAmount | None = None
    """Cap on the job's total cost, in maxPrice's currency. Omitted: no cap."""
    expected_hours: (
        Annotated[
            str,
            StringConstraints(max_length=15, pattern=AMOUNT_PATTERN),
            AfterValidator(must_be_positive),
            Field(json_schema_extra=cel(positive_decimal_rule("expectedHours"))),
        ]
        | None
    ) = None
    """Declared duration in hours, a decimal string, e.g. "2.5": used for quotes and the budget check."""
    placement: PlacementPolicy | None = None
    """Region, industry and node constraints. Fixed once placed."""
    priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    """Higher is placed first (-1000 to 1000). Default: 0."""
    template: KeptTemplate
    """The workload: a pod template. Fixed once the job has been placed, like a Job's template."""
    active_deadline_seconds: _DeadlineSeconds | None = None
    """Seconds the member Job may be active before it is terminated. Omitted: no limit. Fixed once placed."""
    backoff_limit: Annotated[int, Field(ge=0, le=100)] | None = None
    """Pod retries in the member Job before the attempt fails. Omitted: the Job's default (6)."""
    start_deadline_seconds: Annotated[int, Field(ge=1, le=604800)] | None = None
    """Seconds from placement within which every pod must have started (image pulled, scheduled,
    admitted by the member); past it the attempt fails with StartDeadlineExceeded and its cards go
    back. Omitted: the hub's default (settings.startDeadlineSeconds, 600)."""
    failure_policy: FailurePolicy | None = None
    """What to do when the node is lost. Omitted: re-place after 120 seconds."""

    @model_validator(mode="after")
    def _cross_field(self) -> ComputeJobSpec:
        if self.budget is not None:
            if self.budget.currency != self.max_price.currency:
                raise ValueError("budget.currency must equal maxPrice.currency")
            if not any(c in "123456789" for c in self.budget.amount):
                raise ValueError("budget.amount must be greater than 0")
        violations = accelerator_violations(self.template.as_api()["spec"], self.gpus.count)
        if violations:
            raise ValueError("; ".join(map(str, violations)))
        return self

    @property
    def total_cards(self) -> int:
        """Cards the job holds while it runs: gpus.count x replicas."""
        return self.gpus.count * self.replicas

    def effective_failure_policy(self) -> FailurePolicy:
        return self.failure_policy or FailurePolicy()


# ---------------------------------------------------------------------------------------------
# Status
# ---------------------------------------------------------------------------------------------

IdentityCode = Annotated[str, StringConstraints(max_length=identity.LENGTH, pattern=identity.PATTERN)]
Reason = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=CONDITION_REASON_PATTERN)]


class PlacementResult(Model):
    """Where the job was placed, at what price and tier."""

    node: ObjectName
    """The ComputeNode chosen."""
    identity_code: IdentityCode
    """The node's identity code."""
    offer: ObjectName
    """The ComputeOffer the cards come from."""
    price: Price
    """The offer's price at placement time (locked for this attempt)."""
    tier: LatencyTier
    """The latency tier the node gives from origin."""
    region: RegionCode
    """The node's region."""
    gpu_model: GpuModelName
    """The GPU model the job runs on."""
    placed_at: AwareDatetime
    """When the placement was made."""
    industry: Industry | None = None
    """The node's industry, for industry nodes (usage is reported by industry)."""


class MemberJobRef(Model):
    """The batch/v1 Job the ComputeJob became in the member cluster."""

    cluster: ObjectName
    """The ComputeNode (member cluster) it runs in."""
    namespace: NamespaceName
    """Its namespace in the member."""
    name: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    """Its name (derived from the ComputeJob's UID and the attempt)."""
    uid: Annotated[str, StringConstraints(max_length=64)] | None = None
    """Its UID in the member."""


class Attempt(Model):
    """One placement of the job on a node, and how it ended."""

    attempt: Annotated[int, Field(ge=1)]
    """Attempt number, from 1."""
    node: ObjectName
    """The ComputeNode of this attempt."""
    member_job_name: Annotated[str, StringConstraints(min_length=1, max_length=63)]
    """The member Job's name."""
    started_at: AwareDatetime | None = None
    """When the attempt's first pod started running."""
    finished_at: AwareDatetime | None = None
    """When the attempt ended."""
    outcome: Reason | None = None
    """How it ended, in CamelCase: Succeeded, Failed, NodeLost, Cancelled, ... Omitted while it runs."""
    card_hours: Quantity | None = None
    """Card-hours the attempt used, a decimal string."""
    offer: ObjectName | None = None
    """The ComputeOffer of this attempt."""
    price: Price | None = None
    """The price locked for this attempt: its usage is billed at it."""


class PodUsage(Model):
    """What one pod of one attempt has used, as last observed from the member's timestamps.

    Kept so that accrual is idempotent: recomputing after a restart or an outage replaces these
    figures instead of adding to them.
    """

    attempt: Annotated[int, Field(ge=1)]
    """The attempt the pod belongs to."""
    pod: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    """The pod's UID on the member."""
    gpus: Annotated[int, Field(ge=0, le=64)]
    """GPUs the pod held."""
    microseconds: Annotated[int, Field(ge=0)]
    """Microseconds the pod ran and is charged for (from startedAt, its first container's start, to
    its last container's finish, or to accruedUntil while it runs; for an attempt lost with its
    node, up to the moment the node was declared lost)."""
    lost_microseconds: Annotated[int, Field(ge=0)] = 0
    """Microseconds the pod ran after its node was declared lost and the job re-placed: recorded,
    not charged."""
    finished: bool = False
    """True once the member reported the pod finished: the figure is final."""
    started_at: AwareDatetime | None = None
    """The earliest start of any of the pod's containers (init containers and sidecars included)
    the hub has seen; both figures count from it. Kept because the member shows only each
    container's last two runs: after restarts the first start is gone from the pod's status."""



class EnergyUsage(Model):
    """Estimated energy of the cards' time: card-hours x the model's board power x the node's PUE,
    split by the node's declared green share, with the grid part's CO2. An estimate from rated
    board power, not a measurement (docs/energy.md)."""

    kwh: Quantity = Field(alias="kWh")
    """Energy in kWh, decimal string."""
    green_kwh: Quantity = Field(alias="greenKWh")
    """The part from renewable power (kWh x green share)."""
    grid_kwh: Quantity = Field(alias="gridKWh")
    """The rest, from the grid."""
    co2_kg: Quantity = Field(alias="co2Kg")
    """CO2 of the grid part, kg (grid kWh x gridFactor / 1000)."""
    pue: Quantity
    """The node's PUE applied (1 when it declares none)."""
    green_share: Quantity = Field(alias="greenShare")
    """The node's green share for the month the attempt started."""
    grid_factor: Quantity = Field(alias="gridFactor")
    """gCO2 per grid kWh applied (the province's published factor, or the hub admin's)."""
    board_power_watts: Annotated[int, Field(ge=1, le=10_000)]
    """The model's typical board power, from the accelerator catalogue."""
    basis: Literal["board-power", "measured"] = "board-power"
    """How kWh was obtained: estimated from board power (today the only basis)."""


class Usage(Model):
    """Metered use (durable: the hub accrues it here as the job runs)."""

    card_hours: Quantity = "0"
    """Card-hours used so far (GPUs x running time of each pod), a decimal string."""
    cost: Quantity = "0"
    """Cost so far, a decimal string in currency."""
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$", min_length=3, max_length=3)] | None = None
    """ISO 4217 currency of cost."""
    accrued_until: AwareDatetime | None = None
    """Usage is counted up to this time."""
    lost_card_hours: Quantity | None = None
    """Card-hours that attempts lost with their node ran after the node was declared lost: recorded,
    not charged (the pods' lostMicroseconds)."""
    pflops_hours: Quantity | None = Field(default=None, alias="pflopsHours")
    """Normalised compute: card-hours x each attempt's model's dense TFLOPS (BF16, else FP16) / 1000,
    from the accelerator catalogue; omitted when no attempt's model has a published figure."""
    energy: EnergyUsage | None = None
    """Estimated energy of all attempts (kWh, green and grid kWh and CO2 summed; PUE, green share,
    grid factor and board power of the latest attempt with an estimate); omitted when no attempt's
    model has a board-power figure."""
    pods: Annotated[list[PodUsage], Field(max_length=4096)] = Field(default_factory=list)
    """Per pod and attempt, the observation the figures above are computed from."""


class ReasonCount(Model):
    """How many candidates were rejected for one reason."""

    reason: Reason
    """Why, in CamelCase, e.g. PriceAboveMax."""
    count: Annotated[int, Field(ge=0)]
    """How many candidates."""


class Candidate(Model):
    """One offer considered and why it was rejected."""

    offer: ObjectName
    """The ComputeOffer."""
    node: ObjectName
    """Its ComputeNode."""
    reason: ShortText
    """Why it does not fit, e.g. "price 12.5 CNY/card-hour above maxPrice 10"."""


class Unschedulable(Model):
    """Why nothing fits, the way kube-scheduler explains "0/7 nodes are available"."""

    summary: ShortText
    """E.g. "0/5 offers fit: 2 price above maxPrice, 2 latency tier 1ms not met, 1 node not Ready"."""
    reasons: Annotated[list[ReasonCount], Field(max_length=32)] = Field(default_factory=list)
    """Rejections counted by reason."""
    candidates: Annotated[list[Candidate], Field(max_length=100)] = Field(default_factory=list)
    """Each candidate offer and why it was rejected (the first 100)."""


class ComputeJobStatus(Model):
    """What happened to the job: phase, placement, member job, attempts, usage."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra=cel(rule(
            "!has(oldSelf.leaderEpoch) || (has(self.leaderEpoch) && self.leaderEpoch >= oldSelf.leaderEpoch)",
            "status.leaderEpoch: written by a replica whose lead has ended (an older epoch than the last "
            "writer's); only the current leader writes a ComputeJob's status")),
    )

    phase: JobPhase | None = None
    """Pending, Scheduled, Dispatched, Running, Succeeded, Failed or Cancelled."""
    placement: PlacementResult | None = None
    """The current placement."""
    member_job: MemberJobRef | None = None
    """The member Job of the current attempt."""
    attempts: Annotated[int, Field(ge=0)] = 0
    """Attempts made so far."""
    attempt_history: Annotated[list[Attempt], Field(max_length=64)] = Field(default_factory=list)
    """Every attempt, oldest first."""
    usage: Usage | None = None
    """Card-hours and cost."""
    start_time: AwareDatetime | None = None
    """When the job first started running."""
    completion_time: AwareDatetime | None = None
    """When the job reached a terminal phase."""
    conditions: Conditions = Field(default_factory=list)
    """Conditions (metav1.Condition)."""
    unschedulable: Unschedulable | None = None
    """Why the job cannot be placed now (while Pending)."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The metadata.generation the status reflects."""
    leader_epoch: Annotated[int, Field(ge=0)] | None = None
    """The epoch (Lease transitions) of the operator replica that wrote this status last. A write
    from an older epoch is refused: a replica that lost the lead cannot overwrite its successor."""


class ComputeJob(  # type: ignore[call-arg]
    Resource,
    scope=Scope.NAMESPACED,
    kind="ComputeJob",
    plural_name="computejobs",
    short_names=["cjob"],
    subresources={"status": {}},
    printer_columns=[
        {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
        {"name": "Node", "type": "string", "jsonPath": ".status.placement.node"},
        {"name": "GPUs", "type": "integer", "jsonPath": ".spec.gpus.count", "description": "GPUs per replica"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas", "priority": 1},
        {"name": "Tier", "type": "string", "jsonPath": ".spec.latencyTier"},
        {"name": "Price", "type": "string", "jsonPath": ".status.placement.price.amount"},
        {"name": "Card-Hours", "type": "string", "jsonPath": ".status.usage.cardHours"},
        {"name": "Cost", "type": "string", "jsonPath": ".status.usage.cost", "priority": 1},
        {"name": "Region", "type": "string", "jsonPath": ".status.placement.region", "priority": 1},
        {"name": "Offer", "type": "string", "jsonPath": ".status.placement.offer", "priority": 1},
        {"name": "Model", "type": "string", "jsonPath": ".status.placement.gpuModel", "priority": 1},
        {"name": "PFLOPS-Hours", "type": "string", "jsonPath": ".status.usage.pflopsHours", "priority": 1,
         "description": "Normalised compute used: card-hours x the model's dense TFLOPS / 1000"},
    ],
):
    """A GPU job submitted to the hub. It runs on the member node whose offer fits its GPUs,
    latency tier, price cap, budget and placement policy best, and every card-hour is metered."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra=cel(*(_fixed_once_placed(f) for f in FIXED_ONCE_PLACED)),
    )

    KIND: ClassVar[str] = "ComputeJob"
    PLURAL: ClassVar[str] = "computejobs"

    api_version: str = API_VERSION
    kind: str = "ComputeJob"
    spec: ComputeJobSpec
    """What the tenant asks for."""
    status: ComputeJobStatus = Field(default_factory=ComputeJobStatus)
    """Written by the hub."""
