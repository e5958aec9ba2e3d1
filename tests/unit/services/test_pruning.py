"""What only grew is pruned (issue 21): names of member Jobs the hub deleted, and the Prometheus
series of offers and nodes that are gone. The usage ledger's records: test_usage_ledger_fold.py;
the whole picture over thousands of jobs: bench/soak.py."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from kubernetes_asyncio import client as k8s

from interconnect.adapters.hub import Hub
from interconnect.adapters.metrics import Metrics
from interconnect.api.v1alpha1 import ComputeNode, ComputeOffer
from interconnect.core.latency import LatencyTable
from interconnect.services.controller import Controller
from interconnect.services.members import Deletions, NodeState
from tests.integration.bad_manifests import node
from tests.unit.adapters.test_error_metrics import samples
from tests.unit.services.test_stores import SETTINGS


def test_a_deletion_never_seen_is_forgotten_after_a_while() -> None:
    """A Job already gone when the hub deleted it (404) is never seen going: its name must not stay."""
    now = [0.0]
    deletions = Deletions(keep=60, clock=lambda: now[0])
    deletions.mark("ic-a-1")  # a 404: nothing will be seen
    now[0] = 10
    deletions.mark("ic-b-1")
    now[0] = 40
    deletions.mark("ic-a-1")  # marked again: it starts over
    now[0] = 65
    deletions.mark("ic-c-1")
    assert all(n in deletions for n in ("ic-a-1", "ic-b-1", "ic-c-1"))
    now[0] = 75
    deletions.mark("ic-d-1")  # ic-b-1 was marked 65 s ago
    assert "ic-b-1" not in deletions and "ic-a-1" in deletions and len(deletions) == 3
    assert deletions.seen_gone("ic-c-1") and not deletions.seen_gone("ic-c-1")
    now[0] = 10_000
    deletions.mark("ic-e-1")
    assert len(deletions) == 1


@pytest.fixture
async def controller() -> AsyncIterator[Controller]:
    ctl = Controller(Hub(k8s.ApiClient(k8s.Configuration())), SETTINGS, LatencyTable.default(), Metrics())
    yield ctl
    await ctl.hub.close()


def offer(name: str, node_ref: str = "gz") -> ComputeOffer:
    return ComputeOffer.model_validate({"metadata": {"name": name, "generation": 1}, "spec": {
        "nodeRef": node_ref, "gpuModel": "NVIDIA-A100-SXM4-80GB", "gpuMemoryGiB": 80, "cards": 8,
        "price": {"amount": "8.00", "currency": "CNY", "unit": "card-hour"}}})


async def test_a_deleted_offer_leaves_no_series(controller: Controller) -> None:
    for name in ("gz-a", "gz-b"):
        controller.market.offers[name] = offer(name)
    await controller.reporter.write_offer_status()
    cards = samples(controller.metrics, "interconnect_offer_cards")
    assert {dict(k)["offer"] for k in cards} == {"gz-a", "gz-b"} and len(cards) == 8
    controller.market.offers["gz-b"] = offer("gz-b", node_ref="bj")  # moved: the old labels go
    await controller.reporter.write_offer_status()
    assert {(dict(k)["offer"], dict(k)["node"]) for k in samples(controller.metrics, "interconnect_offer_cards")} == {
        ("gz-a", "gz"), ("gz-b", "bj")}
    controller.offer_deleted("gz-b")
    assert {dict(k)["offer"] for k in samples(controller.metrics, "interconnect_offer_cards")} == {"gz-a"}


async def test_a_deleted_node_leaves_no_series(controller: Controller) -> None:
    members = controller.members
    for name in ("gz", "bj"):
        members._nodes[name] = NodeState(ComputeNode.model_validate(node(name)), ready=True, last_ok=1.0)
    controller.reporter.refresh_gauges()
    assert {dict(k)["node"] for k in samples(controller.metrics, "interconnect_member_ready")} == {"gz", "bj"}
    members._nodes["gz"].model.status.identity_code = "CIRGZ000001E"  # issued: one series, the new one
    controller.reporter.refresh_gauges()
    ready = samples(controller.metrics, "interconnect_member_ready")
    assert sorted((dict(k)["node"], dict(k)["identity_code"]) for k in ready) == [("bj", ""), ("gz", "CIRGZ000001E")]
    await controller.node_deleted("bj")
    controller.reporter.refresh_gauges()
    for name in ("interconnect_member_ready", "interconnect_member_heartbeat_age_seconds"):
        assert {dict(k)["node"] for k in samples(controller.metrics, name)} == {"gz"}, name
