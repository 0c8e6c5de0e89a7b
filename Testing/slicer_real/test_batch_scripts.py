"""The headless batch scripts, run as ``Slicer --python-script`` runs them (``__main__``, arguments after
``--``): each ends through ``slicer.util.exit`` on every path; a missing CT, an unreadable file or
volumes on different grids fail that case only (listed in failed.csv, nothing of it written) and the
run ends non-zero; a bad CSV row stops the run before anything is written; a re-run skips finished cases."""
from __future__ import annotations

import csv
import runpy
import sys
from pathlib import Path

import numpy as np
import pytest

import slicer
import slicer_harness
from nodsynth.io.volume_files import read_volume, write_volume

SCRIPTS = slicer_harness.REPO / "Resources" / "Scripts"


def run_batch(script: str, *args: str) -> int:
    """Run a batch script as Slicer does; returns the status it gave ``slicer.util.exit`` (it must give one)."""
    saved = sys.argv
    sys.argv = [str(SCRIPTS / script), "--", *[str(a) for a in args]]
    try:
        runpy.run_path(str(SCRIPTS / script), run_name="__main__")
    finally:
        sys.argv = saved
    exits = list(slicer.app._exit_calls)
    slicer.app._exit_calls.clear()
    assert len(exits) == 1, f"{script} called slicer.util.exit {len(exits)} times: Slicer would hang or exit twice"
    return exits[0]


@pytest.fixture(scope="module")
def data(patient, tmp_path_factory):
    """The demo patient as files, an unreadable 'CT' and volumes on another grid."""
    folder = tmp_path_factory.mktemp("batch_inputs")
    write_volume(patient.ct, folder / "patient.nii.gz")
    write_volume(patient.labelmap, folder / "patient_labels.nii.gz")
    (folder / "broken.nii.gz").write_bytes(b"this is not a NIfTI file")
    k = patient.ct.shape_kji[0] // 2
    write_volume(patient.ct.crop((0, 0, 0), (k, *patient.ct.shape_kji[1:])), folder / "half_ct.nii.gz")
    write_volume(patient.labelmap.crop((0, 0, 0), (k, *patient.labelmap.shape_kji[1:])), folder / "half_labels.nii.gz")
    from nodsynth.augment import resize_nodule

    write_volume(resize_nodule(patient.labelmap, 1, 60.0).labelmap, folder / "edited_labels.nii.gz")
    return folder


def write_csv(path: Path, header: list, rows: list) -> Path:
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def failed_cases(out: Path) -> dict:
    with open(out / "failed.csv", newline="") as handle:
        return {row["case"]: row["error"] for row in csv.DictReader(handle)}


def files(folder: Path) -> set:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


# ----------------------------------------------------------------------------------------- segment
def test_segmentation_batch(patient, data, tmp_path, capsys):
    rows = [["patient.nii.gz", f"n{i}", *np.round(n.center_lps, 2), "patient_labels.nii.gz"]
            for i, n in enumerate(patient.nodules[:2])]
    rows += [["missing.nii.gz", "m1", 0, 0, 0, ""], ["broken.nii.gz", "b1", 0, 0, 0, ""]]
    rows += [["half_ct.nii.gz", "g1", *np.round(patient.nodules[0].center_lps, 2), "patient_labels.nii.gz"]]
    table = write_csv(tmp_path / "pins.csv", ["ct_nifti_file", "nodule_id", "coordX", "coordY", "coordZ", "lung_file"],
                      rows)
    out = tmp_path / "masks"
    assert run_batch("pseudonoduleseg_batch.py", "--csv", table, "--ct-dir", data, "--out-dir", out) == 1
    assert files(out) == {"patient_n0.nii.gz", "patient_n1.nii.gz", "measurements.csv", "failed.csv"}
    failed = failed_cases(out)
    assert "no such file" in failed["missing.nii.gz"] and "cannot read" in failed["broken.nii.gz"]
    assert "grid" in failed["half_ct.nii.gz"]
    mask = read_volume(out / "patient_n0.nii.gz").array > 0
    assert 2 * (mask & (patient.nodules[0].mask.array > 0)).sum() / (mask.sum() + (patient.nodules[0].mask.array > 0).sum()) >= 0.9
    with open(out / "measurements.csv", newline="") as handle:
        measured = list(csv.DictReader(handle))
    assert [r["nodule_id"] for r in measured] == ["n0", "n1"] and all(r["lobe_name"] for r in measured)

    capsys.readouterr()
    assert run_batch("pseudonoduleseg_batch.py", "--csv", table, "--ct-dir", data, "--out-dir", out) == 1
    assert "patient.nii.gz: done before, skipped" in capsys.readouterr().out

    bad = write_csv(tmp_path / "bad.csv", ["ct_nifti_file", "nodule_id", "coordX", "coordY", "coordZ"],
                    [rows[0][:5], ["patient.nii.gz", "x", "12", "not-a-number", "3"]])
    assert run_batch("pseudonoduleseg_batch.py", "--csv", bad, "--ct-dir", data, "--out-dir", tmp_path / "bad") == 2
    assert "line 3: coordinates must be numbers" in capsys.readouterr().err
    assert not (tmp_path / "bad").exists()


