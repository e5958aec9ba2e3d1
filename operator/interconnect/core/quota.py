"""Tenant quotas: may this job be placed now, and if not, which limit says no.

A tenant is a hub namespace. Its `ComputeQuota` (at most one: the quota is named after the
namespace) caps, at once:

- ``spec.limits.cards``: cards held by the tenant's active jobs (Scheduled, Dispatched, Running);
- ``spec.limits.cardsPerModel``: the same, per GPU model;
- ``spec.limits.cardsPerVendor``: the same, per accelerator vendor (all its models together; a
  model's vendor is the accelerator catalogue's, so cards of an uncatalogued model count against
  no vendor limit);
- ``spec.limits.pendingJobs``: pending jobs considered for placement; the tenant's own queue
  (priority, then age) decides which ones, the rest are held with ``QuotaExceeded``;
- ``spec.limits.monthlySpend``: the metered cost of the calendar month (UTC).

Each limit is optional (omitted: no limit); 0 is a real limit (nothing of that kind). A tenant
without a ComputeQuota has no limits and a fair-share weight of 1.

Monthly spend, decided here:

- Spend is what was metered: each attempt's cost, attributed to the months its run overlaps in
  proportion to wall time (exact for the usual attempt that starts and ends in one month). A
  finished attempt's cost and span come from its ComputeUsage record (the job may be gone); a
  running attempt's from its job, up to now.
- A job is not placed once the tenant's spend this month has reached the budget (spent >=
  budget), whatever the job.
- A job that declares ``expectedHours`` is also not placed when its estimated cost at the offer
  placement chose (the same estimate as the job's own ``budget`` check: effective price x cards
  x expected hours; placement picks the cheapest fitting offer, so no other offer would have a
  lower estimate) would take the month's spend over the budget (`check_estimate`). A job
  without ``expectedHours`` has no estimate: it is admitted while the budget is not reached.
  Using maxPrice instead of the chosen price would refuse jobs the budget can pay for.
- What running jobs will still cost is not reserved: spend can overshoot the budget by what the
  jobs already running accrue after it is reached. Stopping them would be preemption, which is
  out of scope: a quota never stops a running job, it only keeps new ones from starting.
- A job that pays in another currency than the budget's is refused: without exchange rates the
  budget could not see that spend.

Pure and synchronous, like the rest of the core.
"""

from __future__ import annotations

import enum
from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from fractions import Fraction
from types import MappingProxyType
from typing import NamedTuple, Protocol, TypeVar

from interconnect.core.accelerators import by_name
from interconnect.core.money import Money, MoneyError, round_to_minor_unit
from interconnect.core.placement import Candidate, JobRequest, Queued
from interconnect.core.vocabulary import ACTIVE_PHASES, JobPhase

QUOTA_EXCEEDED = "QuotaExceeded"
"""The reason a job over quota is held with (condition Scheduled=False, reason QuotaExceeded)."""


def _require_aware(value: datetime | None, what: str) -> None:
    if value is not None and value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (Kubernetes timestamps are UTC)")


