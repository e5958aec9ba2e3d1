"""The leader Lease's rules: who may take it, the epoch, and what an older leader may delete."""

from __future__ import annotations

import datetime as dt

import pytest

from interconnect.core.leadership import (
    EPOCH_LABEL,
    LeaseRecord,
    Move,
    epoch_of,
    lease_body,
    may_delete,
    next_move,
    read_lease,
    released_body,
    renew_deadline,
)

AT = dt.datetime(2026, 12, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)


def held(by: str, transitions: int = 3, duration: float = 15) -> LeaseRecord:
    return LeaseRecord(holder=by, duration=duration, transitions=transitions, renewed="2026-12-02T03:04:00.000000Z",
                       acquired="2026-12-02T03:00:00.000000Z", resource_version="42")


def test_a_missing_or_released_lease_is_taken_at_once() -> None:
    assert next_move(None, "a", holding=False, unchanged_for=0) is Move.ACQUIRE
    assert next_move(held(""), "a", holding=False, unchanged_for=0) is Move.ACQUIRE


def test_another_holder_is_waited_for_a_whole_lease_of_this_replica_s_own_clock() -> None:
    assert next_move(held("b"), "a", holding=False, unchanged_for=14.9) is Move.WAIT
    assert next_move(held("b"), "a", holding=False, unchanged_for=15.0) is Move.ACQUIRE


def test_the_holder_renews_and_a_restarted_holder_takes_it_back_with_a_new_epoch() -> None:
    assert next_move(held("a"), "a", holding=True, unchanged_for=100) is Move.RENEW
    assert next_move(held("a"), "a", holding=False, unchanged_for=0) is Move.ACQUIRE


def test_acquiring_raises_the_epoch_and_renewing_keeps_it() -> None:
    record = held("b", transitions=7)
    taken = lease_body(name="l", namespace="ns", identity="a", duration=15, at=AT, record=record, move=Move.ACQUIRE)
    assert taken["spec"]["leaseTransitions"] == 8
    assert taken["spec"]["holderIdentity"] == "a"
    assert taken["spec"]["acquireTime"] == taken["spec"]["renewTime"] == "2026-12-02T03:04:05.678901Z"
    assert taken["metadata"]["resourceVersion"] == "42", "the take is conditional on what was read"
    renewed = lease_body(name="l", namespace="ns", identity="b", duration=15, at=AT, record=record, move=Move.RENEW)
    assert renewed["spec"]["leaseTransitions"] == 7
    assert renewed["spec"]["acquireTime"] == record.acquired
    first = lease_body(name="l", namespace="ns", identity="a", duration=15, at=AT, record=None, move=Move.ACQUIRE)
    assert first["spec"]["leaseTransitions"] == 1
    assert "resourceVersion" not in first["metadata"]


def test_a_written_lease_reads_back() -> None:
    body = lease_body(name="l", namespace="ns", identity="a", duration=15, at=AT, record=held("b", 2),
                      move=Move.ACQUIRE)
    body["metadata"]["resourceVersion"] = "43"
    record = read_lease(body)
    assert (record.holder, record.transitions, record.duration, record.resource_version) == ("a", 3, 15.0, "43")


def test_a_released_lease_keeps_the_epoch_and_names_no_holder() -> None:
    body = released_body(held("a", 5), name="l", namespace="ns", at=AT)
    assert body["spec"]["holderIdentity"] == ""
    assert body["spec"]["leaseTransitions"] == 5
    assert next_move(read_lease(body), "b", holding=False, unchanged_for=0) is Move.ACQUIRE


def test_the_leader_stops_a_third_of_a_lease_before_anyone_may_take_over() -> None:
    assert renew_deadline(15) == pytest.approx(10)
    assert renew_deadline(15) < 15


@pytest.mark.parametrize(("labels", "epoch"), [
    ({EPOCH_LABEL: "4"}, 4), ({}, None), (None, None), ({EPOCH_LABEL: "x"}, None)])
def test_the_epoch_is_read_from_labels(labels: dict[str, str] | None, epoch: int | None) -> None:
    assert epoch_of(labels) == epoch


def test_an_older_leader_never_deletes_a_newer_one_s_work() -> None:
    assert may_delete(3, 3)
    assert may_delete(2, 3)
    assert may_delete(None, 3), "objects from before epochs are fair game"
    assert not may_delete(4, 3)
