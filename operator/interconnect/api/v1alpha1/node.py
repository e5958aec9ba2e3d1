"""ComputeNode: one member cluster of the interconnect (cluster-scoped, short name ``cnode``)."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Annotated, ClassVar

from kube_custom_resource.custom_resource import Scope
from pydantic import AfterValidator, AwareDatetime, ConfigDict, Field, StringConstraints, model_validator

from interconnect.core import credit_code, identity
from interconnect.core.energy import EnergyFacts, GreenShare
from interconnect.core.vocabulary import API_VERSION, Industry, NodeType

from .common import (
    Conditions,
    GpuModelName,
    Model,
    NamespaceName,
    ObjectName,
    RegionCode,
    Resource,
    cel,
    immutable,
    must_be_positive,
    positive_decimal_rule,
    rule,
    unique_by,
)

MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"
FRACTION_PATTERN = r"^(0(\.[0-9]{1,6})?|1(\.0{1,6})?)$"
PUE_PATTERN = r"^([12](\.[0-9]{1,4})?|3(\.0{1,4})?)$"


class MonthlyGreenShare(Model):
    """The node's share of renewable electricity in one calendar month, and who says so."""

    month: Annotated[str, StringConstraints(min_length=7, max_length=7, pattern=MONTH_PATTERN)]
    """The month, YYYY-MM (UTC)."""
    fraction: Annotated[str, StringConstraints(max_length=8, pattern=FRACTION_PATTERN)]
    """The share, a decimal string from 0 to 1 (up to 6 decimals), e.g. "0.82"."""
    source: Annotated[str, StringConstraints(min_length=1, max_length=512)]
    """Where the claim comes from: a green-power purchase agreement, green certificates (GEC),
    the site's own generation; reported as given."""


class NodeEnergy(Model):
    """The node's energy facts: how efficient its facility is and how green its power. Placement
    filters and prefers by the green share; metering estimates energy and CO2 from them."""

    pue: Annotated[str, StringConstraints(max_length=6, pattern=PUE_PATTERN)] | None = None
    """Power usage effectiveness of the data centre (facility energy / IT energy), 1 to 3, e.g.
    "1.25". Omitted: energy is metered at the IT load (PUE 1)."""
    green_shares: Annotated[
        list[MonthlyGreenShare],
        AfterValidator(unique_by("month")),
        Field(max_length=120, json_schema_extra={"x-kubernetes-list-type": "map",
                                                 "x-kubernetes-list-map-keys": ["month"]}),
    ] = Field(default_factory=list)
    """Share of renewable electricity per month. A month without an entry takes the latest earlier
    one; a node without any has 0."""
    grid_region: RegionCode | None = None
    """The province whose grid emission factor applies, if not the node's region (e.g. power
    bought across a provincial border)."""

    def facts(self) -> EnergyFacts:
        return EnergyFacts(
            pue=None if self.pue is None else Decimal(self.pue),
            green_shares=tuple(GreenShare(g.month, Decimal(g.fraction), g.source) for g in self.green_shares),
            grid_region=self.grid_region,
        )


#: Condition types of a ComputeNode.
REGISTERED = "Registered"
"""The hub accepted the node (eligible operating entity) and issued its identity code."""
READY = "Ready"
"""The hub reaches the member and its heartbeat is fresh."""

# The check character is verified by the models (and so by the operator, which reports a wrong
# one as Registered=False/NotEligible), not by CEL: the API server's cost estimator prices
# charAt/indexOf on strings far beyond the per-rule budget (tried on 1.36: >100x over budget,
# even unrolled), so the schema enforces the 18-character pattern only.


def _valid_credit_code(code: str) -> str:
    error = credit_code.credit_code_error(code)
    if error is not None:
        raise ValueError(error)
    return code


