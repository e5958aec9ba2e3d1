"""ComputeQuota: one tenant's limits and fair-share weight (cluster-scoped, short name ``cq``).

One quota per tenant namespace, named after it: ``metadata.name`` must equal ``spec.namespace``,
so two quotas can never claim the same tenant (cluster-scoped names are unique) and the
operator never has to decide between them. A single namespace rather than a list or a
selector: limits and weight are per tenant, and a quota spanning several namespaces would have
to say whether its limits are shared or per namespace.
"""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from kube_custom_resource.custom_resource import Scope
from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from interconnect.core.vocabulary import API_VERSION

from .common import (
    Conditions,
    Currency,
    GpuModelName,
    Model,
    MonetaryAmount,
    NamespaceName,
    Quantity,
    Resource,
    cel,
    immutable,
    rule,
    unique_by,
)

#: Condition type of a ComputeQuota: False (reason: the first limit reached) when a job of one
#: more card, or one more pending job, would be held.
WITHIN_LIMITS = "WithinLimits"

MONTH_PATTERN = r"^[0-9]{4}-(0[1-9]|1[0-2])$"

Cards = Annotated[int, Field(ge=0, le=1_000_000)]


class ModelCards(Model):
    """Cards of one GPU model."""

    model: GpuModelName
    """GPU model as the nvidia.com/gpu.product label spells it, e.g. NVIDIA-A100-SXM4-80GB."""
    cards: Cards
    """Cards of that model."""


VendorName = Literal["nvidia", "huawei", "cambricon", "hygon"]


class VendorCards(Model):
    """Cards of one accelerator vendor, all its models together."""

    vendor: VendorName
    """The vendor as the accelerator catalogue names it: nvidia, huawei, cambricon or hygon."""
    cards: Cards
    """Cards of that vendor's models."""


VendorCardsList = Annotated[
    list[VendorCards],
    AfterValidator(unique_by("vendor")),
    Field(
        max_length=4,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["vendor"]},
    ),
]

ModelCardsList = Annotated[
    list[ModelCards],
    AfterValidator(unique_by("model")),
    Field(
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["model"]},
    ),
]


class QuotaLimits(Model):
    """What the tenant may hold at once and spend per month. Each limit is optional (omitted: no
    limit); 0 is a limit too (nothing of that kind)."""

    model_config = ConfigDict(
        json_schema_extra=cel(
            rule(
                "!has(self.cards) || !has(self.cardsPerModel) || self.cardsPerModel.all(m, m.cards <= self.cards)",
                "cardsPerModel[].cards must not exceed cards (the total)",
                field_path=".cardsPerModel",
            ),
            rule(
                "!has(self.cards) || !has(self.cardsPerVendor) || self.cardsPerVendor.all(v, v.cards <= self.cards)",
                "cardsPerVendor[].cards must not exceed cards (the total)",
                field_path=".cardsPerVendor",
            ),
        )
    )

    cards: Cards | None = None
    """Cards the tenant's active jobs (Scheduled, Dispatched, Running) may hold at once, all
    models together. A job that would go over stays Pending with reason QuotaExceeded."""
    cards_per_model: ModelCardsList = Field(default_factory=list)
    """Cards per GPU model the tenant's active jobs may hold at once. A job that accepts several
    models is placed only on those still within their limit."""
    cards_per_vendor: VendorCardsList = Field(default_factory=list)
    """Cards per accelerator vendor (nvidia, huawei, cambricon, hygon: all the vendor's catalogued
    models together) the tenant's active jobs may hold at once. A job that accepts several vendors'
    models is placed only on models whose vendor (and model) is still within its limit."""
    pending_jobs: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    """Pending jobs considered for placement at once: the first ones of the tenant's queue
    (priority, then age); the others stay Pending with reason QuotaExceeded until they move up."""
    monthly_spend: MonetaryAmount | None = None
    """Budget per calendar month (UTC), from the metered cost. Once the month's spend reaches it,
    no new job of the tenant is placed (running jobs go on); a job with expectedHours is not
    placed when its estimated cost would take the spend over it. Jobs paying in another currency
    are not placed."""

    @model_validator(mode="after")
    def _cross_field(self) -> QuotaLimits:
        if self.cards is not None:
            over = [m.model for m in self.cards_per_model if m.cards > self.cards]
            if over:
                raise ValueError("cardsPerModel[].cards must not exceed cards (the total)")
            if any(v.cards > self.cards for v in self.cards_per_vendor):
                raise ValueError("cardsPerVendor[].cards must not exceed cards (the total)")
        return self


class ComputeQuotaSpec(Model):
    """Which tenant, its fair-share weight and its limits."""

    namespace: Annotated[NamespaceName, Field(json_schema_extra=immutable("namespace"))]
    """The tenant: the hub namespace whose ComputeJobs this quota governs. Equal to
    metadata.name (one quota per namespace). Immutable."""
    weight: Annotated[int, Field(ge=1, le=10_000)] = 1
    """Fair-share weight (1-10000): among pending jobs of equal priority, the tenant whose cards in
    use divided by its weight is lowest goes first. Default: 1, as for a tenant without a quota."""
    limits: QuotaLimits = Field(default_factory=QuotaLimits)
    """The limits. Omitted: none (the quota then only sets the weight)."""
    max_priority: Annotated[int, Field(ge=-1000, le=1000)] = 0
    """The highest spec.priority the tenant's ComputeJobs may have (-1000 to 1000): priority sorts
    before fair share, so it is granted here, not chosen by the tenant. A job above it stays
    Pending with reason QuotaExceeded naming this field. Default: 0, as for a tenant without a
    quota."""


