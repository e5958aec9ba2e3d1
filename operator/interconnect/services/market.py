"""The market: offers, tenant quotas and the reservation ledger, and what they add up to.

`Market` owns the ComputeOffers and ComputeQuotas as last seen, and the ledger of cards
reserved for placements whose pods do not hold them yet. `reserve` and `release` are the one
path by which reservations change (kube-scheduler's Assume/Forget). It answers the questions
placement and the reporter ask: the cards of an offer (from the member's own nodes and pods,
less reservations), a placement snapshot, and every tenant's usage (its monthly spend from the
ComputeUsage records the `UsageLedger` keeps, and from its jobs for what has no record yet).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Container, Mapping
from dataclasses import dataclass

from interconnect.api.v1alpha1 import ComputeOffer
from interconnect.api.v1alpha1.quota import ComputeQuota
from interconnect.core.capacity import (
    MemberCards,
    MemberNode,
    OfferCards,
    OfferPool,
    machine_ids,
    offer_cards,
    sharing_offers,
)
from interconnect.core.latency import LatencyTable
from interconnect.core.placement import OfferView, PlacementSnapshot
from interconnect.core.quota import Charge, Month, QuotaJob, QuotaLimit, TenantQuota, TenantUsage, tenant_usage
from interconnect.core.reservations import Reservation, ReservationLedger
from interconnect.core.vocabulary import JobPhase
from interconnect.services.jobs import ACTIVE, JobState, JobStore, parse_time
from interconnect.services.members import Members
from interconnect.services.quota import tenant_quota
from interconnect.services.translate import node_view, offer_view
from interconnect.services.usage_records import UsageLedger

NO_LIMIT = 10**9
"""Free cards assumed when a reservation is restored from a job's status (it was granted before)."""


@dataclass(frozen=True, slots=True)
class MarketSnapshot:
    """One placement pass's view of the market."""

    placement: PlacementSnapshot
    offers: dict[str, OfferView]
    sharing: Mapping[str, tuple[str, ...]]
    """Per offer, the offers selling some of its cards (itself included): placing a job on one
    takes the cards from all of them."""


