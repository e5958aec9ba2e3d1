"""Dispatch end to end: hub + 3 members, the operator as a process, real API servers throughout."""

from __future__ import annotations

import random
import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests import testbed as tb
from tests.e2e import market as m

pytestmark = pytest.mark.e2e

A100, H800, H20, L40S = m.A100, m.H800, m.H20, m.L40S


def submit(hub: client.ApiClient, manifest: dict[str, Any]) -> None:
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, manifest["metadata"]["namespace"],
                                                 "computejobs", manifest)


def wait_phase(hub: client.ApiClient, ns: str, name: str, phases: set[str], timeout: float = 90) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        job = m.get_job(hub, ns, name)
        return job if (job.get("status") or {}).get("phase") in phases else None

    return m.wait_for(reached, timeout, f"{ns}/{name} to reach {phases}")  # type: ignore[no-any-return]


def member_jobs(bed: tb.Testbed, member: str, job_uid: str) -> list[client.V1Job]:
    return client.BatchV1Api(bed.api(member)).list_namespaced_job(
        m.WORK_NS, label_selector=f"interconnect.dev/job-uid={job_uid}").items


# (name, origin, tier, gpus, replicas, max price, extra spec) -> expected ComputeNode and offer
TABLE: list[tuple[str, dict[str, Any], str, str]] = [
    ("gz-1ms", dict(origin="CN-GZ", tier="1ms", gpus=2, max_price="10"), "gz-regional", "gz-a100"),
    ("sh-1ms-one-card", dict(origin="CN-SH", tier="1ms", gpus=1, max_price="30"), "sh-finance", "sh-h800"),
    ("sh-1ms-half-machine", dict(origin="CN-SH", tier="1ms", gpus=4, max_price="30"), "sh-finance", "sh-a100"),
    ("bj-1ms-cheapest", dict(origin="CN-BJ", tier="1ms", gpus=2, max_price="20"), "bj-regional", "bj-l40s"),
    ("bj-1ms-h20-only", dict(origin="CN-BJ", tier="1ms", gpus=4, max_price="20", models=[H20]), "bj-regional",
     "bj-h20"),
    ("bj-20ms-80gib", dict(origin="CN-BJ", tier="20ms", gpus=2, max_price="30", gpus_extra={"minMemoryGiB": 80}),
     "bj-regional", "bj-h20"),
    ("hb-20ms-a100", dict(origin="CN-HB", tier="20ms", gpus=2, max_price="50", models=[A100]), "gz-regional",
     "gz-a100"),
    ("hb-20ms-h800", dict(origin="CN-HB", tier="20ms", gpus=2, max_price="30", models=[H800]), "sh-finance",
     "sh-h800"),
    ("zj-5ms", dict(origin="CN-ZJ", tier="5ms", gpus=1, max_price="30"), "sh-finance", "sh-h800"),
    ("tj-5ms", dict(origin="CN-TJ", tier="5ms", gpus=1, max_price="10"), "bj-regional", "bj-l40s"),
    ("cq-20ms", dict(origin="CN-CQ", tier="20ms", gpus=4, max_price="9"), "gz-regional", "gz-a100"),
    ("hb-20ms-no-gz", dict(origin="CN-HB", tier="20ms", gpus=2, replicas=2, max_price="25", models=[A100, H800],
                           placement={"deniedRegions": ["CN-GZ"]}), "sh-finance", "sh-a100"),
    ("hb-20ms-finance-only", dict(origin="CN-HB", tier="20ms", gpus=1, max_price="30",
                                  placement={"allowedIndustries": ["finance"]}), "sh-finance", "sh-h800"),
    ("tj-20ms-not-bj", dict(origin="CN-TJ", tier="20ms", gpus=1, max_price="30", models=[L40S, H20, H800],
                            placement={"deniedNodes": ["bj-regional"]}), "sh-finance", "sh-h800"),
]


