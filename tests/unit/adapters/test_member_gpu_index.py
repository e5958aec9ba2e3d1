"""The member's GPU pods by node, kept as the watch changes them: what offers' free cards read."""

from __future__ import annotations

from kubernetes_asyncio import client as k8s

from interconnect.adapters.informer import Change
from interconnect.adapters.member import MemberCluster
from interconnect.core.capacity import MemberPod


async def test_a_pod_moves_from_its_offer_to_its_node_when_bound_and_goes_when_deleted() -> None:
    api = k8s.ApiClient(k8s.Configuration())
    try:
        member = MemberCluster("gz", api, "interconnect-jobs", lambda *_: None)
        pending = MemberPod("p1", None, 2, False, offer="gz-a100", job_uid="j1")
        bound = MemberPod("p1", "gpu-1", 2, False, offer="gz-a100", job_uid="j1")
        member._index(Change("gz/gpu-pods", "p1", None, pending))
        assert list(member.unbound_gpu_pods("gz-a100")) == [pending]
        assert list(member.gpu_pods_on("gpu-1")) == []
        member._index(Change("gz/gpu-pods", "p1", pending, bound))
        assert list(member.unbound_gpu_pods("gz-a100")) == []
        assert list(member.gpu_pods_on("gpu-1")) == [bound]
        member._index(Change("gz/gpu-pods", "p1", bound, None))
        assert list(member.gpu_pods_on("gpu-1")) == []
        assert member._gpu_pods_by_node == {} and member._unbound_gpu_pods == {}
    finally:
        await api.close()
