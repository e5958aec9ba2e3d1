"""Tenancy end to end: quotas hold, fair share lets a small tenant through a big one's queue, and
workloads that would escape their namespace never reach a member."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests import testbed as tb
from tests.e2e import market as m

pytestmark = pytest.mark.e2e

# 1 A100 card from Hubei within 20 ms: only gz-a100 (24 cards) qualifies.
SMALL = dict(origin="CN-HB", tier="20ms", gpus=1, max_price="30", models=[m.A100])


def _quota(name: str, **limits: Any) -> dict[str, Any]:
    return {"apiVersion": f"{m.GROUP}/{m.VERSION}", "kind": "ComputeQuota", "metadata": {"name": name},
            "spec": {"namespace": name, "limits": limits}}


def _created(job: dict[str, Any]) -> dt.datetime:
    return dt.datetime.fromisoformat(job["metadata"]["creationTimestamp"].replace("Z", "+00:00"))


def _started(job: dict[str, Any]) -> dt.datetime | None:
    text = (job.get("status") or {}).get("startTime")
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")) if text else None


def test_a_small_tenant_is_not_starved_and_a_quota_is_never_exceeded(
        testbed: tb.Testbed, operator: m.Operator) -> None:
    hub = testbed.api("hub")
    crowd, few = m.tenant(hub), m.tenant(hub)
    limit = 8
    m.custom(hub).create_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", _quota(crowd, cards=limit))
    try:
        for i in range(200):
            m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, crowd, "computejobs", m.job_manifest(
                f"many-{i:03d}", crowd, run_for="2s", **SMALL))
        for i in range(5):
            m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, few, "computejobs", m.job_manifest(
                f"few-{i}", few, run_for="2s", **SMALL))
        member = client.CoreV1Api(testbed.api("member-1"))
        most_running, quota_reason, quota_cards = 0, "", 0
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            pods = member.list_namespaced_pod(m.WORK_NS).items
            running = [p for p in pods if p.status.phase == "Running"
                       and (p.metadata.annotations or {}).get("interconnect.dev/job-namespace") == crowd]
            most_running = max(most_running, len(running))
            jobs = m.custom(hub).list_namespaced_custom_object(m.GROUP, m.VERSION, crowd, "computejobs")["items"]
            if not quota_reason:
                held = [c for j in jobs for c in (j.get("status") or {}).get("conditions", [])
                        if c["type"] == "Scheduled" and c["reason"] == "QuotaExceeded"]
                quota_reason = held[0]["message"] if held else ""
            quota = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", crowd)
            quota_cards = max(quota_cards, (quota.get("status") or {}).get("cardsInUse", 0))
            if all((j.get("status") or {}).get("phase") == "Succeeded" for j in jobs) and len(jobs) == 200:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the 200 jobs did not finish in 10 minutes")
        for i in range(5):
            m.wait_for(lambda n=f"few-{i}": m.phase_of(hub, few, n) == "Succeeded", 60, f"few-{i} to succeed")
        many = m.custom(hub).list_namespaced_custom_object(m.GROUP, m.VERSION, crowd, "computejobs")["items"]
        small = [m.get_job(hub, few, f"few-{i}") for i in range(5)]
        last_of_crowd = max(s for s in map(_started, many) if s)
        waits = [(_started(j) or last_of_crowd) - _created(j) for j in small]
        print(f"\nthe small tenant's 5 jobs waited {', '.join(f'{w.total_seconds():.0f}s' for w in waits)}; the "
              f"crowd's last job started {(last_of_crowd - min(map(_created, many))).total_seconds():.0f}s after "
              f"its first was created; crowd's most pods running at once: {most_running} (quota {limit})")
        assert all(_started(j) and _started(j) < last_of_crowd for j in small), \
            "the 5 jobs must start before the 200-job queue drains"
        assert most_running <= limit, f"{most_running} of the crowd's pods ran at once, over its quota of {limit}"
        assert 0 < quota_cards <= limit
        assert "spec.limits.cards" in quota_reason and f"ComputeQuota {crowd}" in quota_reason, quota_reason
    finally:
        m.custom(hub).delete_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", crowd)


def test_a_pending_limit_and_an_exhausted_budget_hold_jobs_with_the_limit_named(
        testbed: tb.Testbed, operator: m.Operator) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    m.custom(hub).create_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", _quota(
        ns, pendingJobs=1, monthlySpend={"amount": "0", "currency": "CNY"}))
    try:
        for name in ("first", "second"):
            m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
                name, ns, run_for="1s", **SMALL))

        def reason(name: str) -> str:
            conditions = (m.get_job(hub, ns, name).get("status") or {}).get("conditions", [])
            return next((f"{c['reason']}: {c['message']}" for c in conditions if c["type"] == "Scheduled"), "")

        budget = m.wait_for(lambda: "spec.limits.monthlySpend" in reason("first") and reason("first"), 30,
                            "the budget to hold the first job")
        pending = m.wait_for(lambda: "spec.limits.pendingJobs" in reason("second") and reason("second"), 30,
                             "the pending limit to hold the second job")
        assert budget.startswith("QuotaExceeded") and pending.startswith("QuotaExceeded")
        quota = m.wait_for(lambda: (m.custom(hub).get_cluster_custom_object(
            m.GROUP, m.VERSION, "computequotas", ns).get("status") or {}).get("conditions"), 30, "quota status")
        assert quota[0]["status"] == "False", quota
        assert m.phase_of(hub, ns, "first") == "Pending" and m.phase_of(hub, ns, "second") == "Pending"
    finally:
        m.custom(hub).delete_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", ns)
    # Without the quota both run.
    for name in ("first", "second"):
        m.wait_for(lambda n=name: m.phase_of(hub, ns, n) == "Succeeded", 60, f"{name} once the quota is gone")


ESCAPES: dict[str, dict[str, Any]] = {
    "privileged": {"containers": [{"name": "c", "image": "registry.example/x:1",
                                   "securityContext": {"privileged": True}}]},
    "host-network": {"hostNetwork": True, "containers": [{"name": "c", "image": "registry.example/x:1"}]},
    "host-pid": {"hostPID": True, "containers": [{"name": "c", "image": "registry.example/x:1"}]},
    "host-path": {"containers": [{"name": "c", "image": "registry.example/x:1"}],
                  "volumes": [{"name": "root", "hostPath": {"path": "/"}}]},
    "sys-admin": {"containers": [{"name": "c", "image": "registry.example/x:1",
                                  "securityContext": {"capabilities": {"add": ["SYS_ADMIN"]}}}]},
    "token": {"automountServiceAccountToken": True, "containers": [{"name": "c", "image": "registry.example/x:1"}]},
    "root": {"securityContext": {"runAsUser": 0}, "containers": [{"name": "c", "image": "registry.example/x:1"}]},
}


def test_escaping_templates_are_refused_and_never_reach_a_member(testbed: tb.Testbed, operator: m.Operator) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    for name, pod_spec in ESCAPES.items():
        manifest = m.job_manifest(f"escape-{name}", ns, **SMALL)
        manifest["spec"]["template"]["spec"] = pod_spec
        with pytest.raises(ApiException) as refused:
            m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", manifest)
        assert refused.value.status == 422 and "spec.template.spec" in refused.value.body, refused.value.body
    # An industry offer that admits one registry only: a job whose image is from elsewhere is not
    # placed there, and says why.
    m.apply(testbed, m.offer_manifest("gz-a100", allowedRegistries=["registry.gz.example.cn"]))
    try:
        m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
            "elsewhere", ns, run_for="1s", **SMALL))

        def why() -> str:
            return str(((m.get_job(hub, ns, "elsewhere").get("status") or {}).get("unschedulable") or {})
                       .get("summary", ""))

        summary = m.wait_for(lambda: "registry" in why() and why(), 30, "the registry to keep the job out")
        print(f"\n{summary}")
        detail = str(m.get_job(hub, ns, "elsewhere")["status"]["unschedulable"]["candidates"])
        assert "registry.example" in detail and "registry.gz.example.cn" in detail, detail
        assert m.phase_of(hub, ns, "elsewhere") == "Pending"
    finally:
        m.apply(testbed, m.offer_manifest("gz-a100"))
    m.wait_for(lambda: m.phase_of(hub, ns, "elsewhere") == "Succeeded", 60, "the job once the offer admits it")
    for member in ("member-1", "member-2", "member-3"):
        pods = client.CoreV1Api(testbed.api(member)).list_namespaced_pod(m.WORK_NS).items
        escaped = [p.metadata.name for p in pods
                   if (p.metadata.annotations or {}).get("interconnect.dev/job-name", "").startswith("escape-")
                   and (p.metadata.annotations or {}).get("interconnect.dev/job-namespace") == ns]
        assert not escaped, escaped
