"""Blinded case volumes written so that nothing but the image content can tell real from synthetic.

Every case, whatever its source, goes through the same rules:

* **Grid**: resampled (linear interpolation, SimpleITK) onto an axis-aligned LPS grid of the
  study's spacing, centred on the point of interest; then given the *canonical* geometry: identity
  direction and the origin that puts the grid's centre at (0, 0, 0). Source position, orientation
  and spacing do not survive; two cases of the same shape have byte-identical headers.
* **Values**: rounded to the nearest integer and clipped to :data:`STORED_RANGE_HU` (12-bit CT),
  so out-of-field padding such as -2048 / -3024 and float noise in generated CTs look alike;
  voxels outside the source are :data:`PAD_HU`.
* **File**: NIfTI-1, int16, **uncompressed** (``.nii``): a compressed size would reveal how smooth
  or noisy the image is; the size of an uncompressed file depends on its shape only. The header is
  written by ITK from a fresh image (no description, no source names, scaling 1 / 0).
* **DICOM** (``--format dicom``): a CT series folder per case written by :func:`write_case_dicom`, the
  same writer and header set for every case: a new patient (the case id) and study per case, UIDs
  from one generator, ImageType DERIVED\\SECONDARY\\AXIAL (every case is resampled), int16 with
  intercept 0, no dates, no private tags, no DerivationDescription, fixed file names. The master copies
  (``nodsynth dicom export``) keep their honest labels; these copies carry none.
* **Montage** (cropped cases): axial / coronal / sagittal through the centre at a fixed window
  and scale, stored as an uncompressed PNG (same size for every cube) without text chunks.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from ..errors import InputError
from ..overlay import DEFAULT_WINDOW_HU, compose_panels, save_image
from ..segment.mm_morphology import occupied_ranges
from ..volume import Volume
from ..io.volume_files import write_volume
from .planes import PLANES, cut, pixel_size_mm, plane_slices

STORED_RANGE_HU = (-1024, 3071)
PAD_HU = -1024
LUNG_BOX_MARGIN_MM = 10.0
"""The full-context lung box reaches this far past the lungs."""
MONTAGE_PANEL_PX = 256
"""Each montage panel is scaled up to at least this many pixels across."""


def stored_hu(values: np.ndarray) -> np.ndarray:
    """Round to integers and clip to :data:`STORED_RANGE_HU` as int16."""
    return np.clip(np.rint(values), *STORED_RANGE_HU).astype(np.int16)


def canonical(array_kji: np.ndarray, spacing_mm: Sequence[float]) -> Volume:
    """An int16 volume on the canonical grid: identity direction, centre of the grid at (0, 0, 0) mm."""
    spacing = np.asarray(spacing_mm, dtype=np.float64)
    size_ijk = np.asarray(array_kji.shape[::-1], dtype=np.float64)
    origin = -0.5 * (size_ijk - 1.0) * spacing
    return Volume(stored_hu(array_kji), spacing, np.round(origin, 6), np.eye(3))


def resample_around(image, centre_lps: Sequence[float], size_ijk: Sequence[int], spacing_mm: Sequence[float]) -> Volume:
    """The ``size_ijk`` grid of ``spacing_mm`` centred on ``centre_lps``, sampled from a SimpleITK image.

    Returns the canonical volume (:func:`canonical`); the sampled grid is axis-aligned in LPS.
    """
    import SimpleITK as sitk

    size = [int(n) for n in size_ijk]
    if min(size) < 1:
        raise InputError(f"a case grid needs at least one voxel per axis, got {size}")
    spacing = [float(s) for s in spacing_mm]
    origin = np.asarray(centre_lps, np.float64) - 0.5 * (np.asarray(size) - 1.0) * np.asarray(spacing)
    sampled = sitk.Resample(image, size, sitk.Transform(), sitk.sitkLinear, [float(v) for v in origin], spacing,
                            np.eye(3).ravel().tolist(), float(PAD_HU), sitk.sitkFloat32)
    return canonical(sitk.GetArrayFromImage(sampled), spacing)


def cube_voxels(edge_mm: float, spacing_mm: float) -> int:
    """Voxels along each side of a cube of ``edge_mm`` at ``spacing_mm``."""
    if not (np.isfinite(edge_mm) and edge_mm > 0 and np.isfinite(spacing_mm) and spacing_mm > 0):
        raise InputError(f"the cube edge and spacing must be positive millimetres, got {edge_mm}, {spacing_mm}")
    return max(1, int(round(edge_mm / spacing_mm)))


def cropped_case(image, centre_lps: Sequence[float], edge_mm: float, spacing_mm: float) -> Volume:
    """A cube of ``edge_mm`` around the nodule centre at isotropic ``spacing_mm`` (canonical)."""
    n = cube_voxels(edge_mm, spacing_mm)
    return resample_around(image, centre_lps, (n, n, n), (spacing_mm,) * 3)


def box_of_mask(mask: Volume, margin_mm: float = LUNG_BOX_MARGIN_MM) -> tuple[np.ndarray, np.ndarray]:
    """LPS ``(low, high)`` corners (mm) of the world box around a mask's voxels, grown by ``margin_mm``."""
    inside = np.asarray(mask.array) > 0
    if not inside.any():
        raise InputError("the lung mask is empty: no lung box")
    (k0, k1), (j0, j1), (i0, i1) = occupied_ranges(inside)
    corners = mask.index_to_world(np.array([[i, j, k] for i in (i0, i1) for j in (j0, j1) for k in (k0, k1)],
                                           dtype=np.float64))
    return corners.min(axis=0) - margin_mm, corners.max(axis=0) + margin_mm


