"""Generate the CRDs under crds/ from the API models (the models are the single source of truth).

python -m interconnect crds            # write crds/*.yaml
python -m interconnect crds --check    # exit 1, with a diff, when crds/ is not up to date
"""

from __future__ import annotations

import argparse
import difflib
import sys
from pathlib import Path
from typing import Any

import yaml
from kube_custom_resource.registry import CustomResourceRegistry

from interconnect.api.v1alpha1 import KINDS
from interconnect.core.vocabulary import GROUP

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
    root = Path(__file__).resolve().parents[2]
    if (root / "pyproject.toml").is_file():
        return root / "crds"
    return Path.cwd() / "crds"


def _stale(output_dir: Path, rendered: dict[str, str]) -> list[Path]:
    return sorted(p for p in output_dir.glob(f"*.{GROUP}.yaml") if p.name not in rendered)


def check(output_dir: Path, rendered: dict[str, str]) -> list[str]:
    """Unified diffs between the committed files and the rendered ones (empty: up to date)."""
    diffs: list[str] = []
    for name, text in rendered.items():
        path = output_dir / name
        current = path.read_text(encoding="utf-8") if path.is_file() else ""
        if current != text:
            diffs.append(
                "".join(
                    difflib.unified_diff(
                        current.splitlines(keepends=True),
                        text.splitlines(keepends=True),
                        fromfile=f"{path} (committed)",
                        tofile=f"{path} (generated)",
                    )
                )
            )
    diffs.extend(f"{path}: not generated from any model (remove it)\n" for path in _stale(output_dir, rendered))
    return diffs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interconnect crds", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 with a diff when the files differ")
    parser.add_argument("--output-dir", type=Path, default=None, help="default: the checkout's crds/")
    args = parser.parse_args(argv)
    output_dir: Path = args.output_dir or default_output_dir()
    rendered = render_crds()
    if args.check:
        diffs = check(output_dir, rendered)
        for diff in diffs:
            sys.stdout.write(diff)
        if diffs:
            print(f"{output_dir} is out of date: run `python -m interconnect crds`", file=sys.stderr)
            return 1
        print(f"{output_dir}: {len(rendered)} CRDs up to date")
        return 0
    output_dir.mkdir(parents=True, exist_ok=True)
    for name, text in rendered.items():
        path = output_dir / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path}")
    for path in _stale(output_dir, rendered):
        path.unlink()
        print(f"removed {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
