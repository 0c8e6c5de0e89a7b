"""``nodsynth demo`` end to end: files per step, Dice >= 0.9 for every phantom nodule kind, failures."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import DEMO_DICE_REQUIRED as DICE_REQUIRED
from nodsynth.cli.main import main
from nodsynth.cli.verbs import demo
from nodsynth.errors import InputError
from nodsynth.phantom import NODULE_KINDS
from nodsynth.io.volume_files import read_volume


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "out"
    status = main(["demo", "--out", str(out), "--seed", "0"])
    return status, out


def test_demo_succeeds_and_writes_each_step_in_its_folder(demo_run):
    status, out = demo_run
    assert status == 0
    summary = json.loads((out / "demo.json").read_text())
    assert summary["failed"] == [] and summary["seed"] == 0
    assert list(summary["steps"]) == [s.name for s in demo.STEPS]
    for name, step in summary["steps"].items():
        assert step["files"], name
        for path in map(Path, step["files"]):
            assert path.is_file() and path.is_relative_to(out / name), path
    for name in ("ct.nii.gz", "labelmap.nii.gz", "points.csv", "annotations.csv"):
        assert (out / "phantom" / name).is_file()


def test_demo_segments_every_nodule_kind(demo_run):
    _, out = demo_run
    with open(out / "segment" / "dice.csv", newline="") as handle:
        assert sorted(r["kind"] for r in csv.DictReader(handle)) == sorted(NODULE_KINDS)


@pytest.mark.parametrize("kind", NODULE_KINDS)
def test_demo_dice_at_least_0_9_for_every_nodule_kind(demo_run, kind):
    _, out = demo_run
    with open(out / "segment" / "dice.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["kind"] == kind)
    truth_dir = out / "phantom" / "nodules"
    found = read_volume(out / "segment" / "masks" / f"{row['name']}.nii.gz").array > 0
    truth = read_volume(truth_dir / f"{row['name']}.nii.gz").array > 0
    recomputed = 2.0 * (found & truth).sum() / (found.sum() + truth.sum())
    assert float(row["dice"]) == pytest.approx(recomputed, abs=1e-4)
    assert recomputed >= DICE_REQUIRED, f"{kind}: Dice {recomputed:.3f}"


def test_demo_overlay_is_a_png_with_both_contour_colours(demo_run):
    _, out = demo_run
    image = np.asarray(Image.open(out / "segment" / "overlay.png").convert("RGB"))
    assert image.shape[1] > image.shape[0] > 100
    for colour in (demo.TRUE_MASK_RGB, demo.RESULT_MASK_RGB):
        assert np.all(image == colour, axis=2).sum() > 50, f"contour colour {colour} drawn"


def test_demo_prints_the_dice_table_and_where_it_wrote(tmp_path, capsys):
    status = main(["demo", "--out", str(tmp_path / "only"), "--steps", "phantom"])
    printed = capsys.readouterr().out
    assert status == 0
    assert str(tmp_path / "only" / "phantom") in printed
    assert sorted(p.name for p in (tmp_path / "only").iterdir()) == ["demo.json", "phantom"]


def test_select_steps_adds_prerequisites_and_rejects_unknown_names():
    assert [s.name for s in demo.select_steps("segment")] == ["phantom", "segment"]
    assert [s.name for s in demo.select_steps(None)] == [s.name for s in demo.STEPS]
    with pytest.raises(InputError, match="unknown demo step"):
        demo.select_steps("phantom,segmnt")


def test_unknown_step_exits_2_and_writes_nothing(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "x"), "--steps", "bogus"]) == 2
    assert "unknown demo step" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_a_failing_step_makes_the_exit_status_1_and_skips_its_dependents(tmp_path, capsys, monkeypatch):
    def broken(ctx, folder):
        raise RuntimeError("phantom broke")

    monkeypatch.setattr(demo, "STEPS", [demo.DemoStep("phantom", "a failing phantom", broken)] + demo.STEPS[1:])
    assert main(["demo", "--out", str(tmp_path / "out"), "--steps", "segment"]) == 1
    err = capsys.readouterr().err
    assert "[phantom] FAILED" in err and "[segment] skipped" in err
    assert json.loads((tmp_path / "out" / "demo.json").read_text())["failed"] == ["phantom", "segment"]


def test_the_same_demo_runs_twice_into_one_folder_and_another_seed_replaces_it_whole(tmp_path):
    out = tmp_path / "demo_output"
    assert main(["demo", "--out", str(out), "--steps", "phantom"]) == 0
    first = (out / "phantom" / "points.csv").read_text()
    (out / "review").mkdir()  # a step of the earlier run that the next one does not make
    assert main(["demo", "--out", str(out), "--steps", "phantom"]) == 0
    assert (out / "phantom" / "points.csv").read_text() == first
    assert sorted(p.name for p in out.iterdir()) == ["demo.json", "phantom"]
    assert main(["demo", "--out", str(out), "--steps", "phantom", "--seed", "1"]) == 0
    assert (out / "phantom" / "points.csv").read_text() != first
    assert json.loads((out / "demo.json").read_text())["seed"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo_output"]  # no staging folder left beside it


@pytest.mark.parametrize("kind", ["folder", "file"])
def test_demo_refuses_an_output_that_is_not_a_demo_folder_and_writes_nothing(tmp_path, capsys, kind):
    out = tmp_path / "mine"
    if kind == "folder":
        out.mkdir()
        (out / "notes.txt").write_text("not the demo's")
    else:
        out.write_text("a file where the output folder should go")
    assert main(["demo", "--out", str(out), "--steps", "phantom"]) == 2
    assert "not an empty folder" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mine"]
    assert (out / "notes.txt" if kind == "folder" else out).read_text().startswith(("not the", "a file"))


def test_demo_measurements_name_each_nodule_lobe_and_pleural_contact(demo_run):
    _, out = demo_run
    with open(out / "measure" / "measurements.csv", newline="") as handle:
        rows = {r["name"]: r for r in csv.DictReader(handle)}
    records = json.loads((out / "measure" / "measurements.json").read_text())
    assert set(rows) == set(records) and len(rows) == len(NODULE_KINDS)
    for name, row in rows.items():
        assert row["lobe_id"] == row["true_lobe"], name
        assert float(row["equivalent_diameter_mm"]) == pytest.approx(float(row["true_diameter_mm"]), rel=0.25)
        assert len(records[name]["histogram"]) == 40
        if row["kind"] == "juxta-pleural":
            assert float(row["pleural_distance_mm"]) <= 1.25
        else:
            assert float(row["pleural_distance_mm"]) >= 3.0, name
        if row["true_subtype"] in ("solid", "ground-glass"):
            assert row["subtype"] == row["true_subtype"], name


@pytest.mark.parametrize("subtype", ["solid", "part-solid", "ground-glass"])
def test_demo_inserts_one_12_mm_nodule_per_subtype(demo_run, subtype):
    """The demo's claim, measured on what it inserted: the voxels its CT changed form a 12 mm equivalent sphere."""
    _, out = demo_run
    before = read_volume(out / "phantom" / "ct.nii.gz")
    after = read_volume(out / "inpaint" / f"ct_{subtype}.nii.gz")
    changed_mm3 = np.count_nonzero(after.array != before.array) * before.voxel_volume_mm3
    assert (6.0 * changed_mm3 / np.pi) ** (1.0 / 3.0) == pytest.approx(demo.INPAINT_DIAMETER_MM, abs=1.0)
    with open(out / "inpaint" / "inpaint.csv", newline="") as handle:
        row = next(r for r in csv.DictReader(handle) if r["subtype"] == subtype)
    assert float(row["diameter_mm"]) == pytest.approx(demo.INPAINT_DIAMETER_MM, abs=1.0)