def table_job(name: str, ns: str, case: dict[str, Any]) -> dict[str, Any]:
    case = dict(case)
    extra_gpus = case.pop("gpus_extra", {})
    manifest = m.job_manifest(name, ns, **case, run_for="2s")
    manifest["spec"]["gpus"].update(extra_gpus)
    return manifest


def test_jobs_land_where_the_rules_predict_and_succeed(testbed: tb.Testbed, operator: m.Operator) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    for name, spec, _, _ in TABLE:
        submit(hub, table_job(name, ns, spec))
    members = {name: member for name, (member, *_) in m.NODES.items()}
    for name, case, node, offer in TABLE:
        job = wait_phase(hub, ns, name, {"Succeeded", "Failed"}, timeout=120)
        status = job["status"]
        assert status["phase"] == "Succeeded", f"{name}: {m.dump(status)}\n{operator.log_tail()}"
        assert (status["placement"]["node"], status["placement"]["offer"]) == (node, offer), name
        assert status["placement"]["identityCode"].startswith("CI")
        assert status["memberJob"]["cluster"] == node
        # The member ran exactly one Job for it, and it says so itself.
        jobs = member_jobs(testbed, members[node], job["metadata"]["uid"])
        assert [j.metadata.name for j in jobs] == [status["memberJob"]["name"]]
        assert jobs[0].status.succeeded == case.get("replicas", 1)
        conditions = {c["type"]: c["status"] for c in status["conditions"]}
        assert conditions.get("Scheduled") == "True" and conditions.get("Succeeded") == "True"


def test_kubectl_shows_where_a_job_went(testbed: tb.Testbed, operator: m.Operator) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    submit(hub, m.job_manifest("visible", ns, origin="CN-GZ", tier="1ms", gpus=1, max_price="10", run_for="1s"))
    wait_phase(hub, ns, "visible", {"Succeeded"})
    out = hub_kubectl(testbed, "get", "cjob", "-n", ns)
    header, row = out.splitlines()[:2]
    for column in ("PHASE", "NODE", "GPUS", "TIER", "PRICE"):
        assert column in header
    assert "Succeeded" in row and "gz-regional" in row and "1ms" in row
    events = hub_kubectl(testbed, "get", "events", "-n", ns, "--field-selector", "involvedObject.name=visible")
    # Scheduled names the offer, node and member Job; Dispatched and Running are conditions.
    for reason in ("Scheduled", "Completed"):
        assert reason in events, events


def hub_kubectl(bed: tb.Testbed, *args: str) -> str:
    import subprocess

    return subprocess.run(bed.kubectl_cmd("hub", *args), check=True, capture_output=True, text=True).stdout


def test_pending_job_explains_why_and_is_placed_when_a_cheaper_offer_appears(
    testbed: tb.Testbed, operator: m.Operator
) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    submit(hub, m.job_manifest("bargain", ns, origin="CN-SH", tier="1ms", gpus=2, max_price="5", run_for="1s"))

    def explained() -> dict[str, Any] | None:
        status = m.get_job(hub, ns, "bargain").get("status") or {}
        return status if status.get("unschedulable") else None

    status = m.wait_for(explained, 30, "an unschedulable explanation")
    assert status["phase"] == "Pending"
    summary = status["unschedulable"]["summary"]
    assert summary.startswith(f"0/{len(m.OFFERS)} offers fit:"), summary
    assert "price above maxPrice" in summary and "latency" in summary, summary
    reasons = {r["reason"]: r["count"] for r in status["unschedulable"]["reasons"]}
    assert sum(reasons.values()) == len(m.OFFERS)
    events = hub_kubectl(testbed, "get", "events", "-n", ns, "--field-selector", "involvedObject.name=bargain")
    assert "FailedScheduling" in events
    # A cheaper offer on the same member's H800 appears: the job is placed on it.
    m.apply(testbed, m.offer_manifest("sh-h800", price={"amount": "28.00", "currency": "CNY", "unit": "card-hour"}))
    cheap = m.offer_manifest("sh-h800")
    cheap["metadata"]["name"] = "sh-h800-spot"
    cheap["spec"]["price"] = {"amount": "4.50", "currency": "CNY", "unit": "card-hour"}
    cheap["spec"]["cards"] = 4
    m.apply(testbed, cheap)
    try:
        job = wait_phase(hub, ns, "bargain", {"Succeeded"}, timeout=60)
        assert job["status"]["placement"]["offer"] == "sh-h800-spot"
        assert "unschedulable" not in job["status"] or not job["status"]["unschedulable"]
    finally:
        m.custom(hub).delete_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", "sh-h800-spot")