CreditCode = Annotated[
    str,
    StringConstraints(min_length=18, max_length=18, pattern=credit_code.PATTERN),
    AfterValidator(_valid_credit_code),
]
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"
CNY_PATTERN = r"^(0|[1-9][0-9]{0,14})(\.[0-9]{1,2})?$"


class OperatingEntity(Model):
    """The legal entity that runs the member cluster (checked for eligibility when it joins)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=256)]
    """Registered name of the entity, e.g. 贵州算力科技有限公司."""
    credit_code: CreditCode
    """Unified social credit code (GB 32100-2015): 18 characters, the last a check character the API server verifies."""
    telecom_licence: Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^\S+$")]
    """Telecom business licence number, e.g. B1-20230001 (no spaces)."""
    registered_capital: Annotated[
        str,
        StringConstraints(max_length=18, pattern=CNY_PATTERN),
        AfterValidator(must_be_positive),
        Field(json_schema_extra=cel(positive_decimal_rule("registeredCapital"))),
    ]
    """Registered capital in CNY (yuan), a decimal string with at most 2 decimals, e.g. "50000000"."""


class SecretRef(Model):
    """Where a Secret holds a value: namespace, name and key on the hub."""

    name: ObjectName
    """Name of the Secret."""
    namespace: NamespaceName
    """Namespace of the Secret on the hub."""
    key: Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=SECRET_KEY_PATTERN)] = "kubeconfig"
    """Key in the Secret's data. Default: kubeconfig."""


class Connection(Model):
    """How the hub reaches the member cluster."""

    secret_ref: SecretRef
    """The Secret on the hub holding the member's kubeconfig (least-privilege identity for the hub)."""
    namespace: NamespaceName
    """Namespace on the member where dispatched work runs."""


class ComputeNodeSpec(Model):
    """The member cluster's identity, operator and connection."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            rule(
                "!has(self.type) || self.type != 'industry' || has(self.industry)",
                "industry is required when type is industry",
                field_path=".industry",
                reason="FieldValueRequired",
            ),
            rule(
                "!has(self.type) || self.type == 'industry' || !has(self.industry)",
                "industry is only allowed when type is industry",
                field_path=".industry",
                reason="FieldValueForbidden",
            ),
            rule(
                "!has(self.type) || self.type != 'industry' || has(self.parentNode)",
                "parentNode (the industry node's regional node) is required when type is industry",
                field_path=".parentNode",
                reason="FieldValueRequired",
            ),
            rule(
                "!has(self.type) || self.type == 'industry' || !has(self.parentNode)",
                "parentNode is only allowed when type is industry",
                field_path=".parentNode",
                reason="FieldValueForbidden",
            ),
        )
    )

    type: Annotated[NodeType, Field(json_schema_extra=immutable("type"))]
    """regional (one per province) or industry (serves one industry under a regional node). Immutable."""
    region: Annotated[RegionCode, Field(json_schema_extra=immutable("region"))]
    """ISO 3166-2:CN code of the province where the cluster runs, e.g. CN-GZ. Immutable."""
    industry: Annotated[Industry, Field(json_schema_extra=immutable("industry"))] | None = None
    """The industry an industry node serves: required for industry nodes, forbidden for regional ones. Immutable."""
    parent_node: ObjectName | None = None
    """Name of the regional ComputeNode an industry node belongs to: required for industry nodes,
    forbidden for regional ones."""
    operating_entity: OperatingEntity
    """The legal entity that runs the cluster."""
    connection: Connection
    """How the hub reaches the member."""
    cordoned: bool = False
    """When true, no new work is placed on the node; running work stays. Default: false."""
    energy: NodeEnergy | None = None
    """PUE, green share per month and grid region (optional): for placement by green power and for
    the energy estimate of every job's usage. Omitted: PUE 1, no green power."""

    def energy_facts(self) -> EnergyFacts:
        """The core's view of `energy` (no facts: PUE 1, no green power, the node's own region)."""
        return EnergyFacts() if self.energy is None else self.energy.facts()

    @model_validator(mode="after")
    def _industry_fields(self) -> ComputeNodeSpec:
        industry_node = self.type == NodeType.INDUSTRY
        if industry_node and self.industry is None:
            raise ValueError("industry is required when type is industry")
        if not industry_node and self.industry is not None:
            raise ValueError("industry is only allowed when type is industry")
        if industry_node and self.parent_node is None:
            raise ValueError("parentNode (the industry node's regional node) is required when type is industry")
        if not industry_node and self.parent_node is not None:
            raise ValueError("parentNode is only allowed when type is industry")
        return self


