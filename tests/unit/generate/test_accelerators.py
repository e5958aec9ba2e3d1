"""deploy/accelerators.yaml is the built-in catalogue, generated from it; docs/accelerators.md cites
every source the catalogue does."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from interconnect.api.v1alpha1 import AcceleratorModel
from interconnect.core.accelerators import CATALOGUE
from interconnect.generate import accelerators as gen

ROOT = Path(__file__).resolve().parents[3]
SEED = ROOT / "deploy" / gen.FILE
DOC = ROOT / "docs" / "accelerators.md"


def test_the_committed_seed_is_the_catalogue() -> None:
    assert SEED.read_text(encoding="utf-8") == gen.render_catalogue(), (
        "run `python -m interconnect.generate.accelerators`"
    )


def test_every_seeded_object_is_the_catalogue_entry_of_its_model() -> None:
    docs = [d for d in yaml.safe_load_all(SEED.read_text(encoding="utf-8")) if d]
    assert [d["spec"]["model"] for d in docs] == list(CATALOGUE)
    for doc in docs:
        assert doc["metadata"] == {"name": doc["spec"]["model"].lower().replace("_", "-")}
        assert AcceleratorModel.model_validate(doc).to_core() == CATALOGUE[doc["spec"]["model"]]


def test_check_mode_reports_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert gen.main(["--output-dir", str(tmp_path)]) == 0
    assert gen.main(["--check", "--output-dir", str(tmp_path)]) == 0
    target = tmp_path / gen.FILE
    target.write_text(target.read_text(encoding="utf-8").replace("memoryGiB: 80", "memoryGiB: 81", 1), encoding="utf-8")
    capsys.readouterr()
    assert gen.main(["--check", "--output-dir", str(tmp_path)]) == 1
    assert "memoryGiB: 81" in capsys.readouterr().out


def test_the_documentation_cites_every_source_and_lists_every_model() -> None:
    text = DOC.read_text(encoding="utf-8")
    for model in CATALOGUE.values():
        assert f"`{model.name}`" in text, model.name
        for url in model.sources.values():
            assert url in text, (model.name, url)