def _offer_use(bed: tb.Testbed) -> dict[str, int]:
    """Cards held right now by live pods of each offer, read from the members' own pods."""
    use: dict[str, int] = {}
    for member in {mm for mm, *_ in m.NODES.values()}:
        pods = client.CoreV1Api(bed.api(member)).list_namespaced_pod(
            m.WORK_NS, label_selector="interconnect.dev/managed-by=interconnect-hub").items
        for pod in pods:
            if pod.status.phase in ("Succeeded", "Failed"):
                continue
            offer = pod.metadata.labels["interconnect.dev/offer"]
            gpus = sum(int((c.resources.limits or {}).get("nvidia.com/gpu", 0)) for c in pod.spec.containers)
            use[offer] = use.get(offer, 0) + gpus
    return use


def test_fifty_jobs_at_once_never_oversell_and_all_run(testbed: tb.Testbed, operator: m.Operator) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    names = [f"burst-{i:02d}" for i in range(50)]
    for name in names:
        submit(hub, m.job_manifest(name, ns, origin="CN-HB", tier="20ms", gpus=2, max_price="50", models=[A100],
                                   run_for="2s"))
    limits = {name: spec[3] for name, spec in m.OFFERS.items()}
    peak: dict[str, int] = {}

    def never_oversold() -> None:
        for offer, cards in _offer_use(testbed).items():
            peak[offer] = max(peak.get(offer, 0), cards)
            assert cards <= limits[offer], f"offer {offer} oversold: {cards} > {limits[offer]}"

    _until_all_succeeded(hub, ns, names, operator, never_oversold, interval=0.5)
    assert peak.get("gz-a100", 0) > 0, peak


def _until_all_succeeded(hub: client.ApiClient, ns: str, names: list[str], operator: m.Operator,
                         throughout: Callable[[], None], *, interval: float, timeout: float = 240) -> None:
    """Run `throughout` (it asserts what must hold all along) until every job has succeeded; none may fail."""
    deadline = time.monotonic() + timeout
    phases: list[str | None] = []
    while time.monotonic() < deadline:
        throughout()
        phases = [m.phase_of(hub, ns, n) for n in names]
        if all(p == "Succeeded" for p in phases):
            return
        assert "Failed" not in phases, operator.log_tail()
        time.sleep(interval)
    raise AssertionError(f"not all jobs succeeded: {phases}")


def _cards_on_model(bed: tb.Testbed, member: str, model: str) -> tuple[int, int]:
    """(the member's allocatable cards of `model`, the cards its live pods on those nodes hold, in
    every namespace): what the member's own scheduler has to fit."""
    core = client.CoreV1Api(bed.api(member))
    nodes = {n.metadata.name: int(n.status.allocatable.get("nvidia.com/gpu", 0))
             for n in core.list_node().items if (n.metadata.labels or {}).get("nvidia.com/gpu.product") == model}
    held = 0
    for pod in core.list_pod_for_all_namespaces().items:
        if pod.status.phase in ("Succeeded", "Failed"):
            continue
        if pod.spec.node_name in nodes or (pod.spec.node_name is None and
                                           (pod.metadata.labels or {}).get("interconnect.dev/offer") in TWINS):
            held += sum(int((c.resources.limits or {}).get("nvidia.com/gpu", 0)) for c in pod.spec.containers)
    return sum(nodes.values()), held


