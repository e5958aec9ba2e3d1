"""A hostile tenant on the real test bed (issue 20): templates that reach for the member's
credentials, objects or scheduler are refused by the hub's API server naming the field; what is
dispatched reaches the member's own pod objects with the operator's settings forced; the cards a
pod really holds (sidecars and init containers included) are the cards reserved, charged to the
quota and metered; priority is granted by the quota, not chosen."""

from __future__ import annotations

import copy
import json
import subprocess
from decimal import Decimal
from typing import Any

import pytest
from kubernetes import client

from interconnect.core.capacity import effective_request
from tests import testbed as tb
from tests.e2e import market as m
from tests.integration.bad_manifests import ISOLATION_ESCAPES, UNKNOWN_FIELDS, WORKLOAD_ESCAPES, Bad

pytestmark = pytest.mark.e2e

HOSTILE = [c for c in [*WORKLOAD_ESCAPES, *ISOLATION_ESCAPES, *UNKNOWN_FIELDS] if c.manifest["kind"] == "ComputeJob"]
# Beijing within 1 ms at 10 CNY: only bj-l40s (8 cards, 6 CNY) qualifies.
L40S_ONLY = dict(origin="CN-BJ", tier="1ms", max_price="10", models=[m.L40S])
DEDICATED = {"key": "dedicated", "operator": "Equal", "value": "gpu", "effect": "NoSchedule"}


