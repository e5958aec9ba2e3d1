"""Metering: the pods' own timestamps into each job's status, then into Prometheus.

`Meter` accrues the pods of an attempt (`core.metering.accrue`: idempotent, from the member's
timestamps) into the job's ``status.usage``, and adds the increase to the counters only once
that write has landed, so a counter never runs ahead of the durable figure. Its loop meters
running jobs every ``meteringInterval``; the member sync and the fence call `write_usage` for
finished and superseded attempts.

A deleted job's pods may hold their cards for their whole termination grace period: `depart`
keeps metering them (in memory: the job's status is gone with it) until none of them runs any
more, then writes the attempt's ComputeUsage record and only then adds the increase to the
counters.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from interconnect.adapters.member import DispatchedPod
from interconnect.adapters.metrics import Metrics
from interconnect.core.accelerators import by_name, compute_rate
from interconnect.core.energy import Energy, sum_energy
from interconnect.core.metering import BudgetVerdict, PodRun, accrue, budget_verdict
from interconnect.core.money import Money, format_amount
from interconnect.core.vocabulary import JobPhase
from interconnect.services.energy import EnergyEstimator
from interconnect.services.events import EventRecorder
from interconnect.services.jobs import JobState, JobStore, StatusWriter, decimal_text, instant, iso, now
from interconnect.services.market import Market
from interconnect.services.members import Members
from interconnect.services.usage_records import DELETED, UsageLedger

log = logging.getLogger(__name__)

ACCRUAL_MARGIN_SECONDS = 1.0


@dataclass(frozen=True, slots=True)
class UsageDelta:
    """What one accrual added to one attempt: what the counters must add, once it is durable."""

    attempt: int
    card_hours: Decimal
    cost: Decimal
    lost_card_hours: Decimal


class Meter:
    """Usage into status and counters (see the module docstring)."""

    def __init__(self, jobs: JobStore, members: Members, market: Market, writer: StatusWriter, metrics: Metrics,
                 interval: float, events: EventRecorder, ledger: UsageLedger,
                 energy: EnergyEstimator | None = None) -> None:
        self._jobs = jobs
        self._energy = energy
        self._ledger = ledger
        self._departed: dict[str, tuple[JobState, list[UsageDelta]]] = {}
        """Deleted jobs whose pods may still hold cards: metered until they are gone, then billed."""
        self._events = events
        self.on_budget_spent: Callable[[JobState, str], Awaitable[None]] | None = None
        """Stops a job whose budget is spent (the member sync's end_attempt; set by the wiring)."""
        self._members = members
        self._market = market
        self._writer = writer
        self._metrics = metrics
        self._interval = interval
        self._label_sets: dict[tuple[str, ...], dict[str, str]] = {}
        """One dictionary per distinct set of usage labels, shared by every attempt that has it
        (thousands of jobs run on one offer for one tenant): as many as the usage series, which
        the metrics keep anyway."""

    def accrue(self, state: JobState, pods: list[DispatchedPod], at: dt.datetime, final: bool = False,
               attempt: int | None = None) -> tuple[dict[str, Any] | None, list[UsageDelta]]:
        """The new usage status and, per attempt, the increase of card-hours, cost and lost card-hours.

        ``pods`` belong to ``attempt`` (default: the current one); a superseded attempt's time
        after its node was declared lost is recorded apart and not charged. Changes the state's
        usage and history in memory: the caller writes them (and restores them if that fails).
        """
        attempt = state.attempt if attempt is None else attempt
        runs = [PodRun(p.uid, p.gpus, p.started, p.finished) for p in pods if p.started is not None]
        old = state.usage
        new = accrue(old, runs, at, attempt, lost_since=state.lost_at(attempt)) if runs else old
        if new == old and not final:
            return None, []
        old_costs, new_costs = state.costs(old), state.costs(new)
        deltas = []
        for each in new.attempts:
            hours = new.card_time(each).increase_over(old.card_time(each)).card_hours
            lost = new.lost_card_time(each).increase_over(old.lost_card_time(each)).card_hours
            zero = Money(Decimal(0), new_costs[each].currency) if each in new_costs else None
            spent = (new_costs[each] - old_costs.get(each, zero)).amount if zero is not None else Decimal(0)
            deltas.append(UsageDelta(each, hours, max(Decimal(0), spent), lost))
        state.usage = new
        total = sum((c.amount for c in new_costs.values()), Decimal(0))
        currency = next(iter(new_costs.values())).currency if new_costs else None
        for entry in state.history:
            entry["cardHours"] = decimal_text(new.card_hours(entry["attempt"]))
        usage: dict[str, Any] = {
            "cardHours": decimal_text(new.card_hours()),
            "cost": format_amount(total, currency) if currency else decimal_text(total),
            "accruedUntil": iso(at),
            "pods": [{"attempt": p.attempt, "pod": p.pod_uid, "gpus": p.gpus, "microseconds": p.microseconds,
                      "finished": p.finished,
                      **({"startedAt": instant(p.started)} if p.started is not None else {}),
                      **({"lostMicroseconds": p.lost_microseconds} if p.lost_microseconds else {})}
                     for p in new.pods],
        }
        if currency:
            usage["currency"] = currency
        lost_time = new.lost_card_time()
        if lost_time.card_microseconds:
            usage["lostCardHours"] = decimal_text(lost_time.card_hours)
        energy = self._status_energy(state, new, at)
        if energy is not None:
            usage["energy"] = energy.as_api()
        rated = [(each, compute_rate(self._attempt_model(state, each))) for each in new.attempts]
        if any(rate is not None for _, rate in rated):
            usage["pflopsHours"] = decimal_text(sum(
                (rate.pflops_hours(new.card_hours(each)) for each, rate in rated if rate is not None), Decimal(0)))
        return usage, deltas

    def _status_energy(self, state: JobState, usage: Any, at: dt.datetime) -> Energy | None:
        """The estimated energy of every attempt (those whose model has a board-power figure),
        summed; the latest such attempt's PUE, green share and factor. None without any."""
        if self._energy is None:
            return None
        parts = []
        for each in usage.attempts:
            node = self.attempt_node(state, each)
            started, _ = usage.span(each)
            part = self._energy.estimate(node, self._attempt_model(state, each), usage.card_hours(each), started, at)
            if part is not None:
                parts.append(part)
        return sum_energy(parts[::-1])

    def attempt_node(self, state: JobState, attempt: int) -> str:
        """The ComputeNode an attempt ran on (its history entry, else the current placement)."""
        entry = next((h for h in state.history if h["attempt"] == attempt), {})
        placement = state.placement if attempt == state.attempt and state.placement else {}
        return str(entry.get("node") or placement.get("node") or "unknown")

    def _attempt_model(self, state: JobState, attempt: int) -> str:
        """The GPU model an attempt ran on (its counters' label, else its placement, else its offer's)."""
        if attempt in state.attempt_labels:
            return state.attempt_labels[attempt]["gpu_model"]
        if attempt == state.attempt and state.placement and state.placement.get("gpuModel"):
            return str(state.placement["gpuModel"])
        entry = next((h for h in state.history if h["attempt"] == attempt), {})
        offer = self._market.offers.get(str(entry.get("offer"))) if self._market is not None else None
        return offer.spec.gpu_model if offer is not None else "unknown"

    def register(self, state: JobState, attempt: int) -> None:
        """The usage series of a new attempt exist at 0 from placement on, before the first
        card-hour, so that Prometheus' increase() sees all of it."""
        state.attempt_labels[attempt] = labels = self._usage_labels(state, attempt)
        self._metrics.register_usage(labels)
        compute = compute_rate(labels["gpu_model"])
        if compute is not None:
            self._metrics.register_compute(labels, compute.vendor, compute.precision)
        model = by_name(labels["gpu_model"])
        if model is not None and model.board_power_watts is not None:
            self._metrics.register_energy(labels, model.vendor.value)

    def _usage_labels(self, state: JobState, attempt: int) -> dict[str, str]:
        """The counters' labels of one attempt: where it ran, at which offer and currency."""
        if attempt in state.attempt_labels:
            return state.attempt_labels[attempt]
        entry = next((h for h in state.history if h["attempt"] == attempt), {})
        placement = state.placement if attempt == state.attempt and state.placement else None
        node_name = str(entry.get("node") or (placement or {}).get("node") or "unknown")
        node = self._members.get(node_name)
        offer_name = str(entry.get("offer") or (placement or {}).get("offer") or "unknown")
        offer = self._market.offers.get(offer_name)
        price = state.attempt_price(attempt) or {}
        if placement is not None:
            code, region = placement.get("identityCode"), placement["region"]
            gpu_model, industry = placement["gpuModel"], placement.get("industry")
        else:  # an earlier attempt, after a restart: from its node and offer as they are now
            code = node.model.status.identity_code if node else None
            region = node.model.spec.region if node else "unknown"
            gpu_model = offer.spec.gpu_model if offer else "unknown"
            industry = node.model.spec.industry.value if node and node.model.spec.industry else None
        labels = {"node": str(code or node_name), "offer": offer_name, "gpu_model": str(gpu_model),
                  "tenant": state.kept.namespace, "region": str(region),
                  "industry": str(industry or "none"), "currency": str(price.get("currency", "CNY"))}
        return self._label_sets.setdefault(tuple(labels.values()), labels)

    def count(self, state: JobState, deltas: list[UsageDelta]) -> None:
        """Add usage increases to the counters, after they are durable in the job's status."""
        for delta in deltas:
            labels = self._usage_labels(state, delta.attempt)
            self._metrics.add_usage(labels, delta.card_hours, delta.cost)
            self._metrics.add_lost(labels, delta.lost_card_hours)
            compute = compute_rate(labels["gpu_model"])
            if compute is not None:
                self._metrics.add_compute(labels, compute.vendor, compute.precision,
                                          compute.pflops_hours(delta.card_hours))
            if self._energy is not None and delta.card_hours > 0:
                # Energy is linear in card-hours: the increase's energy is the energy of the increase.
                started, last = state.usage.span(delta.attempt)
                energy = self._energy.estimate(self.attempt_node(state, delta.attempt), labels["gpu_model"],
                                               delta.card_hours, started, last or now())
                model = by_name(labels["gpu_model"])
                if energy is not None and model is not None:
                    self._metrics.add_energy(labels, model.vendor.value, energy)

    def member_clock(self, state: JobState) -> dt.datetime | None:
        """Up to when a running pod's time can be counted without overshooting its finish.

        The hub only knows a pod still runs as of the last time its member answered (and a
        finish reaches the hub through the watch a little later): running time is counted up to
        then, less a margin, never to the hub's own clock. A member that does not answer accrues
        nothing until it does; its pods' real timestamps settle the figure then.
        """
        answered = self._members.answered_at(state.node) if state.node else None
        return None if answered is None else answered - dt.timedelta(seconds=ACCRUAL_MARGIN_SECONDS)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            await self.meter_running()
            await self.meter_departed()

    def depart(self, state: JobState) -> None:
        """A deleted job's attempt: meter its pods until they are gone, then write its record."""
        self._departed[state.uid] = (state, [])

    @property
    def departing(self) -> int:
        return len(self._departed)

    async def meter_departed(self) -> None:
        """One pass over deleted jobs' attempts. Their pods are metered as long as they hold
        cards (terminating, for up to their grace period); once none runs, the attempt's record
        is written and the counters get what it added since the deletion. A member that does not
        answer holds the record back until it does: its pods' timestamps settle the figure then."""
        for uid, (state, deltas) in list(self._departed.items()):
            member = self._members.connected(state.node) if state.node else None
            at = self.member_clock(state)
            node = self._members.get(state.node) if state.node else None
            try:
                if member is not None and at is not None:
                    pods = member.cached_pods(uid, state.attempt)
                    _, added = self.accrue(state, pods, at)
                    deltas += added
                    if any(p.finished is None and p.started is not None for p in pods):
                        continue
                elif node is not None and node.lost_since is None:
                    continue  # not answering for now: wait for its pods' own timestamps
                # Gone, or its node is lost (what ran after the loss is not charged): bill what ran.
                await self._ledger.record(state, state.attempt, DELETED, at or now())
            except Exception as exc:
                self._metrics.reconcile_errors.labels(loop="metering").inc()
                log.warning("metering deleted job %s failed: %s", uid, str(exc) or type(exc).__name__)
                continue
            del self._departed[uid]
            self.count(state, deltas)

    async def meter_running(self) -> None:
        """One pass: each running job on its own, so that one whose write fails stops no other."""
        for state in self._jobs.in_phase(JobPhase.RUNNING, JobPhase.DISPATCHED):
            at = self.member_clock(state)
            member = self._members.connected(state.node) if state.node else None
            if at is None or member is None:
                continue
            try:
                await self.write_usage(state, member.cached_pods(state.uid, state.attempt), at)
                await self._enforce_budget(state)
            except Exception as exc:
                self._metrics.reconcile_errors.labels(loop="metering").inc()
                log.warning("metering %s failed: %s", state.uid, str(exc) or type(exc).__name__)

    async def _enforce_budget(self, state: JobState) -> None:
        """A running job's own ``spec.budget``: a warning at 80%, stopped when it is spent."""
        budget = state.kept.budget
        costs = state.costs(state.usage)
        if budget is None or not costs:
            return
        limit = Money.of(budget.amount, budget.currency)
        spent = Money(sum((c.amount for c in costs.values()), Decimal(0)), limit.currency)
        verdict = budget_verdict(spent, limit)
        if verdict is BudgetVerdict.NEARLY_SPENT and not state.budget_warned:
            state.budget_warned = True
            self._events.record(state.ref, "Warning", "BudgetNearlySpent",
                                f"spent {spent} of its budget of {limit} (spec.budget); it is stopped when the "
                                "budget is spent")
        elif verdict is BudgetVerdict.SPENT and self.on_budget_spent is not None:
            await self.on_budget_spent(state, f"spent {spent}, its budget is {limit} (spec.budget): stopped")

    async def write_usage(self, state: JobState, pods: list[DispatchedPod], at: dt.datetime,
                          attempt: int | None = None) -> None:
        """Accrue an attempt's pods into the job's status, then (once durable) into the counters."""
        before = (state.usage, [dict(h) for h in state.history])
        usage, deltas = self.accrue(state, pods, at, attempt=attempt)
        if usage is None:
            return
        try:
            await self._writer.write(state, {"usage": usage, "attemptHistory": state.history})
        except Exception:
            state.usage, state.history = before
            raise
        self.count(state, deltas)
