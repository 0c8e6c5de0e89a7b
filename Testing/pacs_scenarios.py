"""Test data and scenarios for the PACS tests and benchmark, run beside a real Orthanc by
:mod:`orthanc_sandbox` (inside a network namespace of their own).

The CT series are written here with pydicom directly (an independent writer, not nodsynth's) from the
real LIDC slabs in ``../shared/data/lidc_slabs``; the SEG of the slab's nodule mask and a TID 1500 SR of
its volume with highdicom.
"""
from __future__ import annotations

import contextlib
import io
import time
from pathlib import Path

import numpy as np

UID_ROOT = "1.2.826.0.1.3680043.10.1299."  # a test root; the UIDs are made from the case name


def _uid(*parts) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(prefix=UID_ROOT, entropy_srcs=[str(p) for p in parts])


def read_slab(nrrd: Path):
    """``(voxels z,y,x int16, origin, spacing, direction 3x3)`` of a NRRD slab (LPS mm)."""
    import SimpleITK as sitk

    image = sitk.ReadImage(str(nrrd))
    return (sitk.GetArrayFromImage(image).astype(np.int16), np.array(image.GetOrigin()), np.array(image.GetSpacing()),
            np.array(image.GetDirection()).reshape(3, 3))


def build_ct_series(nrrd: Path, folder: Path, case: str, slices: int = 0) -> list[Path]:
    """Write the slab as a CT Image Storage series (one file per slice) into ``folder``; with ``slices`` more
    than the slab holds, its slices repeat (same geometry step) up to that many."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian

    voxels, origin, spacing, direction = read_slab(nrrd)
    count = slices or voxels.shape[0]
    study, series, frame = _uid(case, "study"), _uid(case, "series", count), _uid(case, "frame")
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for k in range(count):
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID, meta.MediaStorageSOPInstanceUID = CTImageStorage, _uid(case, count, k)
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID, ds.SOPInstanceUID = CTImageStorage, meta.MediaStorageSOPInstanceUID
        ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
        ds.StudyDate = ds.SeriesDate = "20000101"
        ds.StudyTime = "120000"
        ds.Modality, ds.Manufacturer, ds.AccessionNumber, ds.ReferringPhysicianName = "CT", "test", "", ""
        ds.PatientName, ds.PatientID, ds.PatientBirthDate, ds.PatientSex = f"{case}^", case, "", "O"
        ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.FrameOfReferenceUID = study, series, frame
        ds.StudyID, ds.SeriesNumber, ds.InstanceNumber = "1", 1, k + 1
        ds.SeriesDescription = f"{case} slab"
        ds.PositionReferenceIndicator = ""
        ds.ImagePositionPatient = [f"{v:.6f}" for v in origin + direction @ np.array([0.0, 0.0, k * spacing[2]])]
        ds.ImageOrientationPatient = [f"{v:.6f}" for v in np.concatenate([direction[:, 0], direction[:, 1]])]
        ds.PixelSpacing = [f"{spacing[1]:.6f}", f"{spacing[0]:.6f}"]
        ds.SliceThickness = f"{spacing[2]:.6f}"
        ds.KVP = "120"
        ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
        ds.Rows, ds.Columns = voxels.shape[1:]
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 1
        ds.RescaleIntercept, ds.RescaleSlope, ds.RescaleType = "0", "1", "HU"
        ds.PixelData = voxels[k % voxels.shape[0]].tobytes()
        path = folder / f"slice{k:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def build_seg(ct_paths: list[Path], mask_nrrd: Path, target: Path, case: str) -> Path:
    """A DICOM SEG (highdicom) of the slab's nodule mask, referencing the CT series."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    sources = [pydicom.dcmread(p) for p in ct_paths]
    mask = read_slab(mask_nrrd)[0] > 0
    description = hd.seg.SegmentDescription(
        segment_number=1, segment_label="Nodule", segmented_property_category=codes.SCT.MorphologicallyAbnormalStructure,
        segmented_property_type=codes.SCT.Nodule, algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL)
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=mask.astype(np.uint8), segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[description], series_instance_uid=_uid(case, "seg"), series_number=2,
        sop_instance_uid=_uid(case, "seg", 1), instance_number=1, manufacturer="test", manufacturer_model_name="test",
        software_versions="test", device_serial_number="1")
    target.parent.mkdir(parents=True, exist_ok=True)
    seg.save_as(target)
    return target


