"""``nodsynth dicom export``: a synthetic CT written as DICOM, honestly labelled, in a new de-identified
patient and study unless the source's study is asked for.

``OUT/ct/`` a CT Image Storage series (ImageType DERIVED\\SECONDARY\\AXIAL, "SYNTHETIC" in the
SeriesDescription, DerivationDescription naming the engine, its weights' SHA-256 and the seed); with a
mask also ``OUT/seg.dcm`` (:mod:`.seg`) and ``OUT/sr.dcm`` (:mod:`.sr`, the measurements of
``nodsynth measure``). The folder appears whole or not at all.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Optional

from ... import __version__
from ..atomic import staged_folder
from ...errors import InputError
from ...volume import Volume, require_same_grid
from .series import choose_series
from .write import PixelEncoding, SeriesHeader, ct_slices, save_slices

PATIENT_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")
STUDY_KEYWORDS = ("StudyInstanceUID", "StudyDate", "StudyTime", "StudyID", "AccessionNumber", "ReferringPhysicianName")
SYNTHETIC_IMAGE_TYPE = ("DERIVED", "SECONDARY", "AXIAL")


def file_provenance(path: str | os.PathLike) -> dict[str, str]:
    """The ``nodsynth_*`` and ``ITK_FileNotes`` entries a synthesis verb wrote in a volume file's header
    (none for a DICOM folder or a file without them)."""
    import SimpleITK as sitk

    if Path(path).is_dir() or not Path(path).is_file():
        return {}
    reader = sitk.ImageFileReader()
    reader.SetFileName(str(path))
    try:
        reader.ReadImageInformation()
    except RuntimeError:
        return {}
    return {key: reader.GetMetaData(key) for key in reader.GetMetaDataKeys()
            if key.startswith("nodsynth_") or key == "ITK_FileNotes"}


def derivation_description(provenance: dict[str, str], seed: Optional[int]) -> str:
    """``SYNTHETIC CT by nodsynth X; engine E; weights SHA-256 role:hash, ...; seed N``."""
    weights = [f"{key[len('nodsynth_'):-len('_sha256')]}:{value}" for key, value in sorted(provenance.items())
               if key.startswith("nodsynth_") and key.endswith("_sha256")]
    if not weights and provenance.get("ITK_FileNotes", "").count(":") == 1:
        weights = [provenance["ITK_FileNotes"]]
    return (f"SYNTHETIC CT by nodsynth {__version__}; engine {provenance.get('nodsynth_engine', 'not recorded')}; "
            f"weights SHA-256 {', '.join(weights) or 'not recorded'}; seed {'not recorded' if seed is None else seed}")


def new_patient_and_study(uid_prefix=None) -> tuple[dict, dict]:
    """A new de-identified patient (no dates, no sex) and study."""
    from pydicom.uid import generate_uid

    code = secrets.token_hex(4).upper()
    patient = dict(PatientName=f"Synthetic^{code}", PatientID=f"SYN-{code}", PatientBirthDate="", PatientSex="")
    study = dict(StudyInstanceUID=generate_uid(prefix=uid_prefix), StudyDate="", StudyTime="", StudyID="",
                 AccessionNumber="", ReferringPhysicianName="")
    return patient, study


def source_header(like: str | os.PathLike):
    """The header of the first slice of the source series (``FOLDER`` or ``FOLDER::UID``)."""
    return choose_series(like)[0][1]


def synthetic_header(provenance: dict[str, str], seed: Optional[int], like=None, same_study: bool = False) -> SeriesHeader:
    """The header of an exported synthetic series (see the module)."""
    from pydicom.uid import generate_uid

    if same_study and like is None:
        raise InputError("--same-study needs --like SOURCE_SERIES: the study to place the synthetic series in")
    patient, study = new_patient_and_study()
    frame = generate_uid()
    if same_study:
        patient = {k: like.get(k, "") for k in PATIENT_KEYWORDS}
        study = {k: like.get(k, "") for k in STUDY_KEYWORDS}
        frame = str(like.FrameOfReferenceUID)
    return SeriesHeader(
        patient=patient, study=study, frame_of_reference_uid=frame, series_instance_uid=generate_uid(),
        series_number=int(like.get("SeriesNumber") or 0) + 1000 if like is not None else 1,
        series_description="SYNTHETIC CT (nodsynth)", image_type=SYNTHETIC_IMAGE_TYPE,
        derivation_description=derivation_description(provenance, seed), manufacturer="nodsynth",
        patient_position=str(like.get("PatientPosition", "")) if like is not None else "",
        encoding=PixelEncoding.of(like) if like is not None else PixelEncoding())


def write_export(ct: Volume, header: SeriesHeader, out: Path, mask: Optional[Volume] = None) -> dict:
    """Write ``out/ct/`` (and with ``mask`` ``out/seg.dcm`` and ``out/sr.dcm``); a summary."""
    from pydicom.uid import generate_uid

    from ...measure import measure_nodule, split_nodules

    slices = ct_slices(ct, header)
    extra, nodules = {}, []
    if mask is not None:
        require_same_grid(ct, mask, "the CT", "the mask")
        nodules = split_nodules(mask)
        if not nodules:
            raise InputError("the mask is empty: no nodule to write as a segment")
        from .seg import nodule_segmentation
        from .sr import measurement_report

        seg = nodule_segmentation(slices, nodules, generate_uid())
        records = [measure_nodule(ct, nodule) for nodule in nodules]
        extra = {"seg.dcm": seg, "sr.dcm": measurement_report(seg, records, generate_uid())}
    with staged_folder(out) as staging:
        (staging / "ct").mkdir()
        save_slices(slices, staging / "ct")
        for name, dataset in extra.items():
            dataset.save_as(staging / name, enforce_file_format=True)
    return {"slices": len(slices), "nodules": len(nodules), "series_instance_uid": header.series_instance_uid,
            "study_instance_uid": header.study["StudyInstanceUID"]}
