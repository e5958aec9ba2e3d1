"""The scheduling cycle: pending jobs, in fair-share order, placed on offers one pass at a time.

`Scheduler` runs one loop, like kube-scheduler: a pass takes a snapshot of the market, holds
the jobs their tenant's quota does not allow (priority cap, pending limit, cards, budget), orders
the rest by priority, fair share and age, places each with `core.placement.place` and reserves
its cards through the market before the next job is considered, so a reservation is never taken
twice. A placed job goes to the `Dispatcher` (the binding cycle); a job that fits nowhere says
why. Jobs arriving together share one pass.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import time
from collections.abc import Coroutine
from typing import Any

from interconnect.adapters.metrics import Metrics
from interconnect.api.v1alpha1 import to_api
from interconnect.core.fair_share import FairShareQueue
from interconnect.core.placement import Decision, JobRequest, place
from interconnect.core.quota import (
    QuotaLimit,
    QuotaVerdict,
    check,
    check_estimate,
    within_pending_limit,
    within_priority_cap,
)
from interconnect.core.vocabulary import JobPhase
from interconnect.services.dispatcher import Dispatcher
from interconnect.services.events import EventRecorder
from interconnect.services.jobs import JobState, JobStore, StatusWriter, iso, now
from interconnect.services.market import Market
from interconnect.services.member_job import member_job_name
from interconnect.services.members import Members
from interconnect.services.meter import Meter
from interconnect.services.tasks import Wake

log = logging.getLogger(__name__)

PLACEMENT_COALESCE_SECONDS = 0.01
QUOTA_EXCEEDED_LABEL = "quota exceeded"
"""The unschedulable gauge's reason for jobs a quota holds."""


