"""Fair share: priority, then each tenant's share of cards in use over its weight, then age."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from interconnect.core.fair_share import FairShareQueue, dominant_share, fair_share_order
from interconnect.core.placement import JobRequest, pending_order
from interconnect.core.quota import TenantUsage
from interconnect.core.vocabulary import LatencyTier

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def job(tenant: str, index: int, *, cards: int = 1, priority: int = 0, age: int | None = None) -> JobRequest:
    """A job of `tenant`, created `age` seconds ago (default: older for a smaller index)."""
    return JobRequest(
        namespace=tenant,
        name=f"{tenant}-{index:05d}",
        uid=f"{tenant}-{index}",
        gpus_per_replica=cards,
        origin="CN-SH",
        tier=LatencyTier.MS20,
        priority=priority,
        created=NOW - timedelta(seconds=100_000 - index if age is None else age),
    )


def names(jobs: list[JobRequest]) -> list[str]:
    return [j.name for j in jobs]


def test_b_with_5_jobs_is_not_stuck_behind_a_with_1000_older_ones() -> None:
    a = [job("a", i) for i in range(1000)]
    b = [job("b", i, age=1) for i in range(5)]  # submitted after all of A's
    order = fair_share_order([*a, *b])
    positions = [i for i, j in enumerate(order) if j.namespace == "b"]
    # Equal shares go by age (A first), then they alternate: B's 5 are among the first 10 picks.
    assert positions == [1, 3, 5, 7, 9]
    assert names(order[10:]) == [f"a-{i:05d}" for i in range(5, 1000)]


def test_cards_in_use_before_the_pass_count() -> None:
    a = [job("a", i) for i in range(20)]
    b = [job("b", i, age=1) for i in range(20)]
    order = fair_share_order([*a, *b], {"a": TenantUsage(cards=5)})
    # B catches up first (5 picks), then they alternate, A first on equal shares (older).
    assert [j.namespace for j in order[:9]] == ["b"] * 5 + ["a", "b", "a", "b"]


def test_weights_divide_the_share() -> None:
    a = [job("a", i) for i in range(300)]
    b = [job("b", i) for i in range(300)]
    order = fair_share_order([*a, *b], weights={"a": 3})
    first = order[:200]
    assert sum(j.namespace == "a" for j in first) == 150  # 3:1


def test_big_jobs_raise_the_share_more() -> None:
    a = [job("a", i, cards=8) for i in range(10)]
    b = [job("b", i, cards=1) for i in range(40)]
    order = fair_share_order([*a, *b])
    # Each of A's 8-card jobs lets 8 of B's 1-card jobs through.
    assert [j.namespace for j in order[:10]] == ["a"] + ["b"] * 8 + ["a"]


def test_priority_comes_before_fair_share() -> None:
    a = [job("a", i, priority=5) for i in range(10)]
    b = [job("b", i) for i in range(10)]
    order = fair_share_order([*a, *b], {"a": TenantUsage(cards=1000)})
    assert [j.namespace for j in order] == ["a"] * 10 + ["b"] * 10


def test_within_a_tenant_priority_then_age_then_name() -> None:
    jobs = [job("a", 1, age=10), job("a", 2, age=20), job("a", 3, age=10, priority=1), job("a", 0, age=10)]
    assert names(fair_share_order(jobs)) == ["a-00003", "a-00002", "a-00000", "a-00001"]
    # One tenant: exactly the plain pending order.
    assert fair_share_order(jobs) == pending_order(jobs)


def test_skipped_jobs_leave_the_share_alone() -> None:
    a = [job("a", i) for i in range(5)]
    b = [job("b", i, age=1) for i in range(5)]
    queue = FairShareQueue([*a, *b])
    picked = []
    for request in queue:
        picked.append(request.name)
        if request.namespace == "a":
            queue.skipped(request)  # nothing fits A's jobs
        else:
            queue.placed(request, model="H800")
    # A's jobs are all tried first: skipping does not raise A's share, B's placements do.
    assert picked == ["a-00000", "a-00001", "a-00002", "a-00003", "a-00004", *(f"b-0000{i}" for i in range(5))]
    assert queue.usage("b").cards == 5 and dict(queue.usage("b").cards_by_model) == {"H800": 5}
    assert queue.usage("a").cards == 0 and queue.share("b") == 5.0 and queue.usage("nobody").cards == 0


def test_moving_on_counts_as_skipped_and_only_the_last_job_can_be_resolved() -> None:
    queue = FairShareQueue([job("a", 0), job("a", 1), job("b", 0, age=1)])
    assert len(queue) == 3
    first = next(queue)
    second = next(queue)  # first implicitly skipped
    assert (first.name, second.name) == ("a-00000", "a-00001")
    with pytest.raises(ValueError, match="not the job the queue handed out last"):
        queue.placed(first)
    queue.placed(second, cards=3)
    with pytest.raises(ValueError):
        queue.skipped(second)
    assert queue.usage("a").cards == 3 and len(queue) == 1
    assert names(list(queue)) == ["b-00000"]


def test_pending_count_goes_down_as_jobs_are_placed() -> None:
    queue = FairShareQueue([job("a", 0), job("a", 1)], {"a": TenantUsage(pending=2)})
    for request in queue:
        queue.placed(request)
    assert queue.usage("a").pending == 0 and queue.usage("a").cards == 2


def test_duplicate_uids_are_refused() -> None:
    with pytest.raises(ValueError, match="duplicate"):
        FairShareQueue([job("a", 0), job("a", 0)])


def test_dominant_share_over_gpu_models() -> None:
    usage = TenantUsage(cards=10, cards_by_model={"H800": 4, "A100": 4})
    assert dominant_share(usage, 2) == 5.0
    capacity = {"H800": 8, "A100": 64}
    # H800 dominates: 4/8, over weight 2; the 2 cards of no known model count against all 72.
    assert dominant_share(usage, 2, capacity) == 0.25
    assert dominant_share(TenantUsage(cards=36), 1, capacity) == 0.5
    assert dominant_share(TenantUsage(cards=4, cards_by_model={"L40S": 4}), 1, capacity) == 4 / 72
    with pytest.raises(ValueError):
        dominant_share(usage, 0)


def test_drf_lets_a_tenant_on_a_scarce_model_wait() -> None:
    # A holds half of the scarce H800s; B holds more cards, but of a plentiful model.
    usage = {"a": TenantUsage(cards=4, cards_by_model={"H800": 4}),
             "b": TenantUsage(cards=16, cards_by_model={"A100": 16})}
    jobs = [job("a", 0), job("b", 0, age=1)]
    assert names(fair_share_order(jobs, usage)) == ["a-00000", "b-00000"]
    assert names(fair_share_order(jobs, usage, capacity={"H800": 8, "A100": 64})) == ["b-00000", "a-00000"]


# -- properties ---------------------------------------------------------------------------------

jobs_strategy = st.lists(
    st.tuples(
        st.sampled_from("abcdefg"),  # tenant
        st.integers(1, 8),  # cards
        st.sampled_from((0, 0, 0, 5, -3)),  # priority
        st.integers(0, 50),  # age, with ties
    ),
    min_size=1,
    max_size=120,
)


def build(spec: list[tuple[str, int, int, int]]) -> list[JobRequest]:
    return [job(t, i, cards=c, priority=p, age=a) for i, (t, c, p, a) in enumerate(spec)]


weights_strategy = st.dictionaries(st.sampled_from("abcdefg"), st.integers(1, 5))
usage_strategy = st.dictionaries(st.sampled_from("abcdefg"), st.integers(0, 30).map(lambda n: TenantUsage(cards=n)))


@settings(max_examples=200, deadline=None)
@given(jobs_strategy, weights_strategy, usage_strategy, st.randoms())
def test_each_pick_is_the_highest_priority_then_the_lowest_share_then_the_oldest(
    spec: list[tuple[str, int, int, int]], weights: dict[str, int], usage: dict[str, TenantUsage], rng: random.Random
) -> None:
    requests = build(spec)
    remaining = {r.uid: r for r in requests}
    cards = {t: u.cards for t, u in usage.items()}
    queue = FairShareQueue(requests, usage, weights)

    def share(tenant: str) -> float:
        return cards.get(tenant, 0) / weights.get(tenant, 1)

    for request in queue:
        del remaining[request.uid]
        for other in remaining.values():
            assert other.priority <= request.priority
            if other.priority == request.priority:
                # Never after a job of a tenant with a strictly higher share.
                assert share(other.namespace) >= share(request.namespace)
                if share(other.namespace) == share(request.namespace):
                    assert (other.created, other.namespace, other.name) >= (
                        request.created, request.namespace, request.name)
        assert queue.share(request.namespace) == share(request.namespace)
        if rng.random() < 0.7:
            queue.placed(request)
            cards[request.namespace] = cards.get(request.namespace, 0) + request.cards
        elif rng.random() < 0.5:
            queue.skipped(request)
    assert not remaining


@settings(max_examples=100, deadline=None)
@given(jobs_strategy, weights_strategy, usage_strategy, st.randoms())
def test_the_order_does_not_depend_on_the_input_order(
    spec: list[tuple[str, int, int, int]], weights: dict[str, int], usage: dict[str, TenantUsage], rng: random.Random
) -> None:
    requests = build(spec)
    shuffled = list(requests)
    rng.shuffle(shuffled)
    assert fair_share_order(requests, usage, weights) == fair_share_order(shuffled, usage, weights)


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 1000), st.lists(st.integers(1, 8), min_size=5, max_size=5), st.integers(1, 8), st.randoms())
def test_b_never_waits_for_more_than_its_share(
    n: int, b_sizes: list[int], a_size: int, rng: random.Random
) -> None:
    """While B has jobs waiting, A (equal weight, equal priority) never holds more than one of
    its jobs' worth of cards beyond B's: B's jobs go within the first few picks, whatever n."""
    a = [job("a", i, cards=a_size) for i in range(n)]
    b = [job("b", i, cards=size, age=0) for i, size in enumerate(b_sizes)]
    held = {"a": 0, "b": 0}
    queue = FairShareQueue([*a, *b])
    picks = 0
    for request in queue:
        picks += 1
        queue.placed(request)
        held[request.namespace] += request.cards
        if request.namespace == "a" and held["b"] < sum(b_sizes):
            assert held["a"] <= held["b"] + a_size
        if held["b"] == sum(b_sizes):
            break
    assert held["b"] == sum(b_sizes)
    # B's five jobs are placed within ceil(sum(B) / a_size) + 6 picks.
    assert picks <= -(-sum(b_sizes) // a_size) + 6
