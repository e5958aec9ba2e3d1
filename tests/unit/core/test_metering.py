"""Metering: card-hours from pod timestamps, idempotent accrual, cost rounded once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interconnect.core.metering import (
    CardTime,
    PodAccrual,
    PodRun,
    UsageRecord,
    accrue,
    card_hours,
    card_time,
    cost,
    delta,
    split_at,
)
from interconnect.core.money import MINOR_UNITS, Money, MoneyError, Price, round_to_minor_unit
from interconnect.core.vocabulary import BillingUnit

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)
EMPTY = UsageRecord()


def run(uid: str, gpus: int, start: timedelta, end: timedelta | None = None) -> PodRun:
    return PodRun(uid, gpus, T0 + start, None if end is None else T0 + end)


def card_hour(amount: str, currency: str = "CNY") -> Price:
    return Price(Money(Decimal(amount), currency), BillingUnit.CARD_HOUR)


def machine_hour(amount: str, cards_per_machine: int, currency: str = "CNY") -> Price:
    return Price(Money(Decimal(amount), currency), BillingUnit.MACHINE_HOUR, cards_per_machine)


def brute_force_microseconds(runs: list[PodRun], now: datetime) -> int:
    """The obvious sum, from timedelta components (no floor division of timedeltas, no floats)."""
    total = 0
    for r in {r.pod_uid: r for r in runs}.values():
        span = (r.finished or now) - r.started
        micro = (span.days * 86_400 + span.seconds) * 1_000_000 + span.microseconds
        total += r.gpus * max(0, micro)
    return total


# -- card-hours ---------------------------------------------------------------------------------


def test_gpus_times_hours() -> None:
    runs = [run("a", 2, timedelta(0), 90 * timedelta(minutes=1)), run("b", 4, timedelta(0), HOUR)]
    assert card_hours(runs, T0 + 10 * HOUR) == Decimal(7)


def test_a_running_pod_counts_up_to_now() -> None:
    assert card_hours([run("a", 8, timedelta(0))], T0 + HOUR / 2) == Decimal(4)


def test_backwards_timestamps_count_zero() -> None:
    assert card_time([run("a", 8, HOUR, timedelta(0))], T0 + 2 * HOUR) == CardTime(0)
    assert card_time([run("a", 8, HOUR)], T0) == CardTime(0)  # now before start: clock skew


def test_exact_to_the_microsecond() -> None:
    one = [run("a", 1, timedelta(0), timedelta(microseconds=1))]
    assert card_time(one, T0) == CardTime(1)
    assert card_hours(one, T0) == Decimal("0.000000000278")
    assert CardTime(1).exact_card_hours == Fraction(1, 3_600_000_000)
    long = [run("a", 3, timedelta(0), timedelta(days=400, microseconds=7))]
    assert card_time(long, T0).card_microseconds == 3 * (400 * 86_400 * 1_000_000 + 7)


def test_timezones_do_not_matter() -> None:
    beijing = timezone(timedelta(hours=8))
    pod = PodRun("a", 1, T0.astimezone(beijing), (T0 + HOUR).astimezone(beijing))
    assert card_hours([pod], T0) == Decimal(1)


def test_a_pod_reported_twice_counts_once_by_its_final_word() -> None:
    running = run("a", 2, timedelta(0))
    finished = run("a", 2, timedelta(0), HOUR)
    assert card_hours([running, finished], T0 + 3 * HOUR) == Decimal(2)
    assert card_hours([finished, running], T0 + 3 * HOUR) == Decimal(2)


def test_pod_validation() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        PodRun("a", 1, datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="gpus"):
        PodRun("a", -1, T0)
    with pytest.raises(ValueError, match="timezone-aware"):
        card_time([], datetime(2025, 1, 1))


# -- accrual ------------------------------------------------------------------------------------

offsets = st.integers(0, 10 * 3_600_000_000).map(lambda us: timedelta(microseconds=us))
pod_runs = st.lists(
    st.builds(
        lambda uid, gpus, start, length: PodRun(
            uid, gpus, T0 + start, None if length is None else T0 + start + length - timedelta(hours=1)
        ),
        st.sampled_from(["p0", "p1", "p2", "p3"]),
        st.integers(0, 8),
        offsets,
        st.none() | offsets,
    ),
    max_size=6,
)
attempts = st.integers(0, 3)


@given(pod_runs, offsets, attempts)
def test_accrual_equals_the_brute_force_sum(runs: list[PodRun], at: timedelta, attempt: int) -> None:
    unique = list({r.pod_uid: r for r in runs}.values())
    record = accrue(EMPTY, unique, T0 + at, attempt)
    assert record.card_time().card_microseconds == brute_force_microseconds(unique, T0 + at)
    assert record.card_time(attempt) == card_time(unique, T0 + at)
    assert record.attempts in ((), (attempt,))


@given(pod_runs, offsets, attempts)
def test_accrual_is_idempotent(runs: list[PodRun], at: timedelta, attempt: int) -> None:
    once = accrue(EMPTY, runs, T0 + at, attempt)
    assert accrue(once, runs, T0 + at, attempt) == once
    assert accrue(once, list(reversed(runs)), T0 + at, attempt) == once


@given(pod_runs, offsets, offsets, attempts)
def test_accrual_is_monotone_in_now_and_path_independent(
    runs: list[PodRun], a: timedelta, b: timedelta, attempt: int
) -> None:
    early, late = T0 + min(a, b), T0 + max(a, b)
    at_early = accrue(EMPTY, runs, early, attempt)
    at_late = accrue(EMPTY, runs, late, attempt)
    assert at_early.card_time() <= at_late.card_time()
    # an outage between the two observations loses nothing, and seeing `early` again is harmless
    assert accrue(at_early, runs, late, attempt) == at_late
    assert accrue(at_late, runs, early, attempt) == at_late
    assert delta(at_early, at_late) == at_late.card_time().increase_over(at_early.card_time()).card_hours


def test_restart_recomputes_the_same_record() -> None:
    runs = [run("a", 4, timedelta(0)), run("b", 4, timedelta(minutes=30))]
    before = accrue(EMPTY, runs, T0 + HOUR, attempt=1)
    after_outage = accrue(before, runs, T0 + 3 * HOUR, attempt=1)  # the member was silent for 2 h
    assert after_outage.card_hours() == Decimal(22)  # 4 GPUs x 3 h + 4 GPUs x 2.5 h
    assert after_outage.seconds() == Decimal(19_800)
    assert accrue(EMPTY, runs, T0 + 3 * HOUR, attempt=1) == after_outage


def test_a_late_finish_corrects_the_running_estimate() -> None:
    running = accrue(EMPTY, [run("a", 2, timedelta(0))], T0 + 3 * HOUR, attempt=1)
    assert running.card_hours() == Decimal(6)
    finished = accrue(running, [run("a", 2, timedelta(0), HOUR)], T0 + 3 * HOUR, attempt=1)
    assert finished.card_hours() == Decimal(2)
    assert delta(running, finished) == Decimal(0)  # counters never go down
    stale = accrue(finished, [run("a", 2, timedelta(0))], T0 + 4 * HOUR, attempt=1)
    assert stale == finished  # a stale "running" report cannot reopen a finished pod


def test_attempts_and_vanished_pods_keep_what_they_accrued() -> None:
    first = accrue(EMPTY, [run("a", 2, timedelta(0), HOUR)], T0 + HOUR, attempt=1)
    second = accrue(first, [run("b", 4, HOUR)], T0 + 2 * HOUR, attempt=2)
    assert second.attempts == (1, 2)
    assert second.card_hours(1) == Decimal(2)
    assert second.card_hours(2) == Decimal(4)
    assert second.card_hours() == Decimal(6)
    assert delta(first, second, attempt=1) == Decimal(0)
    assert delta(first, second, attempt=2) == Decimal(4)
    assert accrue(second, [], T0 + 5 * HOUR, attempt=2) == second


def test_record_validation() -> None:
    with pytest.raises(ValueError, match="one entry per pod"):
        UsageRecord((PodAccrual(1, "a", 1, 5, False), PodAccrual(1, "a", 1, 6, True)))
    with pytest.raises(ValueError, match="attempt"):
        accrue(EMPTY, [], T0, attempt=-1)
    record = UsageRecord((PodAccrual(2, "b", 1, 5, False), PodAccrual(1, "a", 1, 6, True)))
    assert [p.attempt for p in record.pods] == [1, 2]


@given(st.lists(st.tuples(pod_runs, offsets), max_size=5), attempts)
def test_deltas_never_negative_and_add_up_when_time_only_moves_forward(
    observations: list[tuple[list[PodRun], timedelta]], attempt: int
) -> None:
    record, total = EMPTY, CardTime(0)
    for runs, at in observations:
        new = accrue(record, runs, T0 + at, attempt)
        assert delta(record, new) >= 0
        total = total + new.card_time().increase_over(record.card_time())
        record = new
    assert total >= record.card_time()


# -- cost ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "price", "per_replica", "replicas", "expected"),
    [
        (Decimal(10), card_hour("2.5"), 1, 1, "25.00"),
        (Decimal(3), machine_hour("20", 8), 3, 1, "20.00"),  # 1 hour of 3 cards = 1 machine-hour
        (Decimal(9), machine_hour("20", 8), 3, 3, "40.00"),  # 9 cards: 2 machines
        (Decimal(16), machine_hour("20", 8), 8, 2, "40.00"),
        (Decimal(1), machine_hour("20", 8), 3, 1, "6.67"),
        (Decimal("1.5"), card_hour("0.01"), 1, 1, "0.02"),  # 0.015 rounds half up
        (Decimal(3), card_hour("333.3333", "JPY"), 1, 1, "1000"),
        (Decimal(0), card_hour("5"), 1, 1, "0.00"),
    ],
)
def test_cost(usage: Decimal, price: Price, per_replica: int, replicas: int, expected: str) -> None:
    charged = cost(usage, price, per_replica, replicas)
    assert charged == Money(Decimal(expected), price.currency)
    assert charged.amount_text == expected


def test_rounding_happens_once_for_the_whole_usage() -> None:
    price = card_hour("0.01")
    pods = [Decimal("0.5")] * 3  # each pod alone would cost 0.005 -> 0.01
    per_pod = sum((cost(h, price, 1, 1).amount for h in pods), Decimal(0))
    assert per_pod == Decimal("0.03")
    assert cost(sum(pods, Decimal(0)), price, 1, 1).amount == Decimal("0.02")


def test_exact_usage_bills_ties_correctly() -> None:
    third_of_an_hour = CardTime(1_200_000_000)  # exactly 1/3 card-hour
    price = card_hour("0.015")  # exactly 0.005 CNY: half up -> 0.01
    assert cost(third_of_an_hour, price, 1, 1).amount == Decimal("0.01")
    assert cost(Fraction(1, 3), price, 1, 1).amount == Decimal("0.01")
    # the 12-place Decimal is for display: 0.333333333333 h is a hair under a third
    assert cost(third_of_an_hour.card_hours, price, 1, 1).amount == Decimal("0.00")


def test_cost_validation() -> None:
    with pytest.raises(MoneyError):
        cost(Decimal(1), card_hour("1"), 0, 1)
    with pytest.raises(MoneyError):
        cost(Decimal(-1), card_hour("1"), 1, 1)
    with pytest.raises(MoneyError):
        cost(Decimal("NaN"), card_hour("1"), 1, 1)


prices = st.decimals(min_value=0, max_value=1000, places=4)
micros = st.integers(0, 10**13)


@given(micros, prices, st.sampled_from(sorted(MINOR_UNITS)))
def test_card_hour_cost_is_the_exact_product_rounded_once(usage: int, amount: Decimal, currency: str) -> None:
    price = card_hour(str(amount), currency)
    exact = Fraction(usage, 3_600_000_000) * Fraction(amount)
    charged = cost(CardTime(usage), price, 1, 1)
    assert charged.amount == round_to_minor_unit(exact, currency)
    assert abs(Fraction(charged.amount) - exact) <= Fraction(1, 2 * 10 ** MINOR_UNITS[currency])


@given(micros, prices, st.integers(1, 8), st.integers(1, 4), st.sampled_from([1, 2, 4, 8]))
def test_machine_hours_bill_whole_machines(
    usage: int, amount: Decimal, per_replica: int, replicas: int, per_machine: int
) -> None:
    cards = per_replica * replicas
    machines = -(-cards // per_machine)
    charged = cost(CardTime(usage), machine_hour(str(amount), per_machine), per_replica, replicas)
    exact = Fraction(usage, 3_600_000_000) / cards * machines * Fraction(amount)
    assert charged.amount == round_to_minor_unit(exact, "CNY")
    # never cheaper than the same cards bought by the card at the machine's per-card rate
    per_card = cost(CardTime(usage), card_hour(str(amount)), 1, 1).amount / per_machine
    assert charged.amount >= per_card - Decimal("0.01")


@given(micros, micros, prices)
def test_cost_is_monotone_in_usage(a: int, b: int, amount: Decimal) -> None:
    price = card_hour(str(amount))
    low, high = sorted((a, b))
    assert cost(CardTime(low), price, 1, 1) <= cost(CardTime(high), price, 1, 1)


# -- lost time ----------------------------------------------------------------------------------


def test_split_at_the_moment_a_member_was_declared_lost() -> None:
    runs = [
        run("before", 1, timedelta(0), HOUR),  # finished before: charged
        run("across", 2, timedelta(0)),  # still running: split
        run("after", 4, 3 * HOUR, 4 * HOUR),  # started after: lost
    ]
    lost_since, now = T0 + 2 * HOUR, T0 + 5 * HOUR
    charged, lost = split_at(runs, lost_since, now)
    assert charged.card_hours == Decimal(1 + 2 * 2)
    assert lost.card_hours == Decimal(2 * 3 + 4)


@given(pod_runs, offsets, offsets)
def test_split_loses_nothing_and_invents_nothing(runs: list[PodRun], lost: timedelta, at: timedelta) -> None:
    now = T0 + at
    charged, lost_part = split_at(runs, T0 + lost, now)
    assert charged + lost_part == card_time(runs, now)


@given(pod_runs, offsets, offsets)
def test_a_lost_attempt_is_charged_up_to_the_loss_and_records_the_rest(
        runs: list[PodRun], lost: timedelta, at: timedelta) -> None:
    now = T0 + at
    record = accrue(EMPTY, runs, now, attempt=1, lost_since=T0 + lost)
    charged, lost_part = split_at(runs, T0 + lost, now)
    assert record.card_time(1) == charged
    assert record.lost_card_time(1) == lost_part
    assert record.card_time() + record.lost_card_time() == card_time(runs, now)


def test_a_lost_attempt_observed_again_later_grows_only_its_lost_part() -> None:
    runs = [run("a", 2, timedelta(0))]  # still running on the lost member
    before_loss = accrue(EMPTY, runs, T0 + HOUR, attempt=1)  # metered while the member answered
    at_fence = accrue(before_loss, runs, T0 + 3 * HOUR, attempt=1, lost_since=T0 + 2 * HOUR)
    assert at_fence.card_hours(1) == Decimal(2 * 2)  # charged up to the declaration only
    assert at_fence.lost_card_time(1).card_hours == Decimal(2 * 1)
    finished = accrue(at_fence, [run("a", 2, timedelta(0), 150 * timedelta(minutes=1))], T0 + 4 * HOUR,
                      attempt=1, lost_since=T0 + 2 * HOUR)
    assert finished.card_hours(1) == Decimal(4)
    assert finished.lost_card_time(1).card_hours == Decimal(1)  # the member's finish settles it
    assert accrue(finished, runs, T0 + 5 * HOUR, attempt=1, lost_since=T0 + 2 * HOUR) == finished


# -- the earliest start (issue 21: cards held without paying) -----------------------------------
#
# A pod is metered from its first container's start (init containers and native sidecars
# included) to its last container's finish, restarts and the gaps between them included. The
# kubelet shows only a container's current run and the one before, so after a restart the pod's
# earliest visible start can move forward: the record keeps the earliest one it has seen.

MINUTE = timedelta(minutes=1)
Observation = tuple[PodRun, timedelta]
"""What the member reported for the pod (as `project_dispatched_pod` gives it), and when."""


def seen(gpus: int, start: timedelta, end: timedelta | None, at: timedelta) -> Observation:
    return run("pod", gpus, start, end), at


# 8 cards, restartPolicy OnFailure: three 50-minute runs (0-50, 55-105, 110-160 min), the kubelet
# restarting the container 5 minutes after each failure. After the second failure the pod's status
# shows only runs 2 and 3 (state, lastState): its earliest start is then 55 min, not 0.
THREE_RUNS = [
    seen(8, 0 * MINUTE, None, 30 * MINUTE),  # run 1
    seen(8, 0 * MINUTE, None, 52 * MINUTE),  # CrashLoopBackOff, lastState = run 1
    seen(8, 0 * MINUTE, None, 80 * MINUTE),  # run 2, lastState = run 1
    seen(8, 55 * MINUTE, None, 107 * MINUTE),  # CrashLoopBackOff, lastState = run 2: run 1 is gone
    seen(8, 55 * MINUTE, None, 130 * MINUTE),  # run 3, lastState = run 2
    seen(8, 55 * MINUTE, 160 * MINUTE, 161 * MINUTE),  # Succeeded: run 3 terminated, lastState = run 2
]
# 8 cards: a 10-hour init container (downloading weights onto the cards' node), then a 1-minute
# main container starting 2 s after it.
LONG_INIT = [
    seen(8, 0 * MINUTE, None, 5 * HOUR),  # the init container runs
    seen(8, 0 * MINUTE, None, 10 * HOUR + MINUTE / 2),  # the main container runs
    seen(8, 0 * MINUTE, 10 * HOUR + MINUTE + timedelta(seconds=2), 10 * HOUR + 2 * MINUTE),  # Succeeded
]
# 1 card: a native sidecar (init container with restartPolicy Always) starts first and runs until
# the kubelet stops it, 30 s after the 60-minute main container finished.
SIDECAR = [
    seen(1, 0 * MINUTE, None, 30 * MINUTE),
    seen(1, 0 * MINUTE, None, 60 * MINUTE + timedelta(seconds=10)),  # main done, sidecar still runs
    seen(1, 0 * MINUTE, 60 * MINUTE + timedelta(seconds=30), 61 * MINUTE),  # Succeeded
]


def test_an_attempts_span_is_its_first_start_to_its_last_end() -> None:
    t0 = datetime(2026, 11, 30, 23, 0, tzinfo=UTC)
    record = UsageRecord((
        PodAccrual(1, "a", 2, 3_600_000_000, True, 0, t0),
        PodAccrual(1, "b", 2, 600_000_000, False, 300_000_000, t0 + timedelta(minutes=10)),
        PodAccrual(1, "legacy", 2, 99, True),  # no start kept: left out
        PodAccrual(2, "c", 2, 60_000_000, True, 0, t0 + timedelta(hours=2)),
    ))
    # b: 10 charged + 5 lost minutes from 23:10; a ends at 00:00.
    assert record.span(1) == (t0, t0 + timedelta(hours=1))
    assert record.span(2) == (t0 + timedelta(hours=2), t0 + timedelta(hours=2, minutes=1))
    assert record.span(3) == (None, None)
    assert UsageRecord((PodAccrual(1, "legacy", 2, 99, True),)).span(1) == (None, None)


def feed(record: UsageRecord, observations: list[Observation]) -> list[UsageRecord]:
    """The record after each observation, taken in one at a time as the meter does."""
    records = []
    for pod_run, at in observations:
        record = accrue(record, [pod_run], T0 + at, attempt=1)
        records.append(record)
    return records


@pytest.mark.parametrize(
    ("observations", "minutes_after_each", "card_hours"),
    [
        # 3 x 50 min of runs + 2 x 5 min of restarts = 160 min from the first start to the last
        # finish, x 8 cards = 21.33 card-hours (the bug metered 50 min x 8 = 6.67 of them).
        pytest.param(THREE_RUNS, [30, 52, 80, 107, 130, 3 * 50 + 2 * 5], Decimal(8 * 160) / 60,
                     id="three-OnFailure-runs"),
        # 10 h of init container + 1 min 2 s of main container = 601 min 2 s, x 8 cards.
        pytest.param(LONG_INIT, [300, Fraction(1201, 2), Fraction(36062, 60)], Decimal(8 * 36062) / 3600,
                     id="10h-init-container"),
        # 60 min 30 s: until the sidecar stopped, not only the 60 min of the main container.
        pytest.param(SIDECAR, [30, Fraction(3610, 60), Fraction(121, 2)], Decimal(3630) / 3600,
                     id="native-sidecar"),
    ],
)
def test_a_pod_is_metered_from_its_first_start_to_its_last_finish(
        observations: list[Observation], minutes_after_each: list[Fraction | int], card_hours: Decimal) -> None:
    records = feed(EMPTY, observations)
    for record, minutes in zip(records, minutes_after_each, strict=True):
        [pod] = record.pods
        assert Fraction(pod.microseconds, 60_000_000) == minutes
        assert pod.started == T0  # the first start, even once the member no longer shows it
    assert records[-1].pods[0].finished
    assert abs(records[-1].card_hours() - card_hours) < Decimal("1e-11")


@pytest.mark.parametrize("observations", [THREE_RUNS, LONG_INIT, SIDECAR])
def test_the_same_observations_again_change_nothing(observations: list[Observation]) -> None:
    once = feed(EMPTY, observations)[-1]
    assert feed(once, observations)[-1] == once
    assert feed(once, list(reversed(observations)))[-1] == once
    # all at once (the latest `now`): the same record
    assert accrue(EMPTY, [r for r, _ in observations], T0 + observations[-1][1], attempt=1) == once


def rebuilt(record: UsageRecord) -> UsageRecord:
    """The record as an operator that restarted reads it back (`services.jobs.job_state`)."""
    return UsageRecord(tuple(PodAccrual(p.attempt, p.pod_uid, p.gpus, p.microseconds, p.finished,
                                        p.lost_microseconds, p.started) for p in record.pods))


def test_an_operator_restart_keeps_the_first_start() -> None:
    before = feed(EMPTY, THREE_RUNS[:3])[-1]  # the operator saw run 1's start (0 min), then stopped
    after = feed(rebuilt(before), THREE_RUNS[3:])  # back once the member shows only runs 2 and 3
    assert [p.microseconds // 60_000_000 for r in after for p in r.pods] == [107, 130, 160]
    assert after[-1] == feed(EMPTY, THREE_RUNS)[-1]


def test_a_record_without_a_start_never_shrinks_while_the_pod_runs() -> None:
    # Written before startedAt was kept: 107 min recorded, no start. The member now shows 55 min.
    legacy = UsageRecord((PodAccrual(1, "pod", 8, 107 * 60_000_000, False),))
    steps = feed(legacy, THREE_RUNS[4:5])  # 130 min: 75 min from 55 would be less
    assert steps[-1].pods[0].microseconds == 107 * 60_000_000
    assert steps[-1].pods[0].started == T0 + 55 * MINUTE  # the start it saw is kept from now on
    later = feed(steps[-1], [seen(8, 55 * MINUTE, None, 170 * MINUTE)])[-1]
    assert later.pods[0].microseconds == 115 * 60_000_000  # grows again once past the recorded figure
    done = feed(later, THREE_RUNS[5:])[-1]
    assert (done.pods[0].microseconds, done.pods[0].finished) == (105 * 60_000_000, True)  # the final word


def test_a_start_seen_late_counts_a_finished_pod_from_it() -> None:
    finished = accrue(EMPTY, [run("pod", 8, 55 * MINUTE, 160 * MINUTE)], T0 + 161 * MINUTE, attempt=1)
    assert finished.pods[0].microseconds == 105 * 60_000_000
    # a report held up somewhere shows run 1's start: the final figure now counts from it
    earlier = accrue(finished, [run("pod", 8, timedelta(0))], T0 + 30 * MINUTE, attempt=1)
    assert (earlier.pods[0].microseconds, earlier.pods[0].finished, earlier.pods[0].started) == (
        160 * 60_000_000, True, T0)
    assert accrue(earlier, [run("pod", 8, 55 * MINUTE, 160 * MINUTE)], T0 + 161 * MINUTE, attempt=1) == earlier


def test_a_lost_attempt_splits_from_the_earliest_start() -> None:
    lost_since = T0 + 100 * MINUTE
    record = feed(EMPTY, THREE_RUNS[:3])[-1]
    fenced = accrue(record, [run("pod", 8, 55 * MINUTE)], T0 + 130 * MINUTE, attempt=1, lost_since=lost_since)
    assert (fenced.pods[0].microseconds, fenced.pods[0].lost_microseconds) == (100 * 60_000_000, 30 * 60_000_000)


def test_a_start_must_be_timezone_aware() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        PodAccrual(1, "a", 1, 0, False, 0, datetime(2025, 1, 1))


pod_starts = st.integers(0, 600).map(lambda m: m * MINUTE)
running_reports = st.lists(st.tuples(pod_starts, st.integers(0, 600).map(lambda m: m * MINUTE)), min_size=1,
                           max_size=8)


@given(running_reports)
def test_a_running_pod_keeps_its_earliest_start_and_its_figure_never_shrinks(
        reports: list[tuple[timedelta, timedelta]]) -> None:
    record, figure = EMPTY, 0
    for i, (start, at) in enumerate(sorted(reports, key=lambda r: r[1])):
        record = accrue(record, [run("pod", 2, start)], T0 + at, attempt=1)
        [pod] = record.pods
        assert pod.microseconds >= figure
        assert pod.started == T0 + min(s for s, _ in sorted(reports, key=lambda r: r[1])[: i + 1])
        figure = pod.microseconds


@given(st.lists(st.builds(lambda start, length: run("pod", 4, start, None if length is None else start + length),
                          pod_starts, st.none() | pod_starts), min_size=1, max_size=6),
       st.permutations(range(6)), pod_starts)
def test_reports_taken_in_one_by_one_in_any_order_or_all_at_once_agree(
        reports: list[PodRun], order: list[int], at: timedelta) -> None:
    now = T0 + 600 * MINUTE + at
    together = accrue(EMPTY, reports, now, attempt=1)
    one_by_one = EMPTY
    for i in [i for i in order if i < len(reports)]:
        one_by_one = accrue(one_by_one, [reports[i]], now, attempt=1)
    assert one_by_one == together
    assert together.pods[0].started == min(r.started for r in reports)


@pytest.mark.parametrize(("spent", "verdict"), [("0", "within"), ("7.99", "within"), ("8", "nearly spent"),
                                                 ("9.99", "nearly spent"), ("10", "spent"), ("12", "spent")])
def test_budget_verdict(spent: str, verdict: str) -> None:
    from interconnect.core.metering import budget_verdict

    assert budget_verdict(Money.of(spent, "CNY"), Money.of("10", "CNY")).value == verdict


def test_a_budget_in_another_currency_is_not_compared() -> None:
    from interconnect.core.metering import budget_verdict

    with pytest.raises(MoneyError):
        budget_verdict(Money.of("1", "USD"), Money.of("10", "CNY"))
