"""The reservation ledger never promises cards an offer does not have."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interconnect.core.reservations import Oversold, Reservation, ReservationLedger

EMPTY = ReservationLedger()


def test_reserve_counts_against_free_cards() -> None:
    ledger = EMPTY.reserve("a100", "job-1", 4, free_now=8)
    assert ledger.reserved("a100") == 4
    assert ledger.free("a100", free_now=8) == 4
    assert ledger.reservation_of("job-1") == Reservation("a100", "job-1", 4)
    assert ledger.reserved("other") == 0
    assert len(ledger) == 1


def test_the_original_ledger_is_untouched() -> None:
    ledger = EMPTY.reserve("a100", "job-1", 4, free_now=8)
    ledger.reserve("a100", "job-2", 4, free_now=8)
    ledger.release("job-1")
    assert ledger.reserved("a100") == 4
    assert EMPTY.reserved("a100") == 0


def test_exactly_full_is_fine_one_more_is_oversold() -> None:
    ledger = EMPTY.reserve("a100", "job-1", 4, free_now=8).reserve("a100", "job-2", 4, free_now=8)
    assert ledger.free("a100", 8) == 0
    with pytest.raises(Oversold) as error:
        ledger.reserve("a100", "job-3", 1, free_now=8)
    assert (error.value.offer, error.value.uid, error.value.cards, error.value.available) == ("a100", "job-3", 1, 0)
    assert "only 0 available" in str(error.value)


def test_reserving_again_for_the_same_job_does_not_double_count() -> None:
    once = EMPTY.reserve("a100", "job-1", 6, free_now=8)
    assert once.reserve("a100", "job-1", 6, free_now=8) == once
    resized = once.reserve("a100", "job-1", 8, free_now=8)
    assert resized.reserved("a100") == 8
    assert resized.reserve("a100", "job-1", 2, free_now=8).reserved("a100") == 2


def test_a_job_reserving_elsewhere_moves_its_reservation() -> None:
    ledger = EMPTY.reserve("a100", "job-1", 4, free_now=8).reserve("h100", "job-1", 2, free_now=8)
    assert ledger.reserved("a100") == 0
    assert ledger.reserved("h100") == 2
    assert list(ledger) == [Reservation("h100", "job-1", 2)]


def test_release_and_release_of_unknown_jobs() -> None:
    ledger = EMPTY.reserve("a100", "job-1", 4, free_now=8).reserve("a100", "job-2", 2, free_now=8)
    released = ledger.release("job-1")
    assert released.reserved("a100") == 2
    assert released.reservation_of("job-1") is None
    assert released.release("job-1") == released
    assert released.release("job-2") == EMPTY


def test_free_never_goes_below_zero_when_capacity_shrinks() -> None:
    ledger = EMPTY.reserve("a100", "job-1", 6, free_now=8)
    assert ledger.free("a100", free_now=2) == 0


@pytest.mark.parametrize("cards", [0, -1, True])
def test_a_reservation_holds_at_least_one_card(cards: int) -> None:
    with pytest.raises(ValueError, match="at least one card"):
        EMPTY.reserve("a100", "job-1", cards, free_now=8)


def test_negative_free_is_refused() -> None:
    with pytest.raises(ValueError, match="negative"):
        EMPTY.reserve("a100", "job-1", 1, free_now=-1)


def test_rebuilt_from_durable_state() -> None:
    entries = [Reservation("h100", "job-2", 2), Reservation("a100", "job-1", 4), Reservation("a100", "job-3", 1)]
    ledger = ReservationLedger.from_reservations(entries)
    assert list(ledger) == sorted(entries, key=lambda r: (r.offer, r.uid))
    assert ledger == ReservationLedger.from_reservations(reversed(entries))
    assert hash(ledger) == hash(ReservationLedger.from_reservations(reversed(entries)))
    with pytest.raises(ValueError, match="two reservations"):
        ReservationLedger.from_reservations([Reservation("a", "job-1", 1), Reservation("b", "job-1", 1)])


OFFERS = {"a": 8, "b": 4, "c": 1}
reserve_ops = st.tuples(
    st.just("reserve"), st.sampled_from(sorted(OFFERS)), st.sampled_from(["j1", "j2", "j3", "j4"]), st.integers(1, 9)
)
release_ops = st.tuples(st.just("release"), st.just(""), st.sampled_from(["j1", "j2", "j3", "j4"]), st.just(0))


@given(st.lists(st.one_of(reserve_ops, release_ops), max_size=40))
def test_no_sequence_of_operations_oversells(ops: list[tuple[str, str, str, int]]) -> None:
    ledger = EMPTY
    model: dict[str, tuple[str, int]] = {}  # uid -> (offer, cards): the obvious implementation
    for op, offer, uid, cards in ops:
        if op == "release":
            ledger = ledger.release(uid)
            model.pop(uid, None)
        else:
            others = sum(n for u, (o, n) in model.items() if o == offer and u != uid)
            fits = others + cards <= OFFERS[offer]
            try:
                ledger = ledger.reserve(offer, uid, cards, free_now=OFFERS[offer])
            except Oversold:
                assert not fits
            else:
                assert fits
                model[uid] = (offer, cards)
        for name, capacity in OFFERS.items():
            assert ledger.reserved(name) <= capacity
            assert ledger.reserved(name) == sum(n for o, n in model.values() if o == name)
        assert {r.uid: (r.offer, r.cards) for r in ledger} == model


@given(st.sampled_from(sorted(OFFERS)), st.integers(1, 8))
def test_reserving_twice_is_reserving_once(offer: str, cards: int) -> None:
    capacity = OFFERS[offer]
    try:
        once = EMPTY.reserve(offer, "j", cards, free_now=capacity)
    except Oversold:
        assert cards > capacity
        return
    assert once.reserve(offer, "j", cards, free_now=capacity) == once


@given(st.lists(st.tuples(st.booleans(), st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 299),
                          st.integers(1, 4)), max_size=120))
def test_every_ledger_keeps_what_it_held_and_equals_one_rebuilt(ops: list[tuple[bool, str, int, int]]) -> None:
    """Changes copy only part of a ledger (it is shared with the ledger it came from): every
    earlier ledger still answers as it did, and each equals one rebuilt from its reservations,
    with hundreds of jobs spread over its parts."""
    history: list[tuple[ReservationLedger, list[Reservation]]] = [(EMPTY, [])]
    ledger = EMPTY
    for reserving, offer, job, cards in ops:
        uid = f"job-{job}"
        ledger = ledger.reserve(offer, uid, cards, free_now=10_000) if reserving else ledger.release(uid)
        history.append((ledger, list(ledger)))
    for kept, held in history:
        assert list(kept) == held and len(kept) == len(held)
        assert kept == ReservationLedger.from_reservations(held)
        for r in held:
            assert kept.reservation_of(r.uid) == r and kept.holders(r.offer)[r.uid] == r.cards
        for offer in "abcd":
            assert kept.reserved(offer) == sum(r.cards for r in held if r.offer == offer)