def test_segmentation_batch_reads_a_dicom_series_folder_as_its_nifti(patient, data, tmp_path):
    pytest.importorskip("pydicom", reason="pydicom is not installed (pip install 'nodsynth[dicom]')")
    from dicom_series_writer import write_series

    write_series(patient.ct, tmp_path / "cts" / "patient")
    centre = np.round(patient.nodules[0].center_lps, 2)
    masks = {}
    for name, ct_dir, ct in (("nifti", data, "patient.nii.gz"), ("dicom", tmp_path / "cts", "patient")):
        table = write_csv(tmp_path / f"{name}.csv", ["ct_nifti_file", "nodule_id", "coordX", "coordY", "coordZ"],
                          [[ct, "n0", *centre]])
        out = tmp_path / name
        assert run_batch("pseudonoduleseg_batch.py", "--csv", table, "--ct-dir", ct_dir, "--out-dir", out) == 0
        masks[name] = read_volume(out / "patient_n0.nii.gz")
    assert masks["nifti"].array.any() and np.array_equal(masks["nifti"].array, masks["dicom"].array)
    assert np.allclose(masks["nifti"].origin, masks["dicom"].origin, atol=1e-4)


def test_an_uncaught_exception_still_ends_slicer(data, tmp_path, monkeypatch, capsys):
    from PseudoNoduleSeg import PseudoNoduleSegLogic

    def broken(self):
        raise RuntimeError("a bug")

    monkeypatch.setattr(PseudoNoduleSegLogic, "getParameterNode", broken)
    table = write_csv(tmp_path / "pins.csv", ["ct_nifti_file", "nodule_id", "coordX", "coordY", "coordZ"],
                      [["patient.nii.gz", "1", 0, 0, 0]])
    assert run_batch("pseudonoduleseg_batch.py", "--csv", table, "--ct-dir", data, "--out-dir", tmp_path / "o") == 3
    assert "RuntimeError: a bug" in capsys.readouterr().err


# ----------------------------------------------------------------------------------------- augment
def test_augment_series_batch_with_model_free_render(data, tmp_path, capsys):
    cases = write_csv(tmp_path / "cases.csv", ["labelmap", "ct"], [
        [data / "patient_labels.nii.gz", data / "patient.nii.gz"],
        [data / "missing_labels.nii.gz", data / "patient.nii.gz"],
        [data / "half_labels.nii.gz", data / "patient.nii.gz"]])  # grids differ
    out = tmp_path / "aug"
    args = ("--labelmaps", cases, "--series", "80,60", "--nodule-id", "1", "--out-dir", out, "--render", "classic")
    assert run_batch("lesionaugment_batch.py", *args) == 1
    assert files(out) == {"patient_labels_p80.nii.gz", "patient_labels_p80_ct.nii.gz", "patient_labels_p60.nii.gz",
                          "patient_labels_p60_ct.nii.gz", "augment_stats.csv", "failed.csv"}
    failed = failed_cases(out)
    assert "no such file" in failed["missing_labels.nii.gz"] and "grid" in failed["half_labels.nii.gz"]
    capsys.readouterr()
    assert run_batch("lesionaugment_batch.py", *args) == 1
    assert "patient_labels.nii.gz: done before, skipped" in capsys.readouterr().out

    bad = write_csv(tmp_path / "bad.csv", ["labelmap", "ct"], [[data / "patient_labels.nii.gz", ""]])
    assert run_batch("lesionaugment_batch.py", "--labelmaps", bad, "--series", "50", "--out-dir", tmp_path / "bad",
                     "--render", "classic") == 2
    assert "line 2: empty ct" in capsys.readouterr().err and not (tmp_path / "bad").exists()


# ----------------------------------------------------------------------------------------- ROI edit
def test_roi_edit_batch(data, tmp_path, capsys):
    cases = write_csv(tmp_path / "edits.csv", ["ct", "labelmap", "edited"], [
        [data / "patient.nii.gz", data / "patient_labels.nii.gz", data / "edited_labels.nii.gz"],
        [data / "broken.nii.gz", data / "patient_labels.nii.gz", data / "patient_labels.nii.gz"],
        [data / "patient.nii.gz", data / "patient_labels.nii.gz", data / "half_labels.nii.gz"]])
    out = tmp_path / "edited"
    args = ("--mode", "edit", "--cases", cases, "--engine", "classic", "--out-dir", out)
    assert run_batch("nodmaisi_batch.py", *args) == 1
    assert files(out) == {"edited_labels_edit.nii.gz", "failed.csv"}
    failed = failed_cases(out)
    assert "cannot read" in failed["patient_labels_edit.nii.gz"] and "grid" in failed["half_labels_edit.nii.gz"]
    capsys.readouterr()
    assert run_batch("nodmaisi_batch.py", *args) == 1
    assert "edited_labels_edit.nii.gz: done before, skipped" in capsys.readouterr().out
    bad = write_csv(tmp_path / "bad.csv", ["ct", "labelmap"], [[data / "patient.nii.gz", data / "patient_labels.nii.gz"]])
    assert run_batch("nodmaisi_batch.py", "--mode", "edit", "--cases", bad, "--engine", "classic",
                     "--out-dir", tmp_path / "bad") == 2
    assert "lacks the column(s) edited" in capsys.readouterr().err and not (tmp_path / "bad").exists()


