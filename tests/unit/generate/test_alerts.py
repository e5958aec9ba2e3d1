"""Alert rules as code: the committed rules are generated, valid, unit-tested alert by alert with
promtool, documented in the runbook, and shipped by the hub chart as the same PrometheusRule."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from interconnect.adapters.metrics import Metrics
from interconnect.generate import alerts

ROOT = Path(__file__).resolve().parents[3]
RULES = ROOT / "deploy" / "alerts" / "interconnect.rules.yaml"
TESTS = ROOT / "deploy" / "alerts" / "interconnect.tests.yaml"
CHART = ROOT / "charts" / "interconnect-hub"
RUNBOOK = ROOT / "docs" / "runbook.md"
EXPECTED = {
    "InterconnectMemberNotReady", "InterconnectHeartbeatStale", "InterconnectJobsUnschedulable",
    "InterconnectDispatchLatencyHigh", "InterconnectOfferSoldOut", "InterconnectMeteringStalled",
    "InterconnectOperatorDown",
}


def promtool() -> str:
    path = shutil.which("promtool")
    # Not a skip: hack/ensure-deps installs Debian's prometheus package, which has promtool.
    assert path, "promtool is missing: run hack/ensure-deps (Debian package prometheus)"
    return path


def rules() -> list[dict[str, Any]]:
    [group] = alerts.rule_groups()["groups"]
    return list(group["rules"])


def exported_series() -> set[str]:
    """Every series name the operator's exporter can produce (with prometheus_client's suffixes)."""
    names: set[str] = set()
    for family in Metrics().registry.collect():
        if family.type == "counter":
            names.add(f"{family.name}_total")
        elif family.type == "histogram":
            names.update(f"{family.name}{s}" for s in ("_bucket", "_sum", "_count"))
        else:
            names.add(family.name)
    return names


def github_anchors(markdown: str) -> set[str]:
    anchors = set()
    for line in markdown.splitlines():
        m = re.match(r"^#{1,6}\s+(.*)$", line)
        if m:
            text = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower())
            anchors.add(text.replace(" ", "-"))
    return anchors


def test_committed_rules_are_generated() -> None:
    [(name, text)] = alerts.render_alerts().items()
    assert name == RULES.name
    for path in (RULES, CHART / "alerts" / name):
        assert path.read_text(encoding="utf-8") == text, f"{path} is stale: run `python -m interconnect alerts`"


def test_check_mode_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    args = ["--output-dir", str(a), "--output-dir", str(b)]
    assert alerts.main(args) == 0
    assert alerts.main(["--check", *args]) == 0
    target = b / alerts.RULES_FILE
    target.write_text(target.read_text(encoding="utf-8").replace("for: 30m", "for: 31m", 1), encoding="utf-8")
    capsys.readouterr()
    assert alerts.main(["--check", *args]) == 1
    out = capsys.readouterr().out
    assert "-    for: 31m" in out and "+    for: 30m" in out
    assert alerts.main(args) == 0
    assert alerts.main(["--check", *args]) == 0


def test_rendering_is_deterministic_and_the_file_is_plain_prometheus() -> None:
    assert alerts.render_alerts() == alerts.render_alerts()
    assert yaml.safe_load(RULES.read_text(encoding="utf-8")) == alerts.rule_groups()


def test_every_expected_alert_with_severity_annotations_and_runbook() -> None:
    anchors = github_anchors(RUNBOOK.read_text(encoding="utf-8"))
    assert {r["alert"] for r in rules()} == EXPECTED
    for rule in rules():
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
        path, anchor = rule["annotations"]["runbook_url"].split("#")
        assert path == "docs/runbook.md"
        assert anchor in anchors, f"{rule['alert']}: docs/runbook.md has no section #{anchor}"
        assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_rules_use_only_metrics_the_operator_exports() -> None:
    exported = exported_series()
    for rule in rules():
        for name in re.findall(r"\binterconnect_\w+", rule["expr"]):
            assert name in exported, f"{rule['alert']}: {name} is not exported by adapters/metrics.py"


def test_promtool_check_rules() -> None:
    result = subprocess.run([promtool(), "check", "rules", str(RULES)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(EXPECTED)} rules found" in result.stdout


def test_promtool_unit_tests_pass() -> None:
    result = subprocess.run([promtool(), "test", "rules", str(TESTS)], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    suite = yaml.safe_load(TESTS.read_text(encoding="utf-8"))
    assert suite["rule_files"] == [RULES.name]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in suite["tests"]:
        for check in case["alert_rule_test"]:
            if check.get("exp_alerts"):
                firing.add(check["alertname"])
                for expected in check["exp_alerts"]:
                    # promtool compares annotations exactly: every firing case spells them out.
                    assert set(expected["exp_annotations"]) == {"summary", "description", "runbook_url"}
            else:
                quiet.add(check["alertname"])
    assert firing == EXPECTED, f"no firing case for {EXPECTED - firing}"
    assert quiet == EXPECTED, f"no quiet case for {EXPECTED - quiet}"


def test_the_unit_tests_catch_a_broken_rule(tmp_path: Path) -> None:
    """Mutation check: raising one threshold makes the suite fail."""
    broken = RULES.read_text(encoding="utf-8").replace("interconnect_member_heartbeat_age_seconds) > 60",
                                                       "interconnect_member_heartbeat_age_seconds) > 600")
    assert broken != RULES.read_text(encoding="utf-8")
    (tmp_path / RULES.name).write_text(broken, encoding="utf-8")
    shutil.copy(TESTS, tmp_path / TESTS.name)
    result = subprocess.run([promtool(), "test", "rules", TESTS.name], capture_output=True, text=True, cwd=tmp_path)
    assert result.returncode != 0
    assert "InterconnectHeartbeatStale" in result.stdout + result.stderr


# ------------------------------------------------------------------------------------------ chart

def helm() -> str:
    """The test bed's helm when hack/build-binaries has built it (it does not build here)."""
    found = subprocess.run([ROOT / "hack" / "build-binaries", "--print"], capture_output=True, text=True)
    path = Path(found.stdout.strip()) / "helm" if found.returncode == 0 else None
    if path is None or not path.is_file():
        pytest.skip("helm is not built yet (hack/build-binaries)")
    return str(path)


def render_chart(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run([helm(), "template", "x", str(CHART), "-n", "ic", "--kube-version", "1.36.3", *args],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def prometheus_rules(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == "PrometheusRule"]


def test_chart_prometheusrule_holds_the_same_rules() -> None:
    with_api = ["--api-versions", "monitoring.coreos.com/v1"]
    [rule] = prometheus_rules(render_chart(*with_api))
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["namespace"] == "ic"
    assert rule["spec"] == alerts.rule_groups()
    assert prometheus_rules(render_chart()) == [], "auto: only where the Prometheus Operator's CRDs exist"
    assert prometheus_rules(render_chart(*with_api, "--set", "metrics.prometheusRule.enabled=false")) == []
    [forced] = prometheus_rules(render_chart("--set", "metrics.prometheusRule.enabled=true"))
    assert forced["spec"] == alerts.rule_groups()
