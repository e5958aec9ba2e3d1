"""ComputeUsage: what one finished attempt of a ComputeJob was charged (cluster-scoped, short name ``cusage``).

The durable, append-only record of the bill. The operator writes one object per attempt whose
charges became final (it succeeded, failed, was stopped, or was lost with its node), named
``<job uid>-<attempt>``, before the job's status records the end; nobody changes it afterwards
(the whole spec is immutable). Quotas (the monthly spend) and the usage report read these
records, not the ComputeJobs, so deleting a job never changes a bill.

Cluster-scoped, so that the records outlive the tenant namespace and no tenant role grants
them: a tenant sees its costs in its own jobs' status while they exist, and asks the hub admin
for the bill.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from kube_custom_resource.custom_resource import Scope
from pydantic import (
    AwareDatetime,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from interconnect.core.vocabulary import API_VERSION, Industry

from .common import (
    Currency,
    GpuModelName,
    Model,
    NamespaceName,
    ObjectName,
    Price,
    Quantity,
    RegionCode,
    Resource,
    cel,
    immutable,
    rule,
)
from .job import EnergyUsage, IdentityCode, Reason
from .quota import MONTH_PATTERN

#: Labels every ComputeUsage carries, for selection (``kubectl get cusage -l ...``).
TENANT_LABEL = "interconnect.dev/tenant"
MONTH_LABEL = "interconnect.dev/month"
NODE_LABEL = "interconnect.dev/node"

JobUID = Annotated[str, StringConstraints(min_length=1, max_length=64)]


class ComputeUsageSpec(Model):
    """One attempt of one ComputeJob: where it ran, at what price, what it used and what it cost."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            rule("self.currency == self.price.currency", "currency must be the price's currency",
                 field_path=".currency"),
        )
    )

    tenant: NamespaceName
    """The tenant: the hub namespace of the ComputeJob."""
    job_name: ObjectName
    """The ComputeJob's name (it may since have been deleted)."""
    job_uid: Annotated[JobUID, Field(alias="jobUID")]
    """The ComputeJob's UID: with the attempt, what names this record."""
    attempt: Annotated[int, Field(ge=1, le=1_000_000)]
    """The attempt, from 1 (status.attemptHistory[].attempt of the job)."""
    node: ObjectName
    """The ComputeNode the attempt ran on."""
    identity_code: IdentityCode | None = None
    """That node's identity code."""
    region: RegionCode | None = None
    """That node's region."""
    industry: Industry | None = None
    """That node's industry, for industry nodes."""
    offer: ObjectName
    """The ComputeOffer the cards came from."""
    gpu_model: GpuModelName | None = None
    """The GPU model the attempt ran on."""
    price: Price
    """The price locked for the attempt when it was placed: its usage is billed at it."""
    card_hours: Quantity
    """Card-hours charged (GPUs x each pod's running time, up to the node's loss for an attempt lost
    with its node), a decimal string."""
    cost: Quantity
    """What the card-hours cost at the price, rounded once to the currency's minor unit, a decimal
    string in currency."""
    lost_card_hours: Quantity = "0"
    """Card-hours run after the node was declared lost, as known when the record was written:
    recorded, not charged."""
    pflops_hours: Quantity | None = Field(default=None, alias="pflopsHours")
    """Normalised compute charged: cardHours x the model's dense TFLOPS at precision / 1000 (the
    accelerator catalogue when the record was written); omitted for a model without a figure."""
    precision: Literal["bf16", "fp16"] | None = None
    """The precision of pflopsHours."""
    energy: EnergyUsage | None = None
    """Estimated energy of cardHours on the node (its PUE and green share of the month the attempt
    started), with the grid part's CO2; omitted for a model without a board-power figure."""
    currency: Currency
    """ISO 4217 currency of cost (the price's)."""
    started_at: AwareDatetime | None = None
    """When the attempt's first pod started (its first container). Omitted if no start was seen."""
    finished_at: AwareDatetime
    """When the attempt's last pod finished (or how far it was metered when it was stopped), or, for
    an attempt lost with its node, when the node was declared lost."""
    month: Annotated[str, StringConstraints(min_length=7, max_length=7, pattern=MONTH_PATTERN)]
    """The calendar month (UTC) of finishedAt, YYYY-MM: the bill it belongs to."""
    outcome: Reason
    """How the attempt ended, in CamelCase: Succeeded, Failed, NodeLost, BudgetExceeded,
    StartDeadlineExceeded, Deleted (the ComputeJob deleted while it ran), ..."""

    @model_validator(mode="after")
    def _currency_is_the_prices(self) -> ComputeUsageSpec:
        if self.currency != self.price.currency:
            raise ValueError("currency must be the price's currency")
        return self


class ComputeUsage(  # type: ignore[call-arg]
    Resource,
    scope=Scope.CLUSTER,
    kind="ComputeUsage",
    plural_name="computeusages",
    short_names=["cusage"],
    printer_columns=[
        {"name": "Tenant", "type": "string", "jsonPath": ".spec.tenant"},
        {"name": "Job", "type": "string", "jsonPath": ".spec.jobName", "priority": 1},
        {"name": "Attempt", "type": "integer", "jsonPath": ".spec.attempt", "priority": 1},
        {"name": "Node", "type": "string", "jsonPath": ".spec.node"},
        {"name": "Offer", "type": "string", "jsonPath": ".spec.offer", "priority": 1},
        {"name": "Month", "type": "string", "jsonPath": ".spec.month"},
        {"name": "Card-Hours", "type": "string", "jsonPath": ".spec.cardHours"},
        {"name": "Cost", "type": "string", "jsonPath": ".spec.cost"},
        {"name": "Currency", "type": "string", "jsonPath": ".spec.currency"},
        {"name": "Outcome", "type": "string", "jsonPath": ".spec.outcome"},
    ],
):
    """What one finished attempt of a ComputeJob was charged: the durable, append-only record of the
    bill, written once by the hub when the attempt's charges became final. Quotas and the usage
    report read these, so deleting a ComputeJob does not change a bill. Immutable; named
    <job uid>-<attempt>."""

    # The name is spec.jobUID-spec.attempt: the operator (the only writer) names it so, and the model
    # checks it; a CEL rule cannot (concatenating with metadata.name is beyond the CEL cost budget).
    model_config = ConfigDict(use_attribute_docstrings=True)

    KIND: ClassVar[str] = "ComputeUsage"
    PLURAL: ClassVar[str] = "computeusages"

    api_version: str = API_VERSION
    kind: str = "ComputeUsage"
    spec: Annotated[ComputeUsageSpec, Field(json_schema_extra=immutable("spec"))]
    """The attempt and its charges. Immutable: written once by the hub."""

    @field_validator("spec")
    @classmethod
    def _named_after_the_attempt(cls, spec: ComputeUsageSpec, info: ValidationInfo) -> ComputeUsageSpec:
        # On spec (validated after metadata), so that the error names the field, as the CRD's does.
        metadata = info.data.get("metadata")
        if metadata is not None and metadata.name != f"{spec.job_uid}-{spec.attempt}":
            raise ValueError("metadata.name must be spec.jobUID-spec.attempt (one ComputeUsage per attempt)")
        return spec


__all__ = [
    "MONTH_LABEL",
    "NODE_LABEL",
    "TENANT_LABEL",
    "ComputeUsage",
    "ComputeUsageSpec",
]
