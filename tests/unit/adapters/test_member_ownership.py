"""Two ComputeNodes on one member cluster (even one namespace of it): each takes for its own only
the Jobs and pods dispatched through it, so neither fences, meters or deletes the other's."""

from __future__ import annotations

from typing import Any

from kubernetes_asyncio import client as k8s

from interconnect.adapters.member import JOB_UID, MANAGED_BY, MANAGED_BY_VALUE, NODE, MemberCluster, node_label


def _job(node: str | None) -> dict[str, Any]:
    labels = {MANAGED_BY: MANAGED_BY_VALUE, JOB_UID: "uid-1"}
    if node is not None:
        labels[NODE] = node
    return {"metadata": {"name": "ic-uid-1-1", "uid": "j-1", "labels": labels}, "status": {"active": 1}}


async def test_each_computenode_sees_only_what_it_dispatched_and_what_predates_the_label() -> None:
    api = k8s.ApiClient(k8s.Configuration())
    try:
        gz = MemberCluster("gz-regional", api, "interconnect-jobs", lambda *_: None)
        twin = MemberCluster("gz-twin", api, "interconnect-jobs", lambda *_: None)
        ours = _job("gz-regional")
        assert gz._project_job(ours) is not None
        assert twin._project_job(ours) is None
        assert twin._project_pod({**ours, "spec": {}}) is None
        legacy = _job(None)  # dispatched by an operator from before the label: still its node's
        assert gz._project_job(legacy) is not None and twin._project_job(legacy) is not None
    finally:
        await api.close()


def test_long_names_become_distinct_valid_label_values() -> None:
    short = "bj-regional"
    assert node_label(short) == short
    a, b = "a" * 60 + ".region-one", "a" * 60 + ".region-two"
    assert len(node_label(a)) <= 63 and len(node_label(b)) <= 63
    assert node_label(a) != node_label(b)
    assert node_label(a)[-1].isalnum() and node_label(a)[0].isalnum()
