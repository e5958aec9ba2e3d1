"""Dashboards as code: the committed JSON is generated, every panel has a unit and the datasource
variable, every expression parses (promtool) and uses metrics the operator exports, and the hub
chart ships each dashboard as a ConfigMap for the Grafana sidecar."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from interconnect.generate import dashboards
from tests.unit.generate.test_alerts import exported_series, helm, promtool

ROOT = Path(__file__).resolve().parents[3]
DIRS = [ROOT / "deploy" / "dashboards", ROOT / "charts" / "interconnect-hub" / "dashboards"]
CHART = ROOT / "charts" / "interconnect-hub"
RENDERED = dashboards.render_dashboards()
OBJECTS = {name: json.loads(text) for name, text in RENDERED.items()}
PANELS = [(name, p) for name, obj in OBJECTS.items() for p in dashboards.panels(obj)]
IDS = [f"{name.removesuffix('.json')}/{p['title']}" for name, p in PANELS]


def test_four_dashboards() -> None:
    assert sorted(OBJECTS) == ["interconnect-metering.json", "interconnect-network-report.json",
                               "interconnect-operator-health.json", "interconnect-overview.json"]
    assert len({o["uid"] for o in OBJECTS.values()}) == 4
    assert {name.removesuffix(".json") for name in OBJECTS} == {o["uid"] for o in OBJECTS.values()}
    for obj in OBJECTS.values():
        assert "interconnect" in obj["tags"]
        assert obj["schemaVersion"] >= 39


def test_committed_json_is_generated() -> None:
    for directory in DIRS:
        committed = sorted(p.name for p in directory.glob("*.json"))
        assert committed == sorted(RENDERED), f"{directory}: run `python -m interconnect dashboards`"
        for name, text in RENDERED.items():
            assert (directory / name).read_text(encoding="utf-8") == text, (
                f"{directory / name} is stale: run `python -m interconnect dashboards`")


def test_rendering_is_deterministic_with_sorted_keys() -> None:
    assert dashboards.render_dashboards() == RENDERED
    for text in RENDERED.values():
        assert text == json.dumps(json.loads(text), sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def test_check_mode_reports_drift_and_stale_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    args = ["--output-dir", str(a), "--output-dir", str(b)]
    assert dashboards.main(args) == 0
    assert dashboards.main(["--check", *args]) == 0
    target = b / "interconnect-overview.json"
    target.write_text(target.read_text(encoding="utf-8").replace('"unit": "s"', '"unit": "ms"', 1),
                      encoding="utf-8")
    (a / "interconnect-old.json").write_text("{}\n", encoding="utf-8")
    capsys.readouterr()
    assert dashboards.main(["--check", *args]) == 1
    out = capsys.readouterr().out
    assert '-          "unit": "ms"' in out and '+          "unit": "s"' in out
    assert "interconnect-old.json: not generated" in out
    assert dashboards.main(args) == 0
    assert not (a / "interconnect-old.json").exists()
    assert dashboards.main(["--check", *args]) == 0


def test_template_variables() -> None:
    for name, obj in OBJECTS.items():
        variables = {v["name"]: v for v in obj["templating"]["list"]}
        expected = {"datasource", "node", "region", "industry"} | ({"tenant"} if "metering" in name else set())
        assert set(variables) == expected, name
        assert variables["datasource"]["type"] == "datasource"
        assert variables["datasource"]["query"] == "prometheus"
        for var in variables.values():
            if var["type"] == "query":
                assert var["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
                assert var["multi"] and var["includeAll"]
                assert var["query"].startswith("label_values(")


@pytest.mark.parametrize(("name", "panel"), PANELS, ids=IDS)
def test_every_panel_has_a_unit_a_description_and_the_datasource_variable(name: str, panel: dict[str, Any]) -> None:
    assert panel["fieldConfig"]["defaults"].get("unit"), "every panel has a unit"
    assert panel.get("description")
    assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
    assert panel["targets"]
    for target in panel["targets"]:
        assert target["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert target["refId"]
    assert panel["gridPos"]["w"] > 0 and panel["gridPos"]["x"] + panel["gridPos"]["w"] <= 24


def test_panel_ids_are_unique_and_the_grid_does_not_overlap() -> None:
    for name, obj in OBJECTS.items():
        ids = [p["id"] for p in obj["panels"]]
        assert len(ids) == len(set(ids)) and 0 not in ids, name
        cells: set[tuple[int, int]] = set()
        for p in obj["panels"]:
            g = p["gridPos"]
            mine = {(x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])}
            assert not cells & mine, f"{name}: {p['title']} overlaps another panel"
            cells |= mine


def units_of(panel: dict[str, Any]) -> set[str]:
    """The panel's unit and those its overrides give some columns."""
    units = {str(panel["fieldConfig"]["defaults"]["unit"])}
    for override in panel["fieldConfig"].get("overrides", []):
        units |= {str(p["value"]) for p in override["properties"] if p["id"] == "unit"}
    return units