def _kubectl_create(bed: tb.Testbed, manifest: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    """``kubectl create`` as a tenant types it (kubectl validates fields strictly by default)."""
    return subprocess.run(bed.kubectl_cmd("hub", "create", "-f", "-"), input=json.dumps(manifest), text=True,
                          capture_output=True)


def test_there_are_at_least_forty_hostile_templates() -> None:
    assert len(HOSTILE) >= 40


@pytest.mark.parametrize("case", HOSTILE, ids=lambda c: c.id)
def test_a_hostile_template_is_refused_by_the_hub_naming_the_field(
        testbed: tb.Testbed, operator: m.Operator, case: Bad) -> None:
    hub = testbed.api("hub")
    ns = "hostile-tenant"
    m.ensure_namespace(hub, ns)
    manifest = copy.deepcopy(case.manifest)
    manifest["metadata"] = {"name": f"h-{case.id}"[:63], "namespace": ns}
    result = _kubectl_create(testbed, manifest)
    assert result.returncode != 0, f"{case.id} was accepted: {result.stdout}"
    assert case.expected in result.stderr, result.stderr
    assert m.custom(hub).list_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs")["items"] == []


def _member_pods(bed: tb.Testbed, member: str, uid: str) -> list[client.V1Pod]:
    pods: list[client.V1Pod] = client.CoreV1Api(bed.api(member)).list_namespaced_pod(
        m.WORK_NS, label_selector=f"interconnect.dev/job-uid={uid}").items
    return pods


def _pod_gpus(pod: client.V1Pod) -> int:
    raw = client.ApiClient().sanitize_for_serialization(pod.spec)
    return effective_request(raw.get("containers") or [], raw.get("initContainers") or [])


def _status(hub: client.ApiClient, ns: str, name: str) -> dict[str, Any]:
    return m.get_job(hub, ns, name).get("status") or {}


def test_what_reaches_the_member_is_forced_and_the_cards_a_pod_holds_are_the_cards_counted(
        testbed: tb.Testbed, operator: m.Operator) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    quota = {"apiVersion": f"{m.GROUP}/{m.VERSION}", "kind": "ComputeQuota", "metadata": {"name": ns},
             "spec": {"namespace": ns, "limits": {"cards": 4}}}
    m.custom(hub).create_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", quota)
    m.apply(testbed, m.offer_manifest("bj-l40s", tolerations=[DEDICATED]))
    try:
        # A sidecar holds the 2 cards; the main container asks for none. Service links asked for.
        sidecar = m.job_manifest("sidecar", ns, gpus=2, run_for="12s", **L40S_ONLY)
        pod = sidecar["spec"]["template"]["spec"]
        pod["enableServiceLinks"] = True
        pod["tolerations"] = [DEDICATED]
        pod["initContainers"] = [{"name": "proxy", "image": "registry.example/proxy:1", "restartPolicy": "Always",
                                  "resources": {"limits": {"nvidia.com/gpu": 2}}}]
        m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", sidecar)
        running = m.wait_phase(testbed, ns, "sidecar", {"Running"}, 60)
        uid = running["metadata"]["uid"]
        pods = m.wait_for(lambda: _member_pods(testbed, "member-3", uid), 30, "the member pod")
        member_pod = pods[0]
        spec = member_pod.spec
        assert spec.enable_service_links is False
        assert spec.automount_service_account_token is False
        assert spec.service_account_name in (None, "default")  # the namespace's default, with no token mounted
        assert not [v for v in spec.volumes or [] if v.secret or v.config_map or v.persistent_volume_claim]
        assert not [t for t in spec.tolerations or [] if not t.key], "no toleration of every taint"
        assert any(t.key == "dedicated" and t.value == "gpu" for t in spec.tolerations or [])
        assert spec.priority_class_name is None and (spec.priority or 0) == 0
        assert _pod_gpus(member_pod) == 2, "main container without cards, sidecar with 2"

        # While it runs: the offer counts 2 cards in use, the quota charges 2.
        def counted() -> tuple[int, int] | None:
            offer = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", "bj-l40s")
            q = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", ns)
            in_use = (offer.get("status") or {}).get("cardsInUse", 0)
            charged = (q.get("status") or {}).get("cardsInUse", 0)
            return (in_use, charged) if in_use == 2 and charged == 2 else None

        assert m.wait_for(counted, 30, "2 cards in use on the offer and charged to the quota") == (2, 2)
        done = m.wait_phase(testbed, ns, "sidecar", {"Succeeded"}, 90)
        usage = done["status"]["usage"]
        assert {p["gpus"] for p in usage["pods"]} == {2}
        exact = sum(Decimal(p["gpus"]) * p["microseconds"] for p in usage["pods"]) / Decimal(3_600_000_000)
        assert abs(Decimal(usage["cardHours"]) - exact) < Decimal("1e-11"), (usage["cardHours"], exact)
        assert exact > 0

        # An ordinary init container holding the card before the main one: the pod holds 1.
        init = m.job_manifest("init-card", ns, gpus=1, run_for="3s", **L40S_ONLY)
        init["spec"]["template"]["spec"]["initContainers"] = [
            {"name": "warm", "image": "registry.example/warm:1", "resources": {"limits": {"nvidia.com/gpu": 1}}}]
        m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", init)
        done = m.wait_phase(testbed, ns, "init-card", {"Succeeded"}, 90)
        assert {p["gpus"] for p in done["status"]["usage"]["pods"]} == {1}
        assert {_pod_gpus(p) for p in _member_pods(testbed, "member-3", done["metadata"]["uid"])} == {1}

        # A toleration no offer publishes keeps the job out, and says which.
        other = m.job_manifest("tolerates-other", ns, gpus=1, run_for="1s", **L40S_ONLY)
        other["spec"]["template"]["spec"]["tolerations"] = [{"key": "dedicated", "value": "other",
                                                             "effect": "NoSchedule"}]
        m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", other)
        why = m.wait_for(lambda: (_status(hub, ns, "tolerates-other").get("unschedulable") or {}).get("candidates"),
                         30, "the toleration to keep the job out")
        assert "dedicated=other:NoSchedule" in json.dumps(why), why
        assert "toleration not allowed" in _status(hub, ns, "tolerates-other")["unschedulable"]["summary"]
    finally:
        m.apply(testbed, m.offer_manifest("bj-l40s"))
        m.custom(hub).delete_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", ns)


def test_priority_is_granted_by_the_quota_not_chosen_by_the_tenant(
        testbed: tb.Testbed, operator: m.Operator) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    jump = m.job_manifest("jump-the-queue", ns, gpus=1, run_for="1s", priority=1000, **L40S_ONLY)
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", jump)

    def held() -> str:
        conditions = {c["type"]: c for c in _status(hub, ns, "jump-the-queue").get("conditions", [])}
        scheduled = conditions.get("Scheduled") or {}
        return str(scheduled.get("message", "")) if scheduled.get("reason") == "QuotaExceeded" else ""

    message = m.wait_for(held, 30, "the job above its cap to be held")
    assert "priority 1000" in message and "spec.maxPriority" in message, message
    assert m.phase_of(hub, ns, "jump-the-queue") == "Pending"
    quota = {"apiVersion": f"{m.GROUP}/{m.VERSION}", "kind": "ComputeQuota", "metadata": {"name": ns},
             "spec": {"namespace": ns, "maxPriority": 1000}}
    m.custom(hub).create_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", quota)
    try:
        m.wait_phase(testbed, ns, "jump-the-queue", {"Succeeded"}, 60)
    finally:
        m.custom(hub).delete_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", ns)