class SpendThisMonth(Model):
    """Metered spend of one calendar month (UTC)."""

    amount: Quantity
    """Decimal string, rounded to the currency's minor unit."""
    currency: Currency
    """ISO 4217 currency code (the budget's)."""
    month: Annotated[str, StringConstraints(min_length=7, max_length=7, pattern=MONTH_PATTERN)]
    """The month, YYYY-MM (UTC)."""


class ComputeQuotaStatus(Model):
    """The tenant's usage against its limits, as the hub last counted it."""

    cards_in_use: Annotated[int, Field(ge=0)] | None = None
    """Cards held by the tenant's active jobs."""
    cards_in_use_per_model: ModelCardsList = Field(default_factory=list)
    """Cards held by the tenant's active jobs, per GPU model."""
    cards_in_use_per_vendor: VendorCardsList = Field(default_factory=list)
    """Cards held by the tenant's active jobs, per accelerator vendor (catalogued models only)."""
    pending_jobs: Annotated[int, Field(ge=0)] | None = None
    """The tenant's Pending jobs, held ones included."""
    spent_this_month: SpendThisMonth | None = None
    """Metered spend of the current month, in the budget's currency."""
    share: Quantity | None = None
    """Dominant share: cards in use divided by weight, a decimal string (lower goes first)."""
    conditions: Conditions = Field(default_factory=list)
    """WithinLimits, ... (metav1.Condition)."""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    """The metadata.generation the status reflects."""


class ComputeQuota(  # type: ignore[call-arg]
    Resource,
    scope=Scope.CLUSTER,
    kind="ComputeQuota",
    plural_name="computequotas",
    short_names=["cq"],
    subresources={"status": {}},
    printer_columns=[
        {"name": "Namespace", "type": "string", "jsonPath": ".spec.namespace"},
        {"name": "Weight", "type": "integer", "jsonPath": ".spec.weight", "priority": 1},
        {"name": "Cards", "type": "integer", "jsonPath": ".status.cardsInUse", "description": "cards in use"},
        {"name": "Card-Limit", "type": "integer", "jsonPath": ".spec.limits.cards"},
        {"name": "Pending", "type": "integer", "jsonPath": ".status.pendingJobs"},
        {"name": "Pending-Limit", "type": "integer", "jsonPath": ".spec.limits.pendingJobs", "priority": 1},
        {"name": "Spent", "type": "string", "jsonPath": ".status.spentThisMonth.amount",
         "description": "metered spend this month (UTC)"},
        {"name": "Budget", "type": "string", "jsonPath": ".spec.limits.monthlySpend.amount"},
        {"name": "Currency", "type": "string", "jsonPath": ".spec.limits.monthlySpend.currency", "priority": 1},
        {"name": "Within", "type": "string", "jsonPath": '.status.conditions[?(@.type=="WithinLimits")].status'},
    ],
):
    """A tenant's quota and fair-share weight: caps on the cards its ComputeJobs hold at once
    (in total and per GPU model), on its pending jobs and on its metered spend per calendar month.
    A job over a limit stays Pending with reason QuotaExceeded, naming the limit.

    Named after the tenant namespace it governs (metadata.name equals spec.namespace)."""

    model_config = ConfigDict(
        use_attribute_docstrings=True,
        json_schema_extra=cel(
            rule(
                "self.metadata.name == self.spec.namespace",
                "metadata.name must equal spec.namespace (one ComputeQuota per tenant namespace, named after it)",
                field_path=".spec.namespace",
            )
        ),
    )

    KIND: ClassVar[str] = "ComputeQuota"
    PLURAL: ClassVar[str] = "computequotas"

    api_version: str = API_VERSION
    kind: str = "ComputeQuota"
    spec: ComputeQuotaSpec
    """The tenant, its weight and its limits."""
    status: ComputeQuotaStatus = Field(default_factory=ComputeQuotaStatus)
    """Written by the hub."""

    @field_validator("spec")
    @classmethod
    def _named_after_namespace(cls, spec: ComputeQuotaSpec, info: ValidationInfo) -> ComputeQuotaSpec:
        # On spec (validated after metadata), so that the error names the field, as the CRD's does.
        metadata = info.data.get("metadata")
        if metadata is not None and metadata.name != spec.namespace:
            raise ValueError(
                "metadata.name must equal spec.namespace (one ComputeQuota per tenant namespace, named after it)"
            )
        return spec


__all__ = [
    "WITHIN_LIMITS",
    "ComputeQuota",
    "ComputeQuotaSpec",
    "ComputeQuotaStatus",
    "ModelCards",
    "QuotaLimits",
    "SpendThisMonth",
]
