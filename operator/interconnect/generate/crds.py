"""Generate the CRDs under crds/ from the API models (the models are the single source of truth).

python -m interconnect crds            # write crds/*.yaml and the hub chart's copy (files/crds/)
python -m interconnect crds --check    # exit 1, with a diff, when either is not up to date
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import yaml
from kube_custom_resource.registry import CustomResourceRegistry

from interconnect.api.v1alpha1 import KINDS
from interconnect.core.vocabulary import GROUP
from interconnect.generate import files as generated

CATEGORIES = ["interconnect"]
HEADER = (
    "# Generated from operator/interconnect/api/v1alpha1 by `python -m interconnect crds`.\n"
    "# Do not edit: change the models and regenerate (a unit test fails when the two drift).\n"
)


def crd_objects() -> dict[str, dict[str, Any]]:
    """File name -> CustomResourceDefinition object, one per kind."""
    registry = CustomResourceRegistry(GROUP, categories=list(CATEGORIES))
    for kind in KINDS:
        registry.register_model(kind)  # type: ignore[arg-type]  # it takes the class
    out: dict[str, dict[str, Any]] = {}
    for crd in registry:
        resource: dict[str, Any] = crd.kubernetes_resource()
        names = resource["spec"]["names"]
        names["shortNames"] = sorted(names["shortNames"])  # the registry merges them through a set
        out[f"{crd.plural_name}.{crd.api_group}.yaml"] = resource
    return out


def render_crds() -> dict[str, str]:
    """File name -> YAML text of each CRD, exactly as committed under crds/."""
    return {
        name: HEADER + yaml.safe_dump(obj, sort_keys=False, allow_unicode=True, width=100)
        for name, obj in sorted(crd_objects().items())
    }


def default_output_dir() -> Path:
    """crds/ of the checkout this module lives in, else crds/ under the working directory."""
    root = Path(__file__).resolve().parents[3]
    if (root / "pyproject.toml").is_file():
        return root / "crds"
    return Path.cwd() / "crds"


CHART_CRDS = Path("charts") / "interconnect-hub" / "files" / "crds"
"""The hub chart's copy, relative to the checkout: plain YAML that templates/crds.yaml renders (behind
``crds.install``, with ``helm.sh/resource-policy: keep``), so that ``helm upgrade`` updates the CRDs.
Not the chart's ``crds/``: Helm installs those at ``helm install`` only and never upgrades them."""


def default_output_dirs() -> list[Path]:
    """crds/, and the hub chart's copy (charts/interconnect-hub/files/crds/)."""
    crds = default_output_dir()
    chart = crds.parent / CHART_CRDS
    return [crds, chart] if chart.is_dir() else [crds]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interconnect crds", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 with a diff when the files differ")
    parser.add_argument("--output-dir", type=Path, action="append", default=None,
                        help="default: the checkout's crds/ and charts/interconnect-hub/files/crds/")
    args = parser.parse_args(argv)
    # Only our group's files count as stale: the chart also ships kopf's peering CRD.
    return generated.run("CRDs", "python -m interconnect crds", args.output_dir or default_output_dirs(),
                         render_crds(), check_only=args.check, pattern=f"*.{GROUP}.yaml")


if __name__ == "__main__":
    raise SystemExit(main())
