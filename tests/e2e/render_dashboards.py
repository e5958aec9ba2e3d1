"""Pictures of the dashboards from the real test bed: not a test of `make test` (the file name
does not start with test_, so pytest collects it only when named), a tool that uses the e2e
fixtures (test bed, operator, Prometheus) to produce data worth drawing:

    .venv/bin/pytest tests/e2e/render_dashboards.py -q -s      # writes build/dashboards/*.png

docs/dashboards/interconnect-network-report.png was drawn so.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from typing import Any

from tests import testbed as tb
from tests.e2e import market as m
from tests.e2e.conftest import Prometheus
from tests.e2e.test_report import ready


def test_render_the_network_report_dashboard(testbed: tb.Testbed, operator: m.Operator,
                                             prometheus: Prometheus) -> None:
    """INTERCONNECT_RENDER_DASHBOARDS=<dir> (default build/dashboards): a few minutes of jobs on every node (one
    failing, member-3 stopped for 40 s), then hack/render-dashboards draws every dashboard from this
    Prometheus into <dir>; docs/dashboards/interconnect-network-report.png was drawn so. (A pod
    fits one machine: the test bed's L40S machines have 4 cards, the others 8.)"""
    import os
    from pathlib import Path

    out = os.environ.get("INTERCONNECT_RENDER_DASHBOARDS") or str(m.REPO / "build" / "dashboards")
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    # Energy facts, as the demo's members declare them (restored afterwards).
    month = dt.datetime.now(dt.UTC).strftime("%Y-%m")
    facts = {"gz-regional": ("1.35", "0.3"), "bj-regional": ("1.2", "0.6"), "sh-finance": ("1.25", "0.15")}
    for node, (pue, green) in facts.items():
        m.custom(hub).patch_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", node, {"spec": {"energy": {
            "pue": pue, "greenShares": [{"month": month, "fraction": green, "source": "e2e declaration"}]}}})
    try:
        run_waves(testbed, ns)
        # Rates over a minute ($__rate_interval for a 15 s scrape): the counters grow in steps of the
        # operator's passes (2 s), which a 4 s window would show as spikes.
        started = time.time()
        drawn = subprocess.run([str(m.REPO / "hack" / "render-dashboards"), prometheus.url, "--range", "6m",
                                "--scrape-interval", "15s", "--out", str(Path(out))], cwd=m.REPO,
                               capture_output=True, text=True)
        assert drawn.returncode == 0, f"Prometheus refused an expression or drawing failed: {drawn.stderr}"
        # Every generated dashboard drawn, now, from this run's data.
        from interconnect.generate.dashboards import BOARDS

        for board in BOARDS:
            png = Path(out) / board.file.replace(".json", ".png")
            assert png.is_file() and png.stat().st_mtime >= started and png.stat().st_size > 10_000, png
        # The picture shows what ran: the wave's jobs ended as planned (one of them failing).
        phases = {j["metadata"]["name"]: j["status"]["phase"] for j in
                  m.custom(hub).list_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs")["items"]}
        assert phases.pop("w2-fail") == "Failed" and set(phases.values()) == {"Succeeded"}, phases
    finally:
        for node in facts:
            m.custom(hub).patch_cluster_custom_object(m.GROUP, m.VERSION, "computenodes", node,
                                                      {"spec": {"energy": None}})


def run_waves(testbed: tb.Testbed, ns: str) -> None:
    import os

    hub = testbed.api("hub")
    waves: list[dict[str, tuple[dict[str, Any], str]]] = [
        {"w1-gz": (dict(origin="CN-GZ", tier="1ms", gpus=8, max_price="10", run_for="90s"), "gz-a100"),
         "w1-bj": (dict(origin="CN-BJ", tier="1ms", gpus=4, max_price="10", run_for="60s"), "bj-l40s")},
        {"w2-sh": (dict(origin="CN-SH", tier="1ms", gpus=8, max_price="30", run_for="80s"), "sh-a100"),
         "w2-gz": (dict(origin="CN-GZ", tier="1ms", gpus=4, replicas=2, max_price="10", run_for="60s"), "gz-a100"),
         "w2-fail": (dict(origin="CN-GZ", tier="1ms", gpus=2, max_price="10", run_for="20s", outcome="fail",
                          backoffLimit=0), "gz-a100")},
        {"w3-bj": (dict(origin="CN-BJ", tier="1ms", gpus=4, replicas=2, max_price="20", run_for="50s"), "bj-l40s"),
         "w3-gz": (dict(origin="CN-GZ", tier="1ms", gpus=4, replicas=3, max_price="10", run_for="70s"), "gz-a100")},
    ]
    for wave in waves:
        for name, (spec, _) in wave.items():
            m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs",
                                                          m.job_manifest(name, ns, **spec))
        time.sleep(45)
    for wave in waves:
        for name in wave:
            m.wait_phase(testbed, ns, name, {"Succeeded", "Failed"}, 300)
    if not os.environ.get("INTERCONNECT_KUBECONFIG_DIR"):
        tb.kwokctl(testbed, "stop", "cluster", "--name", "member-3")
        try:
            time.sleep(40)
        finally:
            tb.kwokctl(testbed, "start", "cluster", "--name", "member-3")
        m.wait_for(lambda: ready(testbed, "bj-regional"), 120, "bj-regional Ready again")
    time.sleep(20)
