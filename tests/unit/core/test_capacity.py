"""Offers never sell cards that are not there."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from interconnect.core.capacity import (
    MemberNode,
    MemberPod,
    capacity_by_model,
    effective_request,
    gpus_requested,
    offer_cards,
    offer_nodes,
)
from interconnect.core.reservations import Reservation

A100 = "NVIDIA-A100-SXM4-80GB"
H800 = "NVIDIA-H800"


def node(name: str, model: str = A100, gpus: int = 8, ready: bool = True, pool: str = "a") -> MemberNode:
    labels = {"nvidia.com/gpu.product": model, "pool": pool}
    return MemberNode(name, labels, gpus, gpus, ready=ready, schedulable=True)


def cards(nodes: list[MemberNode], pods: list[MemberPod], reservations: list[Reservation] = (),  # type: ignore[assignment]
          offered: int = 100, selector: dict[str, str] | None = None, model: str = A100):
    return offer_cards(offer="o", cards_offered=offered, selector=selector or {}, gpu_model=model,
                       nodes=nodes, pods=pods, reservations=reservations)


def test_free_cards_are_allocatable_minus_live_pods() -> None:
    result = cards([node("n1"), node("n2")], [MemberPod("p1", "n1", 3, False), MemberPod("p2", "n2", 8, True)])
    assert (result.total, result.in_use, result.free) == (16, 3, 13)


def test_only_nodes_of_the_offered_model_and_selector_count() -> None:
    nodes = [node("n1"), node("n2", model=H800), node("n3", pool="b")]
    result = cards(nodes, [MemberPod("p", "n2", 8, False)], selector={"pool": "a"})
    assert (result.total, result.in_use, result.free) == (8, 0, 8)


def test_not_ready_nodes_sell_nothing() -> None:
    result = cards([node("n1", ready=False), node("n2")], [])
    assert result.total == 8


def test_offer_caps_what_it_sells() -> None:
    result = cards([node("n1"), node("n2")], [MemberPod("p", "n1", 4, False)], offered=10)
    assert (result.total, result.free) == (10, 6)


def test_reservation_counts_only_until_its_pods_exist() -> None:
    reservations = [Reservation("o", "job-1", 4)]
    before = cards([node("n1")], [], reservations)
    assert (before.reserved, before.free) == (4, 4)
    pending_unbound = MemberPod("p", None, 4, False, offer="o", job_uid="job-1")
    after_create = cards([node("n1")], [pending_unbound], reservations)
    assert (after_create.in_use, after_create.reserved, after_create.free) == (4, 0, 4)
    bound = MemberPod("p", "n1", 4, False, offer="o", job_uid="job-1")
    after_bind = cards([node("n1")], [bound], reservations)
    assert (after_bind.in_use, after_bind.reserved, after_bind.free) == (4, 0, 4)


def test_capacity_by_model() -> None:
    nodes = [node("n1"), node("n2", ready=False), node("n3", model=H800, gpus=4)]
    caps = {c.model: c for c in capacity_by_model(nodes, [MemberPod("p", "n1", 2, False)])}
    assert (caps[A100].total, caps[A100].allocatable, caps[A100].in_use) == (16, 8, 2)
    assert (caps[H800].total, caps[H800].in_use) == (4, 0)


def test_gpus_requested_follows_the_scheduler() -> None:
    def c(n: int) -> dict[str, object]:
        return {"resources": {"limits": {"nvidia.com/gpu": str(n)}}}

    assert gpus_requested([c(2), c(1), {"name": "sidecar"}]) == 3
    assert gpus_requested([c(1)], [c(4)]) == 4
    assert gpus_requested([{"resources": {"requests": {"nvidia.com/gpu": 2}}}]) == 2


@given(
    gpus=st.lists(st.integers(0, 8), min_size=1, max_size=6),
    pods=st.lists(st.tuples(st.integers(0, 5), st.integers(0, 8), st.booleans()), max_size=20),
    reserved=st.lists(st.integers(1, 16), max_size=5),
)
def test_free_never_exceeds_what_exists(
    gpus: list[int], pods: list[tuple[int, int, bool]], reserved: list[int]
) -> None:
    nodes = [node(f"n{i}", gpus=g) for i, g in enumerate(gpus)]
    member_pods = [MemberPod(f"p{j}", f"n{i}", g, t) for j, (i, g, t) in enumerate(pods)]
    res = [Reservation("o", f"j{k}", r) for k, r in enumerate(reserved)]
    result = cards(nodes, member_pods, res)
    live = sum(g for (i, g, t) in pods if not t and i < len(gpus))
    assert 0 <= result.free <= max(0, sum(gpus) - min(live, sum(gpus)))
    assert result.free == max(0, min(100, sum(gpus)) - min(live, sum(gpus)) - sum(reserved))


# ---------------------------------------------------------------------------------------------
# A pod's effective request, as kube-scheduler counts it (sidecars included)
# ---------------------------------------------------------------------------------------------


def _c(gpus: object | None = None, *, sidecar: bool = False, where: str = "limits") -> dict[str, object]:
    container: dict[str, object] = {"name": "c"}
    if gpus is not None:
        container["resources"] = {where: {"nvidia.com/gpu": gpus}}
    if sidecar:
        container["restartPolicy"] = "Always"
    return container


@pytest.mark.parametrize(
    ("containers", "init", "expected"),
    [
        ([_c(1)], [_c(1, sidecar=True)], 2),  # main and sidecar run together
        ([_c(1)], [_c(4)], 4),  # an ordinary init container runs alone
        ([_c(2)], [_c(1, sidecar=True), _c(2)], 3),  # an init container beside an earlier sidecar
        ([_c(2)], [_c(2), _c(1, sidecar=True)], 3),  # a sidecar started after it does not add to it
        ([_c("1k")], [], 1000),  # quantities are quantities
        ([_c(2, where="requests")], [], 2),
        ([_c(), _c(3)], [], 3),
        ([], [_c(8, sidecar=True)], 8),
    ],
)
def test_effective_request(containers: list[dict[str, object]], init: list[dict[str, object]], expected: int) -> None:
    assert effective_request(containers, init) == expected


def test_a_pod_s_cards_count_whatever_vendor_it_asks_for() -> None:
    from interconnect.core.capacity import gpus_requested

    assert gpus_requested([{"resources": {"limits": {"huawei.com/Ascend910": "8"}}}]) == 8
    assert gpus_requested([{"resources": {"limits": {"cambricon.com/mlu": "2"}}},
                           {"resources": {"limits": {"nvidia.com/gpu": "1"}}}]) == 3
    assert gpus_requested([{"resources": {"limits": {"cpu": "8"}}}]) == 0



@given(
    nodes=st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.sampled_from([A100, H800]), st.integers(0, 8),
                             st.booleans()), max_size=12),
    pods=st.lists(st.tuples(st.one_of(st.none(), st.integers(0, 11)), st.integers(0, 4), st.booleans(),
                            st.sampled_from([None, "o", "other"])), max_size=20),
    selector=st.sampled_from([{}, {"pool": "a"}, {"pool": "b", "zone": "z1"}, {"zone": "z1"}, {"pool": "x"}]),
    model=st.sampled_from([A100, H800]),
)
def test_the_indexed_member_counts_the_same_cards_as_a_walk_over_everything(
        nodes: list[tuple[str, str, int, bool]], pods: list[tuple[int | None, int, bool, str | None]],
        selector: dict[str, str], model: str) -> None:
    from interconnect.core.capacity import MemberCards

    members = [MemberNode(f"n{i}", {"nvidia.com/gpu.product": m, "pool": pool, **({"zone": "z1"} if i % 2 else {})},
                          gpus, gpus, ready=ready, schedulable=True)
               for i, (pool, m, gpus, ready) in enumerate(nodes)]
    member_pods = [MemberPod(f"p{i}", f"n{node}" if node is not None else None, gpus, terminal, offer=offer,
                             job_uid=f"j{i % 3}") for i, (node, gpus, terminal, offer) in enumerate(pods)]
    reservations = [Reservation("o", "j0", 2), Reservation("o", "j1", 1)]
    walked = offer_cards(offer="o", cards_offered=20, selector=selector, gpu_model=model, nodes=members,
                         pods=member_pods, reservations=reservations)
    by_node: dict[str, list[MemberPod]] = {}
    unbound: dict[str, list[MemberPod]] = {}
    for pod in member_pods:  # as the member's watch keeps them (tests/unit/adapters/test_member_gpu_index.py)
        if pod.node:
            by_node.setdefault(pod.node, []).append(pod)
        elif pod.offer:
            unbound.setdefault(pod.offer, []).append(pod)
    indexed = MemberCards(members, lambda node: by_node.get(node, ()), lambda offer: unbound.get(offer, ()))
    backing = indexed.backing(selector, model)
    assert backing == offer_nodes(members, selector, model)
    assert offer_cards(offer="o", cards_offered=20, selector=selector, gpu_model=model, nodes=backing,
                       pods=indexed.pods_of(backing, "o"), reservations=reservations) == walked
