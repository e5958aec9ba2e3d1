"""One version: interconnect.__version__. The package reads it (pyproject.toml's dynamic version),
both command lines print it, the image's labels take the wheel's, and every copy that cannot read
Python (both charts' Chart.yaml, image/Dockerfile) is stamped with it: this fails when one drifts."""

from __future__ import annotations

import re
import shutil
import tomllib
from pathlib import Path

import pytest
import yaml

from interconnect import __version__
from interconnect.cli import main as cli_main
from interconnect.cli import plugin
from interconnect.generate import version

ROOT = Path(__file__).resolve().parents[2]


def test_the_version_is_major_minor_patch() -> None:
    assert version.VERSION.match(__version__), "a PEP 440 and SemVer 2 version (Helm needs SemVer)"


def test_both_charts_carry_the_package_version_and_deploy_its_image() -> None:
    for chart in ("interconnect-hub", "interconnect-member"):
        meta = yaml.safe_load((ROOT / "charts" / chart / "Chart.yaml").read_text(encoding="utf-8"))
        assert meta["version"] == __version__, f"{chart}: run `python -m interconnect stamp-version`"
        assert meta["appVersion"] == __version__, f"{chart}: run `python -m interconnect stamp-version`"
    deployment = (ROOT / "charts" / "interconnect-hub" / "templates" / "deployment.yaml").read_text(encoding="utf-8")
    assert ".Values.image.tag | default .Chart.AppVersion" in deployment, "the image tag defaults to the version"


def test_the_image_is_labelled_with_the_package_version() -> None:
    dockerfile = (ROOT / "image" / "Dockerfile").read_text(encoding="utf-8")
    assert re.findall(r"^ARG VERSION=(.*)$", dockerfile, re.M) == [__version__]
    assert 'org.opencontainers.image.version="${VERSION}"' in dockerfile
    # hack/build-image labels and tags the image with the version of the wheel it built (no copy).
    build = (ROOT / "hack" / "build-image").read_text(encoding="utf-8")
    assert "version=${wheel#compute_interconnect-}" in build
    assert '--label "org.opencontainers.image.version=$version"' in build
    assert not re.search(r"image\.version=\d", build), "a version written into hack/build-image"


def test_the_package_takes_its_version_from_the_module() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in project["project"], "one source: interconnect/__init__.py"
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "interconnect.__version__"}


def test_stamp_version_check_passes_on_the_checkout(capsys: pytest.CaptureFixture[str]) -> None:
    assert version.main(["--check"]) == 0, capsys.readouterr()


@pytest.mark.parametrize("parser", [cli_main.build_parser, plugin.build_parser],
                         ids=["python -m interconnect", "kubectl compute"])
def test_both_command_lines_print_the_version(parser: object, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        parser().parse_args(["--version"])  # type: ignore[operator]
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"compute-interconnect {__version__}"


def copy_of_the_stamped_files(tmp_path: Path) -> Path:
    for path in (version.INIT, *version.CHARTS, version.DOCKERFILE):
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / path, tmp_path / path)
    return tmp_path


def test_a_drifted_copy_is_reported_and_stamped_back(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = copy_of_the_stamped_files(tmp_path)
    chart = root / version.CHARTS[1]
    chart.write_text(chart.read_text(encoding="utf-8").replace(f'appVersion: "{__version__}"', 'appVersion: "9.9.9"'),
                     encoding="utf-8")
    assert version.main(["--check", "--root", str(root)]) == 1
    out = capsys.readouterr()
    assert '-appVersion: "9.9.9"' in out.out and "stamp-version" in out.err
    assert version.main(["--root", str(root)]) == 0
    assert version.main(["--check", "--root", str(root)]) == 0
    assert chart.read_text(encoding="utf-8") == (ROOT / version.CHARTS[1]).read_text(encoding="utf-8")


def test_set_changes_the_module_and_every_copy(tmp_path: Path) -> None:
    root = copy_of_the_stamped_files(tmp_path)
    assert version.main(["--set", "7.8.9", "--root", str(root)]) == 0
    assert '__version__ = "7.8.9"' in (root / version.INIT).read_text(encoding="utf-8")
    for chart in version.CHARTS:
        meta = yaml.safe_load((root / chart).read_text(encoding="utf-8"))
        assert (meta["version"], meta["appVersion"]) == ("7.8.9", "7.8.9")
    assert "ARG VERSION=7.8.9\n" in (root / version.DOCKERFILE).read_text(encoding="utf-8")
    assert version.main(["--check", "--root", str(root)]) == 0, "the copy's own __init__.py is its source"
    with pytest.raises(SystemExit):
        version.main(["--set", "1.0", "--root", str(root)])


def test_the_module_file_is_what_the_package_imports() -> None:
    assert version.version_in((ROOT / version.INIT).read_text(encoding="utf-8")) == __version__
