"""Tenant quotas: each limit, the messages that name it, usage from the job list, and properties."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interconnect.core.fair_share import FairShareQueue
from interconnect.core.latency import LatencyTable
from interconnect.core.money import Money, Price
from interconnect.core.placement import Candidate, JobRequest, NodeView, OfferView, PlacementSnapshot, place
from interconnect.core.quota import (
    NO_USAGE,
    QUOTA_EXCEEDED,
    Charge,
    Month,
    QuotaJob,
    QuotaLimit,
    TenantQuota,
    TenantUsage,
    catalogue_vendor,
    check,
    check_estimate,
    limits_reached,
    tenant_usage,
    within_pending_limit,
    within_priority_cap,
)
from interconnect.core.vocabulary import BillingUnit, JobPhase, LatencyTier, NodeType

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
H800, A100, L40S = "NVIDIA-H800", "NVIDIA-A100-SXM4-80GB", "NVIDIA-L40S"


def cny(amount: str) -> Money:
    return Money(Decimal(amount), "CNY")


def job(name: str = "train", **changes: Any) -> JobRequest:
    base: dict[str, Any] = {
        "namespace": "team-a",
        "name": name,
        "uid": f"uid-{name}",
        "gpus_per_replica": 4,
        "origin": "CN-SH",
        "tier": LatencyTier.MS20,
        "created": NOW - timedelta(hours=1),
    }
    return JobRequest(**(base | changes))


def quota(**changes: Any) -> TenantQuota:
    return TenantQuota(**({"name": "team-a", "tenant": "team-a"} | changes))


# -- cards ---------------------------------------------------------------------------------------


def test_no_quota_admits_everything() -> None:
    request = job(gpus_per_replica=64, replicas=16)
    verdict = check(None, TenantUsage(cards=10_000), request)
    assert verdict.allowed and verdict.request is request and verdict.reason is None
    assert str(verdict) == "within quota"


def test_a_job_over_the_card_limit_names_the_limit_precisely() -> None:
    verdict = check(quota(cards=32), TenantUsage(cards=30), job())
    assert not verdict.allowed and verdict.limit is QuotaLimit.CARDS and verdict.request is None
    assert verdict.reason == QUOTA_EXCEEDED
    assert str(verdict) == (
        "QuotaExceeded: tenant team-a would use 34 cards (30 in use + 4), over its limit of 32 "
        "(ComputeQuota team-a, spec.limits.cards)"
    )


def test_reaching_the_card_limit_exactly_is_allowed_and_zero_admits_nothing() -> None:
    assert check(quota(cards=34), TenantUsage(cards=30), job()).allowed
    assert not check(quota(cards=0), NO_USAGE, job(gpus_per_replica=1)).allowed


def test_replicas_count_towards_the_cards() -> None:
    verdict = check(quota(cards=8), NO_USAGE, job(gpus_per_replica=4, replicas=3))
    assert verdict.limit is QuotaLimit.CARDS and "would use 12 cards" in verdict.message


# -- cards per model ----------------------------------------------------------------------------


def test_a_full_model_narrows_the_models_the_job_may_use() -> None:
    q = quota(cards_per_model={H800: 8})
    usage = TenantUsage(cards=8, cards_by_model={H800: 6})
    verdict = check(q, usage, job(models=frozenset({H800, A100})))
    assert verdict.allowed and verdict.request is not None
    assert verdict.request.models == frozenset({A100})


def test_a_job_for_any_model_is_narrowed_to_the_models_on_offer_with_room() -> None:
    q = quota(cards_per_model={H800: 8, A100: 4})
    usage = TenantUsage(cards_by_model={H800: 6})
    verdict = check(q, usage, job(), known_models={H800, A100, L40S})
    assert verdict.allowed and verdict.request is not None
    assert verdict.request.models == frozenset({A100, L40S})
    # With nothing full, the request is the job's own.
    assert check(q, NO_USAGE, job(), known_models={H800}).request == job()


def test_every_acceptable_model_full_is_refused_naming_the_closest_one() -> None:
    q = quota(cards_per_model={H800: 8, A100: 4})
    usage = TenantUsage(cards=9, cards_by_model={H800: 6, A100: 3})
    verdict = check(q, usage, job(models=frozenset({H800, A100})))
    assert verdict.limit is QuotaLimit.CARDS_PER_MODEL
    assert verdict.message == (
        f"tenant team-a would use 10 {H800} cards (6 in use + 4), over its limit of 8 (and {A100} likewise) "
        f"(ComputeQuota team-a, spec.limits.cardsPerModel[model={H800}].cards)"
    )


def test_models_without_a_limit_are_not_narrowed_away() -> None:
    q = quota(cards_per_model={H800: 0})
    verdict = check(q, NO_USAGE, job(models=frozenset({L40S})))
    assert verdict.allowed and verdict.request == job(models=frozenset({L40S}))


# -- cards per vendor ---------------------------------------------------------------------------

ASCEND, MLU = "Ascend910B3", "MLU370-X8"


def test_a_full_vendor_narrows_the_job_to_other_vendors_models() -> None:
    q = quota(cards_per_vendor={"huawei": 8})
    usage = TenantUsage(cards=6, cards_by_model={ASCEND: 6})
    verdict = check(q, usage, job(), known_models={ASCEND, "Ascend910B2", A100, MLU})
    assert verdict.allowed and verdict.request is not None
    assert verdict.request.models == frozenset({A100, MLU}), "every Ascend model counts against huawei's 8"


def test_a_vendors_cards_are_summed_over_its_models() -> None:
    q = quota(cards_per_vendor={"nvidia": 10})
    usage = TenantUsage(cards=8, cards_by_model={H800: 4, A100: 4, ASCEND: 16})
    assert usage.cards_of_vendor("nvidia", catalogue_vendor) == 8
    verdict = check(q, usage, job(models=frozenset({L40S})))
    assert verdict.limit is QuotaLimit.CARDS_PER_VENDOR
    assert verdict.message == (
        "tenant team-a would use 12 nvidia cards (8 in use + 4), over its limit of 10 "
        "(ComputeQuota team-a, spec.limits.cardsPerVendor[vendor=nvidia].cards)"
    )


def test_a_job_asking_by_vendor_is_held_by_its_vendors_limit_not_sent_elsewhere() -> None:
    q = quota(cards_per_vendor={"huawei": 4})
    verdict = check(q, TenantUsage(cards=4, cards_by_model={ASCEND: 4}), job(vendors=frozenset({"huawei"})),
                    known_models={ASCEND, A100})
    assert verdict.limit is QuotaLimit.CARDS_PER_VENDOR and "huawei cards" in verdict.message
    # Asking for huawei or nvidia, it is narrowed to the NVIDIA models.
    verdict = check(q, TenantUsage(cards=4, cards_by_model={ASCEND: 4}),
                    job(vendors=frozenset({"huawei", "nvidia"})), known_models={ASCEND, A100})
    assert verdict.allowed and verdict.request is not None and verdict.request.models == frozenset({A100})


def test_the_tighter_of_a_model_and_its_vendor_limit_is_named() -> None:
    q = quota(cards_per_model={A100: 6}, cards_per_vendor={"nvidia": 5})
    verdict = check(q, TenantUsage(cards=4, cards_by_model={A100: 4}), job(models=frozenset({A100})))
    assert verdict.limit is QuotaLimit.CARDS_PER_VENDOR and "over its limit of 5" in verdict.message
    q = quota(cards_per_model={A100: 5}, cards_per_vendor={"nvidia": 6})
    verdict = check(q, TenantUsage(cards=4, cards_by_model={A100: 4}), job(models=frozenset({A100})))
    assert verdict.limit is QuotaLimit.CARDS_PER_MODEL


def test_uncatalogued_models_count_against_no_vendor_and_a_custom_vendor_table_is_used() -> None:
    q = quota(cards_per_vendor={"nvidia": 4})
    assert check(q, TenantUsage(cards_by_model={"Home-Made-1": 40}), job(models=frozenset({"Home-Made-1"}))).allowed
    vendors = {"Home-Made-1": "nvidia"}.get
    verdict = check(q, TenantUsage(cards_by_model={"Home-Made-1": 4}), job(models=frozenset({"Home-Made-1"})),
                    vendor_of=vendors)
    assert verdict.limit is QuotaLimit.CARDS_PER_VENDOR


def test_the_estimate_check_catches_a_full_vendor() -> None:
    q = quota(cards_per_vendor={"nvidia": 4})
    full = TenantUsage(cards=4, cards_by_model={H800: 4})
    verdict = check_estimate(q, full, chosen(job()))
    assert verdict.limit is QuotaLimit.CARDS_PER_VENDOR and "8 nvidia cards" in verdict.message


# -- monthly spend ------------------------------------------------------------------------------


def test_a_reached_budget_holds_every_job_and_comes_first() -> None:
    q = quota(cards=0, monthly_spend=cny("1000"))
    usage = TenantUsage(spent={"CNY": cny("1000")}, month=Month(2026, 11))
    verdict = check(q, usage, job())
    assert verdict.limit is QuotaLimit.MONTHLY_SPEND
    assert verdict.message == (
        "tenant team-a has spent 1000.00 CNY in 2026-11, its monthly budget is 1000.00 CNY "
        "(ComputeQuota team-a, spec.limits.monthlySpend)"
    )
    under = TenantUsage(spent={"CNY": cny("999.99"), "USD": Money(Decimal(5000), "USD")})
    assert check(quota(monthly_spend=cny("1000")), under, job()).allowed


def test_a_job_paying_in_another_currency_than_the_budget_is_refused() -> None:
    usd = Money(Decimal(3), "USD")
    verdict = check(quota(monthly_spend=cny("1000")), NO_USAGE, job(max_price=usd))
    assert verdict.limit is QuotaLimit.MONTHLY_SPEND
    assert "budgets its monthly spend in CNY, the job would pay in USD" in verdict.message
    assert verdict.message.endswith("(ComputeQuota team-a, spec.limits.monthlySpend.currency)")


TABLE = LatencyTable.default()


def chosen(request: JobRequest, price: str = "10", model: str = A100, currency: str = "CNY") -> Candidate:
    node = NodeView(name="sh-1", identity_code="ID", type=NodeType.REGIONAL, region="CN-SH", ready=True,
                    registered=True)
    offer = OfferView(name="o", node="sh-1", gpu_model=model, gpu_memory_gib=80, cards_total=64, cards_free=64,
                      price=Price(Money(Decimal(price), currency), BillingUnit.CARD_HOUR))
    decision = place(request, PlacementSnapshot.of([node], [offer], TABLE, NOW, currency))
    assert decision.chosen is not None, decision.summary
    return decision.chosen


def test_the_estimate_at_the_chosen_offer_counts_against_the_budget() -> None:
    request = job(expected_hours=Decimal(10))  # 4 cards x 10 CNY x 10 h = 400 CNY
    q = quota(monthly_spend=cny("1000"))
    assert check_estimate(q, TenantUsage(spent={"CNY": cny("600")}), chosen(request)).allowed
    verdict = check_estimate(q, TenantUsage(spent={"CNY": cny("600.01")}), chosen(request))
    assert verdict.limit is QuotaLimit.MONTHLY_SPEND
    assert verdict.message == (
        "tenant team-a would spend 1000.01 CNY this month (600.01 CNY spent + 400.00 CNY estimated for the job "
        "on offer o), over its monthly budget of 1000.00 CNY (ComputeQuota team-a, spec.limits.monthlySpend)"
    )


def test_without_expected_hours_there_is_no_estimate_to_count() -> None:
    q = quota(monthly_spend=cny("1000"))
    assert check_estimate(q, TenantUsage(spent={"CNY": cny("999")}), chosen(job())).allowed
    assert check_estimate(None, NO_USAGE, chosen(job())).allowed


def test_the_estimate_check_refuses_an_offer_in_another_currency_and_a_full_model() -> None:
    q = quota(monthly_spend=cny("1000"), cards_per_model={A100: 4})
    usd = chosen(job(), currency="USD")
    assert check_estimate(q, NO_USAGE, usd).limit is QuotaLimit.MONTHLY_SPEND
    # A job for any model checked without known_models is caught after placement.
    full = TenantUsage(cards=4, cards_by_model={A100: 4})
    assert check(q, full, job()).allowed
    verdict = check_estimate(q, full, chosen(job()))
    assert verdict.limit is QuotaLimit.CARDS_PER_MODEL and f"8 {A100} cards" in verdict.message


# -- pending jobs ---------------------------------------------------------------------------------


def test_the_pending_limit_keeps_the_head_of_each_tenants_queue() -> None:
    a = [job(f"a{i:03d}", created=NOW - timedelta(seconds=1000 - i)) for i in range(200)]
    urgent = job("a-urgent", priority=10, created=NOW)
    b = [job(f"b{i}", namespace="team-b", created=NOW) for i in range(5)]
    requests = [*b, urgent, *a]
    kept, held = within_pending_limit(requests, {"team-a": quota(pending_jobs=50)})
    assert [j.name for j in kept] == [*(j.name for j in b), "a-urgent", *(f"a{i:03d}" for i in range(49))]
    assert len(held) == 151 and set(held) == {f"uid-a{i:03d}" for i in range(49, 200)}
    last = held["uid-a199"]
    assert last.limit is QuotaLimit.PENDING_JOBS
    assert last.message == (
        "tenant team-a has 201 pending jobs, over its limit of 50; this one is number 201 in its queue "
        "(ComputeQuota team-a, spec.limits.pendingJobs)"
    )


def test_without_a_pending_limit_nothing_is_held() -> None:
    requests = [job(f"j{i}") for i in range(10)]
    assert within_pending_limit(requests, {"team-a": quota(cards=1)}) == (requests, {})
    assert within_pending_limit(requests, {"team-a": quota(pending_jobs=10)}) == (requests, {})
    kept, held = within_pending_limit(requests, {"team-a": quota(pending_jobs=0)})
    assert kept == [] and len(held) == 10


def test_priority_is_granted_by_the_quota_not_chosen() -> None:
    """Without a quota the cap is 0; a quota's maxPriority raises it; negative priority is free."""
    jobs = [job("p1000", priority=1000), job("p0"), job("neg", priority=-5),
            job("b-p5", namespace="team-b", priority=5)]
    kept, held = within_priority_cap(jobs, {})
    assert [j.name for j in kept] == ["p0", "neg"]
    assert set(held) == {"uid-p1000", "uid-b-p5"}
    verdict = held["uid-p1000"]
    assert verdict.limit is QuotaLimit.MAX_PRIORITY
    assert "priority 1000 is above tenant team-a's cap of 0" in verdict.message
    assert "no ComputeQuota team-a: spec.maxPriority defaults to 0" in verdict.message
    quotas = {"team-a": quota(max_priority=1000), "team-b": quota(name="team-b", tenant="team-b", max_priority=4)}
    kept, held = within_priority_cap(jobs, quotas)
    assert [j.name for j in kept] == ["p1000", "p0", "neg"]
    assert "cap of 4 (ComputeQuota team-b, spec.maxPriority)" in held["uid-b-p5"].message
    assert held["uid-b-p5"].message.endswith("lower spec.priority or ask the hub admin to raise the cap")