TWINS = ("gz-a100", "gz-twin-a100")


def test_two_computenodes_on_one_member_never_sell_its_cards_twice(testbed: tb.Testbed, operator: m.Operator) -> None:
    """A second ComputeNode pointing at member-1 (the same kubeconfig, so the same machines) with an
    offer of the same A100s: the two offers share the cards, never 2 x 24 (a pending pod counts)."""
    hub = testbed.api("hub")
    twin = m.node_manifest("gz-regional")
    twin["metadata"]["name"] = "gz-twin"
    offer = m.offer_manifest("gz-a100")
    offer["metadata"]["name"] = "gz-twin-a100"
    # Cheaper, so it sells first; 12 cards, so the dearer gz-a100 sells the rest of the machines.
    offer["spec"].update(nodeRef="gz-twin", cards=12, price={"amount": "7.00", "currency": "CNY", "unit": "card-hour"})
    m.apply(testbed, twin)
    m.apply(testbed, offer)
    try:
        m.wait_for(lambda: m._ready(hub, "gz-twin") and m._selling(hub, "gz-twin-a100"), 60,
                   "the twin ComputeNode Ready and its offer selling")
        physical, _ = _cards_on_model(testbed, "member-1", A100)
        ns = m.tenant(hub)
        names = [f"twin-{i:02d}" for i in range(30)]
        for name in names:  # 60 cards asked of 24, only gz within 1 ms of Guangzhou
            submit(hub, m.job_manifest(name, ns, origin="CN-GZ", tier="1ms", gpus=2, max_price="50", models=[A100],
                                       run_for="2s"))
        by_offer = {o: 0 for o in TWINS}
        peak = {"member-1": 0}

        def never_beyond_the_machines() -> None:
            _, held = _cards_on_model(testbed, "member-1", A100)
            peak["member-1"] = max(peak["member-1"], held)
            assert held <= physical, f"member-1 holds {held} A100 cards for live pods, it has {physical}"
            for offer_name, cards in _offer_use(testbed).items():
                if offer_name in by_offer:
                    by_offer[offer_name] = max(by_offer[offer_name], cards)

        _until_all_succeeded(hub, ns, names, operator, never_beyond_the_machines, interval=0.3)
        # Both offers sold, and together they filled more than either could alone.
        assert by_offer["gz-twin-a100"] > 0 and by_offer["gz-a100"] > 0, by_offer
        assert peak["member-1"] > 12, (peak, physical)
    finally:
        subprocess.run(testbed.kubectl_cmd("hub", "delete", "computeoffer", "gz-twin-a100", "--ignore-not-found"),
                       capture_output=True)
        subprocess.run(testbed.kubectl_cmd("hub", "delete", "computenode", "gz-twin", "--ignore-not-found",
                                           "--timeout=60s"), capture_output=True)


def test_operator_killed_during_dispatch_never_duplicates(testbed: tb.Testbed, operator: m.Operator) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    names = [f"restart-{i:02d}" for i in range(30)]
    rng = random.Random(7)

    def submit_all() -> None:
        for name in names:
            submit(hub, m.job_manifest(name, ns, origin="CN-HB", tier="20ms", gpus=1, max_price="50",
                                       models=[A100], run_for="3s"))

    submitter = threading.Thread(target=submit_all)
    submitter.start()
    for _ in range(3):
        time.sleep(rng.uniform(0.3, 2.0))
        operator.kill()
        operator.start()
    submitter.join()
    for name in names:
        job = wait_phase(hub, ns, name, {"Succeeded", "Failed"}, timeout=180)
        assert job["status"]["phase"] == "Succeeded", f"{name}: {m.dump(job['status'])}"
        members = {n: mm for n, (mm, *_) in m.NODES.items()}
        found = member_jobs(testbed, members[job["status"]["placement"]["node"]], job["metadata"]["uid"])
        attempts = job["status"]["attempts"]
        assert len(found) == 1 == attempts, f"{name}: {[j.metadata.name for j in found]}, attempts {attempts}"
        for other in set(members.values()) - {members[job["status"]["placement"]["node"]]}:
            assert member_jobs(testbed, other, job["metadata"]["uid"]) == []