class Month(NamedTuple):
    """A calendar month in UTC, e.g. Month(2026, 11), shown as "2026-11"."""

    year: int
    month: int

    @classmethod
    def of(cls, when: datetime) -> Month:
        _require_aware(when, "when")
        utc = when.astimezone(UTC)
        return cls(utc.year, utc.month)

    @classmethod
    def parse(cls, text: str) -> Month:
        year, _, month = text.partition("-")
        if len(year) != 4 or len(month) != 2 or not (year + month).isdigit() or not 1 <= int(month) <= 12:
            raise ValueError(f"a month is YYYY-MM, not {text!r}")
        return cls(int(year), int(month))

    @property
    def start(self) -> datetime:
        return datetime(self.year, self.month, 1, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive: the first instant of the next month."""
        return datetime(self.year + self.month // 12, self.month % 12 + 1, 1, tzinfo=UTC)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


class QuotaLimit(enum.StrEnum):
    """The limits of a ComputeQuota, by their field under spec.limits."""

    CARDS = "cards"
    CARDS_PER_MODEL = "cardsPerModel"
    CARDS_PER_VENDOR = "cardsPerVendor"
    PENDING_JOBS = "pendingJobs"
    MONTHLY_SPEND = "monthlySpend"
    MAX_PRIORITY = "maxPriority"

    @property
    def field_path(self) -> str:
        if self is QuotaLimit.MAX_PRIORITY:
            return "spec.maxPriority"
        return f"spec.limits.{self.value}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantQuota:
    """One tenant's ComputeQuota, as the core sees it. None means no limit."""

    name: str
    """The ComputeQuota's name (named in every QuotaExceeded message)."""
    tenant: str
    """The namespace it applies to."""
    weight: int = 1
    """Fair-share weight: the tenant's share of cards in use is divided by it."""
    cards: int | None = None
    cards_per_model: Mapping[str, int] = field(default_factory=dict)
    cards_per_vendor: Mapping[str, int] = field(default_factory=dict)
    """Vendor (the catalogue's: nvidia, huawei, ...) -> cards of all its models together."""
    pending_jobs: int | None = None
    monthly_spend: Money | None = None
    max_priority: int = 0
    """The highest spec.priority the tenant's jobs may have (priority is granted, not chosen)."""

    def __post_init__(self) -> None:
        if isinstance(self.weight, bool) or not isinstance(self.weight, int) or self.weight < 1:
            raise ValueError(f"weight must be a positive int, not {self.weight!r}")
        for what, value in (("cards", self.cards), ("pending_jobs", self.pending_jobs)):
            if value is not None and value < 0:
                raise ValueError(f"{what} must not be negative")
        if any(v < 0 for v in self.cards_per_model.values()):
            raise ValueError("cards_per_model limits must not be negative")
        if any(v < 0 for v in self.cards_per_vendor.values()):
            raise ValueError("cards_per_vendor limits must not be negative")
        if self.monthly_spend is not None and self.monthly_spend.amount < 0:
            raise MoneyError("monthly_spend must not be negative")
        object.__setattr__(self, "cards_per_model", MappingProxyType(dict(self.cards_per_model)))
        object.__setattr__(self, "cards_per_vendor", MappingProxyType(dict(self.cards_per_vendor)))

    def where(self, limit: QuotaLimit, detail: str = "") -> str:
        """The tail of every message, e.g. "(ComputeQuota team-a, spec.limits.cards)"."""
        return f"(ComputeQuota {self.name}, {limit.field_path}{detail})"


VendorOf = Callable[[str], str | None]
"""A GPU model's vendor, None for a model the catalogue does not know."""


def catalogue_vendor(model: str) -> str | None:
    """The vendor of `model` in the accelerator catalogue in use."""
    entry = by_name(model)
    return None if entry is None else entry.vendor.value


NO_QUOTA_WEIGHT = 1
"""The fair-share weight of a tenant without a ComputeQuota."""
DEFAULT_MAX_PRIORITY = 0
"""The priority cap of a tenant without a ComputeQuota (and of a quota that sets none)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class TenantUsage:
    """What a tenant holds now: cards of its active jobs, pending jobs, spend this month."""

    cards: int = 0
    cards_by_model: Mapping[str, int] = field(default_factory=dict)
    pending: int = 0
    spent: Mapping[str, Money] = field(default_factory=dict)
    """Spend this month by currency (normally one: the offers' currency)."""
    month: Month | None = None
    """The month `spent` covers."""

    def __post_init__(self) -> None:
        if self.cards < 0 or self.pending < 0 or any(v < 0 for v in self.cards_by_model.values()):
            raise ValueError("usage must not be negative")
        object.__setattr__(self, "cards_by_model", MappingProxyType(dict(self.cards_by_model)))
        object.__setattr__(self, "spent", MappingProxyType(dict(self.spent)))

    def spent_in(self, currency: str) -> Money:
        return self.spent.get(currency) or Money.zero(currency)

    def cards_of_vendor(self, vendor: str, vendor_of: VendorOf) -> int:
        """Cards in use of every model of `vendor` (derived from the per-model counts, so the two
        can never disagree)."""
        return sum(cards for model, cards in self.cards_by_model.items() if vendor_of(model) == vendor)

    def with_placed(self, cards: int, model: str | None = None) -> TenantUsage:
        """This usage once one of the tenant's pending jobs is placed on `cards` cards of `model`."""
        if cards < 0:
            raise ValueError("a placed job holds a non-negative number of cards")
        by_model = self.cards_by_model
        if model is not None:
            changed = dict(by_model)
            changed[model] = changed.get(model, 0) + cards
            by_model = MappingProxyType(changed)
        # Called once per placement in a pass of thousands: built without replace() and without
        # re-validating what is valid by construction.
        usage = object.__new__(TenantUsage)
        for name, value in (
            ("cards", self.cards + cards),
            ("cards_by_model", by_model),
            ("pending", max(0, self.pending - 1)),
            ("spent", self.spent),
            ("month", self.month),
        ):
            object.__setattr__(usage, name, value)
        return usage


NO_USAGE = TenantUsage()


@dataclass(frozen=True, slots=True)
class QuotaVerdict:
    """Whether a job may be placed now. `limit` is None when it may."""

    limit: QuotaLimit | None
    message: str = ""
    """Empty when within quota; else names the tenant, the figures, the quota and the field."""
    job: JobRequest | None = None
    """The job checked (None when refused)."""
    models: frozenset[str] | None = None
    """The GPU models the job may use now, when per-model limits narrow them; None: the job's own."""

    @property
    def request(self) -> JobRequest | None:
        """The request to place: the job's own, or with its models narrowed to those still within
        their per-model limits. None when the job may not be placed. (Built when asked for: a pass
        checks thousands of jobs and places few of them.)"""
        if self.job is None or self.models is None:
            return self.job
        return replace(self.job, models=self.models)

    @property
    def allowed(self) -> bool:
        return self.limit is None

    @property
    def reason(self) -> str | None:
        return None if self.limit is None else QUOTA_EXCEEDED

    def __str__(self) -> str:
        return "within quota" if self.limit is None else f"{QUOTA_EXCEEDED}: {self.message}"


def _refuse(limit: QuotaLimit, message: str) -> QuotaVerdict:
    return QuotaVerdict(limit, message)


def _budget_currency_mismatch(quota: TenantQuota, currency: str) -> QuotaVerdict | None:
    budget = quota.monthly_spend
    if budget is None or currency == budget.currency:
        return None
    return _refuse(
        QuotaLimit.MONTHLY_SPEND,
        f"tenant {quota.tenant} budgets its monthly spend in {budget.currency}, the job would pay in "
        f"{currency} {quota.where(QuotaLimit.MONTHLY_SPEND, '.currency')}",
    )


def check(
    quota: TenantQuota | None,
    usage: TenantUsage,
    request: JobRequest,
    *,
    known_models: Collection[str] = (),
    vendor_of: VendorOf = catalogue_vendor,
) -> QuotaVerdict:
    """May `request` be placed now, given the tenant's `usage`? Call it just before `place`.

    Checked in this order, the first failure wins: monthly spend reached (and the job's currency
    against the budget's, when the job names one), total cards, cards per model. The pending
    limit is settled before, for the whole queue (`within_pending_limit`), and the estimate
    after placement (`check_estimate`).

    Per-model and per-vendor limits narrow rather than refuse while some acceptable model still
    has room (its own limit and its vendor's): the verdict's `request` then accepts only those
    models (a job that accepts any model is narrowed to `known_models` minus the full ones: pass
    the GPU models on offer). Place that request.
    """
    if quota is None:
        return QuotaVerdict(None, job=request)
    tenant = quota.tenant
    budget = quota.monthly_spend
    if budget is not None:
        spent = usage.spent_in(budget.currency)
        if spent >= budget:
            month = f" in {usage.month}" if usage.month is not None else " this month"
            return _refuse(
                QuotaLimit.MONTHLY_SPEND,
                f"tenant {tenant} has spent {spent}{month}, its monthly budget is {budget} "
                f"{quota.where(QuotaLimit.MONTHLY_SPEND)}",
            )
        if request.currency is not None:
            mismatch = _budget_currency_mismatch(quota, request.currency)
            if mismatch is not None:
                return mismatch
    cards = request.cards
    if quota.cards is not None and usage.cards + cards > quota.cards:
        return _refuse(
            QuotaLimit.CARDS,
            f"tenant {tenant} would use {usage.cards + cards} cards ({usage.cards} in use + {cards}), over its "
            f"limit of {quota.cards} {quota.where(QuotaLimit.CARDS)}",
        )
    per_model, per_vendor = quota.cards_per_model, quota.cards_per_vendor
    if not per_model and not per_vendor:
        return QuotaVerdict(None, job=request)
    acceptable = request.models or frozenset(known_models)
    if request.vendors:  # a job that asks by vendor is held by its vendors' limits, not narrowed to others
        acceptable = frozenset(m for m in acceptable if vendor_of(m) in request.vendors)
    # Why each acceptable model is full: (overshoot, limit, what, field detail) of its tightest limit.
    full: dict[str, tuple[int, QuotaLimit, str, str]] = {}
    vendor_used: dict[str, int] = {}
    for model in acceptable:
        over: list[tuple[int, QuotaLimit, str, str]] = []
        limit = per_model.get(model)
        if limit is not None:
            used = usage.cards_by_model.get(model, 0)
            if used + cards > limit:
                over.append((used + cards - limit, QuotaLimit.CARDS_PER_MODEL,
                             f"{used + cards} {model} cards ({used} in use + {cards}), over its limit of {limit}",
                             f"[model={model}].cards"))
        vendor = vendor_of(model) if per_vendor else None
        limit = None if vendor is None else per_vendor.get(vendor)
        if vendor is not None and limit is not None:
            if vendor not in vendor_used:
                vendor_used[vendor] = usage.cards_of_vendor(vendor, vendor_of)
            used = vendor_used[vendor]
            if used + cards > limit:
                over.append((used + cards - limit, QuotaLimit.CARDS_PER_VENDOR,
                             f"{used + cards} {vendor} cards ({used} in use + {cards}), over its limit of {limit}",
                             f"[vendor={vendor}].cards"))
        if over:
            full[model] = max(over, key=lambda o: (o[0], o[1].value))
    if not full:
        return QuotaVerdict(None, job=request)
    room = acceptable - full.keys()
    if room:
        return QuotaVerdict(None, job=request, models=frozenset(room))
    # Name the model closest to fitting: the one the tenant would overshoot the least.
    model = min(full, key=lambda m: (full[m][0], m))
    _, limit_kind, text, detail = full[model]
    others = sorted(full.keys() - {model})
    also = f" (and {', '.join(others)} likewise)" if others else ""
    return _refuse(limit_kind, f"tenant {tenant} would use {text}{also} {quota.where(limit_kind, detail)}")


def check_estimate(quota: TenantQuota | None, usage: TenantUsage, chosen: Candidate, *,
                   vendor_of: VendorOf = catalogue_vendor) -> QuotaVerdict:
    """After placement: would the chosen offer take the tenant over its monthly budget?

    Refused when the offer's currency is not the budget's, or when the job declared expected
    hours and spent + its estimated cost > budget. Also re-checks the chosen GPU model against
    its per-model and per-vendor limits (already ensured when the request came from `check`).
    """
    if quota is None:
        return QuotaVerdict(None)
    model_limit = quota.cards_per_model.get(chosen.gpu_model)
    used = usage.cards_by_model.get(chosen.gpu_model, 0)
    if model_limit is not None and used + chosen.cards > model_limit:
        return _refuse(
            QuotaLimit.CARDS_PER_MODEL,
            f"tenant {quota.tenant} would use {used + chosen.cards} {chosen.gpu_model} cards ({used} in use + "
            f"{chosen.cards}), over its limit of {model_limit} "
            f"{quota.where(QuotaLimit.CARDS_PER_MODEL, f'[model={chosen.gpu_model}].cards')}",
        )
    vendor = vendor_of(chosen.gpu_model) if quota.cards_per_vendor else None
    vendor_limit = None if vendor is None else quota.cards_per_vendor.get(vendor)
    if vendor is not None and vendor_limit is not None:
        used = usage.cards_of_vendor(vendor, vendor_of)
        if used + chosen.cards > vendor_limit:
            return _refuse(
                QuotaLimit.CARDS_PER_VENDOR,
                f"tenant {quota.tenant} would use {used + chosen.cards} {vendor} cards ({used} in use + "
                f"{chosen.cards}), over its limit of {vendor_limit} "
                f"{quota.where(QuotaLimit.CARDS_PER_VENDOR, f'[vendor={vendor}].cards')}",
            )
    budget = quota.monthly_spend
    if budget is None:
        return QuotaVerdict(None)
    mismatch = _budget_currency_mismatch(quota, chosen.hourly_cost.currency)
    if mismatch is not None:
        return mismatch
    estimate = chosen.estimated_cost
    if estimate is None:
        return QuotaVerdict(None)
    spent = usage.spent_in(budget.currency)
    after = spent + estimate
    if after > budget:
        return _refuse(
            QuotaLimit.MONTHLY_SPEND,
            f"tenant {quota.tenant} would spend {after} this month ({spent} spent + {estimate} estimated for "
            f"the job on offer {chosen.offer}), over its monthly budget of {budget} "
            f"{quota.where(QuotaLimit.MONTHLY_SPEND)}",
        )
    return QuotaVerdict(None)


class Ranked(Queued, Protocol):
    """A pending job as the queue orders it, and its UID to break the last tie."""

    @property
    def uid(self) -> str: ...


R = TypeVar("R", bound=Ranked)


def tenant_order_key(job: Ranked) -> tuple[int, datetime, str, str]:
    """A tenant's own queue: higher priority first, then older, then name, then UID."""
    return (-job.priority, job.created, job.name, job.uid)


def within_pending_limit(
    requests: Iterable[R], quotas: Mapping[str, TenantQuota]
) -> tuple[list[R], dict[str, QuotaVerdict]]:
    """Split the pending jobs into those placement may consider and those the pending limit holds.

    Per tenant, the first ``pendingJobs`` of its own queue (`tenant_order_key`) are kept; the
    rest are held, by UID, with a verdict naming the limit. Kept jobs come back in input order.
    """
    items = list(requests)
    by_tenant: dict[str, list[R]] = defaultdict(list)
    for job in items:
        by_tenant[job.namespace].append(job)
    held: dict[str, QuotaVerdict] = {}
    for tenant, jobs in by_tenant.items():
        quota = quotas.get(tenant)
        if quota is None or quota.pending_jobs is None or len(jobs) <= quota.pending_jobs:
            continue
        jobs.sort(key=tenant_order_key)
        limit = quota.pending_jobs
        for position, job in enumerate(jobs[limit:], start=limit + 1):
            held[job.uid] = _refuse(
                QuotaLimit.PENDING_JOBS,
                f"tenant {tenant} has {len(jobs)} pending jobs, over its limit of {limit}; this one is number "
                f"{position} in its queue {quota.where(QuotaLimit.PENDING_JOBS)}",
            )
    return [job for job in items if job.uid not in held], held


def within_priority_cap(
    requests: Iterable[R], quotas: Mapping[str, TenantQuota]
) -> tuple[list[R], dict[str, QuotaVerdict]]:
    """Split the pending jobs into those whose priority their tenant was granted and the rest.

    ``spec.priority`` sorts before fair share, so a tenant that chose its own would jump every
    queue: a job above its tenant's ``spec.maxPriority`` (0 without a ComputeQuota) is held, by
    UID, with a verdict naming the cap. Negative priorities are always allowed.
    """
    items = list(requests)
    held: dict[str, QuotaVerdict] = {}
    for job in items:
        quota = quotas.get(job.namespace)
        cap = DEFAULT_MAX_PRIORITY if quota is None else quota.max_priority
        if job.priority <= cap:
            continue
        where = (quota.where(QuotaLimit.MAX_PRIORITY) if quota is not None
                 else f"(no ComputeQuota {job.namespace}: {QuotaLimit.MAX_PRIORITY.field_path} defaults to {cap})")
        held[job.uid] = _refuse(
            QuotaLimit.MAX_PRIORITY,
            f"job priority {job.priority} is above tenant {job.namespace}'s cap of {cap} {where}; lower "
            f"spec.priority or ask the hub admin to raise the cap",
        )
    return [job for job in items if job.uid not in held], held


# ---------------------------------------------------------------------------------------------
# Usage from the job list
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Charge:
    """What one attempt has cost so far, and the wall-time span it ran in."""

    cost: Money
    start: datetime | None = None
    """When its first pod started."""
    end: datetime | None = None
    """When it finished, or how far its usage is accrued while it runs."""

    def __post_init__(self) -> None:
        _require_aware(self.start, "start")
        _require_aware(self.end, "end")

    def share_in(self, month: Month) -> Fraction:
        """The exact part of the cost that falls in `month`: pro rata of the run's wall time.

        Without a usable span (no start, or no time elapsed) the whole cost goes to the month of
        its end (or start); with neither it counts in `month` (it cannot be shown elsewhere).
        """
        amount = Fraction(self.cost.amount)
        start, end = self.start, self.end
        if start is None or end is None or end <= start:
            when = end or start
            return amount if when is None or Month.of(when) == month else Fraction(0)
        overlap = min(end, month.end) - max(start, month.start)
        if overlap.total_seconds() <= 0:
            return Fraction(0)
        if start >= month.start and end <= month.end:
            return amount
        return amount * Fraction(overlap // _MICROSECOND, (end - start) // _MICROSECOND)


_MICROSECOND = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True, kw_only=True)
class QuotaJob:
    """A ComputeJob as usage counting sees it."""

    namespace: str
    phase: JobPhase
    cards: int
    """Cards the job holds while active (replicas x GPUs per replica)."""
    gpu_model: str | None = None
    """The GPU model of its current placement (None while pending)."""
    charges: tuple[Charge, ...] = ()
    """One per attempt that has cost something."""


def tenant_usage(jobs: Iterable[QuotaJob], now: datetime,
                 recorded: Iterable[tuple[str, Charge]] = ()) -> dict[str, TenantUsage]:
    """Each tenant's usage at `now`: cards of its active jobs (total and per GPU model), its
    pending jobs, and its spend in the calendar month (UTC) of `now`, rounded once per currency
    to the minor unit. Tenants with neither a job nor a charge are absent (their usage is
    `NO_USAGE`).

    Spend is the jobs' own `charges` plus `recorded`, (tenant, charge) pairs of attempts whose
    charges are final and kept apart from the jobs (the ComputeUsage records, which outlive the
    jobs). The caller counts each attempt once: from its record if it has one, else from its job.
    """
    month = Month.of(now)
    cards: dict[str, int] = defaultdict(int)
    by_model: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    pending: dict[str, int] = defaultdict(int)
    spent: dict[str, dict[str, Fraction]] = defaultdict(lambda: defaultdict(Fraction))
    tenants: set[str] = set()
    for tenant, charge in recorded:
        tenants.add(tenant)
        spent[tenant][charge.cost.currency] += charge.share_in(month)
    for job in jobs:
        tenant = job.namespace
        tenants.add(tenant)
        if job.phase in ACTIVE_PHASES:
            cards[tenant] += job.cards
            if job.gpu_model is not None:
                by_model[tenant][job.gpu_model] += job.cards
        elif job.phase is JobPhase.PENDING:
            pending[tenant] += 1
        for charge in job.charges:
            spent[tenant][charge.cost.currency] += charge.share_in(month)
    return {
        tenant: TenantUsage(
            cards=cards.get(tenant, 0),
            cards_by_model=dict(by_model.get(tenant, {})),
            pending=pending.get(tenant, 0),
            spent={
                currency: Money(round_to_minor_unit(amount, currency), currency)
                for currency, amount in sorted(spent.get(tenant, {}).items())
            },
            month=month,
        )
        for tenant in sorted(tenants)
    }


def limits_reached(quota: TenantQuota, usage: TenantUsage,
                   vendor_of: VendorOf = catalogue_vendor) -> list[tuple[QuotaLimit, str]]:
    """The limits the tenant has reached (a job of one more card would be held), for the
    ComputeQuota's status condition; in the order of `QuotaLimit`."""
    out: list[tuple[QuotaLimit, str]] = []
    if quota.cards is not None and usage.cards >= quota.cards:
        out.append((QuotaLimit.CARDS, f"{usage.cards} of {quota.cards} cards in use"))
    full = sorted(m for m, limit in quota.cards_per_model.items() if usage.cards_by_model.get(m, 0) >= limit)
    if full:
        text = ", ".join(f"{usage.cards_by_model.get(m, 0)} of {quota.cards_per_model[m]} {m}" for m in full)
        out.append((QuotaLimit.CARDS_PER_MODEL, f"{text} cards in use"))
    in_use = {v: usage.cards_of_vendor(v, vendor_of) for v in quota.cards_per_vendor}
    full = sorted(v for v, limit in quota.cards_per_vendor.items() if in_use[v] >= limit)
    if full:
        text = ", ".join(f"{in_use[v]} of {quota.cards_per_vendor[v]} {v}" for v in full)
        out.append((QuotaLimit.CARDS_PER_VENDOR, f"{text} cards in use"))
    if quota.pending_jobs is not None and usage.pending > quota.pending_jobs:
        out.append((QuotaLimit.PENDING_JOBS, f"{usage.pending} pending jobs, {quota.pending_jobs} considered"))
    budget = quota.monthly_spend
    if budget is not None and usage.spent_in(budget.currency) >= budget:
        out.append((QuotaLimit.MONTHLY_SPEND, f"{usage.spent_in(budget.currency)} of {budget} spent"))
    return out


__all__ = [
    "ACTIVE_PHASES",
    "DEFAULT_MAX_PRIORITY",
    "NO_QUOTA_WEIGHT",
    "NO_USAGE",
    "QUOTA_EXCEEDED",
    "Charge",
    "Month",
    "QuotaJob",
    "QuotaLimit",
    "QuotaVerdict",
    "Ranked",
    "TenantQuota",
    "TenantUsage",
    "VendorOf",
    "catalogue_vendor",
    "check",
    "check_estimate",
    "limits_reached",
    "tenant_order_key",
    "tenant_usage",
    "within_pending_limit",
    "within_priority_cap",
]
