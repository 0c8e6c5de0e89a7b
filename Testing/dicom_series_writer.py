"""An independent DICOM writer for the reading tests: pydicom datasets built here by hand (not
nodsynth's own writer), stored as scanners store them (intercept -1024; unsigned pixels, or signed where
the padding lies below -1024 HU), file names
in no particular order. Optional faults: a removed slice, a gantry tilt, an odd slice size. Also
:func:`tool`: the path of a DICOM tool the tests use as a judge (skips without it)."""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

pydicom = __import__("pytest").importorskip("pydicom", reason="pydicom is not installed (pip install 'nodsynth[dicom]')")
from pydicom.dataset import Dataset, FileMetaDataset  # noqa: E402
from pydicom.uid import ExplicitVRLittleEndian, generate_uid  # noqa: E402

CT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.2"


def _slice(volume, k: int, stored: np.ndarray, series_uid: str, study_uid: str, frame_uid: str,
           tilt_mm_per_slice: float) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CT_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = CT_IMAGE_STORAGE, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.PatientName, ds.PatientID = "CT", "Test^Reader", "READER-TEST"
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study_uid, series_uid, frame_uid
    ds.InstanceNumber = k + 1
    row, column = volume.direction[:, 0], volume.direction[:, 1]
    position = volume.index_to_world([0.0, 0.0, float(k)]) + row * tilt_mm_per_slice * k
    ds.ImageOrientationPatient = [f"{v:.6f}" for v in (*row, *column)]
    ds.ImagePositionPatient = [f"{v:.6f}" for v in position]
    ds.PixelSpacing = [f"{volume.spacing[1]:.6f}", f"{volume.spacing[0]:.6f}"]
    ds.SliceThickness = "5.0"  # deliberately wrong: spacing must come from the positions
    ds.Rows, ds.Columns = stored.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    signed = int(volume.array.min()) < -1024
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, int(signed)
    ds.RescaleIntercept, ds.RescaleSlope = "-1024", "1"
    ds.PixelData = stored.astype("<i2" if signed else "<u2").tobytes()
    return ds


def write_series(volume, folder: Path, remove_slice=None, tilt_mm_per_slice=0.0, odd_size_slice=None,
                 series_uid=None) -> str:
    """Write ``volume`` (integer HU) as a CT series into ``folder``; its SeriesInstanceUID."""
    folder.mkdir(parents=True, exist_ok=True)
    series_uid = series_uid or generate_uid()
    study_uid, frame_uid = generate_uid(), generate_uid()
    order = np.random.default_rng(7).permutation(volume.shape_kji[0])
    for k in order:
        if k == remove_slice:
            continue
        stored = np.asarray(volume.array[k], np.int32) + 1024
        if k == odd_size_slice:
            stored = stored[:-1]
        ds = _slice(volume, int(k), stored, series_uid, study_uid, frame_uid, tilt_mm_per_slice)
        ds.save_as(folder / f"{generate_uid()[-12:]}", enforce_file_format=True)
    return series_uid


def write_decoy_seg(folder: Path) -> None:
    """A SEG-modality object beside the CT (SimpleITK's series list includes such files)."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.66.4"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID, ds.SOPInstanceUID = meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID
    ds.Modality, ds.SeriesInstanceUID = "SEG", generate_uid()
    ds.save_as(folder / "seg.dcm", enforce_file_format=True)


def tool(name: str) -> str:
    """The path of a DICOM tool (dicom3tools from Debian, dcmqi from PyPI); skips the test without it."""
    found = shutil.which(name)
    if found is None:
        __import__("pytest").skip(f"{name} is not installed (dicom3tools from Debian, dcmqi from PyPI): .ci/run "
                                  "installs them")
    return found


def dicom_errors(command: list[str]) -> list[str]:
    """The ``Error`` / ``Abort`` lines a dicom3tools judge (``[tool("dciodvfy"), file]``) prints."""
    import subprocess

    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    return [line for line in (done.stdout + done.stderr).splitlines() if line.startswith(("Error", "Abort"))]
