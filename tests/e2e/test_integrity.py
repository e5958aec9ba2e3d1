"""Broken or hostile jobs cannot hold cards for free (issue 21, first part): a workload the member
refuses and pods that never start end their attempt, say why, and give their cards back; what
decides placement and price cannot be changed once placed."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests import testbed as tb
from tests.e2e import market as m

pytestmark = pytest.mark.e2e

# Beijing within 1 ms at 10 CNY: only bj-l40s (8 cards on member-3) qualifies.
L40S_ONLY = dict(origin="CN-BJ", tier="1ms", max_price="10", models=[m.L40S])


@pytest.fixture
def ns(testbed: tb.Testbed) -> Iterator[str]:
    """A fresh tenant; its ComputeJobs are deleted afterwards, so that a job a failed test left
    behind cannot hold cards the next test needs."""
    hub = testbed.api("hub")
    name = m.tenant(hub)
    yield name
    with contextlib.suppress(ApiException):
        m.custom(hub).delete_collection_namespaced_custom_object(m.GROUP, m.VERSION, name, "computejobs")


def _offer(hub: client.ApiClient) -> dict[str, Any]:
    return (m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", "bj-l40s")
            .get("status") or {})


def _failed(hub: client.ApiClient, ns: str, name: str) -> dict[str, Any] | None:
    status = m.get_job(hub, ns, name).get("status") or {}
    failed = next((c for c in status.get("conditions", []) if c["type"] == "Failed"), None)
    return failed if status.get("phase") == "Failed" and failed else None


def test_a_workload_the_member_refuses_ends_at_once_and_gives_its_cards_back(
        testbed: tb.Testbed, operator: m.Operator, ns: str) -> None:
    """Two containers of one name pass the hub (its schema has no list keys there) and the member
    answers 422: the attempt ends with the member's message instead of being retried forever."""
    hub = testbed.api("hub")
    twins = m.job_manifest("twins", ns, gpus=4, run_for="1s", **L40S_ONLY)
    twins["spec"]["template"]["spec"]["containers"] *= 2
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", twins)
    failed = m.wait_for(lambda: _failed(hub, ns, "twins"), 60, "the refused job to fail")
    print(f"\n{failed['reason']}: {failed['message']}")
    assert failed["reason"] == "MemberRejected"
    assert "HTTP 422" in failed["message"] and "Duplicate value" in failed["message"], failed["message"]
    # Its 4 cards are free again: a job that needs all 8 (two nodes of 4) runs.
    m.wait_for(lambda: _offer(hub).get("cardsReserved") == 0, 30, "the reservation to be released")
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
        "all-eight", ns, gpus=4, replicas=2, run_for="1s", **L40S_ONLY))
    m.wait_phase(testbed, ns, "all-eight", {"Succeeded"}, 90)


def test_pods_that_never_start_end_the_attempt_within_the_start_deadline(
        testbed: tb.Testbed, operator: m.Operator, ns: str) -> None:
    hub = testbed.api("hub")
    stuck = m.job_manifest("stuck", ns, gpus=4, run_for="1s", startDeadlineSeconds=8, **L40S_ONLY)
    stuck["spec"]["template"]["spec"]["nodeSelector"] = {"pool": "does-not-exist"}
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", stuck)
    uid = m.get_job(hub, ns, "stuck")["metadata"]["uid"]
    failed = m.wait_for(lambda: _failed(hub, ns, "stuck"), 60, "the stuck job to fail")
    print(f"\n{failed['reason']}: {failed['message']}")
    assert failed["reason"] == "StartDeadlineExceeded"
    assert "0 of 1 pods started on bj-regional within 8s" in failed["message"], failed["message"]
    assert "node(s) didn't match" in failed["message"] or "nodes are available" in failed["message"]
    batch = client.BatchV1Api(testbed.api("member-3"))
    m.wait_for(lambda: not batch.list_namespaced_job(m.WORK_NS, label_selector=f"interconnect.dev/job-uid={uid}")
               .items, 30, "the member Job to be deleted")
    m.wait_for(lambda: _offer(hub).get("cardsReserved") == 0, 30, "the reservation to be released")
    status = m.get_job(hub, ns, "stuck")["status"]
    assert status.get("usage", {}).get("cardHours", "0") == "0"


