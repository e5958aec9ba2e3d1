"""The built-in accelerator catalogue as AcceleratorModel objects: deploy/accelerators.yaml.

python -m interconnect.generate.accelerators            # write deploy/accelerators.yaml
python -m interconnect.generate.accelerators --check    # exit 1, with a diff, when it is not up to date

One source of truth: the file is rendered from ``interconnect.core.accelerators.CATALOGUE``
through the AcceleratorModel API model (so every object passes the CRD's rules), and a unit test
fails when the two drift. The operator uses the built-in catalogue whether or not the file is
applied; applying it (``kubectl apply -f deploy/accelerators.yaml``) shows the catalogue with
``kubectl get acceleratormodels`` and gives the hub admin objects to edit: an edited object
overrides the built-in entry of its model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import yaml

from interconnect.api.v1alpha1 import AcceleratorModel, to_api
from interconnect.core.accelerators import CATALOGUE, Catalogue
from interconnect.generate import files as generated

FILE = "accelerators.yaml"
HEADER = (
    "# Generated from operator/interconnect/core/accelerators.py by\n"
    "# `python -m interconnect.generate.accelerators`. Do not edit: change the catalogue there and\n"
    "# regenerate (a unit test fails when the two drift). Sources of every figure: docs/accelerators.md.\n"
    "# The operator knows these models without this file; apply it to list them with\n"
    "# `kubectl get acceleratormodels` and to edit one (an object overrides the built-in entry).\n"
)


def render_catalogue(catalogue: Catalogue = CATALOGUE) -> str:
    """The YAML text of deploy/accelerators.yaml: one AcceleratorModel per model, by name."""
    docs = []
    for model in catalogue.values():
        obj = to_api(AcceleratorModel.from_core(model))
        obj["metadata"] = {"name": obj["metadata"]["name"]}  # only what an admin would write
        docs.append(obj)
    body = yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True, width=100, explicit_start=True)
    return HEADER + body


def default_output_dir() -> Path:
    """deploy/ of the checkout this module lives in, else deploy/ under the working directory."""
    root = Path(__file__).resolve().parents[3]
    if (root / "pyproject.toml").is_file():
        return root / "deploy"
    return Path.cwd() / "deploy"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interconnect.generate.accelerators",
                                     description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 with a diff when the file differs")
    parser.add_argument("--output-dir", type=Path, action="append", default=None,
                        help="default: the checkout's deploy/")
    args = parser.parse_args(argv)
    return generated.run("accelerator catalogue", "python -m interconnect.generate.accelerators",
                         args.output_dir or [default_output_dir()], {FILE: render_catalogue()},
                         check_only=args.check)


if __name__ == "__main__":
    raise SystemExit(main())
