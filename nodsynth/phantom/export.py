"""Write the demo patient to a folder: NIfTI volumes, nodule masks, point and PiNS annotation CSVs."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ..io.atomic import write_csv_atomic
from ..volume import Volume, lps_to_ras
from ..io.volume_files import write_volume
from .patient import DemoPatient

CT_FILE = "ct.nii.gz"
LABELMAP_FILE = "labelmap.nii.gz"
VESSELS_FILE = "vessels.nii.gz"
NODULE_DIR = "nodules"
POINTS_FILE = "points.csv"
ANNOTATIONS_FILE = "annotations.csv"
POINT_COLUMNS = ("name", "kind", "subtype", "lobe", "diameter_mm", "x_lps", "y_lps", "z_lps",
                 "x_ras", "y_ras", "z_ras", "mask_file")
PINS_COLUMNS = ("ct_nifti_file", "nodule_id", "coordX", "coordY", "coordZ", "w", "h", "d")
"""The PiNS annotation columns: LPS centre (mm) and box size along x, y, z (mm)."""


def mask_box_mm(mask: Volume) -> tuple[np.ndarray, np.ndarray]:
    """``(centre_lps, size_mm)`` of a 0/1 mask's voxel bounding box (identity direction), size along x, y, z."""
    kji = np.argwhere(mask.array > 0)
    if kji.size == 0:
        raise ValueError("empty mask has no bounding box")
    lo_ijk, hi_ijk = kji.min(axis=0)[::-1], kji.max(axis=0)[::-1]
    center = mask.index_to_world(0.5 * (lo_ijk + hi_ijk))
    size = (hi_ijk - lo_ijk + 1) * mask.spacing
    return center, size


def _mm(value: float) -> str:
    return f"{value:.3f}"


def write_demo_patient(patient: DemoPatient, folder: str | os.PathLike) -> dict[str, Path]:
    """Write ``patient`` into ``folder`` (created); returns what was written, by role.

    Files: ``ct.nii.gz`` (int16 HU), ``labelmap.nii.gz`` (MAISI ids), ``vessels.nii.gz``,
    ``nodules/<name>.nii.gz`` (true masks), ``points.csv`` (design centres in LPS and RAS mm,
    kind, subtype, lobe, diameter) and ``annotations.csv`` (PiNS columns: LPS centre and
    bounding box of each true mask, mm). Each file is written atomically.
    """
    folder = Path(folder)
    written = {"ct": write_volume(patient.ct, folder / CT_FILE),
               "labelmap": write_volume(patient.labelmap, folder / LABELMAP_FILE),
               "vessels": write_volume(patient.vessels, folder / VESSELS_FILE)}
    points, boxes = [], []
    for nodule in patient.nodules:
        mask_name = f"{NODULE_DIR}/{nodule.name}.nii.gz"
        written[f"nodule:{nodule.name}"] = write_volume(nodule.mask, folder / mask_name)
        ras = lps_to_ras(nodule.center_lps)
        points.append(dict(zip(POINT_COLUMNS, [nodule.name, nodule.kind, nodule.subtype, nodule.lobe,
                                               _mm(nodule.diameter_mm), *map(_mm, nodule.center_lps),
                                               *map(_mm, ras), mask_name])))
        center, size = mask_box_mm(nodule.mask)
        boxes.append(dict(zip(PINS_COLUMNS, [CT_FILE, nodule.name, *map(_mm, center), *map(_mm, size)])))
    written["points"] = write_csv_atomic(folder / POINTS_FILE, points, POINT_COLUMNS)
    written["annotations"] = write_csv_atomic(folder / ANNOTATIONS_FILE, boxes, PINS_COLUMNS)
    return written
