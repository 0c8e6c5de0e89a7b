"""Batch ops that write a CT can write it as DICOM (``"output_format": "dicom"``): the output path is a folder
that becomes a synthetic CT series by ``nodsynth dicom export``'s writer, judged by dicom3tools' ``dciodvfy`` (no
Error line for any slice), the same voxels (integer HU) and geometry as the NIfTI the same job writes, moved into
place whole, recorded, and skipped on a rerun."""
from __future__ import annotations

import json

import numpy as np
import pytest

from batch_cases import inpaint_row, write_inputs, write_manifest
from nodsynth.batch import check_manifest, run_manifest
from nodsynth.errors import InputError
from nodsynth.io.volume_files import read_volume

pydicom = pytest.importorskip("pydicom", reason="pydicom is not installed (pip install 'nodsynth[dicom]')")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    return write_inputs(tmp_path_factory.mktemp("batch_dicom_inputs"))


def rows(inputs: dict, dicom_ct: str) -> list[dict]:
    """The same classic inpaint (same seed) written as NIfTI and as DICOM."""
    volume = inpaint_row("ins-volume", str(inputs["ct"]), str(inputs["labelmap"]), 3, "out")
    dicom = inpaint_row("ins-dicom", str(inputs["ct"]), str(inputs["labelmap"]), 3, "out")
    dicom["params"]["output_format"] = "dicom"
    dicom["outputs"]["ct"] = dicom_ct
    return [volume, dicom]


def test_an_inpaint_job_writes_a_valid_synthetic_dicom_series_with_the_niftis_voxels(tmp_path, inputs):
    from dicom_series_writer import dicom_errors, tool

    dciodvfy = tool("dciodvfy")
    manifest = write_manifest(tmp_path / "manifest.jsonl", rows(inputs, "out/inpaint/ins-dicom_ct"))
    summary = run_manifest(manifest, executor="inline")
    assert summary.ok, summary
    series, volume = tmp_path / "out" / "inpaint" / "ins-dicom_ct", tmp_path / "out" / "inpaint" / "ins-volume.nii.gz"
    slices = sorted(series.iterdir())
    assert len(slices) == read_volume(inputs["ct"]).shape_kji[0]
    for path in slices:
        assert dicom_errors([dciodvfy, str(path)]) == [], path.name
    back, expected = read_volume(series), read_volume(volume)
    assert np.array_equal(back.array, np.rint(expected.array))
    assert np.allclose(back.origin, expected.origin, atol=1e-4)
    assert np.allclose(back.spacing, expected.spacing, atol=1e-4)
    assert np.allclose(back.direction, expected.direction, atol=1e-6)
    header = pydicom.dcmread(slices[0], stop_before_pixels=True)
    assert "SYNTHETIC" in header.SeriesDescription and str(header.PatientID).startswith("SYN-")
    assert "engine classic" in header.DerivationDescription and header.DerivationDescription.endswith("seed 3")
    record = json.loads(next(tmp_path.rglob(".records/*/ins-dicom.json")).read_text())
    assert record["outputs"]["ct"]["files"] == len(slices)
    assert not list(series.parent.glob(f".{series.name}*"))  # nothing moved aside or copied left beside it
    assert run_manifest(manifest, executor="inline").ran == []  # done: the series folder counts as the output
    changed = rows(inputs, "out/inpaint/ins-dicom_ct")
    changed[1]["seed"] = 4
    assert run_manifest(write_manifest(manifest, changed), executor="inline").ran == ["ins-dicom"]
    again = [pydicom.dcmread(p, stop_before_pixels=True) for p in sorted(series.iterdir())]
    assert len(again) == len(slices) and {str(h.SeriesInstanceUID) for h in again} != {str(header.SeriesInstanceUID)}
    assert len({str(h.SeriesInstanceUID) for h in again}) == 1  # the earlier series replaced whole
    assert again[0].DerivationDescription.endswith("seed 4")
    assert not list(series.parent.glob(f".{series.name}*"))


def test_a_dicom_output_named_as_a_file_is_refused_before_anything_runs(tmp_path, inputs):
    manifest = write_manifest(tmp_path / "manifest.jsonl", rows(inputs, "out/inpaint/ins-dicom.nii.gz"))
    with pytest.raises(InputError) as info:
        check_manifest(manifest)
    assert "output 'ct' is written as a DICOM series, a folder: name it without a suffix (got ins-dicom.nii.gz)" in str(
        info.value)
    assert not (tmp_path / "out" / "inpaint").exists()


def test_batch_plan_names_a_dicom_ct_output_as_a_folder(tmp_path, inputs):
    from nodsynth.batch.plan import plan_jobs

    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"inputs": {"ct": [str(inputs["ct"])], "labelmap": [str(inputs["labelmap"])]},
                                "steps": [{"op": "inpaint", "seeds": [0], "outputs": ["ct", "mask"],
                                           "params": {"sample": "inner", "output_format": "dicom"}}]}))
    job, = plan_jobs(spec)
    assert job.outputs["ct"].name == "ct_s0_ct" and job.outputs["mask"].name == "ct_s0_mask.nii.gz"