class Scheduler:
    """Placement passes (see the module docstring)."""

    def __init__(self, jobs: JobStore, members: Members, market: Market, writer: StatusWriter,
                 dispatcher: Dispatcher, meter: Meter, events: EventRecorder, metrics: Metrics, wake: Wake) -> None:
        self._jobs = jobs
        self._members = members
        self._market = market
        self._writer = writer
        self._dispatcher = dispatcher
        self._meter = meter
        self._events = events
        self._metrics = metrics
        self._wake = wake

    async def run(self) -> None:
        while True:
            await self._wake.wait()
            # Jobs come in bursts: let the ones arriving together share one pass (one snapshot).
            await asyncio.sleep(PLACEMENT_COALESCE_SECONDS)
            self._wake.clear()
            try:
                await self.schedule_once()
            except Exception:
                self._metrics.reconcile_errors.labels(loop="placement").inc()
                log.exception("placement pass failed; retrying")
                await asyncio.sleep(1.0)
                self._wake()

    async def schedule_once(self) -> None:
        """One pass over the pending jobs: quotas first, then fair share, then placement.

        Order: priority, then the tenant's dominant share of cards in use over its quota's
        weight (raised as this pass places its jobs), then age; so a tenant with 1,000 jobs
        queued cannot keep one with 5 waiting.
        """
        pending = self._jobs.pending()
        if not pending:
            return
        at = now()
        market = self._market.snapshot(at)
        snapshot, offers = market.placement, market.offers
        requests = [s.request() for s in pending]
        quotas = self._market.tenant_quotas()
        usage = self._market.tenant_usage(at)
        granted, over_cap = within_priority_cap(requests, quotas)
        kept, held = within_pending_limit(granted, quotas)
        held.update(over_cap)
        writes: list[Coroutine[Any, Any, None]] = []
        held_counts: dict[str, dict[QuotaLimit, int]] = {}

        def hold(request: JobRequest, verdict: QuotaVerdict) -> None:
            assert verdict.limit is not None
            counts = held_counts.setdefault(request.namespace, {})
            counts[verdict.limit] = counts.get(verdict.limit, 0) + 1
            state = self._jobs.get(request.uid)
            if state is None:
                return
            state.top_reason = QUOTA_EXCEEDED_LABEL
            if str(verdict) != state.last_summary:
                writes.append(self._quota_exceeded(state, verdict))

        by_uid = {r.uid: r for r in requests} if held else {}
        for uid, verdict in held.items():
            hold(by_uid[uid], verdict)
        models = sorted({o.gpu_model for o in offers.values()})
        queue = FairShareQueue(kept, usage, {t: q.weight for t, q in quotas.items()})
        for request in queue:
            state = self._jobs.get(request.uid)
            if state is None:
                continue
            quota = quotas.get(request.namespace)
            to_place = request
            if quota is not None:
                verdict = check(quota, queue.usage(request.namespace), request, known_models=models)
                if verdict.request is None:
                    hold(request, verdict)
                    queue.skipped(request)
                    continue
                to_place = verdict.request
            started = time.perf_counter()
            decision = place(to_place, snapshot)
            self._metrics.placement_seconds.observe(time.perf_counter() - started)
            if decision.chosen is None:
                state.top_reason = decision.top_reason
                self._metrics.placements.labels(result="unschedulable").inc()
                if decision.summary != state.last_summary:
                    writes.append(self._unschedulable(state, decision))
                queue.skipped(request)
                continue
            chosen = decision.chosen
            if quota is not None:
                estimate = check_estimate(quota, queue.usage(request.namespace), chosen)
                if not estimate.allowed:
                    hold(request, estimate)
                    queue.skipped(request)
                    continue
            self._metrics.placements.labels(result="placed").inc()
            queue.placed(request, model=chosen.gpu_model)
            self._market.reserve(chosen.offer, request.uid, request.cards,
                                 free_now=snapshot.cards_free(chosen.offer) + self._market.reserved(chosen.offer))
            # Every offer sharing the chosen one's cards loses them too.
            snapshot = snapshot.with_cards_taken(market.sharing.get(chosen.offer, (chosen.offer,)), request.cards)
            self._scheduled(state, decision, at)
            self._dispatcher.stage_done(state, "queue")
            self._dispatcher.dispatch_soon(state)
        self._market.held = held_counts
        if writes:
            await asyncio.gather(*writes, return_exceptions=True)

    async def _quota_exceeded(self, state: JobState, verdict: QuotaVerdict) -> None:
        summary = str(verdict)
        conditions = self._writer.conditions_with(state, "Scheduled", False, "QuotaExceeded", verdict.message)
        unschedulable = {"summary": summary[:1024], "reasons": [], "candidates": []}
        await self._writer.write(state, {"phase": JobPhase.PENDING.value, "unschedulable": unschedulable,
                                         "conditions": [to_api(c) for c in conditions]})
        state.last_summary, state.conditions = summary, conditions
        self._events.record(state.ref, "Warning", "QuotaExceeded", verdict.message)

    async def _unschedulable(self, state: JobState, decision: Decision) -> None:
        conditions = self._writer.conditions_with(state, "Scheduled", False, "Unschedulable", decision.summary)
        counts = sorted(decision.reason_counts.items(), key=lambda kv: (-kv[1], kv[0].value))
        unschedulable = {
            "summary": decision.summary[:1024],
            "reasons": [{"reason": r.value, "count": n} for r, n in counts][:32],
            "candidates": [{"offer": r.offer, "node": r.node, "reason": r.message[:1024]}
                           for r in decision.first_rejected(100)],
        }
        await self._writer.write(state, {"phase": JobPhase.PENDING.value, "unschedulable": unschedulable,
                                         "conditions": [to_api(c) for c in conditions]})
        state.last_summary, state.conditions = decision.summary, conditions
        self._events.record(state.ref, "Warning", "FailedScheduling", decision.summary)

    def _scheduled(self, state: JobState, decision: Decision, at: dt.datetime) -> None:
        """The placement in memory: made durable by the dispatcher (journal, then status).

        The Scheduled condition names the offer and its price, not how many other offers fit:
        that count needs a scan of the whole market, which placement through the offer index
        no longer does for a job it places (`kubectl compute quote` still shows it, on demand).
        """
        chosen = decision.chosen
        assert chosen is not None
        offer = self._market.offers[chosen.offer]
        node = self._members.get(chosen.node)
        assert node is not None
        state.attempt += 1
        state.phase = JobPhase.SCHEDULED
        state.placed()
        state.last_summary = state.top_reason = None
        state.member_job_deleted = False
        price = to_api(offer.spec.price)  # one dictionary, kept by the placement and its history entry
        state.placement = {
            "node": chosen.node, "identityCode": chosen.identity_code, "offer": chosen.offer,
            "price": price, "tier": chosen.tier.value, "region": chosen.region,
            "gpuModel": chosen.gpu_model, "placedAt": iso(at),
        }
        industry = node.model.spec.industry
        if industry:
            state.placement["industry"] = str(industry.value if hasattr(industry, "value") else industry)
        state.member_job = {"cluster": chosen.node, "namespace": node.model.spec.connection.namespace,
                            "name": member_job_name(state.uid, state.attempt)}
        state.history = [h for h in state.history if h["attempt"] != state.attempt] + [{
            "attempt": state.attempt, "node": chosen.node, "memberJobName": state.member_job["name"],
            "offer": chosen.offer, "price": price}]
        self._meter.register(state, state.attempt)
        self._writer.set(state, "Scheduled", True, "Placed",
                         f"offer {chosen.offer} on {chosen.node} ({chosen.identity_code}, {chosen.region}), "
                         f"tier {chosen.tier.value}, {chosen.effective_price} per card-hour")
