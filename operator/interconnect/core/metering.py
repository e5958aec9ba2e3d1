"""Card-hours and what they cost, from the member's own pod timestamps.

Usage is counted in card-microseconds (`CardTime`): GPUs x the microseconds between a pod's
start and finish, an exact integer. Hours are derived from it, and money is computed from the
exact quantity and rounded once, at the end.

A pod is metered from the first start of any of its containers (init containers and native
sidecars included) to the last finish, restarts and the gaps between them included: the cards are
held all along. The member's kubelet shows only a container's current run and the one before, so
after a few restarts the first start is gone from the pod's status; the record keeps the earliest
start it has seen (`PodAccrual.started`), and every figure is counted from it.

The durable record (`UsageRecord`) is a function of the pods' timestamps, never a sum of
wall-clock ticks: recomputing it after an operator restart, a member outage or a duplicate
event gives the same figure, so time is neither counted twice nor lost. Per pod, the record
keeps the earliest start seen and the greatest end in the order (finished over running, then
later, then more GPUs), a join that is idempotent, commutative and associative:

- a running pod's figure grows with `now` and never shrinks (a hub clock stepping back does not
  take time away);
- a finished pod's figure is the member's final word, counted from the earliest start seen, and
  replaces any running estimate, even a longer one (the hub may have counted to its `now` past
  the real finish while the member was silent); Prometheus counters never go down, so `delta`
  clamps at zero.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from fractions import Fraction
from typing import NamedTuple

from interconnect.core.money import MONEY_CONTEXT, Money, MoneyError, Price, round_to_minor_unit
from interconnect.core.vocabulary import BillingUnit

MICROSECONDS_PER_HOUR = 3_600_000_000
CARD_HOUR_PLACES = 12
"""Decimal card-hours are shown to 1e-12 h (3.6 ns): every microsecond of one card shows."""
_CARD_HOUR_QUANTUM = Decimal(1).scaleb(-CARD_HOUR_PLACES)
_ONE_MICROSECOND = timedelta(microseconds=1)


def _require_aware(value: datetime, what: str) -> None:
    if value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (Kubernetes timestamps are UTC)")


@dataclass(frozen=True, slots=True, order=True)
class CardTime:
    """Usage as an exact integer number of card-microseconds."""

    card_microseconds: int = 0

    def __post_init__(self) -> None:
        if isinstance(self.card_microseconds, bool) or not isinstance(self.card_microseconds, int):
            raise TypeError("card_microseconds must be an int")
        if self.card_microseconds < 0:
            raise ValueError(f"usage cannot be negative: {self.card_microseconds}")

    @property
    def exact_card_hours(self) -> Fraction:
        """For billing: no rounding at all."""
        return Fraction(self.card_microseconds, MICROSECONDS_PER_HOUR)

    @property
    def card_hours(self) -> Decimal:
        """For status and counters, to `CARD_HOUR_PLACES` places (half even)."""
        hours = MONEY_CONTEXT.divide(Decimal(self.card_microseconds), Decimal(MICROSECONDS_PER_HOUR))
        return hours.quantize(_CARD_HOUR_QUANTUM, rounding=ROUND_HALF_EVEN, context=MONEY_CONTEXT)

    def __add__(self, other: CardTime) -> CardTime:
        return CardTime(self.card_microseconds + other.card_microseconds)

    def increase_over(self, earlier: CardTime) -> CardTime:
        """How much more this is than `earlier`; zero if it is less (counters never go down)."""
        return CardTime(max(0, self.card_microseconds - earlier.card_microseconds))


@dataclass(frozen=True, slots=True)
class PodRun:
    """One pod of a dispatched job, with the member's timestamps."""

    pod_uid: str
    gpus: int
    started: datetime
    finished: datetime | None = None
    """None while the pod runs: it counts up to `now`."""

    def __post_init__(self) -> None:
        if isinstance(self.gpus, bool) or not isinstance(self.gpus, int) or self.gpus < 0:
            raise ValueError(f"gpus must be a non-negative int, not {self.gpus!r}")
        _require_aware(self.started, "started")
        if self.finished is not None:
            _require_aware(self.finished, "finished")

    def microseconds(self, now: datetime) -> int:
        """Running time, to the microsecond; zero if the timestamps run backwards."""
        end = now if self.finished is None else self.finished
        return max(0, (end - self.started) // _ONE_MICROSECOND)

    def card_time(self, now: datetime) -> CardTime:
        return CardTime(self.gpus * self.microseconds(now))

    def split_microseconds(self, lost_since: datetime, now: datetime) -> tuple[int, int]:
        """Running time before `lost_since` and after it (running pods count up to `now`)."""
        end = now if self.finished is None else self.finished
        before = max(0, (min(end, lost_since) - self.started) // _ONE_MICROSECOND)
        after = max(0, (end - max(self.started, lost_since)) // _ONE_MICROSECOND)
        return before, after


def _observation_key(run: PodRun, now: datetime) -> tuple[bool, datetime, int]:
    return (run.finished is not None, now if run.finished is None else run.finished, run.gpus)


def _latest(runs: Iterable[PodRun], now: datetime) -> dict[str, PodRun]:
    """One run per pod: a pod reported twice counts once, by its greatest observation (finished
    over running, then the later end, then more GPUs), from the earliest start of all its reports."""
    chosen: dict[str, PodRun] = {}
    earliest: dict[str, datetime] = {}
    for run in runs:
        earliest[run.pod_uid] = min(earliest.get(run.pod_uid, run.started), run.started)
        held = chosen.get(run.pod_uid)
        if held is None or _observation_key(run, now) > _observation_key(held, now):
            chosen[run.pod_uid] = run
    return {uid: run if run.started == earliest[uid] else replace(run, started=earliest[uid])
            for uid, run in chosen.items()}


def card_time(runs: Iterable[PodRun], now: datetime) -> CardTime:
    """Exact usage of `runs` at `now` (running pods count up to `now`)."""
    _require_aware(now, "now")
    return CardTime(sum(run.gpus * run.microseconds(now) for run in _latest(runs, now).values()))


def card_hours(runs: Iterable[PodRun], now: datetime) -> Decimal:
    """GPUs x running hours of `runs` at `now`, as a Decimal (see `CardTime.card_hours`)."""
    return card_time(runs, now).card_hours


@dataclass(frozen=True, slots=True, order=True)
class PodAccrual:
    """What one pod of one attempt has accrued so far."""

    attempt: int
    pod_uid: str
    gpus: int
    microseconds: int
    """Charged running time."""
    finished: bool
    """The member reported the pod finished: its figure is final."""
    lost_microseconds: int = 0
    """Running time after the pod's node was declared lost (its attempt superseded): not charged."""
    started: datetime | None = None
    """The earliest start of any of the pod's containers the hub has seen: both figures are counted
    from it. None in records written before it was kept."""

    def __post_init__(self) -> None:
        if self.started is not None:
            _require_aware(self.started, "started")

    @property
    def card_time(self) -> CardTime:
        return CardTime(self.gpus * self.microseconds)

    @property
    def lost_card_time(self) -> CardTime:
        return CardTime(self.gpus * self.lost_microseconds)

    @property
    def seconds(self) -> Decimal:
        return Decimal(self.microseconds).scaleb(-6)

    def end(self, started: datetime) -> datetime:
        """Up to when this figure counts: its start plus both parts (charged and lost add up to the
        whole running time). A record without a start is taken as counted from `started`."""
        return (self.started or started) + (self.microseconds + self.lost_microseconds) * _ONE_MICROSECOND


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """Accrued usage per attempt and per pod; the durable part of a job's usage status."""

    pods: tuple[PodAccrual, ...] = ()
    """In (attempt, pod uid) order, one entry per pod of an attempt."""

    def __post_init__(self) -> None:
        pods = tuple(sorted(self.pods, key=lambda p: (p.attempt, p.pod_uid)))
        keys = [(p.attempt, p.pod_uid) for p in pods]
        if len(set(keys)) != len(keys):
            raise ValueError("a usage record holds one entry per pod and attempt")
        object.__setattr__(self, "pods", pods)

    @property
    def attempts(self) -> tuple[int, ...]:
        return tuple(sorted({p.attempt for p in self.pods}))

    def card_time(self, attempt: int | None = None) -> CardTime:
        """Exact usage of one attempt, or of all attempts."""
        return CardTime(sum(p.gpus * p.microseconds for p in self.pods if attempt is None or p.attempt == attempt))

    def card_hours(self, attempt: int | None = None) -> Decimal:
        return self.card_time(attempt).card_hours

    def lost_card_time(self, attempt: int | None = None) -> CardTime:
        """Usage after a node was declared lost: recorded, never charged."""
        return CardTime(sum(p.gpus * p.lost_microseconds for p in self.pods
                            if attempt is None or p.attempt == attempt))

    def span(self, attempt: int) -> tuple[datetime | None, datetime | None]:
        """When `attempt` ran as metered: its first pod's start and its last pod's end (a finished
        pod's finish, a running one's accrual so far; time after a loss included). Pods recorded
        without a start (records written before it was kept) are left out; (None, None) when none
        has one."""
        ends = [(p.started, p.end(p.started)) for p in self.pods if p.attempt == attempt and p.started is not None]
        if not ends:
            return None, None
        return min(start for start, _ in ends), max(end for _, end in ends)

    def seconds(self, attempt: int | None = None) -> Decimal:
        """Pod-seconds (not card-seconds) accrued: how long the job's pods ran."""
        micro = sum(p.microseconds for p in self.pods if attempt is None or p.attempt == attempt)
        return Decimal(micro).scaleb(-6)


def accrue(previous: UsageRecord, runs: Iterable[PodRun], now: datetime, attempt: int,
           lost_since: datetime | None = None) -> UsageRecord:
    """The record once the pods of `attempt`, as the member reports them at `now`, are taken in.

    Pods of other attempts, and pods no longer reported (deleted after finishing), keep what
    they accrued. Calling it again with the same or older observations changes nothing. Each
    pod's figure counts from the earliest start seen, in the record or in `runs`: a start the
    member no longer shows (the kubelet keeps only a container's last two runs) is not forgotten.
    With `lost_since` (the attempt was superseded when its node was declared lost), running time up
    to that instant is charged and the rest recorded as lost.
    """
    _require_aware(now, "now")
    if lost_since is not None:
        _require_aware(lost_since, "lost_since")
    if isinstance(attempt, bool) or not isinstance(attempt, int) or attempt < 0:
        raise ValueError(f"attempt must be a non-negative int, not {attempt!r}")
    merged = {(p.attempt, p.pod_uid): p for p in previous.pods}
    for run in _latest(runs, now).values():
        key = (attempt, run.pod_uid)
        merged[key] = _join(merged.get(key), run, now, attempt, lost_since)
    return UsageRecord(tuple(merged.values()))


def _accrual(attempt: int, run: PodRun, end: datetime, finished: bool, lost_since: datetime | None) -> PodAccrual:
    """The figures of `run` counted up to `end`."""
    if lost_since is None:
        charged, lost = run.microseconds(end), 0
    else:
        charged, lost = run.split_microseconds(lost_since, end)
    return PodAccrual(attempt, run.pod_uid, run.gpus, charged, finished, lost, run.started)


def _join(held: PodAccrual | None, run: PodRun, now: datetime, attempt: int,
          lost_since: datetime | None) -> PodAccrual:
    """One pod's record once `run` is taken in: the earliest start of both, and the greater end
    (finished over running, then later, then more GPUs)."""
    if held is None:
        return _accrual(attempt, run, now if run.finished is None else run.finished, run.finished is not None,
                        lost_since)
    start = run.started if held.started is None else min(held.started, run.started)
    held_end = held.end(start)
    if _observation_key(run, now) > (held.finished, held_end, held.gpus):
        end = now if run.finished is None else run.finished
        return _accrual(attempt, replace(run, started=start), end, run.finished is not None, lost_since)
    if held.started is not None and start < held.started:  # an earlier start: count the held end from it
        return _accrual(attempt, PodRun(held.pod_uid, held.gpus, start), held_end, held.finished, lost_since)
    return held if held.started == start else replace(held, started=start)


def delta(previous: UsageRecord, current: UsageRecord, attempt: int | None = None) -> Decimal:
    """Card-hours to add to a Prometheus counter between two records (never negative).

    Per attempt when given (each attempt ran on its own node and offer, so its own labels).
    """
    return current.card_time(attempt).increase_over(previous.card_time(attempt)).card_hours


def cost(card_hours: Decimal | Fraction | CardTime, price: Price, cards_per_replica: int, replicas: int) -> Money:
    """What `card_hours` of a job cost at `price`, rounded once (half up) to the minor unit.

    Per card-hour: card-hours x price. Per machine-hour the job pays whole machines:
    machines = ceil(cards / cards per machine), machine-hours = card-hours / cards x machines.
    Pass a `CardTime` (or a Fraction) to bill the exact usage.
    """
    if cards_per_replica < 1 or replicas < 1:
        raise MoneyError("a job has at least one replica of at least one card")
    if isinstance(card_hours, CardTime):
        hours = card_hours.exact_card_hours
    elif isinstance(card_hours, Decimal):
        if not card_hours.is_finite():
            raise MoneyError(f"card-hours must be finite, not {card_hours}")
        hours = Fraction(card_hours)
    else:
        hours = card_hours
    if hours < 0:
        raise MoneyError(f"card-hours cannot be negative: {card_hours}")
    amount = Fraction(price.amount.amount)
    if price.unit is BillingUnit.CARD_HOUR:
        exact = hours * amount
    else:
        cards = cards_per_replica * replicas
        machines = price.machines_for(cards)
        assert machines is not None
        exact = hours / cards * machines * amount
    return Money(round_to_minor_unit(exact, price.currency), price.currency)


class LostTimeSplit(NamedTuple):
    """Usage before a member was declared lost (charged) and after it (recorded, not charged)."""

    charged: CardTime
    lost: CardTime


def split_at(runs: Iterable[PodRun], lost_since: datetime, now: datetime) -> LostTimeSplit:
    """Split each pod's running time at `lost_since`; running pods count up to `now`.

    After a member is declared lost its jobs are re-placed; whatever its pods kept doing after
    that instant is recorded apart and not charged to the tenant.
    """
    _require_aware(lost_since, "lost_since")
    _require_aware(now, "now")
    charged = lost = 0
    for run in _latest(runs, now).values():
        before, after = run.split_microseconds(lost_since, now)
        charged += run.gpus * before
        lost += run.gpus * after
    return LostTimeSplit(CardTime(charged), CardTime(lost))


class BudgetVerdict(enum.Enum):
    """Where a running job stands against its own ``spec.budget``."""

    WITHIN = "within"
    NEARLY_SPENT = "nearly spent"
    SPENT = "spent"


BUDGET_WARNING_FRACTION = Fraction(4, 5)
"""A job that has spent this much of its budget gets a warning (once)."""


def budget_verdict(spent: Money, budget: Money) -> BudgetVerdict:
    """Whether a job's metered cost has reached its budget (stop it), nearly (warn), or neither.

    Costs in another currency than the budget's cannot be compared: that is refused at admission
    (budget.currency must equal maxPrice.currency, and offers in another currency never fit).
    """
    if spent.currency != budget.currency:
        raise MoneyError(f"spent {spent.currency}, budget in {budget.currency}")
    if spent.amount >= budget.amount:
        return BudgetVerdict.SPENT
    if Fraction(spent.amount) >= BUDGET_WARNING_FRACTION * Fraction(budget.amount):
        return BudgetVerdict.NEARLY_SPENT
    return BudgetVerdict.WITHIN
