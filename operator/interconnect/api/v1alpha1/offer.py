"""ComputeOffer: what one node sells (cluster-scoped, short name ``coffer``)."""

from __future__ import annotations

from typing import Annotated, ClassVar

from kube_custom_resource.custom_resource import Scope
from pydantic import AwareDatetime, ConfigDict, Field, StringConstraints, model_validator

from interconnect.core.vocabulary import API_VERSION

from .common import (
    Conditions,
    GpuModelName,
    Model,
    ObjectName,
    Price,
    Resource,
    cel,
    immutable,
    rule,
)
from .job import SetOf, Toleration

#: Condition type of a ComputeOffer: valid now, its node Ready, and capacity backing it.
AVAILABLE = "Available"


LabelValue = Annotated[str, Field(max_length=63)]

_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_PORT = r"(:[0-9]{1,5})?"
#: A registry as the first component of an image reference names it (Docker's rules): a host
#: name with a dot, or localhost, or any host with a port; lower case; no scheme, no path.
REGISTRY_PATTERN = rf"^(localhost{_PORT}|{_LABEL}(\.{_LABEL})+{_PORT}|{_LABEL}:[0-9]{{1,5}})$"
RegistryHost = Annotated[str, StringConstraints(min_length=1, max_length=253, pattern=REGISTRY_PATTERN)]
"""An image registry host, with its port if any, e.g. registry.example.cn or localhost:5000."""


class NodeSelector(Model):
    """Selects the member's Kubernetes nodes whose cards back the offer."""

    match_labels: Annotated[dict[str, LabelValue], Field(max_length=32)] = Field(default_factory=dict)
    """Node labels that must all match, e.g. {"pool": "a100"}. Empty: every node carrying gpuModel in
    its nvidia.com/gpu.product label."""


class ComputeOfferSpec(Model):
    """The cards on sale and their price."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            rule(
                "!has(self.validFrom) || !has(self.validUntil) || self.validUntil > self.validFrom",
                "validUntil must be after validFrom",
                field_path=".validUntil",
            ),
            rule(
                "!has(self.price) || !has(self.price.cardsPerMachine) || !has(self.cards) || "
                "self.cards % self.price.cardsPerMachine == 0",
                "cards must be a whole number of machines (a multiple of price.cardsPerMachine)",
                field_path=".cards",
            ),
        )
    )

    node_ref: Annotated[ObjectName, Field(json_schema_extra=immutable("nodeRef"))]
    """Name of the ComputeNode that sells the cards. Immutable."""
    gpu_model: GpuModelName
    """GPU model as the nvidia.com/gpu.product node label spells it, e.g. NVIDIA-A100-SXM4-80GB."""
    gpu_memory_gib: Annotated[int, Field(alias="gpuMemoryGiB", ge=1, le=4096)]
    """Memory of one card, in GiB."""
    cards: Annotated[int, Field(ge=1, le=100000)]
    """How many cards the offer sells (never more than the member really has free: the hub reconciles)."""
    price: Price
    """Price per billing unit."""
    valid_from: AwareDatetime | None = None
    """Start of the validity window (RFC 3339). Omitted: valid from creation."""
    valid_until: AwareDatetime | None = None
    """End of the validity window (RFC 3339), after validFrom. Omitted: no end."""
    node_selector: NodeSelector | None = None
    """Which of the member's nodes back the offer."""
    allowed_registries: Annotated[SetOf[RegistryHost], Field(max_length=32)] = Field(default_factory=list)
    """Image registries the offer runs images from, e.g. [registry.example.cn] (nodes with compliance
    needs): a job with an image from any other registry is not placed here. A host name with a dot,
    localhost, or a host with its port; lower case; Docker Hub is docker.io. Empty: any registry."""
    tolerations: Annotated[list[Toleration], Field(max_length=32)] = Field(default_factory=list)
    """Tolerations a job may carry here, for the taints of the offer's nodes (e.g. a dedicated pool):
    a job whose template tolerates anything else is not placed on this offer, and only these reach
    the member. Empty: none."""

    @model_validator(mode="after")
    def _cross_field(self) -> ComputeOfferSpec:
        if self.valid_from and self.valid_until and not self.valid_until > self.valid_from:
            raise ValueError("validUntil must be after validFrom")
        per_machine = self.price.cards_per_machine
        if per_machine and self.cards % per_machine:
            raise ValueError("cards must be a whole number of machines (a multiple of price.cardsPerMachine)")
        return self


class ComputeOfferStatus(Model):
    """Live card counts, reconciled against the member's real capacity."""

    cards_total: Annotated[int, Field(ge=0)] | None = None
    """Cards the offer can sell now: spec.cards capped by what the member's backing nodes have."""
    cards_free: Annotated[int, Field(ge=0)] | None = None
    """Cards neither reserved nor in use."""
    cards_reserved: Annotated[int, Field(ge=0)] | None = None
    """Cards held by placements not yet running."""
    cards_in_use: Annotated[int, Field(ge=0)] | None = None
    """Cards used by running work."""
    conditions: Conditions = Field(default_factory=list)
    """Available, ... (metav1.Condition)."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The metadata.generation the status reflects."""


class ComputeOffer(  # type: ignore[call-arg]
    Resource,
    scope=Scope.CLUSTER,
    kind="ComputeOffer",
    plural_name="computeoffers",
    short_names=["coffer"],
    subresources={"status": {}},
    printer_columns=[
        {"name": "Node", "type": "string", "jsonPath": ".spec.nodeRef"},
        {"name": "Model", "type": "string", "jsonPath": ".spec.gpuModel"},
        {"name": "Free", "type": "integer", "jsonPath": ".status.cardsFree"},
        {"name": "Total", "type": "integer", "jsonPath": ".status.cardsTotal"},
        {"name": "Price", "type": "string", "jsonPath": ".spec.price.amount"},
        {"name": "Currency", "type": "string", "jsonPath": ".spec.price.currency"},
        {"name": "Unit", "type": "string", "jsonPath": ".spec.price.unit"},
        {"name": "Memory", "type": "integer", "jsonPath": ".spec.gpuMemoryGiB", "priority": 1},
        {"name": "Until", "type": "date", "jsonPath": ".spec.validUntil", "priority": 1},
    ],
):
    """Cards a member node sells: GPU model and memory, how many, the price per billing unit and
    the validity window."""

    KIND: ClassVar[str] = "ComputeOffer"
    PLURAL: ClassVar[str] = "computeoffers"

    api_version: str = API_VERSION
    kind: str = "ComputeOffer"
    spec: ComputeOfferSpec
    """The cards on sale and their price."""
    status: ComputeOfferStatus = Field(default_factory=ComputeOfferStatus)
    """Written by the hub."""
