"""``nodsynth cohort plan``: counts per subtype x bin exactly as the spec, every mask in the lung, inner /
sub-pleural as defined, clearances kept, diameters within 1 mm (measured on the made cases); byte-identical
plans; unmeetable specs refused before anything is written; label-map-only sources painted as label 23."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from cohort_cases import SPEC, bin_counts, measured, run_cases, violations, write_sources, write_spec
from nodsynth.cli.main import main
from nodsynth.labels import NODULE
from nodsynth.io.volume_files import read_volume


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> Path:
    return write_sources(tmp_path_factory.mktemp("cohort_sources"))


def plan(spec: Path, out: Path, capsys=None) -> int:
    return main(["cohort", "plan", str(spec), "--out", str(out)])


def test_a_made_cohort_meets_the_spec_measured_on_its_masks(sources, tmp_path):
    out = tmp_path / "plan"
    assert plan(write_spec(sources), out) == 0
    manifest = out / "manifest.jsonl"
    assert main(["batch", "check", str(manifest)]) == 0
    run_cases(manifest)
    records = measured(out, SPEC["pleura_clearance_mm"])
    expected = {(s, b): n for s, bins in SPEC["counts"].items() for b, n in bins.items()}
    assert bin_counts(records, SPEC) == expected and len(records) == sum(expected.values())
    assert Counter(r["location"] for r in records)["subpleural"] == round(0.3 * len(records))
    assert violations(records, SPEC["clearance_mm"]) == []
    per_case = Counter(r["case_id"] for r in records)
    assert all(1 <= n <= 3 for n in per_case.values())
    case = next(iter(per_case))
    ct = read_volume(out / "cases" / case / "ct.nii.gz").array
    source = read_volume(sources / "cts" / f"{case.split('_c')[0]}.nii.gz").array
    ids = read_volume(out / "cases" / case / "ids.nii.gz").array
    assert sorted(np.unique(ids)) == list(range(per_case[case] + 1))
    for number in range(1, per_case[case] + 1):  # every nodule of the case was inserted into the one CT
        assert np.abs(ct[ids == number].astype(float) - source[ids == number]).mean() > 50


def test_the_same_spec_and_seed_give_byte_identical_plans(sources, tmp_path):
    spec = write_spec(sources)
    for name in ("a", "b"):
        assert plan(spec, sources / f"plan_{name}") == 0
    for file in ("cohort.csv", "manifest.jsonl"):
        assert (sources / "plan_a" / file).read_bytes() == (sources / "plan_b" / file).read_bytes()
    assert plan(write_spec(sources, seed=1), sources / "plan_c") == 0
    assert (sources / "plan_c" / "cohort.csv").read_bytes() != (sources / "plan_a" / "cohort.csv").read_bytes()


@pytest.mark.parametrize("changes, named", [
    ({"counts": {"solid": {"150-160": 1}}}, "bin 150-160 mm"),
    ({"counts": {"solid": {"10-12": 40}}, "clearance_mm": 60, "nodules_per_ct": [20, 20]}, "clearance_mm 60"),
    ({"counts": {"solid": {"6-8": 3}}, "nodules_per_ct": [2, 2]}, "nodules_per_ct [2, 2]"),
    ({"counts": {"solid": {"10-6": 1}}}, "0 < lo < hi"),
    ({"engine": "hrldm", "sources": {"labelmap": "maps/*.nii.gz"}}, "cannot make a CT from a label map"),
])
def test_an_unmeetable_spec_is_refused_naming_the_constraint_and_nothing_is_written(sources, tmp_path, capsys,
                                                                                   changes, named):
    out = tmp_path / "plan"
    assert plan(write_spec(sources, **changes), out) == 2
    assert named in capsys.readouterr().err
    assert not out.exists()


def test_label_map_only_sources_are_planned_into_label_23_for_twins(sources, tmp_path):
    out = tmp_path / "plan"
    (sources / "stats.json").write_text("{}")
    spec = write_spec(sources, sources={"labelmap": "maps/*.nii.gz"}, engine="nodmaisi",
                      counts={"solid": {"6-10": 2}, "ground-glass": {"8-12": 2}}, qc_stats="stats.json", max_tries=3)
    assert plan(spec, out) == 0
    rows = [json.loads(line) for line in (out / "manifest.jsonl").read_text().splitlines()]
    twins = [r for r in rows if r["op"] == "twin"]
    assert len(twins) == len(rows) // 2 and all(r["params"] == {"engine": "nodmaisi", "max_tries": 3} for r in twins)
    assert all(Path(out / r["inputs"]["qc_stats"]).resolve() == (sources / "stats.json").resolve() for r in twins)
    assert all(t["inputs"]["labelmap"] == c["outputs"]["labelmap"] for c, t in zip(rows[::2], twins))
    run_cases(out / "manifest.jsonl")
    records = measured(out, SPEC["pleura_clearance_mm"])
    assert len(records) == 4 and violations(records, SPEC["clearance_mm"]) == []
    case = records[0]["case_id"]
    painted = read_volume(out / "cases" / case / "labelmap.nii.gz").array
    source = read_volume(sources / "maps" / f"{case.split('_c')[0]}.nii.gz").array
    ids = read_volume(out / "cases" / case / "ids.nii.gz").array
    assert np.all(painted[ids > 0] == NODULE) and np.array_equal(painted[ids == 0], source[ids == 0])