@pytest.mark.parametrize(("field", "patch"), [
    ("spec.replicas", {"spec": {"replicas": 2}}),
    ("spec.template", {"spec": {"template": {"spec": {"containers": [{"name": "x", "image": "other:1"}]}}}}),
    ("spec.maxPrice", {"spec": {"maxPrice": {"amount": "99", "currency": "CNY"}}}),
])
def test_a_placed_job_cannot_be_changed_where_it_decides_placement_or_price(
        testbed: tb.Testbed, operator: m.Operator, ns: str, field: str, patch: dict[str, Any]) -> None:
    hub = testbed.api("hub")
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
        "placed", ns, gpus=1, run_for="20s", **L40S_ONLY))
    m.wait_phase(testbed, ns, "placed", {"Running"}, 60)
    result = subprocess.run(testbed.kubectl_cmd("hub", "patch", "cjob", "placed", "-n", ns, "--type=merge",
                                                "-p", json.dumps(patch)), capture_output=True, text=True)
    assert result.returncode != 0 and f"{field}: Invalid value" in result.stderr, result.stderr
    assert "is immutable" in result.stderr


def test_a_bad_latency_table_is_reported_and_a_fixed_one_takes_effect_without_a_restart(
        testbed: tb.Testbed, operator: m.Operator, ns: str) -> None:
    hub = testbed.api("hub")
    core = client.CoreV1Api(hub)
    name = "interconnect-latency"
    starts = operator.starts

    def table(text: str) -> None:
        body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name, namespace=m.OPERATOR_NS),
                                  data={"latency.yaml": text})
        try:
            core.replace_namespaced_config_map(name, m.OPERATOR_NS, body)
        except client.exceptions.ApiException:
            core.create_namespaced_config_map(m.OPERATOR_NS, body)

    def warned() -> bool:
        events = core.list_namespaced_event(m.OPERATOR_NS, field_selector=f"involvedObject.name={name}").items
        return any(e.reason == "InvalidLatencyTable" for e in events)

    try:
        table("CN-HB: {CN-XX: 1}\n")
        m.wait_for(warned, 30, "a Warning event on the latency ConfigMap")
        # Dispatch goes on with the table in use: Hubei to Guizhou is beyond 5 ms in the built-in one.
        far = m.job_manifest("far", ns, gpus=1, run_for="1s", origin="CN-HB", tier="5ms", max_price="30",
                             models=[m.A100])
        m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", far)
        m.wait_for(lambda: "latency" in str((m.get_job(hub, ns, "far").get("status") or {}).get("unschedulable")),
                   30, "the job to wait for its latency tier")
        near = m.job_manifest("near", ns, gpus=1, run_for="1s", origin="CN-GZ", tier="1ms", max_price="30")
        m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", near)
        m.wait_phase(testbed, ns, "near", {"Succeeded"}, 90)
        # Fixed: Hubei and Guizhou 3 ms apart, and the waiting job is placed without a restart.
        table("CN-HB: {CN-GZ: 3}\n")
        m.wait_phase(testbed, ns, "far", {"Succeeded"}, 90)
        assert operator.starts == starts
    finally:
        core.delete_namespaced_config_map(name, m.OPERATOR_NS)


def test_a_running_job_is_stopped_when_its_budget_is_spent(testbed: tb.Testbed, operator: m.Operator,
                                                           ns: str) -> None:
    """1 card at 8 CNY per card-hour and a budget of 0.10 CNY: about 45 s of work, a warning at
    0.08 CNY (costs are counted in whole fen, so a budget of a few fen would skip the 80% mark)."""
    hub = testbed.api("hub")
    thrifty = m.job_manifest("thrifty", ns, gpus=1, run_for="10m", origin="CN-GZ", tier="1ms", max_price="10",
                             models=[m.A100], budget={"amount": "0.10", "currency": "CNY"})
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", thrifty)
    uid = m.get_job(hub, ns, "thrifty")["metadata"]["uid"]
    failed = m.wait_for(lambda: _failed(hub, ns, "thrifty"), 120, "the job to be stopped at its budget")
    print(f"\n{failed['reason']}: {failed['message']}")
    assert failed["reason"] == "BudgetExceeded"
    usage = m.get_job(hub, ns, "thrifty")["status"]["usage"]
    # Stopped within one metering pass (2 s here) of the budget: at most 2 s x 8 CNY/h more.
    assert 0.10 <= float(usage["cost"]) <= 0.10 + 2 * 8 / 3600 + 0.01, usage
    events = client.CoreV1Api(hub).list_namespaced_event(ns, field_selector="involvedObject.name=thrifty").items
    assert any(e.reason == "BudgetNearlySpent" for e in events)
    batch = client.BatchV1Api(testbed.api("member-1"))
    m.wait_for(lambda: not batch.list_namespaced_job(m.WORK_NS, label_selector=f"interconnect.dev/job-uid={uid}")
               .items, 30, "the member Job to be deleted")


