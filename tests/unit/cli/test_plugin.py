"""kubectl compute renders stable, narrow tables and clear errors (golden files under golden/)."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from interconnect.api.v1alpha1 import ComputeJob, ComputeNode, ComputeOffer
from interconnect.cli.plugin import (
    WIDTH,
    Market,
    build_parser,
    fit_hint_text,
    quote_lines,
    render_explain,
    render_quote,
    render_topology,
    snapshot,
)
from interconnect.core.credit_code import make_credit_code
from interconnect.core.latency import LatencyTable
from interconnect.core.placement import place
from interconnect.services.translate import job_request

GOLDEN = Path(__file__).parent / "golden"
NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
CODE = make_credit_code("91520100MA6DJ7H8X")


def node(name: str, region: str, code: str, industry: str | None = None, parent: str | None = None) -> ComputeNode:
    spec: dict[str, Any] = {
        "type": "industry" if industry else "regional", "region": region,
        "operatingEntity": {"name": "x", "creditCode": CODE, "telecomLicence": "B1", "registeredCapital": "60000000"},
        "connection": {"secretRef": {"name": "s", "namespace": "ns"}, "namespace": "jobs"},
    }
    if industry:
        spec.update(industry=industry, parentNode=parent)
    ok = {"status": "True", "reason": "Ok", "lastTransitionTime": "2026-11-23T00:00:00Z"}
    return ComputeNode.model_validate({
        "metadata": {"name": name}, "spec": spec,
        "status": {"identityCode": code, "conditions": [{"type": "Registered", **ok}, {"type": "Ready", **ok}]}})


def offer(name: str, node_ref: str, model: str, memory: int, cards: int, free: int, amount: str,
          unit: str = "card-hour", per_machine: int | None = None) -> ComputeOffer:
    price: dict[str, Any] = {"amount": amount, "currency": "CNY", "unit": unit}
    if per_machine:
        price["cardsPerMachine"] = per_machine
    return ComputeOffer.model_validate({
        "metadata": {"name": name},
        "spec": {"nodeRef": node_ref, "gpuModel": model, "gpuMemoryGiB": memory, "cards": cards, "price": price},
        "status": {"cardsTotal": cards, "cardsFree": free}})


MARKET = Market(
    nodes=[node("gz-regional", "CN-GZ", "CIRGZ000001E"), node("bj-regional", "CN-BJ", "CIRBJ000002V"),
           node("sh-finance", "CN-SH", "CIISH000003M", "finance", "bj-regional")],
    offers=[offer("gz-a100", "gz-regional", "NVIDIA-A100-SXM4-80GB", 80, 24, 20, "8.00"),
            offer("bj-h20", "bj-regional", "NVIDIA-H20", 96, 16, 16, "15.00"),
            offer("bj-l40s", "bj-regional", "NVIDIA-L40S", 45, 8, 8, "6.00"),
            offer("sh-a100", "sh-finance", "NVIDIA-A100-SXM4-80GB", 80, 8, 8, "80.00", "machine-hour", 8),
            offer("sh-h800", "sh-finance", "NVIDIA-H800", 80, 16, 15, "28.00")],
    jobs=[{"metadata": {"name": "j", "namespace": "t"},
           "status": {"phase": "Running", "placement": {"node": "gz-regional"}}}],
    latency=LatencyTable.default(),
)


def job(**spec: Any) -> ComputeJob:
    base = {"gpus": {"count": 2}, "origin": "CN-SH", "latencyTier": "20ms", "maxPrice": {"amount": "20", "currency":
            "CNY"}, "template": {"spec": {"containers": [{"name": "t", "image": "x"}]}}}
    base.update(spec)
    return ComputeJob.model_validate({"metadata": {"name": "q", "namespace": "t", "uid": "u",
                                                   "creationTimestamp": "2026-11-23T11:00:00Z"}, "spec": base})


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    assert path.read_text(encoding="utf-8") == text + "\n", f"{name} changed:\n{text}"
    assert max(len(line) for line in text.splitlines()) <= WIDTH


def test_quote_table_is_stable_and_prices_whole_machines() -> None:
    request = job_request(job(expectedHours="10"))
    decision = place(request, snapshot(MARKET, NOW))
    lines = quote_lines(request, MARKET, decision, Decimal(10))
    golden("quote.txt", render_quote(lines, decision))
    by_offer = {q.offer: q for q in lines}
    assert by_offer["bj-l40s"].chosen
    assert by_offer["bj-l40s"].estimate == "120.00"  # 6.00 x 2 cards x 10 h
    assert by_offer["sh-a100"].price == "40.00"  # one 8-card machine at 80.00 shared by 2 cards


def test_explain_pending_job_names_what_would_place_it() -> None:
    pending = job(origin="CN-SH", latencyTier="1ms", maxPrice={"amount": "3", "currency": "CNY"})
    request = job_request(pending)
    hint = fit_hint_text(request, snapshot(MARKET, NOW))
    raw = {"metadata": {"name": "q", "namespace": "t"}, "spec": {"origin": "CN-SH"},
           "status": {"phase": "Pending", "unschedulable": {"summary": "0/5 offers fit: ...", "candidates": []}}}
    golden("explain-pending.txt", render_explain(raw, hint))
    assert "maxPrice 28.0000 CNY" in hint or "maxPrice 28.00 CNY" in hint


def test_topology_tree() -> None:
    golden("topology.txt", render_topology(MARKET))


@pytest.mark.parametrize("command", ["quote", "explain", "topology", "usage", "join", "leave", "completion"])
def test_every_command_has_help(command: str) -> None:
    parser = build_parser()
    with pytest.raises(SystemExit) as exit_info:
        parser.parse_args([command, "--help"])
    assert exit_info.value.code == 0


def test_errors_are_one_clear_line_without_a_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "job.yaml"
    bad.write_text("apiVersion: interconnect.dev/v1alpha1\nkind: ComputeJob\nmetadata: {name: q}\n"
                   "spec: {gpus: {count: 0}, origin: CN-XX, latencyTier: 2ms}\n")
    run = subprocess.run([sys.executable, "-m", "interconnect.cli.plugin", "quote", "-f", str(bad)],
                         capture_output=True, text=True, env={"PYTHONPATH": str(Path(__file__).parents[3] / "operator"),
                                                              "KUBECONFIG": str(tmp_path / "none")})
    assert run.returncode == 2
    assert "Traceback" not in run.stderr
    assert run.stderr.startswith("error:") and "gpus.count" in run.stderr and "origin" in run.stderr
