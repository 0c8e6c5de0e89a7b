"""Reading a folder holding a DICOM CT series wherever a CT is taken (the one reader, read_volume).

Series the project did not write: the real LIDC slabs written by pydicom by hand in
Testing/dicom_series_writer.py, and the series shipped in pydicom's wheel (dicomdirtests). SimpleITK's
series reader is the geometry judge where it reads a series correctly; the faults it misreads (a gap, a
tilt) must be refused. A SEG written by dcmqi's itkimage2segimage (what Slicer's QuantitativeReporting
writes with) is read as a label map on its CT's grid.
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import shared_path
from dicom_series_writer import tool, write_decoy_seg, write_series
from nodsynth.cli.main import main
from nodsynth.errors import InputError
from nodsynth.io.volume_files import read_volume, read_volume_grid

SLAB = "LIDC-IDRI-0001"


def _dicomdirtests(*parts: str) -> Path:
    import pydicom.data

    folder = Path(pydicom.data.get_testdata_file("dicomdirtests/DICOMDIR")).parent.joinpath(*parts)
    if not folder.is_dir():
        pytest.skip(f"pydicom's wheel does not ship {folder}")
    return folder


@pytest.fixture(scope="module")
def slab(tmp_path_factory):
    """(the slab read from NRRD, its mask path, the folder holding it as DICOM written by pydicom)."""
    folder = shared_path("lidc_slabs")
    ct = read_volume(folder / f"{SLAB}_slab.nrrd")
    dicom = tmp_path_factory.mktemp("slab") / "series"
    write_series(ct, dicom)
    write_decoy_seg(dicom)
    return ct, folder / f"{SLAB}_slab_nodule_2of4.nrrd", dicom


@pytest.mark.shared_data
def test_real_slab_folder_reads_as_the_nrrd(slab):
    ct, _, dicom = slab
    read = read_volume(dicom)
    assert read.array.dtype.kind == "i" and np.array_equal(read.array, ct.array)
    assert np.allclose(read.spacing, ct.spacing, atol=1e-4) and np.allclose(read.origin, ct.origin, atol=1e-4)
    assert np.allclose(read.direction, ct.direction, atol=1e-6)
    assert read_volume_grid(dicom).shape_kji == ct.shape_kji


@pytest.mark.shared_data
def test_segment_measure_inpaint_and_histograms_give_the_same_output_from_the_folder(slab, tmp_path, capsys):
    ct, mask_path, dicom = slab
    mask = read_volume(mask_path).array > 0
    kji = np.argwhere(mask)
    centre = ct.index_to_world(kji[np.argmin(((kji - kji.mean(axis=0)) ** 2).sum(axis=1))][::-1].astype(float))
    point = "--point=" + ",".join(f"{v:.3f}" for v in centre)
    outputs = {}
    for name, source in (("nrrd", shared_path("lidc_slabs") / f"{SLAB}_slab.nrrd"), ("dicom", dicom)):
        assert main(["segment", "--ct", str(source), point, "--out", str(tmp_path / f"{name}.nrrd")]) == 0
        assert main(["measure", "--ct", str(source), "--mask", str(mask_path),
                     "--json", str(tmp_path / f"{name}.json")]) == 0
        assert main(["inpaint", "--ct", str(source), point, "--diameter-mm", "12", "--engine", "classic",
                     "--seed", "3", "--out", str(tmp_path / f"{name}_inpainted.nrrd")]) == 0
        assert main(["histograms", "from-mask", "--ct", str(source), "--mask", str(mask_path),
                     "--out", str(tmp_path / f"{name}_histogram.json")]) == 0
        outputs[name] = (read_volume(tmp_path / f"{name}.nrrd").array,
                         json.loads((tmp_path / f"{name}.json").read_text())["nodules"],
                         read_volume(tmp_path / f"{name}_inpainted.nrrd").array,
                         json.loads((tmp_path / f"{name}_histogram.json").read_text()))
    assert outputs["nrrd"][0].any() and np.array_equal(outputs["nrrd"][0], outputs["dicom"][0])
    assert outputs["nrrd"][1] == outputs["dicom"][1]
    assert not np.array_equal(outputs["nrrd"][2], ct.array) and np.array_equal(outputs["nrrd"][2], outputs["dicom"][2])
    assert outputs["nrrd"][3] == outputs["dicom"][3]


@pytest.mark.shared_data
@pytest.mark.parametrize("fault, expected", [
    (dict(remove_slice=7), "uneven slice spacing"),
    (dict(tilt_mm_per_slice=0.3), "gantry tilt"),
    (dict(odd_size_slice=3), "different sizes"),
])
def test_faulty_series_are_refused(slab, tmp_path, fault, expected):
    ct, _, _ = slab
    write_series(ct, tmp_path / "faulty", **fault)
    with pytest.raises(InputError, match=expected):
        read_volume(tmp_path / "faulty")
    assert main(["measure", "--ct", str(tmp_path / "faulty"), "--mask", str(slab[1])]) == 2


@pytest.mark.shared_data
def test_several_series_are_refused_and_one_is_named(slab, tmp_path):
    ct, _, _ = slab
    first = write_series(ct, tmp_path / "two" / "a")
    second = write_series(ct.with_array(ct.array[::-1].copy()), tmp_path / "two" / "b")
    with pytest.raises(InputError, match=f"2 CT series.*{first}|2 CT series.*{second}"):
        read_volume(tmp_path / "two")
    assert np.array_equal(read_volume(f"{tmp_path / 'two'}::{second}").array, ct.array[::-1])
    with pytest.raises(InputError, match="no CT series with SeriesInstanceUID 1.2.3"):
        read_volume(f"{tmp_path / 'two'}::1.2.3")


def test_pydicoms_even_series_reads_as_simpleitk_reads_it():
    import SimpleITK as sitk

    from nodsynth.volume import Volume

    folder = _dicomdirtests("98892001", "CT5N")
    reader = sitk.ImageSeriesReader()
    reader.SetFileNames(reader.GetGDCMSeriesFileNames(str(folder)))
    judge, read = Volume.from_sitk(reader.Execute()), read_volume(folder)
    assert read.shape_kji == (5, 16, 16) and np.array_equal(read.array, judge.array)
    assert np.allclose(read.spacing, judge.spacing, atol=1e-6) and np.allclose(read.origin, judge.origin, atol=1e-6)
    assert np.allclose(read.direction, judge.direction)


def test_pydicoms_series_with_a_gap_and_mixed_orientations_are_refused():
    with pytest.raises(InputError, match=r"uneven slice spacing.*202\.500 mm"):
        read_volume(_dicomdirtests("77654033", "CT2"))
    with pytest.raises(InputError, match="different orientations"):
        read_volume(_dicomdirtests("98892001", "CT2N"))
    with pytest.raises(InputError, match="no CT image series"):
        read_volume(_dicomdirtests("98892003"))  # MR only
    with pytest.raises(InputError, match="4 CT series"):
        read_volume(_dicomdirtests())


DCMQI_SEG_META = {
    "ContentCreatorName": "Reader1", "ClinicalTrialSeriesID": "Session1", "ClinicalTrialTimePointID": "1",
    "SeriesDescription": "Segmentation", "SeriesNumber": "300", "InstanceNumber": "1", "ContentLabel": "SEGMENTATION",
    "ContentDescription": "Image segmentation", "ClinicalTrialCoordinatingCenterName": "dcmqi",
    "segmentAttributes": [[{
        "labelID": 1, "SegmentDescription": "Nodule", "SegmentAlgorithmType": "MANUAL",
        "SegmentedPropertyCategoryCodeSequence": {"CodeValue": "49755003", "CodingSchemeDesignator": "SCT",
                                                  "CodeMeaning": "Morphologically Altered Structure"},
        "SegmentedPropertyTypeCodeSequence": {"CodeValue": "27925004", "CodingSchemeDesignator": "SCT",
                                              "CodeMeaning": "Nodule"}}]]}


@pytest.mark.shared_data
def test_a_seg_written_by_dcmqi_is_a_label_map_every_verb_takes(slab, tmp_path):
    ct, mask_path, dicom = slab
    case = tmp_path / "case"
    shutil.copytree(dicom, case / "ct")
    (tmp_path / "meta.json").write_text(json.dumps(DCMQI_SEG_META))
    done = subprocess.run([tool("itkimage2segimage"), "--inputImageList", str(mask_path), "--inputDICOMDirectory",
                           str(case / "ct"), "--outputDICOM", str(case / "seg.dcm"), "--inputMetadata",
                           str(tmp_path / "meta.json")], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    labels = read_volume(case / "seg.dcm")
    assert labels.array.dtype.kind == "u" and np.array_equal(labels.array, read_volume(mask_path).array)
    assert np.allclose(labels.origin, ct.origin, atol=1e-4) and np.allclose(labels.spacing, ct.spacing, atol=1e-4)
    for name, (source, mask) in {"nrrd": (shared_path("lidc_slabs") / f"{SLAB}_slab.nrrd", mask_path),
                                 "dicom": (case, case / "seg.dcm")}.items():
        assert main(["measure", "--ct", str(source), "--mask", str(mask), "--json", str(tmp_path / f"{name}.json")]) == 0
    nodules = [json.loads((tmp_path / f"{n}.json").read_text())["nodules"] for n in ("nrrd", "dicom")]
    assert nodules[0] == nodules[1]
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(case / "seg.dcm", alone / "seg.dcm")
    with pytest.raises(InputError, match="the CT series it segments .* is not in"):
        read_volume(alone / "seg.dcm")


def test_rescale_is_cast_explicitly():
    from nodsynth.io.dicom.read import stored_to_hu

    stored = np.array([[[0, 4095]], [[1, 2]]], np.uint16)
    whole = stored_to_hu(stored, np.array([1.0, 1.0]), np.array([-1024.0, -1024.0]))
    assert whole.dtype == np.int16 and whole.tolist() == [[[-1024, 3071]], [[-1023, -1022]]]
    wide = stored_to_hu(np.array([[[65535]]], np.uint16), np.array([1.0]), np.array([0.0]))
    assert wide.dtype == np.int32 and int(wide[0, 0, 0]) == 65535  # beyond int16: not wrapped
    scaled = stored_to_hu(stored, np.array([0.5, 2.0]), np.array([-1024.0, -1000.5]))
    assert scaled.dtype == np.float32 and scaled.tolist() == [[[-1024.0, 1023.5]], [[-998.5, -996.5]]]