def test_deleting_a_compute_job_deletes_its_member_job(testbed: tb.Testbed, operator: m.Operator) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    submit(hub, m.job_manifest("long", ns, origin="CN-GZ", tier="1ms", gpus=1, max_price="10", run_for="10m"))
    job = wait_phase(hub, ns, "long", {"Running"})
    uid = job["metadata"]["uid"]
    assert len(member_jobs(testbed, "member-1", uid)) == 1
    m.custom(hub).delete_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", "long")

    def gone() -> bool:
        try:
            m.get_job(hub, ns, "long")
        except ApiException as exc:
            return exc.status == 404
        return False

    m.wait_for(gone, 60, "the ComputeJob to be deleted")
    m.wait_for(lambda: not [j for j in member_jobs(testbed, "member-1", uid) if not j.metadata.deletion_timestamp],
               60, "the member Job to be deleted")


def test_member_job_deleted_behind_the_hubs_back_fails_the_compute_job(
    testbed: tb.Testbed, operator: m.Operator
) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    submit(hub, m.job_manifest("victim", ns, origin="CN-GZ", tier="1ms", gpus=1, max_price="10", run_for="10m"))
    job = wait_phase(hub, ns, "victim", {"Running"})
    name = job["status"]["memberJob"]["name"]
    client.BatchV1Api(testbed.api("member-1")).delete_namespaced_job(name, m.WORK_NS,
                                                                     propagation_policy="Background")
    job = wait_phase(hub, ns, "victim", {"Failed"}, timeout=60)
    failed = next(c for c in job["status"]["conditions"] if c["type"] == "Failed")
    assert failed["reason"] == "MemberJobDeleted"
    assert name in failed["message"]
    time.sleep(3)
    assert member_jobs(testbed, "member-1", job["metadata"]["uid"]) == [], "a Failed job must not be re-run"
    assert m.get_job(hub, ns, "victim")["status"]["attempts"] == 1


def test_ineligible_node_gets_no_identity_and_no_work(testbed: tb.Testbed, operator: m.Operator) -> None:
    hub = testbed.api("hub")
    manifest = m.node_manifest("gz-regional")
    manifest["metadata"]["name"] = "poor-node"
    manifest["spec"]["operatingEntity"]["registeredCapital"] = "1000000"
    m.apply(testbed, manifest)
    try:
        def registered_false() -> dict[str, Any] | None:
            node = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", "poor-node")
            conds = {c["type"]: c for c in (node.get("status") or {}).get("conditions", [])}
            return conds["Registered"] if conds.get("Registered", {}).get("status") == "False" else None

        cond = m.wait_for(registered_false, 30, "Registered=False")
        assert cond["reason"] == "NotEligible"
        assert "registeredCapital" in cond["message"] and "50,000,000" in cond["message"]
        node = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", "poor-node")
        assert not (node.get("status") or {}).get("identityCode")
    finally:
        m.custom(hub).delete_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", "poor-node")


def test_identity_codes_are_unique(testbed: tb.Testbed, operator: m.Operator) -> None:
    hub = testbed.api("hub")
    codes = []
    for name in m.NODES:
        node = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", name)
        codes.append(node["status"]["identityCode"])
    assert len(set(codes)) == len(codes)
    capacity = {c["model"]: c for c in node["status"]["capacity"]}
    assert capacity, "a Ready node reports its GPU capacity"


