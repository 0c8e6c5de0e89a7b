"""``batch check`` / ``batch run`` refuse bad manifests and shard specs with the row and the reason,
before any job runs; ``batch plan`` expands a spec over the real DLCS label maps."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from batch_cases import inpaint_row, mixed_rows, write_inputs, write_manifest
from conftest import shared_path
from nodsynth.batch import check_manifest
from nodsynth.cli.main import main
from nodsynth.batch.plan import plan_jobs, write_manifest as write_planned
from nodsynth.errors import InputError


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("batch_check")
    write_inputs(folder / "in")
    return folder


def problems_of(path: Path) -> str:
    with pytest.raises(InputError) as info:
        check_manifest(path)
    return str(info.value)


def test_a_good_manifest_passes_with_its_stages(folder):
    rows = mixed_rows("out", augments=2, inpaints=2, twins=0)
    rows.append({"id": "edit-0", "op": "edit", "inputs": {"ct": "in/ct.nii.gz", "labelmap": "in/labels.nii.gz",
                                                          "edited_labelmap": rows[0]["outputs"]["labelmap"]},
                 "seed": 0, "outputs": {"ct": "out/edit/edit-0.nii.gz"}})
    checked = check_manifest(write_manifest(folder / "good.jsonl", rows))
    assert [j.id for j in checked.jobs] == [r["id"] for r in rows]
    assert checked.stage == [0, 0, 0, 0, 1]  # the edit reads aug-00's output
    assert checked.layout.root == (folder / "out").resolve()
    assert [0, 4] in checked.groups


def test_every_bad_row_is_named_with_its_reason_and_nothing_runs(folder, capsys):
    rows = mixed_rows("out_bad", augments=3, inpaints=4, twins=0)
    rows[0]["op"] = "resample"
    rows[1]["inputs"]["labelmap"] = "in/missing.nii.gz"
    rows[2]["outputs"]["labelmap"] = rows[1]["outputs"]["labelmap"]
    rows[3]["params"]["diameter"] = 8
    rows[4]["params"]["subtype"] = "spiky"
    rows[5]["inputs"]["labelmap"] = "in/small.nii.gz"  # a grid mismatch
    rows[6]["outputs"]["ct"] = "in/ct.nii.gz"
    from nodsynth.io.volume_files import read_volume, write_volume

    write_volume(read_volume(folder / "in" / "labels.nii.gz").crop((0, 0, 0), (40, 80, 80)), folder / "in" / "small.nii.gz")
    path = write_manifest(folder / "bad.jsonl", rows)
    with open(path, "a") as handle:
        handle.write('{"id": "x", "op": \n')
    text = problems_of(path)
    expected = {1: "unknown op 'resample'; available here: augment, cohort_case, cohort_edit, edit, encode, inpaint, push, review, segment, twin",
                2: "input 'labelmap' not found", 3: "is also written by row 2",
                4: "unknown parameter(s) diameter for op 'inpaint'", 5: "invalid choice: 'spiky'",
                6: "input 'ct' and input 'labelmap' are not on the same voxel grid: size i,j,k [80, 80, 80] vs [80, 80, 40]",
                7: "output 'ct' would overwrite its own input 'ct'", 8: "not valid JSON"}
    for row, reason in expected.items():
        line = next((ln for ln in text.splitlines() if ln.strip().startswith(f"row {row}:")), "")
        assert reason in line, f"row {row}: expected {reason!r} in {line!r}\n{text}"
    assert main(["batch", "run", str(path), "--executor", "inline"]) == 2
    assert "row 1: unknown op 'resample'" in capsys.readouterr().err
    assert not (folder / "out_bad").exists()  # nothing ran, nothing was written


def test_a_real_dlcs_map_on_another_grid_is_refused(folder):
    dlcs = shared_path("dlcs_labelmaps", "DLCS_0001_seg_sh.nii.gz")
    row = inpaint_row("ins-dlcs", "in/ct.nii.gz", str(dlcs), 0, "out_dlcs")
    text = problems_of(write_manifest(folder / "dlcs.jsonl", [row]))
    assert "row 1: input 'ct' and input 'labelmap' are not on the same voxel grid: size i,j,k [80, 80, 80] vs " \
           "[512, 512, 256]" in text


def test_a_dependency_cycle_and_outputs_outside_one_folder_are_refused(folder):
    a = {"id": "a", "op": "augment", "inputs": {"labelmap": "cyc/b.nii.gz"}, "params": {"percent": 50},
         "outputs": {"labelmap": "cyc/a.nii.gz"}}
    b = {"id": "b", "op": "augment", "inputs": {"labelmap": "cyc/a.nii.gz"}, "params": {"percent": 50},
         "outputs": {"labelmap": "cyc/b.nii.gz"}}
    assert "rows 1, 2: their inputs and outputs form a cycle" in problems_of(write_manifest(folder / "cyc.jsonl", [a, b]))
    c = {**a, "id": "c", "inputs": {"labelmap": "in/labels.nii.gz"}, "outputs": {"labelmap": "/c.nii.gz"}}
    assert "share no folder but the filesystem root" in problems_of(write_manifest(folder / "root.jsonl", [c]))


@pytest.mark.parametrize("spec, reason", [("4/4", "the shard index must be 0..3"),
                                          ("a/b", "must look like i/n"), ("1/0", "at least 1")])
def test_bad_shard_specs_are_refused_by_check_and_run(folder, capsys, spec, reason):
    path = write_manifest(folder / "shardspec.jsonl", mixed_rows("out_shard", 1, 0, 0))
    for command in ("check", "run"):
        assert main(["batch", command, str(path), f"--shard={spec}"]) == 2
        assert reason in capsys.readouterr().err, command
    assert not (folder / "out_shard").exists()


def test_plan_expands_dlcs_maps_x_percents_x_seeds_into_a_checked_chain(tmp_path):
    maps = shared_path("dlcs_labelmaps")
    spec = {"inputs": {"labelmap": str(maps / "DLCS_*_seg_sh.nii.gz")}, "out": "out",
            "steps": [{"op": "augment", "percents": [100, 90, 80, 70, 60, 50], "outputs": ["labelmap", "stats"]},
                      {"op": "twin", "seeds": [0, 1], "engines": ["nodmaisi"], "params": {"steps": 30}}]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    jobs = plan_jobs(tmp_path / "spec.json")
    augments, twins = [j for j in jobs if j.op == "augment"], [j for j in jobs if j.op == "twin"]
    assert len(augments) == 2 * 6 and len(twins) == 2 * 6 * 2
    twin = next(j for j in twins if j.id == "twin-DLCS_0001_seg_sh_p50_s1_nodmaisi")
    assert twin.seed == 1 and twin.params == {"steps": 30, "engine": "nodmaisi"}
    assert twin.inputs["labelmap"] == tmp_path / "out" / "augment" / "DLCS_0001_seg_sh_p50_labelmap.nii.gz"
    manifest = write_planned(jobs, tmp_path / "m" / "manifest.jsonl")
    first = json.loads(manifest.read_text().splitlines()[0])
    assert first["inputs"]["labelmap"].startswith("../") and first["params"] == {"percent": 100}
    from nodsynth.batch.graph import dependencies, producers, stages

    owner, problems = producers(jobs)
    assert not problems and stages(dependencies(jobs, owner))[0] == [0] * 12 + [1] * 24


def test_plan_names_a_missing_source(tmp_path, capsys):
    shutil.copy(write_inputs(tmp_path / "in")["ct"], tmp_path / "only_ct.nii.gz")
    spec = {"inputs": {"ct": "only_ct.nii.gz"}, "steps": [{"op": "twin"}]}
    (tmp_path / "spec.json").write_text(json.dumps(spec))
    assert main(["batch", "plan", str(tmp_path / "spec.json"), "--out", str(tmp_path / "m.jsonl")]) == 2
    assert "step 1 (twin): nothing provides input 'labelmap'" in capsys.readouterr().err
    assert not (tmp_path / "m.jsonl").exists()
