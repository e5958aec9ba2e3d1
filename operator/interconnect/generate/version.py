"""One version: ``interconnect.__version__``, stamped wherever it must be written out.

python -m interconnect stamp-version               # write it into the stamped files
python -m interconnect stamp-version --check       # exit 1, with a diff, when one of them differs
python -m interconnect stamp-version --set 0.2.0   # change it (operator/interconnect/__init__.py), then stamp

The package takes it from ``interconnect/__init__.py`` directly (pyproject.toml: ``dynamic =
["version"]``), and so do both command lines' ``--version`` and the image's labels (hack/build-image
reads the wheel's version). Helm cannot read Python, so both charts' Chart.yaml (``version`` and
``appVersion``, which is the image tag the hub chart deploys by default) and image/Dockerfile's
default ``VERSION`` build argument hold a copy, written here and checked by a unit test.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from interconnect.generate import files as generated

INIT = Path("operator") / "interconnect" / "__init__.py"
CHARTS = (Path("charts") / "interconnect-hub" / "Chart.yaml", Path("charts") / "interconnect-member" / "Chart.yaml")
DOCKERFILE = Path("image") / "Dockerfile"
# MAJOR.MINOR.PATCH: both a PEP 440 version and a SemVer 2 one (what Helm requires of a chart).
VERSION = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")

# (file, pattern, replacement): each pattern must match exactly once.
_STAMPS: tuple[tuple[Path, str, str], ...] = (
    *((chart, r"^version: .*$", "version: {v}") for chart in CHARTS),
    *((chart, r"^appVersion: .*$", 'appVersion: "{v}"') for chart in CHARTS),
    (DOCKERFILE, r"^ARG VERSION=.*$", "ARG VERSION={v}"),
)


def root() -> Path:
    """The checkout this module lives in."""
    return Path(__file__).resolve().parents[3]


def stamped(base: Path, version: str) -> dict[Path, str]:
    """Relative path -> the file's text with ``version`` stamped in."""
    out: dict[Path, str] = {}
    for path, pattern, replacement in _STAMPS:
        text = out.get(path, (base / path).read_text(encoding="utf-8"))
        text, count = re.subn(pattern, replacement.format(v=version), text, flags=re.M)
        if count != 1:
            raise ValueError(f"{path}: {pattern!r} matched {count} times, expected once")
        out[path] = text
    return out


def version_in(init_text: str) -> str:
    """The version written in interconnect/__init__.py (what ``__version__`` is once imported)."""
    found = re.findall(r'^__version__ = "([^"]*)"$', init_text, flags=re.M)
    if len(found) != 1:
        raise ValueError(f"{INIT}: no single `__version__ = \"...\"` line")
    return str(found[0])


def with_version(init_text: str, version: str) -> str:
    text, count = re.subn(r'^__version__ = "[^"]*"$', f'__version__ = "{version}"', init_text, flags=re.M)
    if count != 1:
        raise ValueError(f"{INIT}: no single `__version__ = \"...\"` line")
    return text


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="interconnect stamp-version", description=(__doc__ or "").splitlines()[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 with a diff when a stamped file differs")
    group.add_argument("--set", metavar="X.Y.Z", help="the new version (written to interconnect/__init__.py)")
    parser.add_argument("--root", type=Path, default=None, help="the checkout (default: this module's)")
    args = parser.parse_args(argv)
    base = args.root or root()
    version = version_in((base / INIT).read_text(encoding="utf-8"))
    if args.set is not None:
        if not VERSION.match(args.set):
            parser.error(f"--set {args.set}: expected MAJOR.MINOR.PATCH (e.g. 0.2.0)")
        version = args.set
        init = base / INIT
        text = with_version(init.read_text(encoding="utf-8"), version)
        if text != init.read_text(encoding="utf-8"):
            init.write_text(text, encoding="utf-8")
            print(f"wrote {init}")
    elif not VERSION.match(version):
        print(f"{INIT}: __version__ {version!r} is not MAJOR.MINOR.PATCH", file=sys.stderr)
        return 1
    diffs: list[str] = []
    for path, text in stamped(base, version).items():
        directory, rendered = [base / path.parent], {path.name: text}
        if args.check:
            diffs += generated.check(directory, rendered)
        else:
            generated.write(directory, rendered)
    for diff in diffs:
        sys.stdout.write(diff)
    if diffs:
        print(f"version {version} is not stamped everywhere: run `python -m interconnect stamp-version`",
              file=sys.stderr)
        return 1
    if args.check:
        print(f"version {version}: {', '.join(sorted({str(p) for p, *_ in _STAMPS}))} up to date")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
