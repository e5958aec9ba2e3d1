"""Offers of two ComputeNodes that point at one member cluster never sell the same cards twice.

The member's scheduler, not the hub, puts a job's pods on machines: whatever it does, the
reservations the hub grants must fit the machines (checked here with a max-flow over every
reservation and the machines its offer may use).
"""

from __future__ import annotations

from collections.abc import Mapping

from hypothesis import given, settings
from hypothesis import strategies as st

from interconnect.core.capacity import MemberNode, OfferPool, machine_ids, sharing_offers

A100 = "NVIDIA-A100-SXM4-80GB"
H800 = "NVIDIA-H800"


def test_offers_of_one_computenode_and_model_share_even_before_their_machines_are_seen() -> None:
    pools = {"a": OfferPool("bj", A100, frozenset()), "b": OfferPool("bj", A100, frozenset()),
             "c": OfferPool("bj", H800, frozenset()), "d": OfferPool("sh", A100, frozenset())}
    assert sharing_offers(pools) == {"a": ("a", "b"), "b": ("a", "b"), "c": ("c",), "d": ("d",)}


def test_two_computenodes_on_one_member_share_the_machines_they_both_sell() -> None:
    pools = {"bj-a100": OfferPool("bj", A100, frozenset({"uid-1", "uid-2"})),
             "bj2-a100": OfferPool("bj2", A100, frozenset({"uid-2", "uid-3"})),
             "bj3-a100": OfferPool("bj3", A100, frozenset({"uid-3"})),
             "bj4-a100": OfferPool("bj4", A100, frozenset({"uid-9"}))}
    assert sharing_offers(pools) == {
        "bj-a100": ("bj-a100", "bj2-a100"),
        "bj2-a100": ("bj-a100", "bj2-a100", "bj3-a100"),
        "bj3-a100": ("bj2-a100", "bj3-a100"),
        "bj4-a100": ("bj4-a100",),  # its own node pool on the same member: nothing shared
    }


def test_a_machine_shared_by_two_models_offers_does_not_join_them() -> None:
    """An offer's cards are one model's; a machine carries one model, so two models never share."""
    pools = {"x": OfferPool("bj", A100, frozenset({"uid-1"})), "y": OfferPool("bj2", H800, frozenset({"uid-1"}))}
    assert sharing_offers(pools) == {"x": ("x",), "y": ("y",)}


def test_machines_are_node_uids_else_the_computenode_and_name() -> None:
    with_uid = MemberNode("gpu-1", {}, 8, 8, ready=True, schedulable=True, uid="4f2c")
    without = MemberNode("gpu-2", {}, 8, 8, ready=True, schedulable=True)
    assert machine_ids("bj", [with_uid, without]) == {"4f2c", "bj/gpu-2"}
    # The same machine through another ComputeNode: same UID, same identity.
    assert machine_ids("bj2", [with_uid]) == machine_ids("bj", [with_uid])


def _fits(machines: Mapping[str, int], granted: list[tuple[frozenset[str], int]]) -> bool:
    """Can every reservation be put on its offer's machines without exceeding any machine? (Max
    flow, source -> reservation -> machine -> sink, by augmenting paths.)"""
    source, sink = "source", "sink"
    graph: dict[str, dict[str, int]] = {source: {}, sink: {}}

    def edge(a: str, b: str, capacity: int) -> None:
        graph.setdefault(a, {})[b] = graph.get(a, {}).get(b, 0) + capacity
        graph.setdefault(b, {}).setdefault(a, 0)

    for i, (allowed, cards) in enumerate(granted):
        edge(source, f"r{i}", cards)
        for machine in allowed:
            edge(f"r{i}", f"m:{machine}", cards)
    for machine, capacity in machines.items():
        edge(f"m:{machine}", sink, capacity)
    flow = 0
    while True:
        parent: dict[str, str] = {source: source}
        frontier = [source]
        while frontier and sink not in parent:
            nxt = []
            for a in frontier:
                for b, capacity in graph[a].items():
                    if capacity > 0 and b not in parent:
                        parent[b] = a
                        nxt.append(b)
            frontier = nxt
        if sink not in parent:
            break
        path = []
        b = sink
        while b != source:
            path.append((parent[b], b))
            b = parent[b]
        push = min(graph[a][b] for a, b in path)
        for a, b in path:
            graph[a][b] -= push
            graph[b][a] += push
        flow += push
    return flow == sum(cards for _, cards in granted)


MACHINES = [f"uid-{i}" for i in range(5)]


@settings(max_examples=300, deadline=None)
@given(
    capacity=st.lists(st.integers(0, 8), min_size=len(MACHINES), max_size=len(MACHINES)),
    offers=st.lists(st.tuples(st.sampled_from(["bj", "bj2", "bj3"]),
                              st.frozensets(st.sampled_from(MACHINES), min_size=1)), min_size=1, max_size=5),
    asks=st.lists(st.tuples(st.integers(0, 4), st.integers(1, 8)), max_size=25),
)
def test_reservations_granted_by_the_shared_free_count_always_fit_the_machines(
        capacity: list[int], offers: list[tuple[str, frozenset[str]]], asks: list[tuple[int, int]]) -> None:
    """Each ask is granted when it fits its offer's free cards as the market counts them (the
    offer's machines' cards less every reservation of an offer sharing them); whatever was
    granted can always be scheduled by the member."""
    machines = dict(zip(MACHINES, capacity, strict=True))
    pools = {f"o{i}": OfferPool(node, A100, allowed) for i, (node, allowed) in enumerate(offers)}
    sharing = sharing_offers(pools)
    reserved: dict[str, int] = dict.fromkeys(pools, 0)
    granted: list[tuple[frozenset[str], int]] = []
    for index, cards in asks:
        name = f"o{index % len(pools)}"
        physical = sum(machines[m] for m in pools[name].machines)
        free = physical - sum(reserved[other] for other in sharing[name])
        if cards <= free:
            reserved[name] += cards
            granted.append((pools[name].machines, cards))
    assert _fits(machines, granted)


def test_counting_only_the_offers_own_reservations_would_oversell() -> None:
    """The check above catches the old rule (pool = one ComputeNode and model)."""
    machines = {"uid-1": 8}
    granted = [(frozenset({"uid-1"}), 8), (frozenset({"uid-1"}), 8)]  # bj and bj2 each sold all 8
    assert not _fits(machines, granted)