# -- usage from the job list ----------------------------------------------------------------------


def qjob(phase: JobPhase, cards: int = 4, model: str | None = A100, namespace: str = "team-a",
         charges: tuple[Charge, ...] = ()) -> QuotaJob:
    return QuotaJob(namespace=namespace, phase=phase, cards=cards, gpu_model=model, charges=charges)


def test_usage_counts_active_cards_by_model_and_pending_jobs() -> None:
    jobs = [
        qjob(JobPhase.SCHEDULED, 4, A100),
        qjob(JobPhase.DISPATCHED, 8, H800),
        qjob(JobPhase.RUNNING, 2, A100),
        qjob(JobPhase.PENDING, 16, None),
        qjob(JobPhase.PENDING, 1, None),
        qjob(JobPhase.SUCCEEDED, 64, A100),
        qjob(JobPhase.FAILED, 64, A100),
        qjob(JobPhase.CANCELLED, 64, A100),
        qjob(JobPhase.RUNNING, 3, L40S, namespace="team-b"),
    ]
    usage = tenant_usage(jobs, NOW)
    assert set(usage) == {"team-a", "team-b"}
    a = usage["team-a"]
    assert (a.cards, dict(a.cards_by_model), a.pending, a.month) == (14, {A100: 6, H800: 8}, 2, Month(2026, 11))
    assert usage["team-b"].cards == 3 and dict(usage["team-b"].spent) == {}