# Counters of seconds the network report divides or turns into card-hours: not durations shown.
TIME_WEIGHTS = re.compile(r"interconnect_(offered_card_seconds|node_ready_seconds|node_observed_seconds)_total")


@pytest.mark.parametrize(("name", "panel"), PANELS, ids=IDS)
def test_units_match_what_is_measured(name: str, panel: dict[str, Any]) -> None:
    exprs = " ".join(t["expr"] for t in panel["targets"])
    units = units_of(panel)
    if "_seconds" in TIME_WEIGHTS.sub("", exprs):
        assert "s" in units
    if units == {"percentunit"}:  # a ratio (utilisation, availability, green share) of whatever it divides
        assert " / " in exprs
        return
    if "interconnect_cost_total" in exprs and 'currency="CNY"' in exprs:
        assert "currencyCNY" in units
    if "interconnect_card_hours_total" in exprs and "interconnect_cost_total" not in exprs:
        assert any("card-h" in u for u in units) or (units == {"suffix:cards"} and "* 3600" in exprs)
    if "_bucket" in exprs:
        assert "histogram_quantile" in exprs


def test_required_panels() -> None:
    titles = {name.split("-", 1)[1].removesuffix(".json"): {p["title"] for p in dashboards.panels(obj)}
              for name, obj in OBJECTS.items()}
    assert {"Members", "Nodes by type", "Nodes by region", "Industry nodes by industry", "Ready over time",
            "Heartbeat age", "Cards per node and GPU model", "Jobs by phase", "Placements per minute",
            "Unschedulable jobs", "Top unschedulable reasons"} <= titles["overview"]
    assert {"Card-hours by node (identity code)", "Card-hours by tenant", "Card-hours by region",
            "Card-hours by industry", "Card-hours by GPU model", "Revenue by node (identity code)",
            "Revenue by tenant", "Revenue by region", "Revenue by industry", "Revenue by GPU model",
            "Price per card-hour by offer", "Revenue rate (CNY per hour)"} <= titles["metering"]
    assert {"Utilisation", "Card-hours offered", "Card-hours sold", "Availability", "Green share of the energy",
            "CO2", "Per node over the range", "Cards offered and in use", "Utilisation by node",
            "Utilisation by region", "Availability by node", "Card-hours sold per hour by region",
            "PFLOPS-hours sold per hour by vendor", "Power drawn: green and grid",
            "Declared green share and PUE by node", "CO2 per hour by region"} <= titles["network-report"]
    assert {"Placement time", "Dispatch latency: member Job created", "Dispatch latency: first pod running",
            "Reconcile errors by loop", "Watch restarts by node", "Member API errors by node",
            "Pending queue depth", "Reconcile errors by loop over the range", "Unreadable objects skipped",
            "Unreadable objects", "Dispatch time by stage (p99)"} <= titles["operator-health"]
    health = [p for n, p in PANELS if "health" in n and p["title"].startswith(("Placement time", "Dispatch latency"))]
    for panel in health:
        assert [t["legendFormat"] for t in panel["targets"]] == ["p50", "p95", "p99"]
    [stages] = [p for n, p in PANELS if "health" in n and p["title"] == "Dispatch time by stage (p99)"]
    assert [t["legendFormat"] for t in stages["targets"]] == ["{{stage}}"]


def test_all_queries_cover_every_target_with_variables_substituted() -> None:
    queries = dashboards.all_queries()
    targets = sum(len(p["targets"]) for _, p in PANELS)
    variables = sum(1 for o in OBJECTS.values() for v in o["templating"]["list"] if v["type"] == "query")
    assert len(queries) == targets + variables
    for title, expr in queries:
        assert not re.search(r"\$[{A-Za-z_]", expr), (title, expr)  # `$1`: label_replace's group
        assert " / " in title
    assert any('node=~".*"' in expr for _, expr in queries)
    assert any("[1h]" in expr for _, expr in queries) and any("[1m]" in expr for _, expr in queries)
    custom = dashboards.all_queries(values={"node": "member-1"}, builtins={"__range": "6h"})
    assert any('node=~"member-1"' in expr and "[6h]" in expr for _, expr in custom)


