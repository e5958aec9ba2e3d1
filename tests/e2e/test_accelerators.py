"""Accelerators beyond NVIDIA's (issue 18, first slice): an offer of Huawei Ascend cards on a
member whose node reports them the way Ascend's device plugin and node labels do; a job placed
there asks for the Ascend resource, is told its model, and is billed from its pods' clock."""

from __future__ import annotations

import contextlib
import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from tests import testbed as tb
from tests.e2e import market as m

pytestmark = pytest.mark.e2e

MEMBER, NODE_NAME, OFFER, MODEL, RESOURCE = "member-3", "member-3-ascend-0", "bj-ascend", "Ascend910B3", \
    "huawei.com/Ascend910"


MLU_NODE, MLU_OFFER, MLU, MLU_RESOURCE = "member-3-mlu-0", "bj-mlu370", "MLU370-X8", "cambricon.com/mlu"


def _fake_node(name: str, labels: dict[str, str], resource: str) -> dict[str, Any]:
    capacity = {"cpu": "192", "memory": "1Ti", "pods": "110", resource: "8"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                         "labels": {"type": "kwok", "kubernetes.io/hostname": name,
                                    "topology.kubernetes.io/region": "CN-BJ", **labels}},
            "spec": {}, "status": {"capacity": capacity, "allocatable": capacity}}


def _offer(name: str, model: str, memory: int, price: str, node: str) -> dict[str, Any]:
    return {"apiVersion": f"{m.GROUP}/{m.VERSION}", "kind": "ComputeOffer", "metadata": {"name": name},
            "spec": {"nodeRef": "bj-regional", "gpuModel": model, "gpuMemoryGiB": memory, "cards": 8,
                     "nodeSelector": {"matchLabels": {"kubernetes.io/hostname": node}},
                     "price": {"amount": price, "currency": "CNY", "unit": "card-hour"}}}


@pytest.fixture
def ascend_offer(testbed: tb.Testbed, operator: m.Operator) -> Iterator[str]:
    """Fake nodes on member-3 (bj-regional), labelled and advertised the way the vendors' device
    plugins do: 8 Ascend 910B3 cards (offered at 5.00 per card-hour: the cheapest card in Beijing,
    with no published TFLOPS) and 8 Cambricon MLU370-X8 cards (5.50: 57 CNY per PFLOPS-hour at
    BF16, against the L40S's 6.00 and 16.57)."""
    member = client.CoreV1Api(testbed.api(MEMBER))
    member.create_node(_fake_node(NODE_NAME, {"accelerator": "huawei-Ascend910",
                                              "node.kubernetes.io/npu.chip.name": "910B3"}, RESOURCE))
    member.create_node(_fake_node(MLU_NODE, {"Model": MLU}, MLU_RESOURCE))
    hub = testbed.api("hub")
    m.apply(testbed, _offer(OFFER, MODEL, 64, "5.00", NODE_NAME))
    m.apply(testbed, _offer(MLU_OFFER, MLU, 48, "5.50", MLU_NODE))

    def selling(name: str) -> bool:
        status = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", name).get("status")
        return (status or {}).get("cardsTotal") == 8

    try:
        m.wait_for(lambda: selling(OFFER) and selling(MLU_OFFER), 60, "the Ascend and MLU offers to sell 8 cards")
        yield OFFER
    finally:
        for name in (OFFER, MLU_OFFER):
            with contextlib.suppress(ApiException):
                m.custom(hub).delete_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", name)
        # Finished pods stay with their finished Jobs; only running ones would hold the cards.
        m.wait_for(lambda: not [p for p in member.list_namespaced_pod(m.WORK_NS).items
                                if p.spec.node_name in (NODE_NAME, MLU_NODE)
                                and p.status.phase not in ("Succeeded", "Failed")], 60, "the fake nodes to be idle")
        for name in (NODE_NAME, MLU_NODE):
            with contextlib.suppress(ApiException):
                member.delete_node(name)


def _pods(testbed: tb.Testbed, uid: str) -> list[Any]:
    return client.CoreV1Api(testbed.api(MEMBER)).list_namespaced_pod(
        m.WORK_NS, label_selector=f"interconnect.dev/job-uid={uid}").items


