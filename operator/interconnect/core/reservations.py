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
from typing import Any, TypeVar, cast

V = TypeVar("V")

_NO_ITEMS: dict[str, Any] = {}
"""The one empty shard (a change copies a shard before writing it, so it is never written)."""


class _Sharded(Mapping[str, V]):
    """A read-only mapping whose changed copy shares all but one part of it.

    The ledger is immutable and changes once per placement, start and end: a plain dict copied
    on every change made each change cost as much as the ledger is large, and an operator
    starting with 50,000 running jobs (each reserved as it is read back) spent minutes copying.
    Keys are spread over `SHARDS` dicts by hash; a change copies the one its key is in.
    """

    __slots__ = ("_length", "_shards")
    SHARDS = 256

    def __init__(self, items: Mapping[str, V] | None = None) -> None:
        count = self.SHARDS
        shards: list[dict[str, V]] = [{} for _ in range(count)]
        for key, value in (items or {}).items():
            shards[hash(key) % count][key] = value
        self._shards: tuple[dict[str, V], ...] = tuple(shard or _NO_ITEMS for shard in shards)
        self._length = sum(map(len, shards))

    def __getitem__(self, key: str) -> V:
        return self._shards[hash(key) % self.SHARDS][key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._shards[hash(key) % self.SHARDS].get(key, default)

    def __contains__(self, key: object) -> bool:
        return key in self._shards[hash(key) % self.SHARDS]

    def __iter__(self) -> Iterator[str]:
        for shard in self._shards:
            yield from shard

    def __len__(self) -> int:
        return self._length

    def changed(self, key: str, value: V | None) -> _Sharded[V]:
        """A copy with ``key`` set to ``value`` (None: removed)."""
        at = hash(key) % self.SHARDS
        shard = dict(self._shards[at])
        length = self._length - (key in shard)
        if value is None:
            shard.pop(key, None)
        else:
            shard[key] = value
            length += 1
        copy = object.__new__(type(self))
        copy._shards = (*self._shards[:at], shard, *self._shards[at + 1 :])
        copy._length = length
        return copy

    def __repr__(self) -> str:
        return repr(dict(self))


class _Holders(_Sharded[int]):
    """An offer's holders (job UID -> cards) with their total kept: the cards reserved on an
    offer are asked for every placement on it, and summing thousands of holders each time cost
    more than the change."""

    __slots__ = ("total",)
    SHARDS = 16  # an offer has hundreds of holders at most at once, often none

    def __init__(self, items: Mapping[str, int] | None = None) -> None:
        super().__init__(items)
        self.total = sum((items or {}).values())

    def changed(self, key: str, value: int | None) -> _Holders:
        copy = cast(_Holders, super().changed(key, value))
        copy.total = self.total - self.get(key, 0) + (value or 0)
        return copy


_EMPTY = _Holders()


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
        frozen = {offer: _Holders(jobs) for offer, jobs in self._by_offer.items() if jobs}
        object.__setattr__(self, "_by_offer", _Sharded(frozen))
        offer_of = {uid: offer for offer, jobs in frozen.items() for uid in jobs}
        object.__setattr__(self, "_offer_of", _Sharded(offer_of))

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
        holders = cast(_Sharded[_Holders], self._by_offer).get(offer)
        return holders.total if holders is not None else 0

    def holders(self, offer: str) -> Mapping[str, int]:
        """The jobs holding cards of ``offer``: job uid -> cards."""
        return self._by_offer.get(offer, _EMPTY)

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
        ledger = cast(_Sharded[_Holders], self._by_offer)
        current: _Holders = ledger.get(offer, _EMPTY)
        others = current.total - current.get(uid, 0)
        if others + cards > free_now:
            raise Oversold(offer, uid, cards, max(0, free_now - others))
        if current.get(uid) == cards:
            return self
        by_offer = ledger.changed(offer, current.changed(uid, cards))
        previous = self._offer_of.get(uid)
        if previous is not None and previous != offer:
            by_offer = by_offer.changed(previous, ledger[previous].changed(uid, None) or None)
        return self._changed(by_offer, uid, offer)

    def release(self, uid: str) -> ReservationLedger:
        """Drop the job's reservation (its pods run, or it left); a no-op when it holds none."""
        offer = self._offer_of.get(uid)
        if offer is None:
            return self
        ledger = cast(_Sharded[_Holders], self._by_offer)
        return self._changed(ledger.changed(offer, ledger[offer].changed(uid, None) or None), uid, None)

    def _changed(self, by_offer: _Sharded[_Holders], uid: str, offer: str | None) -> ReservationLedger:
        """A copy with these offers and `uid` now on `offer`: each a 64th of the ledger copied."""
        ledger = object.__new__(ReservationLedger)
        object.__setattr__(ledger, "_by_offer", by_offer)
        object.__setattr__(ledger, "_offer_of", cast(_Sharded[str], self._offer_of).changed(uid, offer))
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
