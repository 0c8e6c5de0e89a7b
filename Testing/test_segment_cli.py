"""``nodsynth segment`` (single and resumable batch) and ``nodsynth measure`` on files."""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest

from nodsynth.cli.main import main
from nodsynth.io.volume_files import read_volume, write_volume
from test_segment import dice, make_chest


@pytest.fixture
def chest_files(tmp_path):
    """Two CT files (one juxta-pleural nodule each, different sizes) and their true masks."""
    cases = {}
    for name, radius in (("caseA", 5.0), ("caseB", 4.0)):
        ct, truth, centre = make_chest(radius_mm=radius, seed=len(cases))
        path = tmp_path / "cts" / f"{name}.nii.gz"
        path.parent.mkdir(exist_ok=True)
        write_volume(ct, path)
        cases[name] = (path, truth, centre)
    return cases


def fmt(values) -> str:
    return ",".join(f"{v:.3f}" for v in values)


def test_single_click_writes_mask_and_json(chest_files, tmp_path):
    path, truth, centre = chest_files["caseA"]
    out, info = tmp_path / "out" / "mask.nii.gz", tmp_path / "out" / "info.json"
    assert main(["segment", "--ct", str(path), f"--point={fmt(centre)}", "--out", str(out), "--json", str(info)]) == 0
    mask = read_volume(out)
    assert mask.array.dtype == np.uint8 and dice(mask.array, truth) > 0.78
    data = json.loads(info.read_text())
    assert data["segmentation"]["method"] == "kmeans"
    assert data["measurements"]["volume_mm3"] == pytest.approx(mask.array.sum() * np.prod(mask.spacing))
    mask_centroid = mask.index_to_world(np.argwhere(mask.array > 0).mean(axis=0)[::-1])
    assert np.allclose(data["measurements"]["centroid_lps_mm"], mask_centroid, atol=1e-3)
    assert np.linalg.norm(mask_centroid - centre) < 2.0


def test_single_click_in_ras_with_box_and_method(chest_files, tmp_path):
    path, truth, centre = chest_files["caseA"]
    ras = centre * np.array([-1, -1, 1])
    out = tmp_path / "ras.nii.gz"
    assert main(["segment", "--ct", str(path), f"--point={fmt(ras)}", "--ras", "--box", "12,12,12",
                 "--method", "gmm", "--out", str(out)]) == 0
    assert dice(read_volume(out).array, truth) > 0.75


@pytest.mark.parametrize("case", ["missing file", "outside", "air", "not HU", "box too large", "bad point"])
def test_bad_input_gives_an_error_and_writes_nothing(chest_files, tmp_path, capsys, case):
    path, _, centre = chest_files["caseA"]
    ct = read_volume(path)
    point = fmt(centre)
    extra = []
    if case == "missing file":
        path = tmp_path / "nope.nii.gz"
    elif case == "outside":
        point = "500,0,0"
    elif case == "air":
        array = np.minimum(ct.array, -1000)
        array[:, :, :5] = 40
        path = tmp_path / "air.nii.gz"
        write_volume(ct.with_array(array), path)
    elif case == "not HU":
        path = tmp_path / "png_like.nii.gz"
        write_volume(ct.with_array(((ct.array + 1024) / 8).clip(0, 255).astype(np.uint8)), path)
    elif case == "box too large":
        extra = ["--box", "20,20,500"]
    elif case == "bad point":
        point = "1,2"
    out_dir = tmp_path / "results"
    before = {p.name for p in tmp_path.iterdir()}
    code = main(["segment", "--ct", str(path), f"--point={point}", *extra,
                 "--out", str(out_dir / "m.nii.gz"), "--json", str(out_dir / "m.json")])
    assert code == 2
    assert "error" in capsys.readouterr().err
    assert not out_dir.exists()
    assert {p.name for p in tmp_path.iterdir()} == before


def test_output_may_not_overwrite_the_input(chest_files):
    path, _, centre = chest_files["caseA"]
    stamp = path.stat().st_mtime_ns
    assert main(["segment", "--ct", str(path), f"--point={fmt(centre)}", "--out", str(path)]) == 2
    assert path.stat().st_mtime_ns == stamp


def write_pins_csv(path, chest_files, extra_rows=()):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ct_nifti_file", "nodule_id", "coordX", "coordY", "coordZ", "w", "h", "d"])
        for name, (ct_path, _, centre) in chest_files.items():
            writer.writerow([ct_path.name, 1, *centre, 12, 12, 12])
        for row in extra_rows:
            writer.writerow(row)