def test_deleting_finished_jobs_does_not_change_the_bill(testbed: tb.Testbed, operator: m.Operator, ns: str) -> None:
    """Issue 21, "spend that disappears": the bill (`python -m interconnect usage`) and the monthly
    spend read the ComputeUsage records, one per finished attempt, not the ComputeJobs: deleting the
    jobs changes neither, and the records hold the jobs' own card-hours and cost."""
    import datetime as dt
    import sys
    import time
    from decimal import Decimal

    hub = testbed.api("hub")
    api = m.custom(hub)
    names = ("bill-1", "bill-2")
    quota = {"apiVersion": f"{m.GROUP}/{m.VERSION}", "kind": "ComputeQuota", "metadata": {"name": ns},
             "spec": {"namespace": ns, "limits": {"monthlySpend": {"amount": "1000", "currency": "CNY"}}}}
    api.create_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", quota)
    since = (dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).isoformat()
    until = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()

    def bill() -> list[dict[str, Any]]:
        out = subprocess.run(
            [sys.executable, "-m", "interconnect", "usage", "--group-by", "tenant", "-o", "json", "--since", since,
             "--until", until, "--kubeconfig", str(testbed.hub.kubeconfig), "--context", testbed.hub.context],
            check=True, capture_output=True, text=True, cwd=m.REPO,
            env={"PYTHONPATH": str(m.REPO / "operator"), "PATH": "/usr/bin:/bin"})
        return [row for row in json.loads(out.stdout) if row["tenant"] == ns]

    def records() -> dict[str, dict[str, Any]]:
        items = api.list_cluster_custom_object(m.GROUP, m.VERSION, "computeusages",
                                               label_selector=f"interconnect.dev/tenant={ns}")["items"]
        return {r["metadata"]["name"]: r for r in items}

    def spent() -> str | None:
        status = api.get_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", ns).get("status") or {}
        return (status.get("spentThisMonth") or {}).get("amount")

    try:
        for name in names:
            api.create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
                name, ns, gpus=1, run_for="15s", origin="CN-GZ", tier="1ms", max_price="10", models=[m.A100]))
        jobs = {name: m.wait_phase(testbed, ns, name, {"Succeeded"}, 90) for name in names}
        hours = sum(Decimal(j["status"]["usage"]["cardHours"]) for j in jobs.values())
        cost = sum(Decimal(j["status"]["usage"]["cost"]) for j in jobs.values())
        assert cost > 0, {n: j["status"]["usage"] for n, j in jobs.items()}

        # One record per attempt, named after it, with the job's own figures.
        written = records()
        assert sorted(written) == sorted(f"{j['metadata']['uid']}-1" for j in jobs.values()), sorted(written)
        for name, job in jobs.items():
            spec = written[f"{job['metadata']['uid']}-1"]["spec"]
            usage = job["status"]["usage"]
            assert (spec["tenant"], spec["jobName"], spec["attempt"], spec["outcome"]) == (ns, name, 1, "Succeeded")
            assert (spec["node"], spec["offer"], spec["currency"]) == ("gz-regional", "gz-a100", "CNY")
            assert Decimal(spec["cardHours"]) == Decimal(usage["cardHours"]), (spec, usage)
            assert Decimal(spec["cost"]) == Decimal(usage["cost"]), (spec, usage)
            assert spec["month"] == spec["finishedAt"][:7]

        before = bill()
        assert len(before) == 1, before
        assert (before[0]["jobs"], Decimal(before[0]["cardHours"]), Decimal(before[0]["cost"])) == (2, hours, cost)
        m.wait_for(lambda: spent() is not None and Decimal(str(spent())) == cost, 30,
                   f"the quota to show {cost} spent")

        for name in names:
            api.delete_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", name)
        m.wait_for(lambda: not api.list_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs")["items"],
                   30, "the jobs to be gone")

        assert bill() == before, "deleting finished jobs changed the bill"
        assert {n: r["spec"] for n, r in records().items()} == {n: r["spec"] for n, r in written.items()}
        time.sleep(3 * 2)  # a few reporter passes (INTERCONNECT_HEARTBEAT_SECONDS=2)
        assert spent() is not None and Decimal(str(spent())) == cost, "the monthly spend forgot deleted jobs"
        # Immutable: not even the hub admin changes a record (deleting it is for retention only).
        name = next(iter(written))
        result = subprocess.run(testbed.kubectl_cmd("hub", "patch", "cusage", name, "--type=merge", "-p",
                                                    json.dumps({"spec": {"cost": "0"}})),
                                capture_output=True, text=True)
        assert result.returncode != 0 and "spec is immutable" in result.stderr, result.stderr
    finally:
        api.delete_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", ns)
        for name in records():
            api.delete_cluster_custom_object(m.GROUP, m.VERSION, "computeusages", name)