def full_case(image, low_lps: Sequence[float], high_lps: Sequence[float],
              spacing_mm: Sequence[float]) -> tuple[Volume, np.ndarray]:
    """The world box ``low..high`` (LPS mm) resampled at ``spacing_mm``; returns the canonical volume and
    the box centre (subtract it from an LPS point to get the point in the case volume)."""
    low, high = np.asarray(low_lps, np.float64), np.asarray(high_lps, np.float64)
    spacing = np.asarray(spacing_mm, np.float64)
    size = np.floor((high - low) / spacing + 1e-6).astype(int) + 1
    centre = 0.5 * (low + high)
    return resample_around(image, centre, size, spacing), centre


def write_case_volume(volume: Volume, path: str | os.PathLike) -> Path:
    """Write a blinded case volume (int16, canonical geometry) as uncompressed NIfTI."""
    path = Path(path)
    if volume.array.dtype != np.int16 or not path.name.endswith(".nii"):
        raise InputError(f"blinded cases are int16 .nii files, got {volume.array.dtype} for {path.name}")
    return write_volume(volume, path, compress=False)


def write_case_dicom(volume: Volume, folder: str | os.PathLike, case_id: str) -> Path:
    """Write a blinded case volume as a CT series in the new folder ``folder`` (see the module)."""
    from pydicom.uid import generate_uid

    from ..io.dicom.write import SeriesHeader, ct_slices, save_slices

    folder = Path(folder)
    if volume.array.dtype != np.int16:
        raise InputError(f"blinded cases are int16, got {volume.array.dtype} for {folder.name}")
    header = SeriesHeader(
        patient=dict(PatientName=f"Case^{case_id}", PatientID=case_id, PatientBirthDate="", PatientSex=""),
        study=dict(StudyInstanceUID=generate_uid(), StudyDate="", StudyTime="", StudyID="", AccessionNumber="",
                   ReferringPhysicianName=""),
        frame_of_reference_uid=generate_uid(), series_instance_uid=generate_uid(),
        series_description=f"Case {case_id}", image_type=("DERIVED", "SECONDARY", "AXIAL"))
    folder.mkdir(parents=True)
    save_slices(ct_slices(volume, header), folder)
    return folder


def write_montage(volume: Volume, path: str | os.PathLike) -> Path:
    """Axial / coronal / sagittal through the centre of a cube case: fixed lung window, uncompressed PNG."""
    centre = tuple(n // 2 for n in volume.shape_kji)
    scale = max(1, -(-MONTAGE_PANEL_PX // max(volume.shape_kji)))
    panels = []
    for plane in PLANES:
        panels.append((plane, cut(volume.array, plane_slices(volume, centre, plane), plane), []))
    image = compose_panels(panels, DEFAULT_WINDOW_HU, scale=scale, pixel_size_mm=pixel_size_mm(volume, "axial"))
    return save_image(path, image, compress_level=0)