def test_spend_counts_this_utc_month_pro_rata_and_rounds_once() -> None:
    november = Month(2026, 11)
    jobs = [
        # Entirely in November.
        qjob(JobPhase.SUCCEEDED, charges=(Charge(cny("100.005"), NOW - timedelta(days=2), NOW - timedelta(days=1)),)),
        qjob(JobPhase.SUCCEEDED, charges=(Charge(cny("0.0025"), NOW - timedelta(days=2), NOW - timedelta(days=1)),)),
        # Half in October, half in November: 30 CNY counts.
        qjob(JobPhase.RUNNING, charges=(
            Charge(cny("60"), november.start - timedelta(hours=5), november.start + timedelta(hours=5)),
        )),
        # Entirely in October: nothing counts.
        qjob(JobPhase.SUCCEEDED, charges=(
            Charge(cny("999"), november.start - timedelta(days=3), november.start - timedelta(days=2)),
        )),
        # No span: the month of its end, else of its start, else this month.
        qjob(JobPhase.SUCCEEDED, charges=(Charge(cny("1"), None, NOW), Charge(cny("2"), NOW, None),
                                          Charge(cny("4")), Charge(cny("8"), None, november.start - timedelta(1)))),
        qjob(JobPhase.SUCCEEDED, charges=(Charge(Money(Decimal("3.5"), "USD"), NOW, NOW),)),
    ]
    spent = tenant_usage(jobs, NOW)["team-a"].spent
    # 100.005 + 0.0025 + 30 + 7, rounded half up once: 137.0075 -> 137.01.
    assert spent == {"CNY": cny("137.01"), "USD": Money(Decimal("3.50"), "USD")}


