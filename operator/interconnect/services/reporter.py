"""What the market looks like, for people: offer and quota status, and the operator's gauges.

`Reporter` reads the stores and writes; it changes nothing anyone else reads. Every two seconds
it writes each ComputeQuota's usage and each ComputeOffer's cards into their status (only when
they changed) and into Prometheus; on the heartbeat's interval it refreshes the jobs, queue,
unschedulable-reason and member gauges.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import weakref
from collections.abc import Iterable, Mapping
from typing import Any

from interconnect.adapters.hub import Hub
from interconnect.adapters.informer import Informer
from interconnect.adapters.metrics import Metrics
from interconnect.core.accelerators import by_name
from interconnect.core.capacity import OfferCards
from interconnect.core.fair_share import dominant_share
from interconnect.core.quota import NO_USAGE
from interconnect.core.vocabulary import JobPhase
from interconnect.services.jobs import JobStore, now
from interconnect.services.journal import DispatchJournal
from interconnect.services.market import Market
from interconnect.services.members import Members
from interconnect.services.quota import quota_status, tenant_quota

log = logging.getLogger(__name__)

STATUS_INTERVAL_SECONDS = 2.0


def _valid(spec: Any, at: Any) -> bool:
    """Whether an offer is within its validity window at `at` (valid_until exclusive)."""
    return (spec.valid_from is None or spec.valid_from <= at) and (spec.valid_until is None or at < spec.valid_until)


class Reporter:
    """Status of offers and quotas, and gauges (see the module docstring)."""

    def __init__(self, hub: Hub, jobs: JobStore, members: Members, market: Market, journal: DispatchJournal,
                 metrics: Metrics, gauge_interval: float) -> None:
        self._hub = hub
        self._jobs = jobs
        self._members = members
        self._market = market
        self._journal = journal
        self._metrics = metrics
        self._gauge_interval = gauge_interval
        self._offer_status: dict[str, dict[str, int]] = {}
        self._quota_status: dict[str, dict[str, Any]] = {}
        self._last_gauges = 0.0
        self._observed_at: float | None = None
        """When the nodes' time was last accounted (monotonic), for the time-weighted counters."""
        self._unreadable_counted: weakref.WeakKeyDictionary[Informer[Any], int] = weakref.WeakKeyDictionary()
        """Per informer, how many of its unreadable objects the counter has (an informer's count
        starts at 0 again when its member reconnects; a closed one's entry goes with it)."""
        self.hub_informers: list[Informer[Any]] = []
        """The hub's own watches (the ComputeJob watch), whose unreadable objects are counted too
        (set by the wiring; the members' are found through `Members`)."""

    def forget_offer(self, name: str) -> None:
        self._offer_status.pop(name, None)
        self._metrics.disown(("offer", name))

    def forget_quota(self, name: str) -> None:
        self._quota_status.pop(name, None)

    async def run(self) -> None:
        while True:
            await asyncio.sleep(STATUS_INTERVAL_SECONDS)
            try:
                await self.write_quota_status()
            except Exception:
                self._metrics.reconcile_errors.labels(loop="quota-status").inc()
                log.exception("quota status pass failed")
            # Once per pass: with many offers and members, the market's cards are the costly part.
            cards: dict[str, OfferCards] = {}
            try:
                cards = self._market.cards_of_all()
                await self.write_offer_status(cards)
            except Exception:
                self._metrics.reconcile_errors.labels(loop="offer-status").inc()
                log.exception("offer status pass failed")
            try:
                self.account_time(time.monotonic(), cards)
            except Exception:
                self._metrics.reconcile_errors.labels(loop="offer-status").inc()
                log.exception("node time accounting failed")
            if time.monotonic() - self._last_gauges >= self._gauge_interval:
                self._last_gauges = time.monotonic()
                self.refresh_gauges()

    def account_time(self, at: float, cards_of: Mapping[str, OfferCards]) -> None:
        """Add the seconds since the last call to each node's observed and Ready time, and cards x
        seconds to what its valid offers offered (a node that is not Ready, cordoned or fenced
        offers nothing), for the network report's availability and utilisation. Also the nodes'
        declared PUE and green share of the month. The first call only starts the clock."""
        last, self._observed_at = self._observed_at, at
        if last is None or at <= last:
            return
        seconds = at - last
        m = self._metrics
        month = now().strftime("%Y-%m")
        for state in self._members:
            spec = state.model.spec
            node = state.model.metadata.name
            where = (node, spec.region, spec.industry.value if spec.industry else "none")
            m.node_observed_seconds.labels(*where).inc(seconds)
            if state.ready and state.member is not None:
                m.node_ready_seconds.labels(*where).inc(seconds)
            facts = spec.energy_facts()
            m.node_pue.labels(node).set(float(facts.effective_pue))
            m.node_green_share.labels(node).set(float(facts.green_share_in(month)))
        at_time = now()
        for name, cards in cards_of.items():
            offer = self._market.offers.get(name)
            if offer is None or not self._market.sellable(offer) or not _valid(offer.spec, at_time):
                continue
            seller = self._members.get(offer.spec.node_ref)
            if seller is None or seller.member is None or cards.total <= 0:
                continue
            spec = seller.model.spec
            model = by_name(offer.spec.gpu_model)
            m.offered_card_seconds.labels(
                offer.spec.node_ref, spec.region, spec.industry.value if spec.industry else "none",
                offer.spec.gpu_model, model.vendor.value if model else "unknown").inc(cards.total * seconds)

    async def write_offer_status(self, cards_of: Mapping[str, OfferCards] | None = None) -> None:
        """Each offer's cards in its status (when changed) and in Prometheus; ``cards_of``: the
        market's cards when the caller has them already."""
        for name, cards in (self._market.cards_of_all() if cards_of is None else cards_of).items():
            offer = self._market.offers.get(name)
            if offer is None:
                continue
            sellable = self._market.sellable(offer)
            free = cards.free if sellable else 0
            series: set[tuple[Any, tuple[str, ...]]] = set()
            for label, value in (("total", cards.total), ("free", free), ("reserved", cards.reserved),
                                 ("in_use", cards.in_use)):
                labels = (name, offer.spec.node_ref, offer.spec.gpu_model, label)  # offer, node, gpu_model, state
                self._metrics.offer_cards.labels(*labels).set(value)
                series.add((self._metrics.offer_cards, labels))
            self._metrics.own(("offer", name), series)
            # Compared as written: a cordon or an unready node changes cardsFree, not the cards.
            status = {"cardsTotal": cards.total, "cardsFree": free, "cardsReserved": cards.reserved,
                      "cardsInUse": cards.in_use}
            if self._offer_status.get(name) == status:
                continue
            with contextlib.suppress(Exception):  # not remembered: tried again on the next pass
                await self._hub.patch_status("computeoffers", name, {"status": status})
                self._offer_status[name] = status

    async def write_quota_status(self) -> None:
        """Each ComputeQuota's usage in its status (when it changed) and in Prometheus."""
        quotas = self._market.quotas
        if not quotas:
            return
        at = now()
        usage = self._market.tenant_usage(at)
        weights = {q.spec.namespace: q.spec.weight for q in quotas.values()}
        for name, quota in list(quotas.items()):
            tenant = quota.spec.namespace
            used = usage.get(tenant, NO_USAGE)
            share = dominant_share(used, weights[tenant])
            self._metrics.set_quota(tenant, tenant_quota(quota), used, share=share,
                                    held=self._market.held.get(tenant))
            status = quota_status(quota, used, share=share, now=at)
            comparable = {k: v for k, v in status.items() if k != "conditions"} | {
                "conditions": [{k: v for k, v in c.items() if k != "lastTransitionTime"} for c in status["conditions"]]}
            if self._quota_status.get(name) == comparable:
                continue
            await self._hub.patch_status("computequotas", name, {"status": status})
            self._quota_status[name] = comparable
            quota.status = type(quota.status).model_validate({**quota.status.model_dump(by_alias=True),
                                                             "conditions": status["conditions"]})

    def refresh_gauges(self) -> None:
        m = self._metrics
        counts = dict.fromkeys(JobPhase, 0)
        reasons: dict[str, int] = {}
        for s in self._jobs:
            counts[s.phase] += 1
            if s.phase is JobPhase.PENDING and s.top_reason:
                reasons[s.top_reason] = reasons.get(s.top_reason, 0) + 1
        for phase, count in counts.items():
            m.jobs.labels(phase=phase.value).set(count)
        m.queue_depth.set(counts[JobPhase.PENDING])
        m.journal_placements.set(self._journal.outstanding)
        m.unschedulable.clear()
        for reason, count in reasons.items():
            m.unschedulable.labels(reason=reason).set(count)
        m.token_expiry.clear()
        nodes = set()
        for state in self._members:
            spec = state.model.spec
            nodes.add(state.name)
            series: set[tuple[Any, tuple[str, ...]]] = set()
            ready = (state.name, state.model.status.identity_code or "", spec.region, str(spec.type.value),
                     str(spec.industry.value) if spec.industry else "none")  # node, identity_code, region, ...
            m.member_ready.labels(*ready).set(1 if state.ready else 0)
            series.add((m.member_ready, ready))
            if state.last_ok is not None:
                m.heartbeat_age.labels(state.name).set(time.monotonic() - state.last_ok)
                series.add((m.heartbeat_age, (state.name,)))
            if state.member is not None:
                m.watch_restarts.labels(state.name).set(sum(i.restarts for i in state.member.informers))
                series.add((m.watch_restarts, (state.name,)))
                series |= self.count_unreadable(state.member.informers)
                token = state.member.token
                if token is not None:
                    m.token_expiry.labels(node=state.name).set(token.expires_at)
            m.own(("node", state.name), series)
        for gone in m.owners("node") - nodes:
            m.disown(("node", gone))  # a deleted ComputeNode leaves no series behind
        self.count_unreadable(self.hub_informers)

    def count_unreadable(self, informers: Iterable[Informer[Any]]) -> set[tuple[Any, tuple[str, ...]]]:
        """Add what the watches skipped since the last call to ``interconnect_unreadable_objects_total``
        (``cluster`` and ``kind`` from the informer's name, ``<cluster>/<kind>``); every watch has its
        series, at 0 while it skipped nothing. Returns those series."""
        series: set[tuple[Any, tuple[str, ...]]] = set()
        for informer in informers:
            cluster, _, kind = informer.name.partition("/")
            labels = (cluster, kind or cluster)
            counter = self._metrics.unreadable_objects.labels(*labels)
            series.add((self._metrics.unreadable_objects, labels))
            new = informer.unreadable - self._unreadable_counted.get(informer, 0)
            if new > 0:
                counter.inc(new)
            self._unreadable_counted[informer] = informer.unreadable
        return series
