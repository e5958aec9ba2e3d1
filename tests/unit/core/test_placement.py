"""Placement: every filter, the score order, the summary, and properties against an oracle."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from fractions import Fraction
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interconnect.core.latency import LatencyTable
from interconnect.core.money import Money, MoneyError, Price, round_to_minor_unit
from interconnect.core.placement import (
    FILTER_ORDER,
    Decision,
    JobRequest,
    NodeView,
    OfferView,
    PlacementSnapshot,
    Rejection,
    RejectReason,
    pending_order,
    place,
    what_would_fit,
)
from interconnect.core.vocabulary import BillingUnit, Industry, LatencyTier, NodeType
from interconnect.core.workload_policy import Toleration, image_registry

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
MS1, MS5, MS20 = LatencyTier.ordered()
TABLE = LatencyTable.default()
R = RejectReason


def cny(amount: str) -> Money:
    return Money(Decimal(amount), "CNY")


def per_card(amount: str, currency: str = "CNY") -> Price:
    return Price(Money(Decimal(amount), currency), BillingUnit.CARD_HOUR)


def per_machine(amount: str, cards: int) -> Price:
    return Price(cny(amount), BillingUnit.MACHINE_HOUR, cards)


def node(name: str = "sh-1", **changes: Any) -> NodeView:
    base: dict[str, Any] = {
        "name": name,
        "identity_code": f"ID-{name}",
        "type": NodeType.REGIONAL,
        "region": "CN-SH",
        "industry": None,
        "ready": True,
        "registered": True,
    }
    return NodeView(**(base | changes))


def offer(name: str = "offer-a", **changes: Any) -> OfferView:
    base: dict[str, Any] = {
        "name": name,
        "node": "sh-1",
        "gpu_model": "A100",
        "gpu_memory_gib": 80,
        "cards_total": 16,
        "cards_free": 16,
        "price": per_card("2.5"),
    }
    return OfferView(**(base | changes))


def job(**changes: Any) -> JobRequest:
    base: dict[str, Any] = {
        "namespace": "team-a",
        "name": "train",
        "uid": "uid-1",
        "gpus_per_replica": 4,
        "replicas": 2,
        "origin": "CN-SH",
        "tier": MS20,
        "created": NOW - HOUR,
    }
    return JobRequest(**(base | changes))


def snapshot(nodes: list[NodeView], offers: list[OfferView], now: datetime = NOW) -> PlacementSnapshot:
    return PlacementSnapshot.of(nodes, offers, TABLE, now)


def single(j: JobRequest, n: NodeView | None = None, o: OfferView | None = None) -> Decision:
    return place(j, snapshot([n or node()], [o or offer()]))


# -- every filter -------------------------------------------------------------------------------

FILTER_CASES: list[tuple[str, RejectReason, str, JobRequest, NodeView, OfferView]] = [
    ("missing node", R.NODE_MISSING, "node missing", job(), node(), offer(node="ghost")),
    ("unregistered", R.NODE_NOT_REGISTERED, "node not registered", job(), node(registered=False), offer()),
    ("not ready", R.NODE_NOT_READY, "node not ready", job(), node(ready=False), offer()),
    ("cordoned", R.NODE_CORDONED, "node cordoned", job(), node(cordoned=True), offer()),
    ("fenced", R.NODE_FENCED, "node fenced", job(), node(fenced=True), offer()),
    ("region denied", R.REGION_DENIED, "region denied", job(denied_regions=frozenset({"CN-SH"})), node(), offer()),
    (
        "region not allowed",
        R.REGION_NOT_ALLOWED,
        "region not allowed",
        job(allowed_regions=frozenset({"CN-BJ"})),
        node(),
        offer(),
    ),
    (
        "industry denied",
        R.INDUSTRY_DENIED,
        "industry denied",
        job(denied_industries=frozenset({Industry.FINANCE})),
        node(type=NodeType.INDUSTRY, industry=Industry.FINANCE),
        offer(),
    ),
    (
        "industry not allowed",
        R.INDUSTRY_NOT_ALLOWED,
        "industry not allowed",
        job(allowed_industries=frozenset({Industry.HEALTHCARE})),
        node(type=NodeType.INDUSTRY, industry=Industry.FINANCE),
        offer(),
    ),
    (
        "regional node when industries are required",
        R.INDUSTRY_NOT_ALLOWED,
        "industry not allowed",
        job(allowed_industries=frozenset({Industry.HEALTHCARE})),
        node(),
        offer(),
    ),
    ("node denied", R.NODE_DENIED, "node denied", job(denied_nodes=frozenset({"sh-1"})), node(), offer()),
    (
        "node not allowed",
        R.NODE_NOT_ALLOWED,
        "node not allowed",
        job(allowed_nodes=frozenset({"bj-1"})),
        node(),
        offer(),
    ),
    (
        "green share",
        R.GREEN_SHARE_TOO_LOW,
        "green share below minimum",
        job(min_green_share=Decimal("0.8")),
        node(green_share=Decimal("0.62")),
        offer(),
    ),
    ("tier", R.LATENCY_TIER_NOT_MET, "latency 20ms > 5ms", job(tier=MS5), node(region="CN-BJ"), offer()),
    ("tier 1ms", R.LATENCY_TIER_NOT_MET, "latency 5ms > 1ms", job(tier=MS1), node(region="CN-ZJ"), offer()),
    ("beyond 20ms", R.LATENCY_TIER_NOT_MET, "latency beyond 20ms", job(), node(region="CN-XJ"), offer()),
    ("unknown origin", R.LATENCY_TIER_NOT_MET, "latency unknown", job(origin="CN-XX"), node(), offer()),
    ("not yet valid", R.OFFER_NOT_YET_VALID, "offer not yet valid", job(), node(), offer(valid_from=NOW + HOUR)),
    ("expired", R.OFFER_EXPIRED, "offer expired", job(), node(), offer(valid_until=NOW)),
    (
        "registry",
        R.IMAGE_REGISTRY_NOT_ALLOWED,
        "image registry not allowed",
        job(images=("registry.example.cn/ml/train:1", "busybox")),
        node(),
        offer(allowed_registries=frozenset({"registry.example.cn"})),
    ),
    (
        "image without a registry",
        R.IMAGE_REGISTRY_NOT_ALLOWED,
        "image registry not allowed",
        job(images=("",)),
        node(),
        offer(allowed_registries=frozenset({"docker.io"})),
    ),
    (
        "toleration",
        R.TOLERATION_NOT_ALLOWED,
        "toleration not allowed",
        job(tolerations=frozenset({Toleration("dedicated", "Equal", "tenant-x", "NoSchedule")})),
        node(),
        offer(tolerations=frozenset({Toleration("dedicated", "Equal", "gpu", "NoSchedule")})),
    ),
    (
        "model",
        R.GPU_MODEL_NOT_ACCEPTED,
        "GPU model not accepted",
        job(models=frozenset({"H100"})),
        node(),
        offer(),
    ),
    (
        "vendor",
        R.VENDOR_NOT_ACCEPTED,
        "vendor not accepted",
        job(vendors=frozenset({"huawei"})),
        node(),
        offer(gpu_model="NVIDIA-A100-SXM4-80GB"),
    ),
    (
        "compute",
        R.COMPUTE_TOO_LOW,
        "compute below minimum",
        job(min_tflops={"bf16": Decimal(400)}),
        node(),
        offer(gpu_model="NVIDIA-A100-SXM4-80GB"),
    ),
    ("memory", R.GPU_MEMORY_TOO_SMALL, "GPU memory below minimum", job(min_memory_gib=96), node(), offer()),
    (
        "replica larger than a machine",
        R.REPLICA_LARGER_THAN_MACHINE,
        "replica larger than a machine",
        job(gpus_per_replica=16, replicas=1),
        node(),
        offer(price=per_machine("20", 8)),
    ),
    ("free cards", R.INSUFFICIENT_FREE_CARDS, "insufficient free cards", job(), node(), offer(cards_free=7)),
    (
        "currency",
        R.CURRENCY_MISMATCH,
        "currency mismatch",
        job(max_price=cny("9")),
        node(),
        offer(price=per_card("1", "USD")),
    ),
    (
        "snapshot currency",
        R.CURRENCY_MISMATCH,
        "currency mismatch",
        job(),
        node(),
        offer(price=per_card("1", "USD")),
    ),
    ("price", R.PRICE_ABOVE_MAX, "price above maxPrice", job(max_price=cny("2.4999")), node(), offer()),
    (
        "effective machine price",
        R.PRICE_ABOVE_MAX,
        "price above maxPrice",
        job(gpus_per_replica=3, replicas=1, max_price=cny("6.6666")),
        node(),
        offer(price=per_machine("20", 8)),
    ),
    (
        "budget",
        R.BUDGET_EXCEEDED,
        "budget exceeded",
        job(budget=cny("199.99"), expected_hours=Decimal(10)),  # 8 cards x 2.5 x 10 h = 200
        node(),
        offer(),
    ),
]


@pytest.mark.parametrize(("case", "reason", "label", "j", "n", "o"), FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
def test_each_filter_rejects_with_its_reason(
    case: str, reason: RejectReason, label: str, j: JobRequest, n: NodeView, o: OfferView
) -> None:
    decision = place(j, snapshot([n], [o]))
    assert decision.chosen is None
    assert not decision.placed
    (rejection,) = decision.rejected
    assert (rejection.offer, rejection.node, rejection.reason, rejection.label) == (o.name, o.node, reason, label)
    assert rejection.message.startswith(label) or rejection.message
    assert decision.summary == f"0/1 offers fit: 1 {label}"
    assert decision.reason_counts == {reason: 1}


def test_every_reason_is_covered_by_a_case() -> None:
    assert {case[1] for case in FILTER_CASES} == set(RejectReason)


@pytest.mark.parametrize(
    ("j", "n", "o"),
    [
        (job(), node(), offer(cards_free=8)),  # exactly enough cards
        (job(tier=MS5), node(region="CN-ZJ"), offer()),
        (job(tier=MS1), node(region="CN-SH"), offer()),
        (job(), node(), offer(valid_from=NOW, valid_until=NOW + timedelta(microseconds=1))),
        (job(max_price=cny("2.5")), node(), offer()),  # at the cap
        (job(gpus_per_replica=3, replicas=1, max_price=cny("6.6667")), node(), offer(price=per_machine("20", 8))),
        (job(gpus_per_replica=8, replicas=1, max_price=cny("2.5")), node(), offer(price=per_machine("20", 8))),
        (job(budget=cny("200"), expected_hours=Decimal(10)), node(), offer()),  # at the budget
        (job(budget=cny("1")), node(), offer()),  # no expected hours: no budget check
        (job(models=frozenset({"A100", "H100"}), min_memory_gib=80), node(), offer()),
        (job(denied_regions=frozenset({"CN-BJ"}), allowed_nodes=frozenset({"sh-1"})), node(), offer()),
        (
            job(allowed_industries=frozenset({Industry.FINANCE})),
            node(type=NodeType.INDUSTRY, industry=Industry.FINANCE),
            offer(),
        ),
        (job(max_price=Money(Decimal(3), "USD")), node(), offer(price=per_card("2.5", "USD"))),
        (job(images=("busybox", "nvcr.io/nvidia/pytorch:24.01")), node(), offer()),  # no restriction
        (
            job(images=("Registry.Example.CN/ml/train", "registry.example.cn:5000/x", "index.docker.io/library/x")),
            node(),
            offer(allowed_registries=frozenset({"registry.example.cn", "registry.example.cn:5000", "docker.io"})),
        ),
        (job(), node(), offer(allowed_registries=frozenset({"registry.example.cn"}))),  # no images to check
    ],
)
def test_boundaries_that_fit(j: JobRequest, n: NodeView, o: OfferView) -> None:
    decision = single(j, n, o)
    assert decision.chosen is not None, decision.summary
    assert decision.summary == "1/1 offers fit"
    assert decision.rejected == ()


def test_messages_explain() -> None:
    def message(j: JobRequest, n: NodeView, o: OfferView) -> str:
        return single(j, n, o).rejected[0].message

    assert message(job(tier=MS5), node(region="CN-BJ"), offer()) == (
        "latency 20ms > 5ms: RTT 17.57 ms between CN-SH and CN-BJ"
    )
    assert message(job(), node(), offer(cards_free=3)) == "needs 8 cards (2 x 4), 3 free"
    six_cards = job(gpus_per_replica=3, replicas=2, max_price=cny("2"))
    assert message(six_cards, node(), offer(price=per_machine("10", 4))) == (  # 2 machines / 6 cards
        "effective price 3.3333 CNY per card-hour > maxPrice 2.00 CNY"
    )
    assert message(job(budget=cny("10"), expected_hours=Decimal("1.5")), node(), offer()) == (
        "estimated cost 30.00 CNY for 1.5 h > budget 10.00 CNY"
    )
    assert message(job(), node(ready=False), offer()) == "node sh-1 is not Ready"
    assert message(job(), node(), offer(valid_until=NOW)) == "offer expired at 2025-03-01T08:00:00+00:00"
    compliant = offer(allowed_registries=frozenset({"registry.example.cn", "harbor.example.cn:8443"}))
    assert message(job(images=("registry.example.cn/a:1", "busybox:1.36")), node(), compliant) == (
        "image busybox:1.36 is from registry docker.io; the offer allows only harbor.example.cn:8443, "
        "registry.example.cn"
    )
    assert message(job(images=("ghcr.io/a/b", "ghcr.io/a/c", "quay.io/x", "alpine")), node(), compliant) == (
        "image ghcr.io/a/b is from registry ghcr.io (and 2 more); the offer allows only harbor.example.cn:8443, "
        "registry.example.cn"
    )
    assert message(job(images=("",)), node(), compliant).startswith("image (none) is from no registry;")


def test_registry_rule_comes_after_the_offer_window_and_before_what_it_holds() -> None:
    restricted = frozenset({"registry.example.cn"})
    decision = single(job(images=("busybox",)), node(), offer(allowed_registries=restricted, valid_until=NOW))
    assert decision.rejected[0].reason is R.OFFER_EXPIRED
    decision = single(
        job(images=("busybox",), models=frozenset({"H100"})), node(), offer(allowed_registries=restricted)
    )
    assert decision.rejected[0].reason is R.IMAGE_REGISTRY_NOT_ALLOWED
    assert FILTER_ORDER.index(R.OFFER_EXPIRED) + 1 == FILTER_ORDER.index(R.IMAGE_REGISTRY_NOT_ALLOWED)


def test_a_job_tolerating_a_taint_goes_only_where_the_offer_publishes_it() -> None:
    dedicated = Toleration("dedicated", "Equal", "gpu", "NoSchedule")
    plain = offer("plain", price=per_card("1"))
    pool = offer("pool", price=per_card("3"), tolerations=frozenset({dedicated}))
    decision = place(job(tolerations=frozenset({dedicated})), snapshot([node()], [plain, pool]))
    assert decision.chosen is not None and decision.chosen.offer == "pool"
    assert decision.rejected[0].reason is R.TOLERATION_NOT_ALLOWED
    assert "dedicated=gpu:NoSchedule" in decision.rejected[0].message
    # Without tolerations a job goes to either (the cheaper one).
    assert place(job(), snapshot([node()], [plain, pool])).chosen.offer == "plain"  # type: ignore[union-attr]


def test_a_restricted_offer_loses_the_job_to_an_open_one() -> None:
    cheap = offer("cheap", price=per_card("1"), allowed_registries=frozenset({"registry.example.cn"}))
    dear = offer("dear", price=per_card("3"))
    j = job(images=("registry.example.cn/ml/train:1", "docker.io/library/busybox"))
    decision = place(j, snapshot([node()], [cheap, dear]))
    assert decision.chosen is not None and decision.chosen.offer == "dear"
    assert decision.summary == "1/2 offers fit: 1 image registry not allowed"
    only_cn = job(images=("registry.example.cn/ml/train:1",))
    chosen = place(only_cn, snapshot([node()], [cheap, dear])).chosen
    assert chosen is not None and chosen.offer == "cheap"


def test_first_failing_filter_wins() -> None:
    # not ready AND too few cards AND too expensive: the node's health is reported
    decision = single(job(max_price=cny("1")), node(ready=False), offer(cards_free=1))
    assert decision.rejected[0].reason is R.NODE_NOT_READY
    # out of tier AND too few cards: where comes before what
    decision = single(job(tier=MS1), node(region="CN-BJ"), offer(cards_free=1))
    assert decision.rejected[0].reason is R.LATENCY_TIER_NOT_MET


def test_filter_order_is_the_documented_one() -> None:
    assert FILTER_ORDER[:5] == (R.NODE_MISSING, R.NODE_NOT_REGISTERED, R.NODE_NOT_READY, R.NODE_CORDONED, R.NODE_FENCED)
    assert FILTER_ORDER[-3:] == (R.CURRENCY_MISMATCH, R.PRICE_ABOVE_MAX, R.BUDGET_EXCEEDED)
    assert FILTER_ORDER.index(R.LATENCY_TIER_NOT_MET) < FILTER_ORDER.index(R.INSUFFICIENT_FREE_CARDS)


# -- the chosen candidate -----------------------------------------------------------------------


def test_candidate_carries_what_the_job_will_pay() -> None:
    j = job(gpus_per_replica=3, replicas=1, expected_hours=Decimal(10))
    decision = single(j, node(), offer(price=per_machine("20", 8), cards_free=5))
    chosen = decision.chosen
    assert chosen is not None
    assert (chosen.offer, chosen.node, chosen.identity_code, chosen.region) == ("offer-a", "sh-1", "ID-sh-1", "CN-SH")
    assert (chosen.tier, chosen.rtt_ms, chosen.cards, chosen.machines) == (MS1, 0.8, 3, 1)
    assert chosen.effective_price == cny("6.6667")
    assert chosen.hourly_cost == cny("20")
    assert chosen.unit_price == per_machine("20", 8)
    assert chosen.estimated_cost == cny("200.00")
    assert chosen.cards_free_after == 2
    assert chosen.gpu_model == "A100"


# -- the score ----------------------------------------------------------------------------------

SH, ZJ, BJ = node("sh-1"), node("zj-1", region="CN-ZJ"), node("bj-1", region="CN-BJ")
SCORE_CASES: list[tuple[str, JobRequest, list[NodeView], list[OfferView], str]] = [
    (
        "cheaper beats closer",
        job(),
        [SH, BJ],
        [offer("near", price=per_card("3")), offer("far", node="bj-1", price=per_card("2.9999"))],
        "far",
    ),
    (
        "same price: tighter tier",
        job(),
        [SH, ZJ],
        [offer("zj", node="zj-1"), offer("sh", node="sh-1")],
        "sh",
    ),
    (
        "same price and tier: lower RTT",
        job(origin="CN-SH"),
        [ZJ, node("js-1", region="CN-JS")],
        [offer("js", node="js-1"), offer("zj", node="zj-1")],
        "zj",  # Hangzhou 3.13 ms beats Nanjing 4.8 ms
    ),
    (
        "same price and latency: more free cards left",
        job(),
        [SH],
        [offer("tight", cards_free=8), offer("roomy", cards_free=12)],
        "roomy",
    ),
    ("all equal: offer name", job(), [SH], [offer("b"), offer("a"), offer("c")], "a"),
    (
        "machine-hour effective price beats a cheaper-looking card price",
        job(gpus_per_replica=8, replicas=1),
        [SH],
        [offer("card", price=per_card("2.1")), offer("machine", price=per_machine("16", 8))],  # 2.0 per card
        "machine",
    ),
    (
        "whole machines make a part-used machine dear",
        job(gpus_per_replica=4, replicas=1),
        [SH],
        [offer("card", price=per_card("3.9")), offer("machine", price=per_machine("16", 8))],  # 4.0 per card
        "card",
    ),
]


@pytest.mark.parametrize(("case", "j", "nodes", "offers", "winner"), SCORE_CASES, ids=[c[0] for c in SCORE_CASES])
def test_score_order(case: str, j: JobRequest, nodes: list[NodeView], offers: list[OfferView], winner: str) -> None:
    decision = place(j, snapshot(nodes, offers))
    assert decision.chosen is not None and decision.chosen.offer == winner
    assert place(j, snapshot(list(reversed(nodes)), list(reversed(offers)))) == decision


# -- summary ------------------------------------------------------------------------------------


def test_summary_counts_reasons_like_kube_scheduler() -> None:
    nodes = [SH, BJ]
    offers = [
        offer("p1", price=per_card("9")),
        offer("p2", price=per_card("8")),
        offer("l1", node="bj-1"),
        offer("l2", node="bj-1"),
        offer("c1", cards_free=1),
    ]
    decision = place(job(tier=MS5, max_price=cny("3")), snapshot(nodes, offers))
    assert decision.summary == (
        "0/5 offers fit: 2 latency 20ms > 5ms, 2 price above maxPrice, 1 insufficient free cards"
    )
    assert decision.reason_counts == {R.LATENCY_TIER_NOT_MET: 2, R.INSUFFICIENT_FREE_CARDS: 1, R.PRICE_ABOVE_MAX: 2}
    assert list(decision.reason_counts) == [R.LATENCY_TIER_NOT_MET, R.INSUFFICIENT_FREE_CARDS, R.PRICE_ABOVE_MAX]
    assert [r.offer for r in decision.rejected] == ["l1", "l2", "c1", "p1", "p2"]  # (node, name) order
    assert (decision.fitting, decision.considered) == (0, 5)


def test_summary_when_some_fit_and_when_nothing_is_published() -> None:
    decision = place(job(), snapshot([SH], [offer("ok"), offer("short", cards_free=0)]))
    assert decision.summary == "1/2 offers fit: 1 insufficient free cards"
    empty = place(job(), snapshot([SH], []))
    assert empty.summary == "0/0 offers fit: no offers published"
    assert empty.chosen is None and empty.rejected == () and empty.reason_counts == {}


# -- what would fit -----------------------------------------------------------------------------


def test_what_would_fit_names_the_price_and_the_tier() -> None:
    offers = [offer("near", price=per_card("3")), offer("zj", node="zj-1", price=per_card("2"))]
    snap = snapshot([SH, ZJ], offers)
    j = job(tier=MS1, max_price=cny("2.5"))
    assert place(j, snap).chosen is None
    hint = what_would_fit(j, snap)
    assert not hint.fits_now
    assert hint.max_price == cny("3")  # at 1 ms
    assert hint.tier is MS5  # at 2.5 CNY
    assert hint.max_price_at_loosest_tier == cny("2")
    assert place(dataclasses.replace(j, max_price=hint.max_price), snap).chosen is not None
    assert place(dataclasses.replace(j, tier=MS5), snap).chosen is not None


def test_what_would_fit_rounds_the_cap_up_so_it_really_fits() -> None:
    j = job(gpus_per_replica=3, replicas=1, max_price=cny("1"))
    snap = snapshot([SH], [offer(price=per_machine("20", 8))])
    hint = what_would_fit(j, snap)
    assert hint.max_price == cny("6.6667")
    assert place(dataclasses.replace(j, max_price=hint.max_price), snap).placed
    assert not place(dataclasses.replace(j, max_price=cny("6.6666")), snap).placed


def test_what_would_fit_when_nothing_would() -> None:
    hint = what_would_fit(job(), snapshot([SH], [offer(cards_free=1)]))
    assert (hint.fits_now, hint.max_price, hint.tier, hint.max_price_at_loosest_tier) == (False, None, None, None)
    assert what_would_fit(job(), snapshot([SH], [offer()])).fits_now


# -- queue order --------------------------------------------------------------------------------


def test_pending_order_priority_then_age_then_name() -> None:
    jobs = [
        job(name="late", created=NOW),
        job(name="urgent", priority=10, created=NOW),
        job(name="b", created=NOW - HOUR),
        job(name="a", created=NOW - HOUR),
        job(namespace="aaa", name="z", created=NOW - HOUR),
        job(name="oldest", created=NOW - 2 * HOUR),
    ]
    expected = ["urgent", "oldest", "z", "a", "b", "late"]
    assert [j.name for j in pending_order(jobs)] == expected
    assert [j.name for j in pending_order(reversed(jobs))] == expected


# -- validation ---------------------------------------------------------------------------------


def test_inputs_are_validated() -> None:
    with pytest.raises(ValueError, match="at least one"):
        job(gpus_per_replica=0)
    with pytest.raises(ValueError, match="timezone-aware"):
        job(created=datetime(2025, 1, 1))
    with pytest.raises(MoneyError, match="budget"):
        job(max_price=cny("1"), budget=Money(Decimal(1), "USD"))
    with pytest.raises(ValueError, match="expected_hours"):
        job(expected_hours=Decimal(-1))
    with pytest.raises(ValueError, match="unique"):
        snapshot([SH], [offer("x"), offer("x", node="zj-1")])
    with pytest.raises(ValueError, match="timezone-aware"):
        snapshot([SH], [], now=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="timezone-aware"):
        offer(valid_from=datetime(2025, 1, 1))


# -- properties against an oracle ---------------------------------------------------------------

REGIONS = ["CN-SH", "CN-ZJ", "CN-JS", "CN-BJ", "CN-GD", "CN-XJ"]
NODE_NAMES = ["n0", "n1", "n2", "n3"]
REGISTRIES = ["registry.example.cn", "docker.io", "nvcr.io"]
IMAGES = ["registry.example.cn/ml/train:1", "busybox", "nvcr.io/nvidia/pytorch:24.01", "ghcr.io/x/y"]
TIER_RANK = {t: i for i, t in enumerate(LatencyTier.ordered())}


def oracle_failures(j: JobRequest, snap: PlacementSnapshot, o: OfferView) -> list[RejectReason]:
    """Every filter the offer fails, computed the slow, obvious way."""
    fails: list[RejectReason] = []
    n = snap.nodes.get(o.node)
    if n is None:
        return [R.NODE_MISSING]
    fails += [R.NODE_NOT_REGISTERED] * (not n.registered)
    fails += [R.NODE_NOT_READY] * (not n.ready)
    fails += [R.NODE_CORDONED] * n.cordoned
    fails += [R.NODE_FENCED] * n.fenced
    fails += [R.REGION_DENIED] * (n.region in j.denied_regions)
    fails += [R.REGION_NOT_ALLOWED] * bool(j.allowed_regions and n.region not in j.allowed_regions)
    fails += [R.INDUSTRY_DENIED] * (n.industry is not None and n.industry in j.denied_industries)
    fails += [R.INDUSTRY_NOT_ALLOWED] * bool(j.allowed_industries and n.industry not in j.allowed_industries)
    fails += [R.NODE_DENIED] * (n.name in j.denied_nodes)
    fails += [R.NODE_NOT_ALLOWED] * bool(j.allowed_nodes and n.name not in j.allowed_nodes)
    tier = snap.latency.tier_between(j.origin, n.region)
    fails += [R.LATENCY_TIER_NOT_MET] * (tier is None or TIER_RANK[tier] > TIER_RANK[j.tier])
    fails += [R.OFFER_NOT_YET_VALID] * (o.valid_from is not None and snap.now < o.valid_from)
    fails += [R.OFFER_EXPIRED] * (o.valid_until is not None and snap.now >= o.valid_until)
    registries = {image_registry(i) for i in j.images}
    fails += [R.IMAGE_REGISTRY_NOT_ALLOWED] * bool(o.allowed_registries and not registries <= o.allowed_registries)
    fails += [R.TOLERATION_NOT_ALLOWED] * bool(j.tolerations and not j.tolerations <= o.tolerations)
    fails += [R.GPU_MODEL_NOT_ACCEPTED] * bool(j.models and o.gpu_model not in j.models)
    fails += [R.GPU_MEMORY_TOO_SMALL] * (o.gpu_memory_gib < j.min_memory_gib)
    machine = o.price.cards_per_machine
    fails += [R.REPLICA_LARGER_THAN_MACHINE] * (machine is not None and j.gpus_per_replica > machine)
    fails += [R.INSUFFICIENT_FREE_CARDS] * (o.cards_free < j.replicas * j.gpus_per_replica)
    currency = j.currency or snap.currency
    if o.price.currency != currency:
        return [*fails, R.CURRENCY_MISMATCH]
    effective = oracle_effective(j, o)
    fails += [R.PRICE_ABOVE_MAX] * (j.max_price is not None and effective > Fraction(j.max_price.amount))
    if j.budget is not None and j.expected_hours is not None:
        estimate = round_to_minor_unit(effective * j.cards * Fraction(j.expected_hours), currency)
        fails += [R.BUDGET_EXCEEDED] * (estimate > j.budget.amount)
    return fails


def oracle_effective(j: JobRequest, o: OfferView) -> Fraction:
    cards = j.replicas * j.gpus_per_replica
    if o.price.unit is BillingUnit.CARD_HOUR:
        return Fraction(o.price.amount.amount)
    machine = o.price.cards_per_machine
    assert machine is not None
    return Fraction(o.price.amount.amount) * -(-cards // machine) / cards


def oracle_score(j: JobRequest, snap: PlacementSnapshot, o: OfferView) -> tuple[Any, ...]:
    region = snap.nodes[o.node].region
    tier = snap.latency.tier_between(j.origin, region)
    assert tier is not None
    rtt = snap.latency.rtt_ms(j.origin, region)
    return (oracle_effective(j, o), TIER_RANK[tier], rtt, -(o.cards_free - j.cards), o.name)


def mostly(usual: Any, other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """`usual` seven times in eight: keeps many generated jobs placeable."""
    return st.sampled_from([True] * 7 + [False]).flatmap(lambda keep: st.just(usual) if keep else other)


def some(values: list[Any]) -> st.SearchStrategy[frozenset[Any]]:
    return mostly(frozenset(), st.frozensets(st.sampled_from(values), min_size=1, max_size=2))


money_amounts = st.decimals(min_value=0, max_value=10, places=2)
prices = st.builds(
    lambda amount, machine, currency: Price(
        Money(amount, currency),
        BillingUnit.MACHINE_HOUR if machine else BillingUnit.CARD_HOUR,
        machine or None,
    ),
    money_amounts,
    st.sampled_from([0, 0, 2, 4, 8]),
    mostly("CNY", st.just("USD")),
)
windows = mostly(None, st.sampled_from([NOW - HOUR, NOW, NOW + HOUR]))
healthy = st.sampled_from(
    [(True, True, False, False)] * 12
    + [(False, True, False, False), (True, False, False, False), (True, True, True, False), (True, True, False, True)]
)
nodes_strategy = st.lists(
    st.builds(
        lambda name, region, industry, health: NodeView(
            name=name,
            identity_code=f"ID-{name}",
            type=NodeType.REGIONAL if industry is None else NodeType.INDUSTRY,
            region=region,
            industry=industry,
            ready=health[0],
            registered=health[1],
            cordoned=health[2],
            fenced=health[3],
        ),
        st.sampled_from(NODE_NAMES),
        st.sampled_from([*REGIONS, "CN-SH", "CN-ZJ", "CN-JS"]),
        st.none() | st.sampled_from([Industry.FINANCE, Industry.HEALTHCARE]),
        healthy,
    ),
    min_size=2,
    max_size=4,
    unique_by=lambda n: n.name,
)


@st.composite
def offers_on(draw: st.DrawFn, nodes: list[NodeView]) -> list[OfferView]:
    names = [n.name for n in nodes]
    offers = draw(
        st.lists(
            st.builds(
                lambda i, node_name, model, memory, free, price, start, end, registries: OfferView(
                    name=f"o{i}",
                    node=node_name,
                    gpu_model=model,
                    gpu_memory_gib=memory,
                    cards_total=16,
                    cards_free=free,
                    price=price,
                    valid_from=start,
                    valid_until=end,
                    allowed_registries=registries,
                ),
                st.integers(0, 99),
                mostly(None, st.just("ghost")).flatmap(
                    lambda ghost: st.sampled_from(names) if ghost is None else st.just(ghost)
                ),
                st.sampled_from(["A100", "H100"]),
                st.sampled_from([40, 80, 80]),
                st.integers(0, 16),
                prices,
                windows,
                mostly(None, st.sampled_from([NOW - HOUR, NOW, NOW + HOUR])),
                some(REGISTRIES),
            ),
            min_size=1,
            max_size=12,
            unique_by=lambda o: o.name,
        )
    )
    return offers


jobs_strategy = st.builds(
    lambda gpus, replicas, models, memory, origin, tier, cap, budget, hours, regions, deny, inds, nodes_, images: (
        JobRequest(
            namespace="t",
            name="j",
            uid="u",
            gpus_per_replica=gpus,
            replicas=replicas,
            models=models,
            min_memory_gib=memory,
            origin=origin,
            tier=tier,
            max_price=None if cap is None else cny(str(cap)),
            budget=None if budget is None else cny(str(budget)),
            expected_hours=hours,
            allowed_regions=regions,
            denied_regions=deny,
            allowed_industries=inds,
            denied_nodes=nodes_,
            created=NOW,
            images=images,
        )
    ),
    st.integers(1, 4),
    st.integers(1, 2),
    some(["A100", "H100"]),
    st.sampled_from([0, 0, 40, 80]),
    mostly("CN-SH", st.sampled_from(REGIONS)),
    st.sampled_from([MS20, MS20, MS20, MS5, MS1]),
    st.none() | money_amounts,
    mostly(None, st.decimals(min_value=0, max_value=500, places=2)),
    st.none() | st.decimals(min_value=0, max_value=20, places=1),
    some(REGIONS),
    some(REGIONS),
    mostly(frozenset(), st.frozensets(st.sampled_from([Industry.FINANCE, Industry.HEALTHCARE]), min_size=1)),
    some(NODE_NAMES),
    st.lists(st.sampled_from(IMAGES), max_size=3).map(tuple),
)


scenarios = st.tuples(jobs_strategy, nodes_strategy.flatmap(lambda ns: st.tuples(st.just(ns), offers_on(ns))))


@settings(max_examples=300, deadline=None)
@given(scenarios)
def test_choice_is_the_best_feasible_offer_and_every_other_has_its_first_reason(
    scenario: tuple[JobRequest, tuple[list[NodeView], list[OfferView]]],
) -> None:
    j, (nodes, offers) = scenario
    snap = snapshot(nodes, offers)
    decision = place(j, snap)
    failures = {o.name: oracle_failures(j, snap, o) for o in offers}
    feasible = [o for o in offers if not failures[o.name]]
    assert decision.fitting == len(feasible)
    assert decision.considered == len(offers)
    if not feasible:
        assert decision.chosen is None
        assert {r.offer for r in decision.rejected} == {o.name for o in offers}
    else:
        best = min(feasible, key=lambda o: oracle_score(j, snap, o))
        assert decision.chosen is not None
        assert decision.chosen.offer == best.name
        assert (
            decision.chosen.effective_price.amount == round_to_minor_unit(oracle_effective(j, best) * 100, "CNY") / 100
        )
        assert Fraction(decision.chosen.hourly_cost.amount) == oracle_effective(j, best) * j.cards
    for rejection in decision.rejected:
        reasons = failures[rejection.offer]
        assert reasons, f"{rejection} rejected an offer that fits"
        assert rejection.reason is min(reasons, key=FILTER_ORDER.index)
    assert sum(decision.reason_counts.values()) == len(decision.rejected) == len(offers) - len(feasible)


@settings(max_examples=150, deadline=None)
@given(scenarios, st.randoms(use_true_random=False))
def test_result_is_independent_of_input_order(
    scenario: tuple[JobRequest, tuple[list[NodeView], list[OfferView]]], rnd: Any
) -> None:
    j, (nodes, offers) = scenario
    decision = place(j, snapshot(nodes, offers))
    shuffled_nodes, shuffled_offers = list(nodes), list(offers)
    rnd.shuffle(shuffled_nodes)
    rnd.shuffle(shuffled_offers)
    again = place(j, snapshot(shuffled_nodes, shuffled_offers))
    assert again == decision
    assert again.rejected == decision.rejected
    assert place(j, snapshot(nodes, offers)) == decision  # deterministic


@settings(max_examples=100, deadline=None)
@given(scenarios)
def test_what_would_fit_hints_really_place_the_job(
    scenario: tuple[JobRequest, tuple[list[NodeView], list[OfferView]]],
) -> None:
    j, (nodes, offers) = scenario
    snap = snapshot(nodes, offers)
    hint = what_would_fit(j, snap)
    assert hint.fits_now == place(j, snap).placed
    if hint.tier is not None:
        assert place(dataclasses.replace(j, tier=hint.tier), snap).placed
        tighter = [t for t in LatencyTier.ordered() if TIER_RANK[t] < TIER_RANK[hint.tier]]
        assert not any(place(dataclasses.replace(j, tier=t), snap).placed for t in tighter)
    if hint.max_price is not None and hint.max_price.currency == (j.currency or "CNY"):
        assert place(dataclasses.replace(j, max_price=hint.max_price), snap).placed


def test_rejection_is_a_named_tuple() -> None:
    (rejection,) = single(job(), node(ready=False), offer()).rejected
    assert isinstance(rejection, Rejection)
    assert rejection == Rejection("offer-a", "sh-1", R.NODE_NOT_READY, "node sh-1 is not Ready", "node not ready")


@settings(max_examples=100, deadline=None)
@given(scenarios, st.data())
def test_replacing_one_offer_equals_rebuilding_the_snapshot(
    scenario: tuple[JobRequest, tuple[list[NodeView], list[OfferView]]], data: st.DataObject
) -> None:
    j, (nodes, offers) = scenario
    snap = snapshot(nodes, offers)
    target = data.draw(st.sampled_from(offers))
    changed = dataclasses.replace(
        target,
        cards_free=data.draw(st.integers(0, 16)),
        node=data.draw(st.sampled_from([target.node, *NODE_NAMES])),
    )
    rebuilt = snapshot(nodes, [changed if o.name == target.name else o for o in offers])
    replaced = snap.with_offer(changed)
    assert replaced == rebuilt
    assert place(j, replaced) == place(j, rebuilt)
    assert place(j, snap) == place(j, snapshot(nodes, offers))  # the original is untouched
    added = dataclasses.replace(target, name="brand-new")
    assert place(j, snap.with_offer(added)) == place(j, snapshot(nodes, [*offers, added]))


# -- accelerators of every vendor (the catalogue) --------------------------------------------------

A100, L40S, H100, ASCEND, MLU = "NVIDIA-A100-SXM4-80GB", "NVIDIA-L40S", "NVIDIA-H100-80GB-HBM3", "Ascend910B3", \
    "MLU370-X8"


def mixed() -> list[OfferView]:
    """Per card-hour: the MLU370 is cheapest, then the Ascend, the L40S, the A100, the H100. Per
    PFLOPS-hour (BF16): H100 9.5/0.9895, L40S 4/0.36205, A100 4.5/0.312, MLU 1.5/0.096; the
    Ascend has no published figure."""
    return [offer("a100", gpu_model=A100, price=per_card("4.5")), offer("l40s", gpu_model=L40S, price=per_card("4")),
            offer("h100", gpu_model=H100, price=per_card("9.5")),
            offer("ascend", gpu_model=ASCEND, gpu_memory_gib=64, price=per_card("2")),
            offer("mlu", gpu_model=MLU, gpu_memory_gib=48, price=per_card("1.5"))]


def test_per_card_hour_the_cheapest_card_wins_whatever_its_vendor() -> None:
    decision = place(job(), snapshot([node()], mixed()))
    assert decision.chosen is not None and decision.chosen.offer == "mlu"


def test_per_pflops_hour_the_cheapest_compute_wins_and_unrated_models_are_explained() -> None:
    decision = place(job(price_basis="pflops-hour"), snapshot([node()], mixed()))
    assert decision.chosen is not None and decision.chosen.offer == "h100", "9.60 CNY per PFLOPS-hour, the lowest"
    [ascend] = [r for r in decision.rejected if r.offer == "ascend"]
    assert ascend.reason is R.COMPUTE_TOO_LOW and "cannot be priced per PFLOPS-hour" in ascend.message
    # Deterministic: the same answer whatever order the offers come in.
    assert place(job(price_basis="pflops-hour"), snapshot([node()], mixed()[::-1])).chosen == decision.chosen


def test_a_job_asking_by_capability_is_explained_per_offer() -> None:
    decision = place(job(vendors=frozenset({"huawei", "nvidia"}), min_tflops={"bf16": Decimal(250)}),
                     snapshot([node()], mixed()))
    assert decision.chosen is not None and decision.chosen.offer == "l40s", "the cheapest card above 250 BF16"
    why = {r.offer: (r.reason, r.message) for r in decision.rejected}
    assert why["mlu"] == (R.VENDOR_NOT_ACCEPTED, f"vendor cambricon of {MLU} is not one of huawei, nvidia")
    assert why["ascend"][0] is R.COMPUTE_TOO_LOW and "no published BF16 TFLOPS" in why["ascend"][1]
    assert "compute below minimum" in decision.summary or decision.placed
    only_huawei = place(job(vendors=frozenset({"huawei"})), snapshot([node()], mixed()))
    assert only_huawei.chosen is not None and only_huawei.chosen.offer == "ascend"
    strong = place(job(min_tflops={"bf16": Decimal(400)}), snapshot([node()], mixed())).chosen
    assert strong is not None and strong.offer == "h100"
    below = [r for r in place(job(min_tflops={"bf16": Decimal(400)}), snapshot([node()], mixed())).rejected
             if r.offer == "a100"]
    assert below[0].message == f"below 400 BF16 TFLOPS ({A100}: 312)"


# -- green power (issue 19) -----------------------------------------------------------------------


def _two_nodes(cheap_green: str, dear_green: str, dear_price: str) -> PlacementSnapshot:
    """Two nodes in Shanghai: "cheap" sells at 2.50 per card-hour, "dear" at `dear_price`."""
    return snapshot(
        [node("cheap", green_share=Decimal(cheap_green)), node("dear", green_share=Decimal(dear_green))],
        [offer("o-cheap", node="cheap"), offer("o-dear", node="dear", price=per_card(dear_price))],
    )


def test_a_minimum_green_share_refuses_the_other_nodes_and_says_why() -> None:
    decision = place(job(min_green_share=Decimal("0.8")), _two_nodes("0.62", "0.8", "3"))
    assert decision.chosen is not None and decision.chosen.offer == "o-dear", "0.8 meets a minimum of 0.8"
    (rejection,) = decision.rejected
    assert rejection.reason is R.GREEN_SHARE_TOO_LOW
    assert rejection.message == "node cheap declares 62% green power this month, below the minimum 80%"


def test_prefer_greener_takes_the_greener_offer_within_the_band_and_the_cheaper_outside_it() -> None:
    greener = job(prefer_greener=True, price_band=Decimal("0.05"))
    # 3% dearer (2.575 against 2.50): within 5%, the greener node wins.
    assert place(greener, _two_nodes("0.2", "0.9", "2.575")).chosen.offer == "o-dear"  # type: ignore[union-attr]
    # 8% dearer (2.70): outside the band, the cheaper one.
    assert place(greener, _two_nodes("0.2", "0.9", "2.70")).chosen.offer == "o-cheap"  # type: ignore[union-attr]
    # Exactly at the band's edge (5%: 2.625) is within it.
    assert place(greener, _two_nodes("0.2", "0.9", "2.625")).chosen.offer == "o-dear"  # type: ignore[union-attr]
    # Without the preference the cheapest wins, whatever the shares.
    assert place(job(), _two_nodes("0.2", "0.9", "2.575")).chosen.offer == "o-cheap"  # type: ignore[union-attr]


def test_equal_green_shares_in_the_band_fall_back_to_the_cheapest() -> None:
    greener = job(prefer_greener=True, price_band=Decimal("0.05"))
    assert place(greener, _two_nodes("0.5", "0.5", "2.575")).chosen.offer == "o-cheap"  # type: ignore[union-attr]


@settings(max_examples=200, deadline=None)
@given(
    shares=st.lists(st.decimals(min_value=0, max_value=1, places=2), min_size=1, max_size=6),
    prices=st.lists(st.decimals(min_value=1, max_value=5, places=2), min_size=6, max_size=6),
    band=st.decimals(min_value=0, max_value=Decimal("0.3"), places=2),
)
def test_prefer_greener_never_leaves_the_band_and_never_ignores_a_greener_offer_in_it(
        shares: list[Decimal], prices: list[Decimal], band: Decimal) -> None:
    nodes = [node(f"n{i}", green_share=share) for i, share in enumerate(shares)]
    offers = [offer(f"o{i}", node=f"n{i}", price=per_card(str(prices[i]))) for i in range(len(shares))]
    decision = place(job(prefer_greener=True, price_band=band), snapshot(nodes, offers))
    assert decision.chosen is not None
    cheapest = min(prices[: len(shares)])
    chosen = int(decision.chosen.offer[1:])
    assert prices[chosen] <= cheapest * (1 + band)
    assert all(shares[i] <= shares[chosen] for i in range(len(shares)) if prices[i] <= cheapest * (1 + band))
