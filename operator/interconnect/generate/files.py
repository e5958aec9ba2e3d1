"""Files generated from code (dashboards, alert rules): write them, or check they are current.

One mechanism for every generator, so `--check` (used by the tests) and the writer agree on
what "up to date" means: the same bytes in every output directory, and no stray file matching
the generator's own pattern.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Mapping
from pathlib import Path


def _stale(directory: Path, rendered: Mapping[str, str], pattern: str | None) -> list[Path]:
    if pattern is None:
        return []
    return sorted(p for p in directory.glob(pattern) if p.name not in rendered)


def check(output_dirs: list[Path], rendered: Mapping[str, str], pattern: str | None = None) -> list[str]:
    """Unified diffs between the committed files and the rendered ones (empty: up to date)."""
    diffs: list[str] = []
    for directory in output_dirs:
        for name, text in rendered.items():
            path = directory / name
            current = path.read_text(encoding="utf-8") if path.is_file() else ""
            if current != text:
                diffs.append("".join(difflib.unified_diff(
                    current.splitlines(keepends=True), text.splitlines(keepends=True),
                    fromfile=f"{path} (committed)", tofile=f"{path} (generated)")))
        diffs.extend(f"{path}: not generated (remove it)\n" for path in _stale(directory, rendered, pattern))
    return diffs


def write(output_dirs: list[Path], rendered: Mapping[str, str], pattern: str | None = None) -> None:
    for directory in output_dirs:
        directory.mkdir(parents=True, exist_ok=True)
        for name, text in rendered.items():
            path = directory / name
            if not path.is_file() or path.read_text(encoding="utf-8") != text:
                path.write_text(text, encoding="utf-8")
                print(f"wrote {path}")
        for path in _stale(directory, rendered, pattern):
            path.unlink()
            print(f"removed {path}")


def run(what: str, command: str, output_dirs: list[Path], rendered: Mapping[str, str], *, check_only: bool,
        pattern: str | None = None) -> int:
    """Write, or with ``check_only`` print the diffs and return 1 when anything is out of date."""
    if not check_only:
        write(output_dirs, rendered, pattern)
        return 0
    diffs = check(output_dirs, rendered, pattern)
    for diff in diffs:
        sys.stdout.write(diff)
    if diffs:
        print(f"{what} out of date: run `{command}`", file=sys.stderr)
        return 1
    print(f"{', '.join(map(str, output_dirs))}: {len(rendered)} {what} up to date")
    return 0
