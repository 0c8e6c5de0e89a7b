"""``cohort export``: a made cohort (:mod:`.made`) as a training set that detectors and classifiers read.

Every format writes a new folder (staged, moved into place whole) holding ``provenance.json``: per case the
engine, weights SHA-256, seeds, source CT / label map and the sources' licences, every case marked synthetic.

* ``monai-detection``: ``datalist.json`` as MONAI's ``lung_nodule_ct_detection`` bundle reads it:
  ``{"training": [{"image", "box": [[cx, cy, cz, w, h, d], ...], "label": [0, ...]}]}``; boxes in world mm
  (LPS, ITK's world: the bundle loads images with ``affine_lps_to_ras: true`` and maps boxes with
  ``AffineBoxToImageCoordinated(affine_lps_to_ras=True)``), centred on the mask's centroid; image paths
  relative to the datalist.
* ``luna16``: ``annotations.csv`` (``seriesuid, coordX, coordY, coordZ, diameter_mm``; seriesuid = case id),
  ``seriesuids.csv`` (the scan list ``evaluate froc --scans`` reads) and ``cts.csv`` (seriesuid, ct).
* ``nnunet``: the folder is the nnU-Net v2 raw dataset ``Dataset<ID>_<name>``: ``imagesTr/<case>_0000.nii.gz``,
  ``labelsTr/<case>.nii.gz`` (every nodule = 1), ``dataset.json``.
* ``classification``: ``nodules.csv``, one row per nodule (``patient_id`` = the source's file stem).
* ``dicom``: per case ``<case_id>/ct/`` (a CT Image Storage series), ``<case_id>/seg.dcm`` (DICOM SEG, one segment
  per nodule) and ``<case_id>/sr.dcm`` (TID 1500 measurements), written by ``nodsynth dicom export``'s writer
  (:mod:`nodsynth.io.dicom.export`): marked synthetic, each case a new de-identified patient and study;
  ``dicom.csv`` maps each case to its DICOM patient, study and series.

Coordinates are the nodule mask's centroid (LPS mm), diameters its equivalent sphere (mm), measured on the
case's ``ids`` mask.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path
from typing import Callable

import numpy as np

from ..io.atomic import staged_folder, write_csv_atomic, write_text_atomic
from ..errors import InputError
from ..io.volume_files import read_volume, write_volume
from .made import MadeCase

FORMATS = ("monai-detection", "luna16", "nnunet", "classification", "dicom")
PROVENANCE = "provenance.json"
DETECTION_LABEL = 0
"""The bundle's one class (nodule) has label 0."""
CLASSIFICATION_COLUMNS = ("case_id", "nodule_id", "patient_id", "ct", "coordX", "coordY", "coordZ", "label",
                          "subtype", "diameter_mm", "synthetic", "donor_patient_id")
NNUNET_NAME = re.compile(r"^Dataset(\d{3})_[A-Za-z0-9_-]+$")


def _mm(values) -> list[float]:
    return [round(float(v), 3) for v in values]


def _ct_path(case: MadeCase, out: Path) -> str:
    return os.path.relpath(case.ct, out)


def write_monai_detection(cases: list[MadeCase], staging: Path, out: Path) -> None:
    training = [{"image": _ct_path(c, out), "box": [_mm([*n.centroid_lps, *n.box_size_mm]) for n in c.nodules],
                 "label": [DETECTION_LABEL] * len(c.nodules)} for c in cases]
    write_text_atomic(staging / "datalist.json", json.dumps({"training": training}, indent=1) + "\n")


def write_luna16(cases: list[MadeCase], staging: Path, out: Path) -> None:
    rows = [{"seriesuid": c.case_id, **dict(zip(("coordX", "coordY", "coordZ"), _mm(n.centroid_lps))),
             "diameter_mm": round(n.diameter_mm, 3)} for c in cases for n in c.nodules]
    write_csv_atomic(staging / "annotations.csv", rows, ("seriesuid", "coordX", "coordY", "coordZ", "diameter_mm"))
    write_csv_atomic(staging / "seriesuids.csv", [{"seriesuid": c.case_id} for c in cases], ("seriesuid",))
    write_csv_atomic(staging / "cts.csv", [{"seriesuid": c.case_id, "ct": _ct_path(c, out)} for c in cases],
                     ("seriesuid", "ct"))


def write_classification(cases: list[MadeCase], staging: Path, out: Path) -> None:
    rows = [{"case_id": c.case_id, "nodule_id": n.nodule_id, "patient_id": c.patient_id, "ct": _ct_path(c, out),
             **dict(zip(("coordX", "coordY", "coordZ"), _mm(n.centroid_lps))), "label": n.row["label"],
             "subtype": n.row["subtype"], "diameter_mm": round(n.diameter_mm, 3), "synthetic": 1,
             "donor_patient_id": n.row["donor_patient_id"]} for c in cases for n in c.nodules]
    write_csv_atomic(staging / "nodules.csv", rows, CLASSIFICATION_COLUMNS)


