"""Green power in placement and energy in the bill (issue 19), on the real test bed.

Two ComputeNodes declare their energy facts: sh-finance (Shanghai) PUE 1.3 and 50% green power,
bj-regional (Beijing) PUE 1.15 and 90%. Each gets a fake node of 8 H100 cards (700 W each in the
accelerator catalogue) and an offer of them: sh-h100 at 10.00 per card-hour, bj-h100 at 10.30 (3%
dearer). A job from Shanghai within 20 ms reaches both.
"""

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

from interconnect.core.accelerators import node_selector_of, resource_of
from tests import testbed as tb
from tests.e2e import market as m
from tests.e2e.conftest import Prometheus

pytestmark = pytest.mark.e2e

H100 = "NVIDIA-H100-80GB-HBM3"
WATTS = Decimal(700)
# node -> (member, fake node, offer, price, PUE, green share)
SITES: dict[str, tuple[str, str, str, str, Decimal, Decimal]] = {
    "sh-finance": ("member-2", "member-2-h100-0", "sh-h100", "10.00", Decimal("1.3"), Decimal("0.5")),
    "bj-regional": ("member-3", "member-3-h100-0", "bj-h100", "10.30", Decimal("1.15"), Decimal("0.9")),
}


def _fake_node(name: str, region: str) -> dict[str, Any]:
    capacity = {"cpu": "192", "memory": "1Ti", "pods": "110", resource_of(H100): "8"}
    return {"apiVersion": "v1", "kind": "Node",
            "metadata": {"name": name, "annotations": {"kwok.x-k8s.io/node": "fake"},
                         "labels": {"type": "kwok", "kubernetes.io/hostname": name,
                                    "topology.kubernetes.io/region": region, **node_selector_of(H100)}},
            "spec": {}, "status": {"capacity": capacity, "allocatable": capacity}}


def _offer(name: str, node: str, price: str, host: str) -> dict[str, Any]:
    return {"apiVersion": f"{m.GROUP}/{m.VERSION}", "kind": "ComputeOffer", "metadata": {"name": name},
            "spec": {"nodeRef": node, "gpuModel": H100, "gpuMemoryGiB": 80, "cards": 8,
                     "nodeSelector": {"matchLabels": {"kubernetes.io/hostname": host}},
                     "price": {"amount": price, "currency": "CNY", "unit": "card-hour"}}}


def _energy(pue: Decimal, share: Decimal) -> dict[str, Any]:
    # Declared for a month long past: it holds for every later month without a declaration of its own.
    return {"pue": str(pue), "greenShares": [{"month": "2000-01", "fraction": str(share),
                                              "source": "e2e: a green-power purchase agreement"}]}


@pytest.fixture
def green_market(testbed: tb.Testbed, operator: m.Operator) -> Iterator[None]:
    hub = testbed.api("hub")
    for node, (member, host, offer, price, pue, share) in SITES.items():
        region = m.NODES[node][2]
        client.CoreV1Api(testbed.api(member)).create_node(_fake_node(host, region))
        m.custom(hub).patch_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", node,
                                                  {"spec": {"energy": _energy(pue, share)}})
        m.apply(testbed, _offer(offer, node, price, host))

    def selling(name: str) -> bool:
        status = m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", name).get("status")
        return (status or {}).get("cardsTotal") == 8

    try:
        m.wait_for(lambda: all(selling(s[2]) for s in SITES.values()), 60, "the H100 offers to sell 8 cards")
        yield
    finally:
        for node, (member, host, offer, *_) in SITES.items():
            with contextlib.suppress(ApiException):
                m.custom(hub).delete_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", offer)
            m.custom(hub).patch_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", node,
                                                      {"spec": {"energy": None}})
            api = client.CoreV1Api(testbed.api(member))
            m.wait_for(lambda a=api, h=host: not [p for p in a.list_namespaced_pod(m.WORK_NS).items
                                                   if p.spec.node_name == h
                                                   and p.status.phase not in ("Succeeded", "Failed")],
                       60, f"{host} to be idle")
            with contextlib.suppress(ApiException):
                api.delete_node(host)


def _submit(testbed: tb.Testbed, ns: str, name: str, run_for: str = "2s", **placement: Any) -> None:
    manifest = m.job_manifest(name, ns, gpus=2, origin="CN-SH", tier="20ms", max_price="20", models=[H100],
                              run_for=run_for)
    if placement:
        manifest["spec"]["placement"] = placement
    m.custom(testbed.api("hub")).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", manifest)


def _placed_offer(testbed: tb.Testbed, ns: str, name: str) -> str:
    job = m.wait_for(lambda: (m.get_job(testbed.api("hub"), ns, name).get("status") or {}).get("placement")
                     and m.get_job(testbed.api("hub"), ns, name), 60, f"{name} to be placed")
    return str(job["status"]["placement"]["offer"])