def test_a_job_for_ascend_cards_asks_for_the_ascend_resource_and_is_billed_exactly(
        testbed: tb.Testbed, ascend_offer: str) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
        "on-ascend", ns, gpus=4, replicas=2, origin="CN-BJ", tier="1ms", max_price="10", models=[MODEL],
        run_for="4s"))
    job = m.wait_phase(testbed, ns, "on-ascend", {"Succeeded", "Failed"}, 120)
    status = job["status"]
    assert status["phase"] == "Succeeded", m.dump(status)
    assert status["placement"]["offer"] == OFFER and status["placement"]["gpuModel"] == MODEL
    pods = _pods(testbed, job["metadata"]["uid"])
    assert len(pods) == 2
    micro = 0
    for pod in pods:
        assert pod.spec.node_name == NODE_NAME
        [container] = pod.spec.containers
        assert container.resources.limits == {RESOURCE: "4"}, container.resources.limits
        env = {e.name: e.value for e in container.env or []}
        assert (env["INTERCONNECT_ACCELERATOR_MODEL"], env["INTERCONNECT_ACCELERATOR_VENDOR"]) == (MODEL, "huawei")
        assert pod.metadata.labels["interconnect.dev/accelerator-vendor"] == "huawei"
        term = pod.status.container_statuses[0].state.terminated
        micro += 4 * ((term.finished_at - term.started_at) // dt.timedelta(microseconds=1))
    real = Decimal(micro) / Decimal(3_600_000_000)
    metered = Decimal(status["usage"]["cardHours"])
    assert abs(metered - real) <= Decimal(8) / 3600, f"metered {metered}, the pods' clock says {real}"


def test_a_job_for_nvidia_cards_never_lands_on_ascend(testbed: tb.Testbed, ascend_offer: str) -> None:
    """Beijing within 1 ms at up to 10 CNY: the Ascend offer (5.00) is the cheapest, but the job
    asks for L40S cards."""
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", m.job_manifest(
        "on-l40s", ns, gpus=2, origin="CN-BJ", tier="1ms", max_price="10", models=[m.L40S], run_for="1s"))
    job = m.wait_phase(testbed, ns, "on-l40s", {"Succeeded", "Failed"}, 120)
    assert job["status"]["placement"]["offer"] == "bj-l40s"
    [pod] = _pods(testbed, job["metadata"]["uid"])
    assert pod.spec.containers[0].resources.limits == {"nvidia.com/gpu": "2"}
    # Normalised compute beside the card-hours: the L40S's 362.05 dense BF16 TFLOPS, in status and bill.
    usage = job["status"]["usage"]
    expected = (Decimal(usage["cardHours"]) * Decimal("0.36205")).quantize(Decimal("1e-12"))
    assert Decimal(usage["pflopsHours"]) == expected, usage
    record = m.wait_for(lambda: _record(hub, f"{job['metadata']['uid']}-1"), 30, "the attempt's ComputeUsage")
    assert (Decimal(record["spec"]["pflopsHours"]), record["spec"]["precision"]) == (expected, "bf16")


def _record(hub: Any, name: str) -> dict[str, Any] | None:
    with contextlib.suppress(ApiException):
        return m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computeusages", name)  # type: ignore[no-any-return]
    return None


def _placed(testbed: tb.Testbed, name: str, **spec: Any) -> dict[str, Any]:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    manifest = m.job_manifest(name, ns, gpus=2, origin="CN-BJ", tier="1ms", max_price="10", run_for="1s")
    manifest["spec"]["gpus"].update(spec.pop("gpus", {}))
    manifest["spec"].update(spec)
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", manifest)
    job = m.wait_phase(testbed, ns, name, {"Succeeded", "Failed"}, 120)
    assert job["status"]["phase"] == "Succeeded", m.dump(job["status"])
    return job


def test_jobs_asking_by_vendor_or_by_compute_price_land_where_the_catalogue_says(
        testbed: tb.Testbed, ascend_offer: str) -> None:
    # Per card-hour, Ascend's 5.00 is the cheapest card in Beijing.
    assert _placed(testbed, "cheapest-card")["status"]["placement"]["offer"] == OFFER
    # Per PFLOPS-hour the L40S wins (6.00 / 0.362 PFLOPS); the Ascend has no figure to be priced by.
    by_compute = _placed(testbed, "cheapest-compute", priceBasis="pflops-hour")
    assert by_compute["status"]["placement"]["offer"] == "bj-l40s"
    # A job limited to one vendor never lands elsewhere, and its pod asks for that vendor's resource.
    huawei = _placed(testbed, "huawei-only", gpus={"vendors": ["huawei"]})
    assert huawei["status"]["placement"]["offer"] == OFFER
    cambricon = _placed(testbed, "cambricon-only", gpus={"vendors": ["cambricon"]})
    assert cambricon["status"]["placement"]["gpuModel"] == MLU
    [pod] = client.CoreV1Api(testbed.api(MEMBER)).list_namespaced_pod(
        m.WORK_NS, label_selector=f"interconnect.dev/job-uid={cambricon['metadata']['uid']}").items
    assert pod.spec.containers[0].resources.limits == {MLU_RESOURCE: "2"}
    assert pod.spec.node_name == MLU_NODE