def test_substitute() -> None:
    assert dashboards.substitute('label_replace(x{a=~"$a"}, "b", "$1", "c", "(.*)")') == \
        'label_replace(x{a=~".*"}, "b", "$1", "c", "(.*)")'
    assert dashboards.substitute('x{a=~"$a", b=~"${b}"}[$__rate_interval]', {"b": "v"}) == 'x{a=~".*", b=~"v"}[1m]'
    assert dashboards.substitute("rate(x[$__range])", builtins={"__range": "3600s"}) == "rate(x[3600s])"


def test_every_expression_parses(tmp_path: Path) -> None:
    """promtool parses every expression, as the recording rules of a temporary rules file."""
    queries = dashboards.all_queries()
    rules = {"groups": [{"name": "dashboards", "rules": [
        {"record": f"dashboard:query_{i}", "expr": expr} for i, (_, expr) in enumerate(queries)]}]}
    path = tmp_path / "queries.rules.yaml"
    path.write_text(yaml.safe_dump(rules), encoding="utf-8")
    result = subprocess.run([promtool(), "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(queries)} rules found" in result.stdout


def test_expressions_use_only_metrics_the_operator_exports() -> None:
    exported = exported_series()
    used = {name for _, expr in dashboards.all_queries() for name in re.findall(r"\binterconnect_\w+", expr)}
    assert used - exported == set()
    # Every metric the operator exports appears on some dashboard.
    bases = {re.sub(r"_(bucket|sum|count)$", "", n) for n in exported}
    shown = {re.sub(r"_(bucket|sum|count)$", "", n) for n in used}
    assert bases - shown == set()


def test_the_dashboards_filter_by_their_variables() -> None:
    metering = OBJECTS["interconnect-metering.json"]
    for panel in dashboards.panels(metering):
        for target in panel["targets"]:
            if "card_hours" in target["expr"] or "cost" in target["expr"]:
                for var in ("node", "tenant", "region", "industry"):
                    assert f'{var}=~"${var}"' in target["expr"], (panel["title"], var)
    # The network report: every expression follows the chosen nodes (the metering counters, labelled by
    # identity code, through interconnect_member_ready's node=~"$node"), regions and industries.
    for panel in dashboards.panels(OBJECTS["interconnect-network-report.json"]):
        for target in panel["targets"]:
            assert 'node=~"$node"' in target["expr"], panel["title"]
            if re.search(r"card_hours|cost|energy|co2|pflops|offered|ready_seconds|observed", target["expr"]):
                assert 'region=~"$region", industry=~"$industry"' in target["expr"], panel["title"]
    for name in ("interconnect-overview.json", "interconnect-operator-health.json"):
        for panel in dashboards.panels(OBJECTS[name]):
            for target in panel["targets"]:
                if re.search(r"member_ready|heartbeat|offer_cards|watch_restarts|member_api_errors", target["expr"]):
                    assert 'node=~"$node"' in target["expr"], (name, panel["title"])


# ------------------------------------------------------------------------------------------ chart

def render_chart(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run([helm(), "template", "x", str(CHART), "-n", "ic", "--kube-version", "1.36.3", *args],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def dashboard_maps(docs: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "ConfigMap" and "dashboard" in d["metadata"]["name"]}


def test_chart_ships_one_configmap_per_dashboard_for_the_sidecar() -> None:
    maps = dashboard_maps(render_chart())
    assert len(maps) == len(RENDERED)
    for cm in maps.values():
        assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
        assert cm["metadata"]["namespace"] == "ic"
        [(file, text)] = cm["data"].items()
        assert json.loads(text) == OBJECTS[file]
    custom = dashboard_maps(render_chart("--set", "dashboards.label=dash", "--set", "dashboards.labelValue=yes",
                                         "--set", "dashboards.annotations.grafana_folder=Interconnect"))
    for cm in custom.values():
        assert cm["metadata"]["labels"]["dash"] == "yes" and "grafana_dashboard" not in cm["metadata"]["labels"]
        assert cm["metadata"]["annotations"] == {"grafana_folder": "Interconnect"}
    assert dashboard_maps(render_chart("--set", "dashboards.enabled=false")) == {}