# ----------------------------------------------------------------------------------------- inpaint
def test_inpaint_batch_from_a_placement_csv(patient, data, tmp_path, capsys):
    header = ["case_id", "ct", "lung", "sample", "coordX", "coordY", "coordZ", "diameter_mm", "subtype"]
    centre = np.round(patient.nodules[0].center_lps, 2)
    placements = write_csv(tmp_path / "placements.csv", header, [
        ["sampled", data / "patient.nii.gz", data / "patient_labels.nii.gz", "inner", "", "", "", 8, "solid"],
        ["clicked", data / "patient.nii.gz", "", "", *centre, 6, "ground-glass"],
        ["missing", data / "nope.nii.gz", "", "inner", "", "", "", 8, "solid"],
        ["broken", data / "broken.nii.gz", "", "inner", "", "", "", 8, "solid"],
        ["grids", data / "patient.nii.gz", data / "half_labels.nii.gz", "inner", "", "", "", 8, "solid"]])
    out = tmp_path / "inserted"
    args = ("--placements", placements, "--engine", "classic", "--out-dir", out)
    assert run_batch("hrldminpaint_batch.py", *args) == 1
    assert files(out) == {"sampled.nii.gz", "sampled_mask.nii.gz", "clicked.nii.gz", "clicked_mask.nii.gz", "failed.csv"}
    failed = failed_cases(out)
    assert "no such file" in failed["missing"] and "cannot read" in failed["broken"] and "grid" in failed["grids"]
    inserted = read_volume(out / "sampled_mask.nii.gz").array > 0
    assert inserted.any() and read_volume(out / "sampled.nii.gz").array[inserted].mean() > patient.ct.array[inserted].mean() + 200
    capsys.readouterr()
    assert run_batch("hrldminpaint_batch.py", *args) == 1
    assert "sampled: done before, skipped" in capsys.readouterr().out
    bad = write_csv(tmp_path / "bad.csv", header, [["x", data / "patient.nii.gz", "", "middle", "", "", "", 8, "solid"]])
    assert run_batch("hrldminpaint_batch.py", "--placements", bad, "--engine", "classic", "--out-dir", tmp_path / "b") == 2
    assert "line 2: sample must be inner or subpleural" in capsys.readouterr().err and not (tmp_path / "b").exists()


# ----------------------------------------------------------------------------------------- manifests
@pytest.mark.parametrize("script", ["pseudonoduleseg_batch.py", "lesionaugment_batch.py", "nodmaisi_batch.py",
                                    "hrldminpaint_batch.py"])
def test_every_script_runs_a_batch_manifest_through_nodsynth_batch(script, data, tmp_path, capsys):
    """Issue 14 (6): ``--manifest`` runs the jobs with the code of ``nodsynth batch run`` (records, resume)."""
    import json

    rows = [{"id": "aug", "op": "augment", "inputs": {"labelmap": str(data / "patient_labels.nii.gz")},
             "params": {"percent": 60, "nodule": "1"}, "seed": 0, "outputs": {"labelmap": "out/aug.nii.gz"}},
            {"id": "ins", "op": "inpaint", "inputs": {"ct": str(data / "patient.nii.gz"),
                                                     "labelmap": str(data / "patient_labels.nii.gz")},
             "params": {"sample": "inner", "diameter_mm": 8, "subtype": "solid", "engine": "classic"}, "seed": 1,
             "outputs": {"ct": "out/ins.nii.gz", "mask": "out/ins_mask.nii.gz"}}]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert run_batch(script, "--manifest", manifest) == 0
    assert files(tmp_path / "out") >= {"aug.nii.gz", "ins.nii.gz", "ins_mask.nii.gz"}
    assert {p.stem for p in (tmp_path / "out" / ".records").glob("*/*.json")} == {"aug", "ins"}
    capsys.readouterr()
    assert run_batch(script, "--manifest", manifest) == 0
    assert "skipped" in capsys.readouterr().out
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**rows[0], "op": "resample", "outputs": {"labelmap": "bad/x.nii.gz"}}) + "\n")
    assert run_batch(script, "--manifest", bad) == 2
    assert "unknown op 'resample'" in capsys.readouterr().err and not (tmp_path / "bad").exists()