def test_batch_writes_one_mask_per_nodule_and_resumes(chest_files, tmp_path):
    table = tmp_path / "annotations.csv"
    _, _, centre_b = chest_files["caseB"]
    # caseB has a second annotation without a box (click only)
    write_pins_csv(table, chest_files, [["caseB.nii.gz", 2, *(centre_b + [0.5, 0, 0]), 0, 0, 0]])
    out_dir = tmp_path / "batch"
    argv = ["segment", "--csv", str(table), "--ct-dir", str(tmp_path / "cts"), "--out-dir", str(out_dir)]
    assert main(argv) == 0
    masks = sorted(p.name for p in out_dir.glob("*.nii.gz"))
    assert masks == ["caseA_1.nii.gz", "caseB_1.nii.gz", "caseB_2.nii.gz"]
    for name, (_, truth, _) in chest_files.items():
        assert dice(read_volume(out_dir / f"{name}_1.nii.gz").array, truth) > 0.75
    with open(out_dir / "measurements.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["nodule_id"] for r in rows] == ["1", "1", "2"]
    assert all(float(r["volume_mm3"]) > 0 and r["subtype"] for r in rows)

    stamps = {p.name: p.stat().st_mtime_ns for p in out_dir.glob("*.nii.gz")}
    os.remove(out_dir / "caseB_2.nii.gz")
    assert main(argv) == 0  # re-run: the two finished nodules are skipped, the removed one redone
    assert (out_dir / "caseB_2.nii.gz").is_file()
    for name in ("caseA_1.nii.gz", "caseB_1.nii.gz"):
        assert (out_dir / name).stat().st_mtime_ns == stamps[name]
    assert len(list(csv.DictReader(open(out_dir / "measurements.csv")))) == 3


def test_batch_reports_a_bad_row_and_finishes_the_others(chest_files, tmp_path, capsys):
    table = tmp_path / "annotations.csv"
    write_pins_csv(table, chest_files, [["caseA.nii.gz", 9, 500, 0, 0, 0, 0, 0], ["missing.nii.gz", 1, 0, 0, 0, 0, 0, 0]])
    out_dir = tmp_path / "batch"
    code = main(["segment", "--csv", str(table), "--ct-dir", str(tmp_path / "cts"), "--out-dir", str(out_dir)])
    assert code == 1
    err = capsys.readouterr().err
    assert "caseA_9" in err and "outside the volume" in err and "not found" in err
    assert sorted(p.name for p in out_dir.glob("*.nii.gz")) == ["caseA_1.nii.gz", "caseB_1.nii.gz"]


def test_batch_rejects_a_csv_without_the_pins_columns(tmp_path):
    table = tmp_path / "bad.csv"
    table.write_text("file,x,y,z\na.nii.gz,1,2,3\n")
    assert main(["segment", "--csv", str(table), "--ct-dir", str(tmp_path), "--out-dir", str(tmp_path / "o")]) == 2
    assert not (tmp_path / "o").exists()


def test_measure_cli(chest_files, tmp_path, capsys):
    path, truth, centre = chest_files["caseA"]
    ct = read_volume(path)
    mask_path = tmp_path / "truth.nii.gz"
    write_volume(ct.with_array(truth.astype(np.uint8)), mask_path)
    out = tmp_path / "m.json"
    assert main(["measure", "--ct", str(path), "--mask", str(mask_path), "--json", str(out)]) == 0
    nodules = json.loads(out.read_text())["nodules"]
    assert len(nodules) == 1
    assert nodules[0]["volume_mm3"] == pytest.approx(truth.sum() * np.prod(ct.spacing))
    assert np.allclose(nodules[0]["centroid_lps_mm"], ct.index_to_world(np.argwhere(truth).mean(axis=0)[::-1]))
    lung = tmp_path / "lung.nii.gz"
    x = ct.index_to_world(np.argwhere(np.ones(ct.shape_kji, bool))[:, ::-1].astype(float))[:, 0]
    write_volume(ct.with_array((x.reshape(ct.shape_kji) >= ct.origin[0] + 12.0).astype(np.uint8)), lung)
    capsys.readouterr()
    assert main(["measure", "--ct", str(path), "--mask", str(mask_path), "--lung-mask", str(lung)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["nodules"][0]["pleural_distance_mm"] == pytest.approx(0.0, abs=0.8)  # juxta-pleural
    assert main(["measure", "--ct", str(tmp_path / "none.nii.gz"), "--mask", str(mask_path)]) == 2
