"""The shipped real-shape library: the LIDC-IDRI expert nodule masks as normalised binary shapes.

``Resources/lidc_shapes.npz`` (+ ``.json`` index) holds one :data:`LIDC_SHAPE_SIZE`\\ :sup:`3` occupancy grid per
nodule of ``lidc_vois`` (:mod:`nodsynth.shapes` convention: centred, unit bounding sphere), no image data. Each
index entry names its source mask and carries the nodule's LIDC ``subtype`` (Texture_value rule of
:mod:`nodsynth.presets`), ``malignancy`` (reader consensus 1..5) and ``patient_id``: a cohort nodule drawn from a
shape inherits them as its ``label`` and ``donor_patient_id``. Licence: CC BY 3.0, LIDC-IDRI (in the index).
Rebuilt by ``nodsynth cohort shapes --vois ../shared/data/lidc_vois --out Resources/lidc_shapes.npz``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

from ..io.tables import read_rows
from ..histogram_library import LIDC_ATTRIBUTION
from ..presets import subtype_from_texture
from ..progress import ProgressFn
from ..resources import resource_path
from ..shapes import ShapeLibrary, build_library

LIDC_SHAPES = "lidc_shapes.npz"
LIDC_SHAPE_SIZE = 16
"""Voxels per side: about the resolution of the masks themselves (median nodule ~14 voxels across)."""
LIDC_COLUMNS = ("patient_id", "Malignancy_value", "Texture_value", "file")


def build_lidc_shapes(vois_dir: str | os.PathLike, progress: Optional[ProgressFn] = None) -> ShapeLibrary:
    """One shape per mask of a ``lidc_vois`` folder, each entry with its subtype, malignancy and patient."""
    folder = Path(vois_dir)
    rows = [row for _, row in read_rows(folder / "nodules.csv", LIDC_COLUMNS, "LIDC nodule table")]
    library = build_library([folder / "nodule_mask" / r["file"] for r in rows], size=LIDC_SHAPE_SIZE,
                            progress=progress)
    by_file = {r["file"]: r for r in rows}
    for entry in library.entries:
        row = by_file[entry["source"]]
        entry.update(subtype=subtype_from_texture(row["Texture_value"]), malignancy=int(row["Malignancy_value"]),
                     patient_id=row["patient_id"])
    return library


def save_lidc_shapes(library: ShapeLibrary, path: str | os.PathLike) -> Path:
    licence = (LIDC_ATTRIBUTION + f" Normalised binary shapes ({LIDC_SHAPE_SIZE}^3 occupancy grids) of the expert "
               "nodule masks of the ct-slicing crops, with each nodule's subtype, malignancy and patient id; no image data.")
    return library.save(path, source=f"{len(library)} nodule masks of lidc_vois", licence=licence)


def lidc_shapes_path() -> Path:
    """The shipped library's file."""
    return resource_path(LIDC_SHAPES)