class GpuCapacity(Model):
    """Cards of one GPU model in the member cluster, as last observed."""

    model: GpuModelName
    """GPU model (the nvidia.com/gpu.product node label)."""
    total: Annotated[int, Field(ge=0)]
    """Cards installed (node capacity)."""
    allocatable: Annotated[int, Field(ge=0)]
    """Cards the member's nodes can allocate (node allocatable)."""
    in_use: Annotated[int, Field(ge=0)]
    """Cards requested by pods running in the member."""


IDENTITY_CODE_RULE = rule(
    "!has(oldSelf.identityCode) || (has(self.identityCode) && self.identityCode == oldSelf.identityCode)",
    "identityCode never changes once issued",
    field_path=".identityCode",
)


class ComputeNodeStatus(Model):
    """What the hub observed and issued."""

    model_config = ConfigDict(json_schema_extra=cel(IDENTITY_CODE_RULE))

    identity_code: Annotated[str, StringConstraints(max_length=identity.LENGTH, pattern=identity.PATTERN)] | None = None
    """Unified identity code issued by the hub, e.g. CIRGZ000001E: unique, never reused, never changed."""
    conditions: Conditions = Field(default_factory=list)
    """Registered, Ready, ... (metav1.Condition)."""
    capacity: Annotated[
        list[GpuCapacity],
        Field(
            max_length=32,
            json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["model"]},
        ),
    ] = Field(default_factory=list)
    """Live capacity per GPU model."""
    last_heartbeat_time: AwareDatetime | None = None
    """When the hub last reached the member."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The metadata.generation the status reflects."""


class ComputeNode(  # type: ignore[call-arg]
    Resource,
    scope=Scope.CLUSTER,
    kind="ComputeNode",
    plural_name="computenodes",
    short_names=["cnode"],
    subresources={"status": {}},
    printer_columns=[
        {"name": "Identity", "type": "string", "jsonPath": ".status.identityCode"},
        {"name": "Type", "type": "string", "jsonPath": ".spec.type"},
        {"name": "Region", "type": "string", "jsonPath": ".spec.region"},
        {"name": "Industry", "type": "string", "jsonPath": ".spec.industry", "priority": 1},
        {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
        {"name": "Cordoned", "type": "boolean", "jsonPath": ".spec.cordoned", "priority": 1},
        {"name": "Heartbeat", "type": "date", "jsonPath": ".status.lastHeartbeatTime", "priority": 1},
    ],
):
    """A member cluster of the interconnect: a regional node (one per province) or an industry node.

    The hub checks its operating entity, issues its identity code, connects through the
    kubeconfig Secret and keeps a heartbeat.
    """

    KIND: ClassVar[str] = "ComputeNode"
    PLURAL: ClassVar[str] = "computenodes"

    api_version: str = API_VERSION
    kind: str = "ComputeNode"
    spec: ComputeNodeSpec
    """The member cluster's identity, operator and connection."""
    status: ComputeNodeStatus = Field(default_factory=ComputeNodeStatus)
    """Written by the hub."""

    def heartbeat_age(self, now: dt.datetime) -> dt.timedelta | None:
        """How long ago the last heartbeat was, or None before the first."""
        if self.status.last_heartbeat_time is None:
            return None
        return now - self.status.last_heartbeat_time