def test_recorded_charges_count_like_the_jobs_own_and_outlive_them() -> None:
    """The ComputeUsage records of finished attempts (their jobs may be gone) add to the jobs'
    charges, with the same pro-rata rule; a tenant with records only still has its spend."""
    november = Month(2026, 11)
    jobs = [qjob(JobPhase.RUNNING, charges=(Charge(cny("5"), NOW - timedelta(hours=1), NOW),))]
    recorded = [
        ("team-a", Charge(cny("10"), NOW - timedelta(days=3), NOW - timedelta(days=2))),
        ("team-a", Charge(cny("60"), november.start - timedelta(hours=5), november.start + timedelta(hours=5))),
        ("team-a", Charge(cny("999"), november.start - timedelta(days=3), november.start - timedelta(days=2))),
        ("team-c", Charge(cny("7"), NOW - timedelta(hours=2), NOW - timedelta(hours=1))),
    ]
    usage = tenant_usage(jobs, NOW, recorded)
    assert usage["team-a"].spent_in("CNY") == cny("45.00")  # 5 running + 10 + 30 (half of 60)
    assert usage["team-a"].cards == 4
    c = usage["team-c"]
    assert (c.cards, c.pending, c.spent_in("CNY"), c.month) == (0, 0, cny("7.00"), november)


