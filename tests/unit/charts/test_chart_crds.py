"""The hub chart's CRDs are templates (templates/crds.yaml over files/crds/), as in Kueue's chart, so
that `helm upgrade` updates them: rendered with helm template, each is exactly the generated file
plus the chart's labels and `helm.sh/resource-policy: keep`, behind `crds.install`. The upgrade on a
real API server is tests/e2e/test_charts.py::test_helm_upgrade_updates_a_crd_and_uninstall_keeps_it."""

from __future__ import annotations

import copy
import subprocess
from pathlib import Path
from typing import Any

import yaml

from interconnect.generate import crds as crdgen
from tests.unit.generate.test_alerts import helm

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "charts" / "interconnect-hub"
FILES = ROOT / crdgen.CHART_CRDS
PEERING = "clusterkopfpeerings.kopf.dev"


def render(*args: str) -> list[dict[str, Any]]:
    out = subprocess.run([helm(), "template", "rel", str(CHART), "-n", "ic", "--kube-version", "1.36.3", *args],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def rendered_crds(*args: str) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in render(*args) if d["kind"] == "CustomResourceDefinition"}


def test_no_crds_directory_helm_would_never_upgrade() -> None:
    """Helm installs a chart's crds/ at `helm install` only, and skips them on every upgrade."""
    assert not (CHART / "crds").exists(), "CRDs belong in files/crds/ (rendered by templates/crds.yaml)"
    generated = set(crdgen.render_crds())
    assert {p.name for p in FILES.glob("*.yaml")} == generated | {f"{PEERING}.yaml"}


def test_every_crd_is_rendered_exactly_as_generated_with_labels_and_keep() -> None:
    crds = rendered_crds()
    files = {p.name.removesuffix(".yaml"): yaml.safe_load(p.read_text(encoding="utf-8")) for p in FILES.glob("*.yaml")}
    assert set(crds) == set(files), "one CRD per file of files/crds/, ours and kopf's peering CRD"
    for name, crd in crds.items():
        meta = crd["metadata"]
        assert meta["annotations"]["helm.sh/resource-policy"] == "keep", f"{name}: helm uninstall would delete it"
        assert meta["labels"]["app.kubernetes.io/managed-by"] == "Helm"
        assert meta["labels"]["app.kubernetes.io/part-of"] == "compute-interconnect"
        assert meta["labels"]["app.kubernetes.io/instance"] == "rel"
        # Nothing else changes on the way through the template (fromYaml/toYaml keeps every rule,
        # description and integer bound): the API server gets the generated schema.
        expected = copy.deepcopy(files[name])
        stripped = copy.deepcopy(crd)
        stripped["metadata"].pop("labels")
        stripped["metadata"].pop("annotations")
        assert stripped == expected, f"{name}: the rendered CRD differs from files/crds/{name}.yaml"


def test_the_generated_crds_are_the_models() -> None:
    for name, text in crdgen.render_crds().items():
        assert (FILES / name).read_text(encoding="utf-8") == text, f"{name}: run `python -m interconnect crds`"


def test_crds_install_false_renders_none_and_the_rest_of_the_chart() -> None:
    assert rendered_crds("--set", "crds.install=false") == {}
    kinds = {d["kind"] for d in render("--set", "crds.install=false")}
    assert {"Deployment", "ClusterRole", "ClusterKopfPeering"} <= kinds


def test_the_peering_object_is_created_after_the_crds() -> None:
    """ClusterKopfPeering is a post-install/post-upgrade hook: its CRD, a template now, exists by then."""
    [peering] = [d for d in render() if d["kind"] == "ClusterKopfPeering"]
    hooks = peering["metadata"]["annotations"]["helm.sh/hook"].split(",")
    assert set(hooks) == {"post-install", "post-upgrade"}


def test_bad_crds_values_fail_with_the_field() -> None:
    bad = subprocess.run([helm(), "template", "x", str(CHART), "--kube-version", "1.36.3", "--set",
                          "crds.install=maybe"], capture_output=True, text=True)
    assert bad.returncode != 0 and "/crds/install" in bad.stderr, bad.stderr
    bad = subprocess.run([helm(), "template", "x", str(CHART), "--kube-version", "1.36.3", "--set",
                          "crds.keep=false"], capture_output=True, text=True)
    assert bad.returncode != 0 and "keep" in bad.stderr, "keep is not optional: uninstall must not delete bills"
