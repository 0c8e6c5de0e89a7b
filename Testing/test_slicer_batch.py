"""The pure parts of the headless-Slicer batch script Resources/Scripts/pseudonoduleseg_batch.py."""
from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path

import pytest

from conftest import shared_path
from NodMAISICommon.batch import read_earlier_rows

SCRIPT = Path(__file__).resolve().parent.parent / "Resources" / "Scripts" / "pseudonoduleseg_batch.py"


@pytest.fixture(scope="module")
def batch():
    spec = importlib.util.spec_from_file_location("pseudonoduleseg_batch", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # main() is guarded: importing runs nothing
    return module


def test_reads_the_real_lidc_nodule_table_grouped_by_ct(batch, tmp_path):
    """nodules.csv of the LIDC VOIs rewritten with the PiNS column names: every row comes back, by CT."""
    source = shared_path("lidc_vois", "nodules.csv")
    with open(source, newline="") as handle:
        rows = list(csv.DictReader(handle))[:25]
    pins = tmp_path / "annotations.csv"
    with open(pins, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ct_nifti_file", "nodule_id", "coordX", "coordY", "coordZ", "w", "h", "d"])
        for i, row in enumerate(rows):
            writer.writerow([row["file"], i, row["coordX"], row["coordY"], row["coordZ"], 10, 10, 10])
    grouped, lungs = batch.read_annotations(pins)
    assert set(lungs.values()) == {None}
    assert sum(len(v) for v in grouped.values()) == len(rows)
    first = grouped[rows[0]["file"]][0]
    assert first[0] == "0" and first[1] == pytest.approx(tuple(float(rows[0][c]) for c in ("coordX", "coordY", "coordZ")))


@pytest.mark.parametrize("text, message", [
    ("ct_nifti_file,nodule_id,coordX,coordY\na.nii.gz,1,0,0\n", "coordZ"),
    ("ct_nifti_file,nodule_id,coordX,coordY,coordZ\na.nii.gz,1,0,x,0\n", "line 2"),
    ("ct_nifti_file,nodule_id,coordX,coordY,coordZ\na.nii.gz,../../etc,0,0,0\n", "nodule_id"),
])
def test_bad_annotation_files_are_refused(batch, tmp_path, text, message):
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):  # InputError is a ValueError
        batch.read_annotations(path)


def test_output_names_and_measurement_csv(batch, tmp_path):
    assert batch.mask_path(tmp_path, "LIDC-IDRI-0001.nii.gz", "3") == tmp_path / "LIDC-IDRI-0001_3.nii.gz"
    assert batch.mask_path(tmp_path, "sub/case.nrrd", "n1").name == "case_n1.nii.gz"
    text = batch.measurements_csv_text([{"nodule": "Nodule 1", "volume_mm3": 5.5, "centroid_lps": [1, 2, 3]},
                                        {"nodule": "Nodule 2", "lobe": "left lung upper lobe"}])
    rows = list(csv.DictReader(io.StringIO(text)))
    assert rows[0]["centroid_lps"] == "1;2;3" and rows[1]["lobe"] == "left lung upper lobe" and rows[1]["volume_mm3"] == ""
    (tmp_path / "measurements.csv").write_text(text)
    assert read_earlier_rows(tmp_path / "measurements.csv")[1]["nodule"] == "Nodule 2"
    assert read_earlier_rows(tmp_path / "missing.csv") == []


def test_a_row_longer_than_the_header_is_refused(batch, tmp_path):
    path = tmp_path / "long.csv"
    path.write_text("ct_nifti_file,nodule_id,coordX,coordY,coordZ\na.nii.gz,1,0,0,0,extra\n")
    with pytest.raises(ValueError, match="line 2: 6 cells, but the header names 5 columns"):
        batch.read_annotations(path)
