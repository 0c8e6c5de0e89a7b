"""Several nodules in one CT in one job through the engine interface: HR-LDM inpaints each nodule of the case in
turn, NodMAISI re-renders the CT around each of them (ROI edits, op ``cohort_edit``); tiny random networks
saved in the real checkpoint formats."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cohort_cases import run_cases, write_sources, write_spec
from nodsynth.cli.main import main
from nodsynth.io.volume_files import read_volume

pytest.importorskip("torch", reason="the HR-LDM and NodMAISI engines need torch")
from tiny_weights import hrldm_tiny_weights, nodmaisi_tiny_weights  # noqa: E402

COUNTS = {"solid": {"6-10": 1}, "ground-glass": {"8-12": 1}}


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    return write_sources(tmp_path_factory.mktemp("cohort_engines"), seeds=(0,))


def made_case(sources: Path, out: Path, engine: str, weights: Path, **options) -> tuple[Path, list[dict]]:
    spec = write_spec(sources, engine=engine, counts=COUNTS, nodules_per_ct=[2, 2],
                      engine_params={"weights": str(weights), "steps": 2, **({"sampler": "ddim"} if engine == "hrldm" else {})})
    assert main(["cohort", "plan", str(spec), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    run_cases(out / "manifest.jsonl", **options)
    return out / "cases" / "demo0_c001", rows


def changed_in_every_nodule(case: Path, sources: Path) -> np.ndarray:
    ct = read_volume(case / "ct.nii.gz").array.astype(float)
    source = read_volume(sources / "cts" / "demo0.nii.gz").array.astype(float)
    ids = read_volume(case / "ids.nii.gz").array
    assert sorted(np.unique(ids)) == [0, 1, 2]
    for number in (1, 2):
        assert np.abs(ct[ids == number] - source[ids == number]).mean() > 1.0
    return np.abs(ct - source) > 0


def test_hrldm_inpaints_every_nodule_of_the_case_in_one_job(sources, tmp_path):
    case, rows = made_case(sources, tmp_path / "plan", "hrldm", hrldm_tiny_weights(tmp_path / "hrldm"))
    assert [r["op"] for r in rows] == ["cohort_case"]
    changed_in_every_nodule(case, sources)
    facts = json.loads((case / "case.json").read_text())
    assert facts["engine"] == "hrldm" and facts["checkpoints"]


def test_nodmaisi_re_renders_the_ct_around_every_nodule_of_the_case_in_one_job(sources, tmp_path):
    weights = nodmaisi_tiny_weights(tmp_path / "nodmaisi")
    case, rows = made_case(sources, tmp_path / "plan", "nodmaisi", weights,
                           engine_options={"nodmaisi": {"config": "maisi_tiny"}})
    assert [r["op"] for r in rows] == ["cohort_edit"]
    changed = changed_in_every_nodule(case, sources)
    assert changed.mean() < 0.5  # an ROI edit: most of the CT is left as it was
    assert json.loads((case / "case.json").read_text())["engine"] == "nodmaisi"