def test_a_hub_admin_s_figures_make_ascend_the_cheapest_compute(testbed: tb.Testbed, ascend_offer: str) -> None:
    """The built-in catalogue has no sourced TFLOPS for the 910B3 (Huawei publishes none per chip).
    A hub admin with the datasheet adds them with an AcceleratorModel; at 320 BF16 TFLOPS the
    Ascend offer (5.00 / 0.32 = 15.63 CNY per PFLOPS-hour) beats the L40S (16.57) without a restart."""
    hub = testbed.api("hub")
    source = "https://example.invalid/test-bed/ascend-910b3-datasheet"  # the test's own figure, not a published one
    override = {"apiVersion": f"{m.GROUP}/{m.VERSION}", "kind": "AcceleratorModel",
                "metadata": {"name": "ascend910b3"},
                "spec": {"model": MODEL, "vendor": "huawei", "resource": RESOURCE,
                         "nodeLabels": [{"accelerator": "huawei-Ascend910",
                                         "node.kubernetes.io/npu.chip.name": "910B3"}],
                         "memoryGiB": 64, "tflops": {"bf16": "320"},
                         "sources": {"resource": source, "nodeLabels": source, "memoryGiB": source,
                                     "tflops": {"bf16": source}}}}
    m.apply(testbed, override)
    try:
        def placed_on() -> str | None:
            name = f"compute-{int(time.time() * 1000) % 10**9}"
            job = _placed(testbed, name, priceBasis="pflops-hour")
            return str(job["status"]["placement"]["offer"])

        # The operator reads the object from its watch: the first job after it may still see the old figures.
        m.wait_for(lambda: placed_on() == OFFER, 90, "a pflops-hour job to land on Ascend", interval=2)
    finally:
        with contextlib.suppress(ApiException):
            m.custom(hub).delete_cluster_custom_object(m.GROUP, m.VERSION, "acceleratormodels", "ascend910b3")


def test_a_per_vendor_quota_holds_under_a_burst(testbed: tb.Testbed, ascend_offer: str) -> None:
    """A tenant limited to 4 Huawei cards submits 6 two-card jobs that accept Huawei cards only, at
    once: the Ascend node has room for 4 of them at a time (8 cards), the quota for 2. The jobs'
    pods (created after the job was placed, finished before its end is seen) never hold more than 4
    Huawei cards at once; the held jobs say which limit holds them, and all of them finish."""
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    quota = {"apiVersion": f"{m.GROUP}/{m.VERSION}", "kind": "ComputeQuota", "metadata": {"name": ns},
             "spec": {"namespace": ns, "limits": {"cardsPerVendor": [{"vendor": "huawei", "cards": 4}]}}}
    m.custom(hub).create_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", quota)
    names = [f"burst-{i}" for i in range(6)]
    try:
        for name in names:
            manifest = m.job_manifest(name, ns, gpus=2, origin="CN-BJ", tier="1ms", max_price="10", run_for="5s")
            manifest["spec"]["gpus"]["vendors"] = ["huawei"]
            m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", manifest)
        held_message, most_in_use = "", 0
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            jobs = m.custom(hub).list_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs")["items"]
            if not held_message:
                held = [c["message"] for j in jobs for c in (j.get("status") or {}).get("conditions", [])
                        if c["type"] == "Scheduled" and c["reason"] == "QuotaExceeded"]
                held_message = held[0] if held else ""
            status = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", ns).get("status")
            for entry in (status or {}).get("cardsInUsePerVendor", []):
                if entry["vendor"] == "huawei":
                    most_in_use = max(most_in_use, entry["cards"])
            if len(jobs) == 6 and all((j.get("status") or {}).get("phase") in ("Succeeded", "Failed") for j in jobs):
                break
            time.sleep(0.5)
        else:
            pytest.fail("the 6 jobs did not finish in 4 minutes")
        jobs = [m.get_job(hub, ns, name) for name in names]
        assert [j["status"]["phase"] for j in jobs] == ["Succeeded"] * 6, [m.dump(j["status"]) for j in jobs]
        assert all(j["status"]["placement"]["offer"] == OFFER for j in jobs)
        # Cards held over time, from the member's own clock: +2 at a pod's creation, -2 at its end.
        steps: list[tuple[dt.datetime, int]] = []
        for job in jobs:
            for pod in _pods(testbed, job["metadata"]["uid"]):
                term = pod.status.container_statuses[0].state.terminated
                steps += [(pod.metadata.creation_timestamp, 2), (term.finished_at, -2)]
        held_now = peak = 0
        for _, change in sorted(steps, key=lambda s: (s[0], s[1])):  # an end before a start at the same second
            held_now += change
            peak = max(peak, held_now)
        assert peak <= 4, f"{peak} Huawei cards held at once, over the tenant's limit of 4"
        assert 0 < most_in_use <= 4, most_in_use
        assert "huawei cards" in held_message and "spec.limits.cardsPerVendor[vendor=huawei].cards" in held_message, \
            held_message
    finally:
        m.custom(hub).delete_cluster_custom_object(m.GROUP, m.VERSION, "computequotas", ns)