def nnunet_dataset_json(count: int, name: str) -> dict:
    return {"name": name, "description": "synthetic lung nodule cohort (nodsynth cohort export); every case synthetic",
            "channel_names": {"0": "CT"}, "labels": {"background": 0, "nodule": 1}, "numTraining": count,
            "file_ending": ".nii.gz", "licence": f"see {PROVENANCE}"}


def write_nnunet(cases: list[MadeCase], staging: Path, out: Path) -> None:
    for folder in ("imagesTr", "labelsTr"):
        (staging / folder).mkdir()
    for case in cases:
        image = staging / "imagesTr" / f"{case.case_id}_0000.nii.gz"
        if case.ct.name.endswith(".nii.gz"):
            shutil.copyfile(case.ct, image)
        else:
            write_volume(read_volume(case.ct), image)
        ids = read_volume(case.ids)
        write_volume(ids.with_array((np.asarray(ids.array) > 0).astype(np.uint8)),
                     staging / "labelsTr" / f"{case.case_id}.nii.gz")
    write_text_atomic(staging / "dataset.json", json.dumps(nnunet_dataset_json(len(cases), out.name), indent=1) + "\n")


DICOM_COLUMNS = ("case_id", "folder", "dicom_patient_id", "study_instance_uid", "series_instance_uid", "nodules")


def dicom_provenance(case: MadeCase) -> tuple[dict[str, str], str]:
    """The CT file's ``nodsynth_*`` header entries completed from the case's provenance (engine, weights), and its
    seed(s): the twin's, else every nodule's."""
    from ..io.dicom.export import file_provenance

    known = case.provenance
    entries = {"nodsynth_engine": known["engine"],
               **{f"nodsynth_{role}_sha256": sha for role, sha in known["weights_sha256"].items() if sha},
               **file_provenance(case.ct)}
    seeds = known["seeds"]
    return entries, str(seeds["twin"]) if "twin" in seeds else ", ".join(map(str, seeds["nodules"]))


def write_dicom(cases: list[MadeCase], staging: Path, out: Path) -> None:
    from ..io.dicom.export import synthetic_header, write_export
    from ..labelmap import load_labelmap

    rows = []
    for case in cases:
        header = synthetic_header(*dicom_provenance(case))
        summary = write_export(read_volume(case.ct), header, staging / case.case_id,
                               load_labelmap(case.ids, "nodule ids mask"))
        rows.append({"case_id": case.case_id, "folder": case.case_id, "dicom_patient_id": header.patient["PatientID"],
                     "study_instance_uid": summary["study_instance_uid"],
                     "series_instance_uid": summary["series_instance_uid"], "nodules": summary["nodules"]})
    write_csv_atomic(staging / "dicom.csv", rows, DICOM_COLUMNS)


WRITERS: dict[str, Callable[[list[MadeCase], Path, Path], None]] = {
    "monai-detection": write_monai_detection, "luna16": write_luna16, "nnunet": write_nnunet,
    "classification": write_classification, "dicom": write_dicom}


def check_nnunet_folder(out: Path, dataset_id: int | None) -> None:
    """The nnU-Net folder must be named ``Dataset<ID>_<name>`` with ``--dataset-id`` as its ID."""
    match = NNUNET_NAME.match(out.name)
    if dataset_id is None or not 1 <= dataset_id <= 999:
        raise InputError("--format nnunet needs --dataset-id, 1..999")
    if not match or int(match.group(1)) != dataset_id:
        raise InputError(f"--out for nnunet is the raw dataset folder itself: name it Dataset{dataset_id:03d}_<name> "
                         f"(letters, digits, '_', '-'), got {out.name!r}")


def _relative_sources(provenance: dict, out: Path) -> dict:
    return {k: os.path.relpath(v, out) if k.startswith("source_") and v else v for k, v in provenance.items()}


def export_cohort(cases: list[MadeCase], fmt: str, out: str | os.PathLike) -> Path:
    """Write ``cases`` in format ``fmt`` to the new folder ``out`` (an earlier export there is replaced whole)."""
    if fmt not in WRITERS:
        raise InputError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(os.path.abspath(out))
    provenance = {"format": fmt, "synthetic": True, "paths": "relative to this file's folder",
                  "cases": {c.case_id: _relative_sources(c.provenance, out) for c in cases}}
    with staged_folder(out, replaceable=PROVENANCE) as staging:
        WRITERS[fmt](cases, staging, out)
        write_text_atomic(staging / PROVENANCE, json.dumps(provenance, indent=1) + "\n")
    return out
