"""From API objects to the core's value types: the one place that knows both."""

from __future__ import annotations

from decimal import Decimal

from interconnect.api.v1alpha1 import ComputeJob, ComputeNode, ComputeOffer, to_api
from interconnect.api.v1alpha1 import Price as ApiPrice
from interconnect.core.money import Money, Price, parse_price
from interconnect.core.placement import JobRequest, NodeView, OfferView
from interconnect.core.vocabulary import Industry
from interconnect.core.workload_policy import Toleration


def price_of(price: ApiPrice) -> Price:
    return Price(parse_price(price.amount, price.currency), price.unit, price.cards_per_machine)


def job_request(job: ComputeJob) -> JobRequest:
    spec = job.spec
    policy = spec.placement
    created = job.metadata.creation_timestamp
    assert created is not None, "a ComputeJob read from the API has a creationTimestamp"
    return JobRequest(
        namespace=job.metadata.namespace or "",
        name=job.metadata.name,
        uid=job.metadata.uid or "",
        gpus_per_replica=spec.gpus.count,
        replicas=spec.replicas,
        models=frozenset(spec.gpus.models),
        min_memory_gib=spec.gpus.min_memory_gib or 0,
        origin=spec.origin,
        tier=spec.latency_tier,
        max_price=Money.of(spec.max_price.amount, spec.max_price.currency),
        budget=Money.of(spec.budget.amount, spec.budget.currency) if spec.budget else None,
        expected_hours=Decimal(spec.expected_hours) if spec.expected_hours else None,
        allowed_regions=frozenset(policy.allowed_regions) if policy else frozenset(),
        denied_regions=frozenset(policy.denied_regions) if policy else frozenset(),
        allowed_industries=frozenset(Industry(i) for i in policy.allowed_industries) if policy else frozenset(),
        denied_industries=frozenset(Industry(i) for i in policy.denied_industries) if policy else frozenset(),
        allowed_nodes=frozenset(policy.allowed_nodes) if policy else frozenset(),
        denied_nodes=frozenset(policy.denied_nodes) if policy else frozenset(),
        priority=spec.priority,
        created=created,
        images=spec.template.images,
        tolerations=spec.template.tolerations,
        vendors=frozenset(spec.gpus.vendors),
        min_tflops={precision: Decimal(least) for precision, least in (
            spec.gpus.min_tflops.model_dump(by_alias=False, exclude_none=True) if spec.gpus.min_tflops else {}
        ).items()},
        price_basis=spec.price_basis,
        min_green_share=Decimal(policy.min_green_share) if policy and policy.min_green_share else None,
        prefer_greener=bool(policy and policy.prefer == "greener"),
        price_band=Decimal(policy.price_band_percent or 0) / 100 if policy else Decimal(0),
    )


def node_view(node: ComputeNode, *, registered: bool, ready: bool, fenced: bool = False,
              month: str | None = None) -> NodeView:
    """The node as placement sees it; `month` (YYYY-MM) picks its declared green share (none: 0)."""
    spec = node.spec
    return NodeView(
        name=node.metadata.name,
        identity_code=node.status.identity_code,
        type=spec.type,
        region=spec.region,
        industry=Industry(spec.industry) if spec.industry else None,
        ready=ready,
        registered=registered,
        cordoned=spec.cordoned,
        fenced=fenced,
        green_share=spec.energy_facts().green_share_in(month) if month else Decimal(0),
    )


def offer_view(offer: ComputeOffer, *, cards_total: int, cards_free: int) -> OfferView:
    spec = offer.spec
    return OfferView(
        name=offer.metadata.name,
        node=spec.node_ref,
        gpu_model=spec.gpu_model,
        gpu_memory_gib=spec.gpu_memory_gib,
        cards_total=cards_total,
        cards_free=cards_free,
        price=price_of(spec.price),
        valid_from=spec.valid_from,
        valid_until=spec.valid_until,
        allowed_registries=frozenset(spec.allowed_registries),
        tolerations=frozenset(Toleration.of(to_api(t)) for t in spec.tolerations),
    )
