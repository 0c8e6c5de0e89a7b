"""Issue 26 (5): the headless batch scripts take a DICOM CT series folder (or ``FOLDER::SERIES_INSTANCE_UID``)
wherever they take a CT, and give the same result as from the NRRD of the same CT. The series is written
by an independent writer (pydicom directly, :mod:`dicom_series_writer`)."""
from __future__ import annotations

import numpy as np
import pytest

from nodsynth.io.volume_files import read_volume, write_volume
from test_batch_scripts import run_batch, write_csv

pytest.importorskip("pydicom", reason="pydicom is not installed (pip install 'nodsynth[dicom]')")


@pytest.fixture(scope="module")
def inputs(patient, tmp_path_factory):
    """The demo CT as NRRD and as a DICOM series (with its UID), its label map and an edited label map."""
    from dicom_series_writer import write_series
    from nodsynth.augment import resize_nodule

    folder = tmp_path_factory.mktemp("batch_dicom")
    write_volume(patient.ct, folder / "patient.nrrd")
    uid = write_series(patient.ct, folder / "patient")
    write_volume(patient.labelmap, folder / "labels.nrrd")
    write_volume(resize_nodule(patient.labelmap, 1, 60.0).labelmap, folder / "edited.nrrd")
    return folder, uid


def same(a, b) -> None:
    assert a.array.shape == b.array.shape and np.array_equal(a.array, b.array)
    assert np.allclose(a.origin, b.origin, atol=1e-4) and np.allclose(a.spacing, b.spacing, atol=1e-6)
    assert np.allclose(a.direction, b.direction, atol=1e-6)


def test_inpaint_batch_gives_the_same_ct_from_the_dicom_folder(patient, inputs, tmp_path):
    folder, uid = inputs
    centre = np.round(patient.nodules[0].center_lps + [25.0, 0.0, 0.0], 2)
    header = ["case_id", "ct", "lung", "coordX", "coordY", "coordZ", "diameter_mm"]
    placements = write_csv(tmp_path / "placements.csv", header, [
        ["nrrd", folder / "patient.nrrd", folder / "labels.nrrd", *centre, 8],
        ["dicom", folder / "patient", folder / "labels.nrrd", *centre, 8],
        ["dicom_uid", f"{folder / 'patient'}::{uid}", folder / "labels.nrrd", *centre, 8]])
    out = tmp_path / "inserted"
    assert run_batch("hrldminpaint_batch.py", "--placements", placements, "--engine", "classic", "--out-dir", out) == 0
    reference = read_volume(out / "nrrd.nii.gz")
    assert np.any(reference.array != patient.ct.array)
    for case in ("dicom", "dicom_uid"):
        same(read_volume(out / f"{case}.nii.gz"), reference)
        same(read_volume(out / f"{case}_mask.nii.gz"), read_volume(out / "nrrd_mask.nii.gz"))


def test_roi_edit_and_augment_render_batches_give_the_same_ct_from_the_dicom_folder(inputs, tmp_path):
    folder, _ = inputs
    results = {}
    for name, ct in (("nrrd", folder / "patient.nrrd"), ("dicom", folder / "patient")):
        edits = write_csv(tmp_path / f"{name}_edits.csv", ["ct", "labelmap", "edited"],
                          [[ct, folder / "labels.nrrd", folder / "edited.nrrd"]])
        assert run_batch("nodmaisi_batch.py", "--mode", "edit", "--cases", edits, "--engine", "classic",
                         "--out-dir", tmp_path / f"{name}_edit") == 0
        maps = write_csv(tmp_path / f"{name}_maps.csv", ["labelmap", "ct"], [[folder / "labels.nrrd", ct]])
        assert run_batch("lesionaugment_batch.py", "--labelmaps", maps, "--series", "60", "--nodule-id", "1",
                         "--render", "classic", "--out-dir", tmp_path / f"{name}_aug") == 0
        results[name] = (read_volume(tmp_path / f"{name}_edit" / "edited_edit.nii.gz"),
                         read_volume(tmp_path / f"{name}_aug" / "labels_p60_ct.nii.gz"))
    for nrrd, dicom in zip(results["nrrd"], results["dicom"]):
        same(dicom, nrrd)


def test_segmentation_batch_names_a_chosen_series_after_its_folder_and_uid(patient, inputs, tmp_path):
    """``FOLDER::UID`` in the CSV: the mask is ``<folder>_<uid>_<nodule>.nii.gz``, not a name cut at the UID's dots."""
    folder, uid = inputs
    centre = np.round(patient.nodules[0].center_lps, 2)
    table = write_csv(tmp_path / "pins.csv", ["ct_nifti_file", "nodule_id", "coordX", "coordY", "coordZ"],
                      [[f"patient::{uid}", "n0", *centre], ["patient.nrrd", "n0", *centre]])
    out = tmp_path / "masks"
    assert run_batch("pseudonoduleseg_batch.py", "--csv", table, "--ct-dir", folder, "--out-dir", out) == 0
    same(read_volume(out / f"patient_{uid}_n0.nii.gz"), read_volume(out / "patient_n0.nii.gz"))


@pytest.mark.parametrize("script", ["pseudonoduleseg_batch.py", "lesionaugment_batch.py", "nodmaisi_batch.py",
                                    "hrldminpaint_batch.py"])
def test_every_script_says_it_takes_dicom_series_folders(script, capsys):
    assert run_batch(script, "--help") == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "DICOM series folder: FOLDER or FOLDER::SERIES_INSTANCE_UID" in text and "DICOM SEG" in text