def test_months() -> None:
    assert str(Month.of(datetime(2026, 12, 31, 23, 59, tzinfo=UTC))) == "2026-12"
    assert Month(2026, 12).end == datetime(2027, 1, 1, tzinfo=UTC)
    assert Month.parse("2026-02") == Month(2026, 2)
    # A timestamp in another zone counts in its UTC month.
    east = datetime(2026, 12, 1, 2, 0, tzinfo=UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    assert Month.of(east - timedelta(hours=3)) == Month(2026, 11)
    for bad in ("2026-13", "26-01", "2026-1", "2026/01"):
        with pytest.raises(ValueError):
            Month.parse(bad)


def test_limits_reached_for_the_status_condition() -> None:
    q = quota(cards=8, cards_per_model={H800: 4}, cards_per_vendor={"nvidia": 4}, pending_jobs=2,
              monthly_spend=cny("10"))
    usage = TenantUsage(cards=8, cards_by_model={H800: 4}, pending=3, spent={"CNY": cny("10")})
    # The priority cap holds single jobs; usage never reaches it.
    assert [limit for limit, _ in limits_reached(q, usage)] == [
        limit for limit in QuotaLimit if limit is not QuotaLimit.MAX_PRIORITY]
    assert limits_reached(q, TenantUsage(cards=7, pending=2)) == []


def test_bad_quotas_are_refused() -> None:
    for changes in ({"weight": 0}, {"cards": -1}, {"pending_jobs": -1}, {"cards_per_model": {H800: -1}},
                    {"monthly_spend": cny("-1")}):
        with pytest.raises(ValueError):
            quota(**changes)
    with pytest.raises(ValueError):
        TenantUsage(cards=-1)


# -- properties ---------------------------------------------------------------------------------

MODELS = (H800, A100, L40S)
limits = st.fixed_dictionaries(
    {
        "cards": st.none() | st.integers(0, 40),
        "cards_per_model": st.dictionaries(st.sampled_from(MODELS), st.integers(0, 20), max_size=3),
    }
)
usages = st.builds(
    lambda by_model, extra: TenantUsage(cards=sum(by_model.values()) + extra, cards_by_model=by_model),
    st.dictionaries(st.sampled_from(MODELS), st.integers(0, 30), max_size=3),
    st.integers(0, 10),
)


@settings(max_examples=300, deadline=None)
@given(limits, usages, st.integers(1, 8), st.integers(1, 3), st.frozensets(st.sampled_from(MODELS)))
def test_a_verdict_is_right_either_way(
    lim: dict[str, Any], usage: TenantUsage, gpus: int, replicas: int, models: frozenset[str]
) -> None:
    q = quota(**lim)
    request = job(gpus_per_replica=gpus, replicas=replicas, models=models)
    verdict = check(q, usage, request, known_models=MODELS)
    cards = request.cards
    if verdict.allowed:
        assert verdict.request is not None
        assert q.cards is None or usage.cards + cards <= q.cards
        allowed_models = verdict.request.models or frozenset(MODELS)
        assert allowed_models and allowed_models <= (models or frozenset(MODELS))
        for model in allowed_models:
            limit = q.cards_per_model.get(model)
            assert limit is None or usage.cards_by_model.get(model, 0) + cards <= limit
        # Narrowing only removes the models that are full.
        for model in (models or frozenset(MODELS)) - allowed_models:
            assert usage.cards_by_model.get(model, 0) + cards > q.cards_per_model[model]
    elif verdict.limit is QuotaLimit.CARDS:
        assert q.cards is not None and usage.cards + cards > q.cards
    else:
        assert verdict.limit is QuotaLimit.CARDS_PER_MODEL
        for model in models or frozenset(MODELS):
            assert usage.cards_by_model.get(model, 0) + cards > q.cards_per_model[model]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 64), st.lists(st.integers(1, 8), min_size=1, max_size=300), st.randoms())
def test_a_pass_never_takes_a_tenant_over_its_cards(limit: int, sizes: list[int], rng: random.Random) -> None:
    """The acceptance, in miniature: however many jobs A submits, its cards never exceed its quota."""
    requests = [job(f"a{i}", gpus_per_replica=size, created=NOW - timedelta(seconds=i)) for i, size in enumerate(sizes)]
    requests += [job(f"b{i}", namespace="team-b", gpus_per_replica=1) for i in range(5)]
    quotas = {"team-a": quota(cards=limit)}
    in_use = rng.randint(0, limit)
    queue = FairShareQueue(requests, {"team-a": TenantUsage(cards=in_use)})
    placed_b = 0
    for request in queue:
        verdict = check(quotas.get(request.namespace), queue.usage(request.namespace), request)
        if verdict.allowed and rng.random() < 0.9:  # sometimes nothing fits
            queue.placed(request, model=A100)
            placed_b += request.namespace == "team-b"
        assert queue.usage("team-a").cards <= max(limit, in_use)
    assert placed_b <= 5