def test_a_deleted_job_is_metered_until_its_pods_are_gone(testbed: tb.Testbed, operator: m.Operator, ns: str) -> None:
    """Its pods keep their cards for their grace period after the ComputeJob is deleted (a
    process that ignores SIGTERM): the bill runs until they are gone, from the pods' own clock."""
    hub = testbed.api("hub")
    slow = m.job_manifest("slow-to-stop", ns, gpus=2, run_for="600s", **L40S_ONLY)
    slow["spec"]["template"]["metadata"]["annotations"]["testbed.interconnect.dev/honour-grace"] = "true"
    slow["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] = 20
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", slow)
    uid = m.wait_phase(testbed, ns, "slow-to-stop", {"Running"}, 60)["metadata"]["uid"]
    time.sleep(3)
    m.custom(hub).delete_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", "slow-to-stop")
    core = client.CoreV1Api(testbed.api("member-3"))

    def terminating() -> list[client.V1Pod] | None:
        pods = core.list_namespaced_pod(m.WORK_NS, label_selector=f"interconnect.dev/job-uid={uid}").items
        return pods if pods and all(p.metadata.deletion_timestamp for p in pods) else None

    [pod] = m.wait_for(terminating, 30, "the member pod to be terminating")
    started = pod.status.container_statuses[0].state.running.started_at
    gone_at = pod.metadata.deletion_timestamp
    assert (gone_at - dt.datetime.now(dt.UTC)).total_seconds() > 10, "the pod keeps its grace period"
    m.wait_for(lambda: not core.list_namespaced_pod(
        m.WORK_NS, label_selector=f"interconnect.dev/job-uid={uid}").items, 60, "the pod to be gone")
    record = m.wait_for(lambda: _usage_record(hub, f"{uid}-1"), 30, "the deleted attempt's ComputeUsage")
    real = Decimal((gone_at - started) // dt.timedelta(microseconds=1)) * 2 / Decimal(3_600_000_000)
    metered = Decimal(record["spec"]["cardHours"])
    print(f"\nheld {float(real) * 3600 / 2:.1f}s on 2 cards after its start; metered {metered} card-hours, "
          f"pods' clock {real:.9f}")
    assert record["spec"]["outcome"] == "Deleted"
    # Within one metering interval (2 s) and the accrual margin (1 s) below the pod's end, never above.
    assert real - Decimal(2 * 4) / 3600 <= metered <= real + Decimal(2) / 3_600_000, (metered, real)


def _usage_record(hub: client.ApiClient, name: str) -> dict[str, Any] | None:
    with contextlib.suppress(ApiException):
        return m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computeusages", name)  # type: ignore[no-any-return]
    return None


def test_four_hundred_failing_pods_end_the_job_failed_with_a_short_message_and_free_the_cards(
        testbed: tb.Testbed, operator: m.Operator, ns: str) -> None:
    """Once, a job whose 400 pods failed wrote a condition message past the API server's limit: the
    write was refused, the job showed Running for ever and its cards stayed reserved."""
    hub = testbed.api("hub")
    member = client.CoreV1Api(testbed.api("member-2"))
    node_name, offer_name, model = "member-2-wide-0", "sh-wide-a10", "NVIDIA-A10"
    capacity = {"cpu": "4000", "memory": "16Ti", "pods": "500", "nvidia.com/gpu": "400"}
    member.create_node({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": node_name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                     "labels": {"type": "kwok", "kubernetes.io/hostname": node_name, "nvidia.com/gpu.present": "true",
                                "nvidia.com/gpu.product": model, "topology.kubernetes.io/region": "CN-SH"}},
        "spec": {}, "status": {"capacity": capacity, "allocatable": capacity}})
    m.apply(testbed, {"apiVersion": f"{m.GROUP}/{m.VERSION}", "kind": "ComputeOffer", "metadata": {"name": offer_name},
                      "spec": {"nodeRef": "sh-finance", "gpuModel": model, "gpuMemoryGiB": 24, "cards": 400,
                               "nodeSelector": {"matchLabels": {"kubernetes.io/hostname": node_name}},
                               "price": {"amount": "1.00", "currency": "CNY", "unit": "card-hour"}}})

    def offer() -> dict[str, Any]:
        return m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", offer_name).get(
            "status") or {}

    try:
        m.wait_for(lambda: offer().get("cardsTotal") == 400, 60, "the 400-card offer to sell")
        m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
            "four-hundred", ns, gpus=1, replicas=400, origin="CN-SH", tier="1ms", max_price="2", models=[model],
            run_for="3s", outcome="fail"))
        m.wait_for(lambda: offer().get("cardsReserved") == 400, 60, "the 400 cards reserved")
        failed = m.wait_for(lambda: _failed(hub, ns, "four-hundred"), 300, "the 400-pod job to fail")
        print(f"\n{failed['reason']} ({len(failed['message'])} characters): {failed['message'][:300]}")
        assert len(failed["message"]) <= 4096, len(failed["message"])
        assert "pods" in failed["message"]
        job = m.get_job(hub, ns, "four-hundred")
        assert len(json.dumps(job)) < 1_000_000, "the job's object stays far below the API server's limit"
        m.wait_for(lambda: offer().get("cardsReserved") == 0, 60, "the 400 cards released")
    finally:
        with contextlib.suppress(ApiException):
            m.custom(hub).delete_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", "four-hundred")
        with contextlib.suppress(ApiException):
            m.custom(hub).delete_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", offer_name)
        m.wait_for(lambda: not [p for p in member.list_namespaced_pod(m.WORK_NS).items
                                if p.spec.node_name == node_name], 120, "the 400 pods to be gone")
        member.delete_node(node_name)


