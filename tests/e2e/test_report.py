"""The network report end to end: jobs on two nodes, then the report's card-hours in use, offered,
utilisation and availability against figures computed independently.

The report covers the month so far, which on a shared test bed holds whatever ran before this test,
so the test reads it twice, before the jobs (T1) and after them (T2), and checks what changed in
between against:

- **in use**: the member pods' own container start and finish times (as test_metering does),
  summed over the jobs of this test: the records' card-hours are exact to the member's clock, so
  the difference is at most one second per pod and card (the kubelet's timestamps have seconds);
- **offered**: the offers' cards (their status.cardsTotal, checked unchanged across the window)
  x the wall time T2 - T1 (each report's period ends at the instant its Prometheus queries are
  evaluated). The operator adds the offered card-seconds on its status loop (every 2 s here) and
  Prometheus scrapes every second, so each end of the window can lag or lead by about 3 s of the
  node's cards; the tolerance is 6 s of cards (a few percent of a window of 100 s and more).
  Availability's Ready and observed hours grow by the same window, within the same 6 s.

The report's own utilisation must then be its in-use over its offered card-hours, and the window's
utilisation (Δ in use / Δ offered) that of the independent figures within the tolerance above.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
import time
from decimal import Decimal
from typing import Any

import pytest

from interconnect.cli.network_report import COLUMNS
from tests import testbed as tb
from tests.e2e import market as m
from tests.e2e.conftest import Prometheus
from tests.e2e.test_metering import run_jobs, truth

pytestmark = pytest.mark.e2e

NODES = ("gz-regional", "bj-regional")
JOBS: dict[str, tuple[dict[str, Any], str]] = {
    "gz-one": (dict(origin="CN-GZ", tier="1ms", gpus=1, max_price="10", run_for="8s"), "gz-a100"),
    "gz-two": (dict(origin="CN-GZ", tier="1ms", gpus=2, max_price="10", run_for="12s"), "gz-a100"),
    "gz-fails": (dict(origin="CN-GZ", tier="1ms", gpus=1, max_price="10", run_for="4s", outcome="fail",
                      backoffLimit=0), "gz-a100"),
    "bj-pair": (dict(origin="CN-BJ", tier="1ms", gpus=2, replicas=2, max_price="10", run_for="10s"), "bj-l40s"),
}
WINDOW_SECONDS = 100
"""At least this long between the two reports, so that the tolerance on offered is a few percent."""
LAG_SECONDS = Decimal(6)


def report(bed: tb.Testbed, prometheus: Prometheus, *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "interconnect", "report", "--kubeconfig", str(bed.hub.kubeconfig), "--context",
         bed.hub.context, "--prometheus", prometheus.url, *args],
        capture_output=True, text=True, cwd=m.REPO, env={"PYTHONPATH": str(m.REPO / "operator"),
                                                        "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr
    return out.stdout


def report_json(bed: tb.Testbed, prometheus: Prometheus) -> dict[str, Any]:
    return json.loads(report(bed, prometheus, "-o", "json"))  # type: ignore[no-any-return]


def rows(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["key"]: r for r in data["rows"]}


def offered_cards(bed: tb.Testbed) -> dict[str, int]:
    offers = m.custom(bed.api("hub")).list_cluster_custom_object(m.GROUP, m.VERSION, "computeoffers")["items"]
    cards = dict.fromkeys(NODES, 0)
    for offer in offers:
        if offer["spec"]["nodeRef"] in cards:
            cards[offer["spec"]["nodeRef"]] += int((offer.get("status") or {}).get("cardsTotal") or 0)
    return cards


def ready(bed: tb.Testbed, node: str) -> bool:
    obj = m.custom(bed.api("hub")).get_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", node)
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (obj.get("status") or {}).get("conditions", []))


def settled(bed: tb.Testbed) -> bool:
    """No ComputeJob is active on NODES, none of their attempts awaits its record, and the member
    pods there have all ended."""
    hub = bed.api("hub")
    jobs = m.custom(hub).list_cluster_custom_object(m.GROUP, m.VERSION, "computejobs")["items"]
    for job in jobs:
        status = job.get("status") or {}
        node = (status.get("placement") or {}).get("node")
        if node in NODES and status.get("phase") in ("Scheduled", "Dispatched", "Running"):
            return False
    records = record_names(bed)
    for job in jobs:
        status = job.get("status") or {}
        if status.get("phase") not in ("Succeeded", "Failed"):
            continue
        for entry in status.get("attemptHistory") or []:
            if entry.get("node") in NODES and float(entry.get("cardHours") or 0) > 0 and \
                    f"{job['metadata']['uid']}-{entry['attempt']}" not in records:
                return False
    return True


def record_names(bed: tb.Testbed) -> set[str]:
    return {r["metadata"]["name"] for r in
            m.custom(bed.api("hub")).list_cluster_custom_object(m.GROUP, m.VERSION, "computeusages")["items"]}


def when(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_the_report_matches_member_clocks_and_the_offers_cards(
    testbed: tb.Testbed, operator: m.Operator, prometheus: Prometheus
) -> None:
    now = dt.datetime.now(dt.UTC)
    following = (now.replace(day=1) + dt.timedelta(days=32)).replace(day=1, hour=0, minute=0, second=0,
                                                                     microsecond=0)
    if following - now < dt.timedelta(minutes=10) or now - now.replace(day=1, hour=0, minute=0) < dt.timedelta(
            minutes=10):
        pytest.skip("too close to a month boundary: the window would span two months")
    for node in NODES:
        m.wait_for(lambda node=node: ready(testbed, node), 60, f"{node} Ready")
        m.wait_for(lambda node=node: prometheus.query(
            f'interconnect_offered_card_seconds_total{{node="{node}"}} > 0'), 60, f"{node}'s offered cards scraped")
    cards = offered_cards(testbed)
    assert all(cards.values()), cards
    # Earlier tests' attempts on these nodes are best billed before T1 (a job another test left
    # running may keep them from it: then their records written inside the window are taken out of
    # the comparison below, by name).
    deadline = time.monotonic() + 60
    while not settled(testbed) and time.monotonic() < deadline:
        time.sleep(1)
    time.sleep(3)

    known = record_names(testbed)
    before = report_json(testbed, prometheus)
    t1 = when(before["period"]["end"])
    assert before["schemaVersion"] == 1 and before["missing"] == [] and before["groupBy"] == "node"
    ns = m.tenant(testbed.api("hub"))
    jobs = run_jobs(testbed, ns, JOBS)
    assert {n: j["status"]["phase"] for n, j in jobs.items()} == {
        "gz-one": "Succeeded", "gz-two": "Succeeded", "gz-fails": "Failed", "bj-pair": "Succeeded"}
    elapsed = (dt.datetime.now(dt.UTC) - t1).total_seconds()
    time.sleep(max(3.0, WINDOW_SECONDS - elapsed))
    after = report_json(testbed, prometheus)
    t2 = when(after["period"]["end"])
    window = Decimal((t2 - t1) // dt.timedelta(microseconds=1)) / Decimal(1_000_000)
    assert offered_cards(testbed) == cards, "the offers' cards changed during the window"
    assert all(ready(testbed, node) for node in NODES)

    # Only this test's attempts finished in the window (nothing else runs on the test bed now).
    records = m.custom(testbed.api("hub")).list_cluster_custom_object(m.GROUP, m.VERSION, "computeusages")["items"]
    new = [r for r in records if t1 <= when(r["spec"]["finishedAt"]) < t2]
    uids = {j["metadata"]["uid"] for j in jobs.values()}
    assert {r["spec"]["jobUID"] for r in new} == uids, [r["spec"]["jobName"] for r in new]
    # Records of other tests' attempts written during the window (a deleted job billed once its
    # pods were gone) count in the second report only: taken out of the comparison, by name.
    foreign = [r["spec"] for r in records if r["metadata"]["name"] not in known
               and r["spec"]["jobUID"] not in uids and r["spec"]["node"] in NODES]

    members = {n: member for n, (member, *_) in m.NODES.items()}
    real: dict[str, Decimal] = dict.fromkeys(NODES, Decimal(0))
    pod_cards: dict[str, int] = dict.fromkeys(NODES, 0)
    for job in jobs.values():
        node = job["status"]["placement"]["node"]
        hours, pods = truth(testbed, members[node], job["metadata"]["uid"])
        real[node] += hours
        pod_cards[node] += pods * job["spec"]["gpus"]["count"]
    b, a = rows(before), rows(after)
    summary = []
    for node in NODES:
        others = [f for f in foreign if f["node"] == node]
        in_use = Decimal(a[node]["inUseCardHours"]) - Decimal(b[node]["inUseCardHours"]) - sum(
            (Decimal(f["cardHours"]) for f in others), Decimal(0))
        offered = Decimal(a[node]["offeredCardHours"]) - Decimal(b[node]["offeredCardHours"])
        expected_offered = cards[node] * window / 3600
        summary.append(f"{node}: in use {in_use} card-h (pods: {real[node]}), offered {offered} card-h "
                       f"({cards[node]} cards x {window} s = {expected_offered}), window utilisation "
                       f"{in_use / offered:.6f} (independent {real[node] / expected_offered:.6f})")
        assert abs(in_use - real[node]) <= Decimal(pod_cards[node]) / 3600 + Decimal("1e-8"), summary[-1]
        assert in_use > 0
        lag = cards[node] * LAG_SECONDS / 3600
        assert abs(offered - expected_offered) <= lag, summary[-1]
        # Utilisation: in use over offered, bounded by the tolerances of both.
        low = (real[node] - Decimal(pod_cards[node]) / 3600) / (expected_offered + lag)
        high = (real[node] + Decimal(pod_cards[node]) / 3600) / (expected_offered - lag)
        assert low <= in_use / offered <= high, summary[-1]
        # The report's own figure for the month so far: its in-use over its offered card-hours.
        month = Decimal(a[node]["inUseCardHours"]) / Decimal(a[node]["offeredCardHours"])
        # (within the display rounding of its three figures: 6, 9 and 6 places)
        assert abs(Decimal(a[node]["utilisation"]) - month) <= Decimal("0.000001"), a[node]
        for key in ("readyHours", "observedHours"):
            grown = Decimal(a[node][key]) - Decimal(b[node][key])
            assert abs(grown - window / 3600) <= LAG_SECONDS / 3600, (node, key, grown, window)
        # Sales and energy: the records of the window, exactly.
        mine = [r["spec"] for r in new if r["spec"]["node"] == node]
        mine += others
        sold = Decimal(a[node]["soldCardHours"]) - Decimal(b[node]["soldCardHours"])
        assert sold == sum(Decimal(s["cardHours"]) for s in mine)
        kwh = Decimal(a[node]["energyKWh"]) - Decimal(b[node]["energyKWh"])
        assert kwh == sum(Decimal((s.get("energy") or {}).get("kWh", "0")) for s in mine)
        revenue = Decimal(a[node]["revenue"]["CNY"]) - Decimal(b[node]["revenue"].get("CNY", "0"))
        assert revenue == sum(Decimal(s["cost"]) for s in mine if s["currency"] == "CNY")
    print("\n".join(summary))
    failed_elsewhere = sum(1 for f in foreign if f["node"] == "gz-regional" and f["outcome"] == "Failed")
    assert a["gz-regional"]["outcomes"].get("Failed", 0) - b["gz-regional"]["outcomes"].get("Failed", 0) == \
        1 + failed_elsewhere
    assert a["gz-regional"]["pueSource"] == "records" and a["gz-regional"]["energyKWh"] != "0"

    # The other outputs, and the plugin's command, read the same.
    table = subprocess.run(
        [sys.executable, "-m", "interconnect.cli.plugin", "report", "--kubeconfig", str(testbed.hub.kubeconfig),
         "--context", testbed.hub.context, "--prometheus", prometheus.url, "--node", "gz-regional"],
        capture_output=True, text=True, cwd=m.REPO, env={"PYTHONPATH": str(m.REPO / "operator"),
                                                        "PATH": "/usr/bin:/bin"})
    assert table.returncode == 0, table.stderr
    assert "gz-regional" in table.stdout and "bj-regional" not in table.stdout
    lines = list(csv.DictReader(io.StringIO(report(testbed, prometheus, "-o", "csv", "--group-by", "region"))))
    assert list(lines[0]) == list(COLUMNS) and lines[-1]["level"] == "network"
    assert {"CN-GZ", "CN-BJ"} <= {r["key"] for r in lines}
    # Without Prometheus: the ledger's figures, and a note saying what needs it.
    out = subprocess.run(
        [sys.executable, "-m", "interconnect", "report", "-o", "json", "--kubeconfig", str(testbed.hub.kubeconfig),
         "--context", testbed.hub.context],
        capture_output=True, text=True, cwd=m.REPO, env={"PYTHONPATH": str(m.REPO / "operator"),
                                                        "PATH": "/usr/bin:/bin"}, check=True)
    alone = json.loads(out.stdout)
    assert alone["missing"] and rows(alone)["gz-regional"]["utilisation"] is None
    assert rows(alone)["gz-regional"]["soldCardHours"] == a["gz-regional"]["soldCardHours"]
    # A Prometheus that does not answer: one line naming it, exit 4.
    dead = subprocess.run(
        [sys.executable, "-m", "interconnect", "report", "--kubeconfig", str(testbed.hub.kubeconfig),
         "--context", testbed.hub.context, "--prometheus", f"http://127.0.0.1:{m.free_port()}"],
        capture_output=True, text=True, cwd=m.REPO, env={"PYTHONPATH": str(m.REPO / "operator"),
                                                        "PATH": "/usr/bin:/bin"})
    assert dead.returncode == 4 and dead.stderr.startswith("error: cannot query Prometheus at http://127.0.0.1:")
    assert len(dead.stderr.strip().splitlines()) == 1


