"""``nodsynth augment`` and ``nodsynth labelmap`` on the demo patient's files."""
from __future__ import annotations

import csv
import json
from functools import lru_cache

import numpy as np
import pytest

from nodsynth.cli.main import main
from nodsynth.labelmap import load_labelmap
from nodsynth.labels import LOBE_IDS, NODULE
from nodsynth.phantom import make_demo_patient
from nodsynth.io.volume_files import read_volume, write_volume


@lru_cache(maxsize=1)
def demo():
    return make_demo_patient(0)


@pytest.fixture
def demo_files(tmp_path):
    patient = demo()
    paths = {"label": write_volume(patient.labelmap, tmp_path / "in" / "case_a.nii.gz"),
             "ct": write_volume(patient.ct, tmp_path / "in" / "ct.nii.gz")}
    return tmp_path, paths


def read_rows(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_single_file_series(demo_files):
    tmp, paths = demo_files
    out = tmp / "out"
    assert main(["augment", str(paths["label"]), "--series", "100,80,60", "--out", str(out)]) == 0
    maps = [load_labelmap(out / f"case_a_p{p}.nii.gz").array for p in (100, 80, 60)]
    original = demo().labelmap.array
    assert np.array_equal(maps[0], original)
    assert np.all(maps[1][maps[2] == NODULE] == NODULE) and np.all(original[maps[1] == NODULE] == NODULE)
    changed = maps[2] != original
    assert np.all(original[changed] == NODULE) and np.all(np.isin(maps[2][changed], LOBE_IDS))
    rows = read_rows(out / "augment_stats.csv")
    assert len(rows) == 3 * len(demo().nodules)
    for row in rows:
        target = float(row["target_percent"])
        before, after = int(row["voxels_before"]), int(row["voxels_after"])
        assert abs(after - before * target / 100) <= 1
    assert np.array_equal(load_labelmap(paths["label"]).array, original), "the input is never overwritten"


def test_dataset_json_and_resume(demo_files, capsys):
    tmp, paths = demo_files
    second = tmp / "in" / "case_b.nii.gz"
    second.write_bytes(paths["label"].read_bytes())
    dataset = tmp / "dataset.json"
    dataset.write_text(json.dumps({"training": [{"label": "in/case_a.nii.gz"}, {"label": "in/case_b.nii.gz"}]}))
    out = tmp / "out"
    args = ["augment", str(dataset), "--percent", "50", "--nodule", "1", "--out", str(out)]
    assert main(args) == 0
    first_mtime = (out / "case_a_p50.nii.gz").stat().st_mtime_ns
    rows = read_rows(out / "augment_stats.csv")
    assert [r["case"] for r in rows] == ["case_a", "case_b"]
    assert main(args) == 0
    assert "2 skipped" in capsys.readouterr().out
    assert (out / "case_a_p50.nii.gz").stat().st_mtime_ns == first_mtime


def test_csv_manifest_with_a_bad_entry(demo_files):
    tmp, paths = demo_files
    manifest = tmp / "list.csv"
    manifest.write_text("label\nin/case_a.nii.gz\nin/missing.nii.gz\n")
    out = tmp / "out"
    assert main(["augment", str(manifest), "--percent", "150", "--out", str(out)]) == 1
    assert (out / "case_a_p150.nii.gz").is_file()
    assert not list(out.glob("missing*"))


@pytest.mark.parametrize("extra", [["--percent", "0"], ["--percent", "301"], ["--series", "100,-5"],
                                   ["--percent", "50", "--nodule", "9"]])
def test_bad_requests_write_nothing(demo_files, extra, capsys):
    tmp, paths = demo_files
    out = tmp / "out"
    assert main(["augment", str(paths["label"]), "--out", str(out), *extra]) == 2
    assert "error" in capsys.readouterr().err
    assert not out.exists() or not any(out.iterdir())


def test_non_integer_and_nodule_free_maps_write_nothing(demo_files, capsys):
    tmp, paths = demo_files
    labels = demo().labelmap
    fractional = labels.array.astype(np.float32)
    fractional[5, 5, 5] = 1.5
    write_volume(labels.with_array(fractional), tmp / "frac.nii.gz")
    write_volume(labels.with_array(np.where(labels.array == NODULE, 30, labels.array).astype(np.uint8)),
                 tmp / "clean.nii.gz")
    for name, message in (("frac.nii.gz", "non-integer"), ("clean.nii.gz", "no nodule")):
        out = tmp / f"out_{name}"
        assert main(["augment", str(tmp / name), "--percent", "50", "--out", str(out)]) == 2
        assert message in capsys.readouterr().err
        assert not out.exists() or not any(out.iterdir())


def test_labelmap_build_and_validate(demo_files, capsys):
    tmp, paths = demo_files
    patient = demo()
    organs = np.where(np.isin(patient.labelmap.array, [200, NODULE]), 0, patient.labelmap.array).astype(np.uint8)
    write_volume(patient.labelmap.with_array(organs), tmp / "organs.nii.gz")
    write_volume(patient.nodules[0].mask, tmp / "nodule.nii.gz")
    built = tmp / "built.nii.gz"
    assert main(["labelmap", "build", "--ct", str(paths["ct"]), "--organs", str(tmp / "organs.nii.gz"),
                 "--nodule", str(tmp / "nodule.nii.gz"), "--nodule-margin-mm", "0", "--out", str(built)]) == 0
    result = read_volume(built).array
    assert np.array_equal(result == NODULE, patient.nodules[0].mask.array > 0)
    assert main(["labelmap", "validate", str(built), "--ct", str(paths["ct"])]) == 0
    assert "valid MAISI label map" in capsys.readouterr().out
    shifted = patient.ct.copy()
    shifted.origin = shifted.origin + 3.0
    write_volume(shifted, tmp / "ct_shifted.nii.gz")
    assert main(["labelmap", "validate", str(built), "--ct", str(tmp / "ct_shifted.nii.gz")]) == 2
    assert "same voxel grid" in capsys.readouterr().err
    assert main(["labelmap", "build", "--ct", str(tmp / "ct_shifted.nii.gz"), "--organs",
                 str(tmp / "organs.nii.gz"), "--out", str(tmp / "never.nii.gz")]) == 2
    assert not (tmp / "never.nii.gz").exists()


def test_labelmap_build_expands_nodules_by_2_mm_as_nodmaisi_was_trained(demo_files):
    """NodMAISI's ControlNet was trained on label maps whose nodule masks were expanded by 2 mm
    (their folder: vista3Dauto_seg_knneX2mm_GTV_512xy_256z_771p25m); the builder does the same by default."""
    from scipy import ndimage

    tmp, paths = demo_files
    patient = demo()
    organs = np.where(np.isin(patient.labelmap.array, [200, NODULE]), 0, patient.labelmap.array).astype(np.uint8)
    write_volume(patient.labelmap.with_array(organs), tmp / "organs.nii.gz")
    drawn = patient.nodules[0].mask.array > 0
    write_volume(patient.nodules[0].mask, tmp / "nodule.nii.gz")
    built = tmp / "built.nii.gz"
    assert main(["labelmap", "build", "--ct", str(paths["ct"]), "--organs", str(tmp / "organs.nii.gz"),
                 "--nodule", str(tmp / "nodule.nii.gz"), "--out", str(built)]) == 0
    result = read_volume(built).array
    within_2mm = ndimage.distance_transform_edt(~drawn, sampling=patient.ct.spacing[::-1]) <= 2.0
    assert np.array_equal(result == NODULE, within_2mm & (result != 0))
    assert (result == NODULE).sum() > 1.5 * drawn.sum()
    assert main(["labelmap", "validate", str(built), "--ct", str(paths["ct"])]) == 0
