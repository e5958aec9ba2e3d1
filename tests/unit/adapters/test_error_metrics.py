"""Errors are counted per loop and unreadable objects per watch, and the operator-health panels that
show them have data when nothing failed (every series exists at 0), as a fresh operator exports."""

from __future__ import annotations

import re
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes_asyncio import client as k8s

from interconnect.adapters.hub import Hub
from interconnect.adapters.informer import Change, Informer
from interconnect.adapters.member import project_gpu_pod
from interconnect.adapters.metrics import LOOPS, Metrics
from interconnect.core.capacity import MemberPod
from interconnect.core.latency import LatencyTable
from interconnect.generate import dashboards
from interconnect.services.config import Settings
from interconnect.services.controller import Controller
from tests.unit.generate.test_alerts import promtool

ROOT = Path(__file__).resolve().parents[3]
SETTINGS = Settings(namespace="ops", latency_config_map="x", identity_config_map="y", heartbeat_interval=5,
                    not_ready_after=30, re_place_after=120, metering_interval=15, member_sync_timeout=30,
                    metrics_port=0)


@pytest.fixture
async def controller() -> AsyncIterator[Controller]:
    ctl = Controller(Hub(k8s.ApiClient(k8s.Configuration())), SETTINGS, LatencyTable.default(), Metrics())
    yield ctl
    await ctl.hub.close()


