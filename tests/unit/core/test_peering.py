"""The active-replica rule mirrors kopf's peering: highest live priority wins, ties freeze all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from interconnect.core.peering import Peer, blocked_until, is_active, peers_from_status

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
LIFE = timedelta(seconds=20)


def peer(identity: str, priority: int, age: float = 0.0) -> Peer:
    return Peer(identity, priority, NOW - timedelta(seconds=age), LIFE)


def test_the_highest_live_priority_is_the_only_active_replica() -> None:
    peers = [peer("a", 100), peer("b", 50)]
    assert is_active("a", 100, peers, NOW)
    assert not is_active("b", 50, peers, NOW)


def test_a_dead_peer_does_not_block_the_standby() -> None:
    peers = [peer("a", 100, age=21), peer("b", 50)]
    assert is_active("b", 50, peers, NOW)
    assert blocked_until("b", 50, peers, NOW) is None


def test_the_standby_knows_when_the_active_one_expires() -> None:
    peers = [peer("a", 100, age=5), peer("b", 50)]
    assert blocked_until("b", 50, peers, NOW) == NOW + timedelta(seconds=15)


def test_equal_priorities_freeze_everyone_as_kopf_does() -> None:
    peers = [peer("a", 7), peer("b", 7)]
    assert not is_active("a", 7, peers, NOW)
    assert not is_active("b", 7, peers, NOW)


def test_a_replica_kopf_has_not_announced_is_not_active() -> None:
    assert not is_active("a", 100, [peer("b", 1)], NOW)
    assert not is_active("a", 100, [peer("a", 100, age=30)], NOW)


def test_kopf_status_is_read_as_kopf_writes_it() -> None:
    status = {"pod-a": {"priority": 100, "lifetime": 20, "lastseen": "2026-11-23T11:59:55.123456+00:00"},
              "broken": {"priority": "x", "lastseen": "2026-11-23T11:59:55+00:00"}, "junk": 3}
    (only,) = peers_from_status(status)
    assert only.identity == "pod-a" and only.priority == 100
    assert only.deadline == datetime(2026, 11, 23, 12, 0, 15, 123456, tzinfo=UTC)


@given(st.lists(st.tuples(st.integers(0, 5), st.floats(0, 40)), min_size=1, max_size=8, unique_by=lambda t: t[0]))
def test_at_most_one_replica_is_active(entries: list[tuple[int, float]]) -> None:
    peers = [peer(f"r{i}", priority, age) for i, (priority, age) in enumerate(entries)]
    active = [p for p in peers if is_active(p.identity, p.priority, peers, NOW)]
    assert len(active) <= 1
    alive = [p for p in peers if p.deadline > NOW]
    if alive:  # unique priorities: the live maximum works
        assert active == [max(alive, key=lambda p: p.priority)]