def build_sr(ct_paths: list[Path], seg_path: Path, mask_nrrd: Path, target: Path, case: str) -> Path:
    """A TID 1500 measurement report (highdicom Comprehensive 3D SR): the nodule's volume in mm3, from the mask's
    voxel count and spacing, referencing segment 1 of the SEG."""
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    mask, _, spacing, _ = read_slab(mask_nrrd)
    seg, ct = pydicom.dcmread(seg_path), pydicom.dcmread(ct_paths[0], stop_before_pixels=True)
    observer = hd.sr.ObserverContext(observer_type=codes.DCM.Person,
                                     observer_identifying_attributes=hd.sr.PersonObserverIdentifyingAttributes(name="Test^Reader"))
    segment = hd.sr.ReferencedSegment(sop_class_uid=seg.SOPClassUID, sop_instance_uid=seg.SOPInstanceUID, segment_number=1,
                                      source_series=hd.sr.SourceSeriesForSegmentation(ct.SeriesInstanceUID))
    volume = hd.sr.Measurement(name=codes.SCT.Volume, value=float((mask > 0).sum() * np.prod(spacing)),
                               unit=codes.UCUM.CubicMillimeter)
    nodule = hd.sr.VolumetricROIMeasurementsAndQualitativeEvaluations(
        tracking_identifier=hd.sr.TrackingIdentifier(uid=_uid(case, "nodule"), identifier="Nodule 1"),
        referenced_segment=segment, finding_type=codes.SCT.Nodule, measurements=[volume])
    report = hd.sr.MeasurementReport(observation_context=hd.sr.ObservationContext(observer_person_context=observer),
                                     procedure_reported=codes.LN.CTUnspecifiedBodyRegion, imaging_measurements=[nodule])
    sr = hd.sr.Comprehensive3DSR(evidence=[seg], content=report[0], series_instance_uid=_uid(case, "sr"), series_number=3,
                                 sop_instance_uid=_uid(case, "sr", 1), instance_number=1, manufacturer="test")
    target.parent.mkdir(parents=True, exist_ok=True)
    sr.save_as(target)
    return target


def differences(original: Path, pulled: Path) -> list[str]:
    """Every data element (file meta aside) that differs between two DICOM files, by tag."""
    import pydicom

    a, b = pydicom.dcmread(original), pydicom.dcmread(pulled)
    return [f"{pulled.name} {tag}: {a.get(tag)!r} != {b.get(tag)!r}"
            for tag in sorted(set(a.keys()) | set(b.keys())) if a.get(tag) != b.get(tag)]


def compare_folders(originals: list[Path], pulled_folder: Path) -> dict:
    """Match each original to the pulled file of its SOPInstanceUID; the files missing and the differences."""
    import pydicom

    missing, diffs = [], []
    for path in originals:
        pulled = pulled_folder / f"{pydicom.dcmread(path, stop_before_pixels=True).SOPInstanceUID}.dcm"
        if pulled.is_file():
            diffs += differences(path, pulled)
        else:
            missing.append(str(pulled))
    return {"compared": len(originals) - len(missing), "missing": missing, "differences": diffs[:50]}


def cli(*argv: str) -> dict:
    """``nodsynth ARGV`` in this process: exit status, stdout, stderr and seconds."""
    from nodsynth.cli.main import main

    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(argv))
    return {"status": status, "stdout": out.getvalue(), "stderr": err.getvalue()[-3000:],
            "seconds": time.perf_counter() - start}


def dicomweb_args(orthanc) -> list[str]:
    return ["--url", orthanc.dicomweb_url, "--basic-auth-file", orthanc.basic_auth_file]


def dimse_args(orthanc, nodelay: bool = True) -> list[str]:
    from orthanc_sandbox import CLIENT_AET, SERVER_AET

    return ["--dimse", orthanc.dimse, "--aet", CLIENT_AET, "--called-aet", SERVER_AET] + ([] if nodelay else ["--no-nodelay"])