class Market:
    """Offers, quotas and reservations (see the module docstring)."""

    def __init__(self, members: Members, jobs: JobStore, latency: LatencyTable, ledger: UsageLedger) -> None:
        self._members = members
        self._jobs = jobs
        self._ledger = ledger
        """The ComputeUsage records: what finished attempts were charged (for the monthly spend)."""
        self.latency = latency
        self.offers: dict[str, ComputeOffer] = {}
        self.quotas: dict[str, ComputeQuota] = {}
        """By name (which is also the tenant namespace it caps)."""
        self._reservations = ReservationLedger()
        self.held: dict[str, dict[QuotaLimit, int]] = {}
        """Per tenant, how many jobs the last placement pass held, by the limit that held them."""

    # ------------------------------------------------------------------ reservations

    def reserve(self, offer: str, uid: str, cards: int, free_now: int = NO_LIMIT) -> None:
        """Hold ``cards`` of ``offer`` for job ``uid`` until its pods hold them or it ends."""
        self._reservations = self._reservations.reserve(offer, uid, cards, free_now=free_now)

    def release(self, uid: str) -> None:
        """The job's reservation is over (it ended, was deleted or its attempt was superseded)."""
        self._reservations = self._reservations.release(uid)

    def reserved(self, offer: str) -> int:
        return self._reservations.reserved(offer)

    @property
    def ledger(self) -> ReservationLedger:
        return self._reservations

    # ------------------------------------------------------------------ offers

    def cards_of_all(self) -> dict[str, OfferCards]:
        """Every offer's cards, each less the reservations of every offer sharing its cards."""
        return self._cards_and_sharing()[0]

    def _cards_and_sharing(self) -> tuple[dict[str, OfferCards], dict[str, tuple[str, ...]]]:
        """Every offer's cards, and for each offer the offers that sell some of the same cards
        (itself included): the same ComputeNode and model, or a machine in common, even through
        another ComputeNode pointing at the same member cluster (`core.capacity.sharing_offers`)."""
        offers = list(self.offers.items())
        members: dict[str, MemberCards | None] = {}
        backing: dict[str, tuple[MemberCards | None, dict[str, str], list[MemberNode]]] = {}
        for name, offer in offers:
            ref = offer.spec.node_ref
            if ref not in members:
                member = self._members.connected(ref)
                members[ref] = None if member is None else MemberCards(
                    member.nodes.items.values(), member.gpu_pods_on, member.unbound_gpu_pods)
            indexed = members[ref]
            selector = offer.spec.node_selector.match_labels if offer.spec.node_selector else {}
            backing[name] = (indexed, selector,
                             indexed.backing(selector, offer.spec.gpu_model) if indexed is not None else [])
        sharing = sharing_offers({name: OfferPool(node=offer.spec.node_ref, model=offer.spec.gpu_model,
                                                  machines=machine_ids(offer.spec.node_ref, backing[name][2]))
                                  for name, offer in offers})
        cards = {}
        for name, offer in offers:
            indexed, selector, nodes = backing[name]
            if indexed is None:
                cards[name] = OfferCards(0, 0, 0)
                continue
            # A reservation on any offer sharing these cards counts here, as if made on this one.
            reservations = [Reservation(name, uid, held) for other in sharing[name]
                            for uid, held in self._reservations.holders(other).items()]
            cards[name] = offer_cards(offer=name, cards_offered=offer.spec.cards, selector=selector,
                                      gpu_model=offer.spec.gpu_model, nodes=nodes,
                                      pods=indexed.pods_of(nodes, name), reservations=reservations)
        return cards, sharing

    def sellable(self, offer: ComputeOffer) -> bool:
        state = self._members.get(offer.spec.node_ref)
        return bool(state and state.registered and state.ready and not state.model.spec.cordoned)

    def snapshot(self, at: dt.datetime) -> MarketSnapshot:
        """What placement sees now: every node's health and every offer's free cards."""
        views = [node_view(s.model, registered=s.registered, ready=s.ready and s.member is not None,
                           fenced=s.fencing, month=at.strftime("%Y-%m")) for s in self._members]
        cards, sharing = self._cards_and_sharing()
        offers = {name: offer_view(offer, cards_total=cards[name].total, cards_free=cards[name].free)
                  for name, offer in list(self.offers.items()) if name in cards}
        return MarketSnapshot(PlacementSnapshot.of(views, offers.values(), self.latency, at), offers, sharing)

    # ------------------------------------------------------------------ quotas and tenants

    def tenant_quotas(self) -> dict[str, TenantQuota]:
        return {q.spec.namespace: tenant_quota(q) for q in self.quotas.values()}

    def tenant_usage(self, at: dt.datetime) -> dict[str, TenantUsage]:
        """Every tenant's cards in use, pending jobs and (where a budget needs it) spend this month:
        the ComputeUsage records of the month, and what its attempts without a record (the running
        ones) have cost so far; an attempt with a record counts from its record only."""
        self._ledger.turn(at)
        self._ledger.fold(at, self._jobs)  # the records of deleted jobs, summed (memory follows the jobs)
        budgeted = {q.spec.namespace for q in self.quotas.values() if q.spec.limits.monthly_spend is not None}
        if not budgeted:  # the common case, once per placement pass: cards and pending counts only
            cards: dict[str, int] = {}
            by_model: dict[str, dict[str, int]] = {}
            pending: dict[str, int] = {}
            for s in self._jobs:
                tenant = s.kept.namespace
                if s.phase in ACTIVE:
                    held = s.cards
                    cards[tenant] = cards.get(tenant, 0) + held
                    if s.placement:
                        models = by_model.setdefault(tenant, {})
                        models[s.placement["gpuModel"]] = models.get(s.placement["gpuModel"], 0) + held
                elif s.phase is JobPhase.PENDING:
                    pending[tenant] = pending.get(tenant, 0) + 1
            month = Month.of(at)
            return {t: TenantUsage(cards=cards.get(t, 0), cards_by_model=by_model.get(t, {}),
                                   pending=pending.get(t, 0), month=month)
                    for t in cards.keys() | pending.keys()}
        recorded = ((r.tenant, r.charge) for r in self._ledger.charges(at) if r.tenant in budgeted)
        return tenant_usage((quota_job(s, at if s.kept.namespace in budgeted else None, self._ledger)
                             for s in self._jobs), at, recorded)

    def quota_changed(self, quota: ComputeQuota) -> None:
        self.quotas[quota.metadata.name] = quota

    def quota_deleted(self, name: str) -> ComputeQuota | None:
        self.held.pop(name, None)
        return self.quotas.pop(name, None)


def quota_job(state: JobState, charged_at: dt.datetime | None,
              recorded: Container[tuple[str, int]] = frozenset()) -> QuotaJob:
    """The job as quotas count it; with ``charged_at``, also what each of its attempts without a
    ComputeUsage record (``recorded``: (job uid, attempt) pairs) has cost so far, over the span it
    ran, for the monthly budget's pro-rata attribution: from its first pod's start (or its
    history's startedAt) to the loss of its node, to ``charged_at`` while it runs, else to its
    history's finishedAt or its last pod's end.

    An attempt whose charges are final has a record (written before its end is), so what is
    counted here is normally only a running attempt; an ended one without a record (it ended
    before records were written) still counts from its job, in the month it ended."""
    spent: list[Charge] = []
    if charged_at is not None:
        spans = {h["attempt"]: (parse_time(h.get("startedAt")), parse_time(h.get("finishedAt"))) for h in state.history}
        for attempt, money in state.costs(state.usage).items():
            if money.amount <= 0 or (state.uid, attempt) in recorded:
                continue
            first, last = state.usage.span(attempt)
            started, finished = spans.get(attempt, (None, None))
            lost = state.lost_at(attempt)
            running = attempt == state.attempt and state.phase in ACTIVE and lost is None
            end = lost or (charged_at if running else finished or last) or charged_at
            spent.append(Charge(money, first or started, end))
    return QuotaJob(namespace=state.kept.namespace, phase=state.phase, cards=state.cards,
                    gpu_model=state.placement["gpuModel"] if state.placement else None, charges=tuple(spent))