def _errors(operator: m.Operator, loop: str) -> float:
    port = int(operator.extra_env.get("INTERCONNECT_METRICS_PORT", "0"))
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith(f'interconnect_reconcile_errors_total{{loop="{loop}"}}'))


def test_a_job_whose_status_cannot_be_written_does_not_stop_metering_of_the_others(
        testbed: tb.Testbed, operator: m.Operator, ns: str) -> None:
    """One job's status is made unwritable for the operator (its leaderEpoch set far above the
    leader's: the API server refuses every write of it). The other job is metered and finishes as
    if nothing happened; each refused write is counted."""
    hub = testbed.api("hub")
    for name in ("unwritable", "written"):
        m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
            name, ns, gpus=1, run_for="15s", **L40S_ONLY))
    for name in ("unwritable", "written"):
        m.wait_phase(testbed, ns, name, {"Running"}, 60)
    before = _errors(operator, "metering")
    m.custom(hub).patch_namespaced_custom_object_status(m.GROUP, m.VERSION, ns, "computejobs", "unwritable",
                                                        {"status": {"leaderEpoch": 10**9}})
    done = m.wait_phase(testbed, ns, "written", {"Succeeded", "Failed"}, 90)
    assert done["status"]["phase"] == "Succeeded", m.dump(done["status"])
    real = Decimal(0)
    for pod in client.CoreV1Api(testbed.api("member-3")).list_namespaced_pod(
            m.WORK_NS, label_selector=f"interconnect.dev/job-uid={done['metadata']['uid']}").items:
        term = pod.status.container_statuses[0].state.terminated
        real += Decimal((term.finished_at - term.started_at) // dt.timedelta(microseconds=1)) / 3_600_000_000
    assert abs(Decimal(done["status"]["usage"]["cardHours"]) - real) <= Decimal(1) / 3600, (done["status"], real)
    m.wait_for(lambda: _errors(operator, "metering") > before, 30, "the refused writes to be counted")
    stuck = m.get_job(hub, ns, "unwritable")["status"]
    assert stuck["phase"] == "Running" and stuck["leaderEpoch"] == 10**9, "the API server kept refusing its writes"