def test_a_minimum_green_share_and_a_preference_for_greener_power(testbed: tb.Testbed, green_market: None) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    # Cheapest first, by default: Shanghai.
    _submit(testbed, ns, "cheapest")
    assert _placed_offer(testbed, ns, "cheapest") == "sh-h100"
    # At least 80% green power: only Beijing declares it.
    _submit(testbed, ns, "green-80", minGreenShare="0.8")
    assert _placed_offer(testbed, ns, "green-80") == "bj-h100"
    # At least 95%: nowhere, and the job says why of each offer.
    _submit(testbed, ns, "green-95", minGreenShare="0.95")
    job = m.wait_for(lambda: (m.get_job(hub, ns, "green-95").get("status") or {}).get("unschedulable")
                     and m.get_job(hub, ns, "green-95"), 60, "green-95 to say why it waits")
    reasons = {c["offer"]: c["reason"] for c in job["status"]["unschedulable"]["candidates"]}
    assert reasons["sh-h100"] == "node sh-finance declares 50% green power this month, below the minimum 95%"
    assert reasons["bj-h100"] == "node bj-regional declares 90% green power this month, below the minimum 95%"
    counts = {c["reason"]: c["count"] for c in job["status"]["unschedulable"]["reasons"]}
    assert counts["GreenShareTooLow"] >= 2, counts
    assert job["status"]["phase"] == "Pending"
    # Greener within 5%: Beijing is 3% dearer and greener, so it wins.
    _submit(testbed, ns, "greener-3pc", prefer="greener", priceBandPercent=5)
    assert _placed_offer(testbed, ns, "greener-3pc") == "bj-h100"
    # 8% dearer is outside the band: the cheaper Shanghai offer.
    m.custom(hub).patch_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers", "bj-h100",
                                              {"spec": {"price": {"amount": "10.80", "currency": "CNY",
                                                                  "unit": "card-hour"}}})
    time.sleep(3)  # the operator reads the new price from its watch
    _submit(testbed, ns, "greener-8pc", prefer="greener", priceBandPercent=5)
    assert _placed_offer(testbed, ns, "greener-8pc") == "sh-h100"
    with contextlib.suppress(ApiException):
        m.custom(hub).delete_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", "green-95")


def _pod_card_hours(testbed: tb.Testbed, member: str, uid: str) -> Decimal:
    micro = 0
    for pod in client.CoreV1Api(testbed.api(member)).list_namespaced_pod(
            m.WORK_NS, label_selector=f"interconnect.dev/job-uid={uid}").items:
        cards = sum(int((c.resources.limits or {}).get("nvidia.com/gpu", 0)) for c in pod.spec.containers)
        term = pod.status.container_statuses[0].state.terminated
        micro += cards * ((term.finished_at - term.started_at) // dt.timedelta(microseconds=1))
    return Decimal(micro) / Decimal(3_600_000_000)


def test_energy_in_status_bill_and_prometheus_is_cards_hours_board_power_and_pue(
        testbed: tb.Testbed, green_market: None, prometheus: Prometheus) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    for node in SITES:
        _submit(testbed, ns, f"energy-{node}", run_for="6s", allowedNodes=[node])
    q = Decimal("1e-12")
    for node, (member, _, offer, _, pue, share) in SITES.items():
        job = m.wait_phase(testbed, ns, f"energy-{node}", {"Succeeded", "Failed"}, 120)
        status = job["status"]
        assert status["phase"] == "Succeeded" and status["placement"]["offer"] == offer, m.dump(status)
        card_hours = Decimal(status["usage"]["cardHours"])
        energy = status["usage"]["energy"]
        kwh = Decimal(energy["kWh"])
        # The formula, from the status' own card-hours (each figure kept to 1e-12).
        assert abs(kwh - card_hours * WATTS / 1000 * pue) <= Decimal("1e-9"), energy
        # green = the exact kWh x share, rounded once: within 1e-12 of the rounded kWh x share.
        assert abs(Decimal(energy["greenKWh"]) - kwh * share) <= q, energy
        assert Decimal(energy["greenKWh"]) + Decimal(energy["gridKWh"]) == kwh
        assert (Decimal(energy["pue"]), Decimal(energy["greenShare"]), energy["boardPowerWatts"]) == (pue, share, 700)
        # And from the member's own clock: card-hours within a second per pod.
        real = _pod_card_hours(testbed, member, job["metadata"]["uid"])
        assert abs(kwh - real * WATTS / 1000 * pue) <= Decimal(2) / 3600 * WATTS / 1000 * pue, (kwh, real)
        # The bill says the same.
        record = m.wait_for(lambda uid=job["metadata"]["uid"]: _record(hub, f"{uid}-1"), 30, "the ComputeUsage")
        assert record["spec"]["energy"] == energy
        # Prometheus: green and grid kWh of the node, scraped from the operator's counters.
        code = status["placement"]["identityCode"]

        def scraped(kind: str, c: str = code) -> float:
            return prometheus.scalar(
                f'sum(interconnect_energy_kwh_total{{tenant="{ns}", node="{c}", kind="{kind}"}})')

        green, grid = float(energy["greenKWh"]), float(energy["gridKWh"])
        m.wait_for(lambda g=green, r=grid: abs(scraped("green") - g) < 1e-6 and abs(scraped("grid") - r) < 1e-6,
                   30, f"Prometheus to have {node}'s energy")


def _record(hub: Any, name: str) -> dict[str, Any] | None:
    with contextlib.suppress(ApiException):
        return m.custom(hub).get_cluster_custom_object(m.GROUP, m.VERSION, "computeusages", name)  # type: ignore[no-any-return]
    return None
