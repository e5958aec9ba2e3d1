"""The hub chart's operations values, rendered with helm template: the operator's log format, extra
labels for the ServiceMonitor and the PrometheusRule (kube-prometheus-stack selects them by
`release:`), and the runbook's base URL in every alert's runbook_url."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import yaml

from interconnect.generate import alerts
from tests.unit.generate.test_alerts import helm

CHART = Path(__file__).resolve().parents[3] / "charts" / "interconnect-hub"
MONITORING = ("--api-versions", "monitoring.coreos.com/v1")
BASE = "https://git.example.cn/interconnect/compute-interconnect/-/blob/v0.1.0"


def render(*args: str) -> dict[str, dict[str, Any]]:
    out = subprocess.run([helm(), "template", "rel", str(CHART), "-n", "ic", "--kube-version", "1.36.3", *args],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return {d["kind"]: d for d in yaml.safe_load_all(out.stdout) if d and d["kind"] != "CustomResourceDefinition"}


def refused(*args: str) -> str:
    out = subprocess.run([helm(), "template", "rel", str(CHART), "--kube-version", "1.36.3", *args],
                         capture_output=True, text=True)
    assert out.returncode != 0, f"accepted: {args}"
    return out.stderr


def operator_args(*args: str) -> list[str]:
    [container] = render(*args)["Deployment"]["spec"]["template"]["spec"]["containers"]
    return list(container["args"])


def test_log_format_reaches_the_operator() -> None:
    default = operator_args()
    assert default[default.index("--log-format") + 1] == "text"
    as_json = operator_args("--set", "logging.format=json")
    assert as_json[as_json.index("--log-format") + 1] == "json"
    assert as_json[0] == "run" and "--priority" not in as_json
    assert "/logging/format" in refused("--set", "logging.format=xml")


def test_service_monitor_and_prometheus_rule_take_extra_labels() -> None:
    docs = render(*MONITORING, "--set", "metrics.serviceMonitor.labels.release=kube-prometheus-stack",
                  "--set", "metrics.prometheusRule.labels.release=kps", "--set",
                  "metrics.prometheusRule.labels.team=gpu")
    monitor, rule = docs["ServiceMonitor"]["metadata"]["labels"], docs["PrometheusRule"]["metadata"]["labels"]
    assert monitor["release"] == "kube-prometheus-stack" and "team" not in monitor
    assert rule["release"] == "kps" and rule["team"] == "gpu"
    for labels in (monitor, rule):
        assert labels["app.kubernetes.io/name"] == "interconnect-hub"
        assert labels["app.kubernetes.io/instance"] == "rel"
    plain = render(*MONITORING)
    assert "release" not in plain["ServiceMonitor"]["metadata"]["labels"]
    assert "release" not in plain["PrometheusRule"]["metadata"]["labels"]
    # The chart's own labels win a clash: the ServiceMonitor's selector still finds the Service.
    clash = render(*MONITORING, "--set", "metrics.serviceMonitor.labels.app\\.kubernetes\\.io/name=other")
    assert clash["ServiceMonitor"]["metadata"]["labels"]["app.kubernetes.io/name"] == "interconnect-hub"
    assert "/metrics/serviceMonitor/labels/release" in refused(
        "--set-json", 'metrics.serviceMonitor.labels={"release": 1}')
    # (helm names a wrong path for a bad key, as for latencyOverrides' keys; the key is right)
    assert "invalid propertyName 'bad key!'" in refused("--set-json", 'metrics.prometheusRule.labels={"bad key!": "x"}')


def test_runbook_base_url_makes_every_runbook_url_absolute() -> None:
    expected = copy.deepcopy(alerts.rule_groups())
    for rule in expected["groups"][0]["rules"]:
        rule["annotations"]["runbook_url"] = f"{BASE}/docs/runbook.md#{rule['alert'].lower()}"
    for base in (BASE, BASE + "/"):
        spec = render(*MONITORING, "--set", f"metrics.prometheusRule.runbookBaseURL={base}")["PrometheusRule"]["spec"]
        assert spec == expected, "only runbook_url changes"
    # Without it, the rules are the generated file's, runbook_url relative to the repository.
    assert render(*MONITORING)["PrometheusRule"]["spec"] == alerts.rule_groups()
    for bad in ("git.example.cn/runbook", "https://x/runbook.md#anchor", "https://x/a b"):
        wrong = refused("--set", f"metrics.prometheusRule.runbookBaseURL={bad}")
        assert "/metrics/prometheusRule/runbookBaseURL" in wrong, wrong


def test_the_operators_requests_get_their_own_flow_above_the_tenants() -> None:
    schema = render()["FlowSchema"]
    assert schema["metadata"]["name"] == "interconnect-operator-ic"
    assert schema["spec"]["priorityLevelConfiguration"] == {"name": "workload-high"}
    assert schema["spec"]["matchingPrecedence"] < 9000, "before the built-in service-accounts schema"
    [rule] = schema["spec"]["rules"]
    assert rule["subjects"] == [{"kind": "ServiceAccount",
                                 "serviceAccount": {"name": "interconnect-hub", "namespace": "ic"}}]
    assert "FlowSchema" not in render("--set", "flowControl.enabled=false")
    assert "flowControl" in refused("--set", "flowControl.matchingPrecedence=0")