def samples(metrics: Metrics, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {tuple(sorted(s.labels.items())): s.value for family in metrics.registry.collect()
            for s in family.samples if s.name == name}


def test_every_loop_has_an_error_series_at_zero_from_the_start() -> None:
    assert samples(Metrics(), "interconnect_reconcile_errors_total") == {(("loop", loop),): 0.0 for loop in LOOPS}


def test_every_loop_that_counts_errors_is_one_of_the_loops() -> None:
    """A loop missing from LOOPS would have no series until its first error, which increase() misses."""
    used = {m.group(1) for path in (ROOT / "operator" / "interconnect").rglob("*.py")
            for m in re.finditer(r'reconcile_errors\.labels\(loop="([\w-]+)"\)', path.read_text(encoding="utf-8"))}
    assert used, "no loop counts its errors any more?"
    assert used - set(LOOPS) == set(), "add them to adapters/metrics.py LOOPS"


def gpu_pod(uid: str, gpus: str) -> dict[str, Any]:
    return {"metadata": {"name": f"pod-{uid}", "uid": uid, "resourceVersion": "1"},
            "spec": {"nodeName": "n1",
                     "containers": [{"name": "c", "resources": {"limits": {"nvidia.com/gpu": gpus}}}]},
            "status": {"phase": "Running"}}


def pods_informer(cluster: str, changes: list[Change[MemberPod]]) -> Informer[MemberPod]:
    async def lister(**_: Any) -> Any:
        raise AssertionError("not listed here")

    return Informer(f"{cluster}/gpu-pods", lister, project_gpu_pod, changes.append)


async def test_an_unreadable_object_is_skipped_counted_and_exported(controller: Controller) -> None:
    changes: list[Change[MemberPod]] = []
    pods, nodes = pods_informer("member-1", changes), pods_informer("member-1", [])
    nodes.name = "member-1/nodes"
    pods._apply({"type": "ADDED", "object": gpu_pod("a", "1k")})  # a quantity: 1,000 cards
    pods._apply({"type": "ADDED", "object": gpu_pod("b", "many")})  # not one: skipped, the watch goes on
    pods._apply({"type": "ADDED", "object": gpu_pod("c", "2")})
    assert sorted((k, v.gpus) for k, v in pods.items.items()) == [("a", 1000), ("c", 2)]
    assert [c.key for c in changes] == ["a", "c"] and pods.unreadable == 1

    reporter, metrics = controller.reporter, controller.metrics
    reporter.count_unreadable([pods, nodes])
    reporter.count_unreadable([pods, nodes])  # counted once
    exported = samples(metrics, "interconnect_unreadable_objects_total")
    assert exported == {(("cluster", "member-1"), ("kind", "gpu-pods")): 1.0,
                        (("cluster", "member-1"), ("kind", "nodes")): 0.0}  # a clean watch has its 0
    pods._apply({"type": "MODIFIED", "object": gpu_pod("c", "two")})  # a readable object turns unreadable
    assert "c" not in pods.items and (changes[-1].key, changes[-1].new) == ("c", None)
    # The member reconnects: new watches count from 0 again, the counter goes on from where it was.
    again = pods_informer("member-1", [])
    again._apply({"type": "ADDED", "object": gpu_pod("d", "x")})
    reporter.count_unreadable([pods, again])
    assert samples(metrics, "interconnect_unreadable_objects_total")[
        (("cluster", "member-1"), ("kind", "gpu-pods"))] == 3.0
    reporter.hub_informers = [pods_informer("hub", [])]
    reporter.hub_informers[0].name = "hub/computejobs"
    reporter.refresh_gauges()
    assert samples(metrics, "interconnect_unreadable_objects_total")[(("cluster", "hub"), ("kind", "computejobs"))] == 0


# ------------------------------------------------------------------ the panels, evaluated by promtool

ERROR_METRICS = ("interconnect_reconcile_errors_total", "interconnect_unreadable_objects_total")


def health_error_queries() -> list[tuple[str, str]]:
    return [(title, expr) for title, expr in dashboards.all_queries()
            if title.startswith("Operator health /") and any(m in expr for m in ERROR_METRICS)]


def expected_groups(expr: str, series: list[dict[str, str]]) -> list[dict[str, str]]:
    """The label sets a `sum by (...)` (or a plain `sum`) of the panel's series yields."""
    metric = next(m for m in ERROR_METRICS if m in expr)
    matcher = re.search(rf"{metric}\{{([^}}]*)\}}", expr)
    wanted = [s for s in series if s["__name__"] == metric]
    for name, op, value in re.findall(r'(\w+)\s*(=~|=)\s*"([^"]*)"', matcher.group(1) if matcher else ""):
        wanted = [s for s in wanted if (re.fullmatch(value, s.get(name, "")) if op == "=~" else s.get(name) == value)]
    by = re.search(r"sum by \(([^)]*)\)", expr)
    keys = [k.strip() for k in by.group(1).split(",")] if by else []
    groups = {tuple((k, s[k]) for k in keys) for s in wanted}
    return [dict(g) for g in sorted(groups)]


def test_the_error_panels_show_zeros_when_nothing_failed(tmp_path: Path) -> None:
    """Against what a fresh operator exports (every loop's counter, every watch's counter, at 0 for
    an hour), each error panel of the operator-health dashboard has data: a 0 per loop or watch."""
    metrics = Metrics()
    for kind in ("nodes", "gpu-pods", "pods", "jobs"):
        metrics.unreadable_objects.labels(cluster="member-1", kind=kind)
    metrics.unreadable_objects.labels(cluster="hub", kind="computejobs")
    series = [{"__name__": s.name, **s.labels} for family in metrics.registry.collect() for s in family.samples
              if s.name in ERROR_METRICS]
    queries = health_error_queries()
    assert {title for title, _ in queries} >= {
        "Operator health / Reconcile errors by loop", "Operator health / Reconcile errors",
        "Operator health / Reconcile errors by loop over the range", "Operator health / Unreadable objects skipped",
        "Operator health / Unreadable objects"}

    def text(labels: dict[str, str]) -> str:
        name = labels.get("__name__", "")
        rest = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
        return f"{name}{{{rest}}}"

    tests = []
    for title, expr in queries:
        groups = expected_groups(expr, series)
        assert groups, f"{title}: no series to show"
        tests.append({"expr": expr, "eval_time": "70m", "exp_samples": [{"labels": text(g), "value": 0}
                                                                        for g in groups]})
    suite = {"rule_files": [], "evaluation_interval": "1m", "tests": [{
        "interval": "15s", "input_series": [{"series": text(s), "values": "0+0x300"} for s in series],
        "promql_expr_test": tests}]}
    path = tmp_path / "panels.tests.yaml"
    path.write_text(yaml.safe_dump(suite), encoding="utf-8")
    result = subprocess.run([promtool(), "test", "rules", path.name], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
