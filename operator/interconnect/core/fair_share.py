"""The order of one placement pass: priority, then each tenant's fair share, then age.

Pending jobs are offered to placement in this order:

1. priority, higher first (``spec.priority``, one scale for every tenant);
2. among equal priorities, the tenant with the lowest dominant share first: the cards its
   active jobs hold divided by its weight (``ComputeQuota.spec.weight``, 1 without a quota).
   Given the market's capacity per GPU model, the share is dominant-resource style (DRF, as
   Kueue's fair sharing and Armada do): the largest, over GPU models, of the tenant's cards of
   that model / the market's cards of that model, divided by the weight. Shares move within the
   pass: once one of tenant A's jobs is placed, A's share grows before the next pick;
3. then age (creation time), then namespace, name and UID, so the order is deterministic.

So a tenant that submits 1,000 jobs cannot keep one with 5 waiting: after each of its
placements its share passes the other tenant's, whose next job goes first.

Fair share orders the queue; it never takes cards back. Jobs that are already running keep
their cards even when their tenant is far above its share (no preemption): a tenant over its
share simply waits until others have caught up or the cards it holds are freed.

Cost: each tenant's jobs are sorted once (priority, age, name, UID); a heap holds one entry per
tenant that still has jobs, keyed by its next job's priority, the tenant's share, the job's age
and names. A pick pops that heap; `placed` or `skipped` pushes the tenant back with its next job
(and, after a placement, its new share). Only the tenant just picked changes share, and its
entry is out of the heap at that moment, so no entry is ever stale: a pass over n jobs of t
tenants costs O(n log n) to sort plus O(log t) per pick.

Shares are floats computed by one division of two integers (cards / (capacity x weight)):
correctly rounded, so equal shares compare equal, and distinct ones with the denominators a
market has (below 2**53 / cards) never round to the same float.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Generic, Protocol, TypeVar

from interconnect.core.quota import NO_QUOTA_WEIGHT, NO_USAGE, Ranked, TenantUsage, tenant_order_key


class FairShareJob(Ranked, Protocol):
    """What the fair-share order needs to know about a pending job (a `JobRequest` has it all)."""

    @property
    def cards(self) -> int: ...


Q = TypeVar("Q", bound=FairShareJob)


def dominant_share(usage: TenantUsage, weight: int, capacity: Mapping[str, int] | None = None) -> float:
    """The tenant's share of cards in use relative to its weight (see the module docstring).

    Without `capacity`: cards in use / weight. With it: the largest of (cards of a model in use
    / cards of that model in the market), divided by the weight; cards of a model the market
    does not list, or not attributed to a model, count against the market's total.
    """
    if weight < 1:
        raise ValueError(f"weight must be a positive int, not {weight!r}")
    if capacity is None:
        return usage.cards / weight
    total = max(1, sum(capacity.values()))
    share = 0.0
    generic = usage.cards
    for model, cards in usage.cards_by_model.items():
        generic -= cards
        market = capacity.get(model) or 0
        if market <= 0:
            generic += cards
            continue
        share = max(share, cards / (market * weight))
    if generic > 0:
        share = max(share, generic / (total * weight))
    return share


class _Tenant:
    __slots__ = ("jobs", "name", "next", "share", "usage", "weight")

    def __init__(self, name: str, jobs: list[FairShareJob], usage: TenantUsage, weight: int, share: float) -> None:
        self.name = name
        self.jobs = jobs
        self.next = 0
        self.usage = usage
        self.weight = weight
        self.share = share


# (-priority, share, created, namespace, name, uid, tenant): the UID is unique, so the tenant
# object is never compared.
_Entry = tuple[int, float, datetime, str, str, str, _Tenant]


class FairShareQueue(Generic[Q]):
    """Pending jobs in fair-share order for one placement pass.

        queue = FairShareQueue(requests, usage_by_tenant, weights)
        for request in queue:
            ...                                     # quota check, then place()
            queue.placed(request, model=chosen.gpu_model)   # or queue.skipped(request)

    Moving on without calling either counts as `skipped`. `usage(tenant)` is the tenant's usage
    including what this pass placed (for the quota check of its next job).
    """

    def __init__(
        self,
        requests: Iterable[Q],
        usage: Mapping[str, TenantUsage] | None = None,
        weights: Mapping[str, int] | None = None,
        *,
        capacity: Mapping[str, int] | None = None,
    ) -> None:
        usage = usage or {}
        weights = weights or {}
        self._capacity = None if capacity is None else dict(capacity)
        by_tenant: dict[str, list[FairShareJob]] = {}
        seen: set[str] = set()
        for job in requests:
            if job.uid in seen:
                raise ValueError(f"duplicate job UID {job.uid!r} in the queue")
            seen.add(job.uid)
            by_tenant.setdefault(job.namespace, []).append(job)
        self._tenants: dict[str, _Tenant] = {}
        self._heap: list[_Entry] = []
        for name, jobs in by_tenant.items():
            jobs.sort(key=tenant_order_key)
            tenant_usage = usage.get(name, NO_USAGE)
            weight = weights.get(name, NO_QUOTA_WEIGHT)
            tenant = _Tenant(name, jobs, tenant_usage, weight, dominant_share(tenant_usage, weight, self._capacity))
            self._tenants[name] = tenant
            self._heap.append(self._entry(tenant))
        heapq.heapify(self._heap)
        self._remaining = len(seen)
        self._current: tuple[FairShareJob, _Tenant] | None = None

    @staticmethod
    def _entry(tenant: _Tenant) -> _Entry:
        job = tenant.jobs[tenant.next]
        return (-job.priority, tenant.share, job.created, job.namespace, job.name, job.uid, tenant)

    def __iter__(self) -> Iterator[Q]:
        return self

    def __next__(self) -> Q:
        if self._current is not None:
            self._resolve(self._current[0], placed=False)
        if not self._heap:
            raise StopIteration
        entry = heapq.heappop(self._heap)
        tenant = entry[-1]
        assert isinstance(tenant, _Tenant)
        job = tenant.jobs[tenant.next]
        tenant.next += 1
        self._remaining -= 1
        self._current = (job, tenant)
        return job  # type: ignore[return-value]  # the jobs are the caller's Qs

    def __len__(self) -> int:
        """Jobs not yet handed out in this pass."""
        return self._remaining

    def placed(self, request: Q, *, model: str | None = None, cards: int | None = None) -> None:
        """`request` (the job just handed out) was placed: its tenant's share grows by its cards."""
        self._resolve(request, placed=True, model=model, cards=cards)

    def skipped(self, request: Q) -> None:
        """`request` was not placed (over quota, or nothing fits): its tenant's share stays."""
        self._resolve(request, placed=False)

    def _resolve(self, request: FairShareJob, *, placed: bool, model: str | None = None,
                 cards: int | None = None) -> None:
        if self._current is None or self._current[0] is not request:
            raise ValueError(f"{request.namespace}/{request.name} is not the job the queue handed out last")
        tenant = self._current[1]
        self._current = None
        if placed:
            tenant.usage = tenant.usage.with_placed(request.cards if cards is None else cards, model)
            tenant.share = dominant_share(tenant.usage, tenant.weight, self._capacity)
        if tenant.next < len(tenant.jobs):
            heapq.heappush(self._heap, self._entry(tenant))

    def usage(self, tenant: str) -> TenantUsage:
        """The tenant's usage: as given, plus what this pass placed."""
        known = self._tenants.get(tenant)
        return NO_USAGE if known is None else known.usage

    def share(self, tenant: str) -> float:
        """The tenant's current dominant share (0 for a tenant with no pending job in the pass)."""
        known = self._tenants.get(tenant)
        return 0.0 if known is None else known.share


def fair_share_order(
    requests: Iterable[Q],
    usage: Mapping[str, TenantUsage] | None = None,
    weights: Mapping[str, int] | None = None,
    *,
    capacity: Mapping[str, int] | None = None,
) -> list[Q]:
    """The whole order, as if every job were placed when its turn came (for explain and tests)."""
    queue = FairShareQueue(requests, usage, weights, capacity=capacity)
    out: list[Q] = []
    for job in queue:
        out.append(job)
        queue.placed(job)
    return out


__all__ = ["FairShareJob", "FairShareQueue", "dominant_share", "fair_share_order"]
