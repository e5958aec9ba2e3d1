"""Cards promised to placed jobs whose pods do not run yet, so two placements never oversell.

An offer's free cards come from the member's capacity (allocatable minus what running pods
request). Between placement and the pods starting, that figure does not yet show the job, so
the hub holds a reservation: free = capacity-derived free - reserved-not-yet-running. When the
job's pods run (their requests now count in the capacity) or the job leaves, the reservation
is released.

The ledger is immutable: every change returns a new ledger, so a failed reservation leaves
nothing half-done and the shell can swap ledgers atomically. After a restart it is rebuilt
from the ComputeJobs' status with `from_reservations`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

_NONE: Mapping[str, int] = MappingProxyType({})


class Oversold(Exception):
    """The reservation would promise more cards than the offer has free."""

    def __init__(self, offer: str, uid: str, cards: int, available: int) -> None:
        super().__init__(f"offer {offer}: cannot reserve {cards} cards for {uid}, only {available} available")
        self.offer = offer
        self.uid = uid
        self.cards = cards
        self.available = available


@dataclass(frozen=True, slots=True)
class Reservation:
    offer: str
    uid: str
    """The ComputeJob's UID: one reservation per job."""
    cards: int


@dataclass(frozen=True, slots=True)
class ReservationLedger:
    """offer -> {job uid: cards}; each job holds at most one reservation."""

    _by_offer: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    _offer_of: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        frozen = {offer: MappingProxyType(dict(jobs)) for offer, jobs in self._by_offer.items() if jobs}
        object.__setattr__(self, "_by_offer", MappingProxyType(frozen))
        offer_of = {uid: offer for offer, jobs in frozen.items() for uid in jobs}
        object.__setattr__(self, "_offer_of", MappingProxyType(offer_of))

    def __hash__(self) -> int:
        return hash(frozenset((r.offer, r.uid, r.cards) for r in self))

    @classmethod
    def from_reservations(cls, reservations: Iterable[Reservation]) -> ReservationLedger:
        """Rebuild from durable state (no capacity check: these promises were already made)."""
        by_offer: dict[str, dict[str, int]] = {}
        seen: dict[str, str] = {}
        for r in reservations:
            _check_cards(r.cards)
            if r.uid in seen:
                raise ValueError(f"job {r.uid} holds two reservations ({seen[r.uid]} and {r.offer})")
            seen[r.uid] = r.offer
            by_offer.setdefault(r.offer, {})[r.uid] = r.cards
        return cls(by_offer)

    def reserved(self, offer: str) -> int:
        """Cards promised on `offer` to jobs not yet running."""
        return sum(self._by_offer.get(offer, {}).values())

    def holders(self, offer: str) -> Mapping[str, int]:
        """The jobs holding cards of ``offer``: job uid -> cards."""
        return self._by_offer.get(offer, _NONE)

    def free(self, offer: str, free_now: int) -> int:
        """Cards still sellable, given the capacity-derived free cards (never below zero)."""
        return max(0, free_now - self.reserved(offer))

    def reservation_of(self, uid: str) -> Reservation | None:
        offer = self._offer_of.get(uid)
        return None if offer is None else Reservation(offer, uid, self._by_offer[offer][uid])

    def reserve(self, offer: str, uid: str, cards: int, free_now: int) -> ReservationLedger:
        """Promise `cards` of `offer` to job `uid`, or raise `Oversold`.

        Idempotent: the same job reserving again replaces its own reservation (never counted
        twice), and a job reserving another offer moves its reservation there.
        """
        _check_cards(cards)
        if free_now < 0:
            raise ValueError(f"free_now must not be negative, not {free_now}")
        current = self._by_offer.get(offer, {})
        others = sum(n for holder, n in current.items() if holder != uid)
        if others + cards > free_now:
            raise Oversold(offer, uid, cards, max(0, free_now - others))
        if current.get(uid) == cards:
            return self
        changed = {offer: {**current, uid: cards}}
        previous = self._offer_of.get(uid)
        if previous is not None and previous != offer:
            changed[previous] = {holder: n for holder, n in self._by_offer[previous].items() if holder != uid}
        return self._changed(changed, uid, offer)

    def release(self, uid: str) -> ReservationLedger:
        """Drop the job's reservation (its pods run, or it left); a no-op when it holds none."""
        offer = self._offer_of.get(uid)
        if offer is None:
            return self
        remaining = {holder: n for holder, n in self._by_offer[offer].items() if holder != uid}
        return self._changed({offer: remaining}, uid, None)

    def _changed(self, offers: dict[str, dict[str, int]], uid: str, offer: str | None) -> ReservationLedger:
        """A copy with `offers` replaced and `uid` now on `offer`: O(changes), not O(ledger), bar one dict copy."""
        by_offer = dict(self._by_offer)
        for name, jobs in offers.items():
            if jobs:
                by_offer[name] = MappingProxyType(jobs)
            else:
                by_offer.pop(name, None)
        offer_of = dict(self._offer_of)
        if offer is None:
            offer_of.pop(uid, None)
        else:
            offer_of[uid] = offer
        ledger = object.__new__(ReservationLedger)
        object.__setattr__(ledger, "_by_offer", MappingProxyType(by_offer))
        object.__setattr__(ledger, "_offer_of", MappingProxyType(offer_of))
        return ledger

    def __iter__(self) -> Iterator[Reservation]:
        """Every reservation, in (offer, uid) order."""
        for offer in sorted(self._by_offer):
            jobs = self._by_offer[offer]
            for uid in sorted(jobs):
                yield Reservation(offer, uid, jobs[uid])

    def __len__(self) -> int:
        return len(self._offer_of)


def _check_cards(cards: int) -> None:
    if isinstance(cards, bool) or not isinstance(cards, int) or cards < 1:
        raise ValueError(f"a reservation holds at least one card, not {cards!r}")
