"""kubectl compute against the live hub: quotes predict the operator, explain says what fixes a wait."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests import testbed as tb
from tests.e2e import market as m
from tests.e2e.test_dispatch import TABLE, table_job, wait_phase

pytestmark = pytest.mark.e2e


def compute(bed: tb.Testbed, *args: str, context: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "interconnect.cli.plugin", *args, "--kubeconfig",
                           str(bed.hub.kubeconfig), "--context", context or bed.hub.context],
                          capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(m.REPO / "operator")))


def test_quote_predicts_the_operators_choice_and_prices_it(
    testbed: tb.Testbed, operator: m.Operator, tmp_path: Path
) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    for name, spec, node, offer in TABLE:
        manifest = table_job(name, ns, spec)
        path = tmp_path / f"{name}.yaml"
        path.write_text(yaml.safe_dump(manifest))
        quoted = compute(testbed, "quote", "-f", str(path), "--hours", "2", "-o", "json")
        assert quoted.returncode == 0, quoted.stderr
        data = json.loads(quoted.stdout)
        chosen = [c for c in data["candidates"] if c["chosen"]]
        assert [(c["node"], c["offer"]) for c in chosen] == [(node, offer)], name
        cards = spec["gpus"] * spec.get("replicas", 1)
        _, _, _, _, amount, unit, per_machine = m.OFFERS[offer]
        billed = -(-cards // per_machine) if unit == "machine-hour" and per_machine else cards
        assert Decimal(chosen[0]["estimate"]) == Decimal(amount) * billed * 2, name
        m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", manifest)
        job = wait_phase(hub, ns, name, {"Succeeded", "Failed"}, timeout=90)
        assert (job["status"]["placement"]["node"], job["status"]["placement"]["offer"]) == (node, offer)


def test_explain_names_a_price_cap_that_then_places_the_job(testbed: tb.Testbed, operator: m.Operator) -> None:
    hub = testbed.api("hub")
    ns = m.tenant(hub)
    manifest = m.job_manifest("waiting", ns, origin="CN-SH", tier="1ms", gpus=1, max_price="3", run_for="1s")
    m.custom(hub).create_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", manifest)
    m.wait_for(lambda: (m.get_job(hub, ns, "waiting").get("status") or {}).get("unschedulable"), 30,
               "the job to be explained as unschedulable")
    explained = compute(testbed, "explain", "cjob", "waiting", "-n", ns)
    assert explained.returncode == 0, explained.stderr
    line = next(x for x in explained.stdout.splitlines() if x.strip().startswith("maxPrice"))
    cap = line.split()[1]
    patch: dict[str, Any] = {"spec": {"maxPrice": {"amount": cap, "currency": "CNY"}}}
    m.custom(hub).patch_namespaced_custom_object(m.GROUP, m.VERSION, ns, "computejobs", "waiting", patch)
    job = wait_phase(hub, ns, "waiting", {"Succeeded"}, timeout=60)
    assert job["status"]["placement"]["offer"] == "sh-h800"


def test_topology_and_errors(testbed: tb.Testbed, operator: m.Operator, tmp_path: Path) -> None:
    topology = compute(testbed, "topology")
    assert topology.returncode == 0, topology.stderr
    for name in m.NODES:
        assert name in topology.stdout
    assert "└─ sh-finance (finance)" in topology.stdout  # an industry node under its regional parent
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump(m.job_manifest("bad", "default", origin="CN-SH", tier="1ms", gpus=1,
                                                 max_price="3", backoffLimit=500)))
    rejected = compute(testbed, "quote", "-f", str(bad))
    assert rejected.returncode == 2 and "Traceback" not in rejected.stderr
    assert "backoffLimit" in rejected.stderr or "backoff_limit" in rejected.stderr
    unknown = compute(testbed, "topology", context="no-such-context")
    assert unknown.returncode == 2 and "no-such-context" in unknown.stderr
