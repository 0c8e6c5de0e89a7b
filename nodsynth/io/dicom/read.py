"""A CT series (a folder of CT Image Storage files, chosen by :mod:`.series`) read as a
:class:`~nodsynth.volume.Volume` with the geometry a NIfTI of the same series has: LPS, slices sorted
along the slice normal, the slice spacing from the slice positions (never SliceThickness).

Refused with a one-line :class:`InputError`, never silently misplaced: slices of different sizes, pixel
spacings or orientations; a missing slice or uneven spacing; gantry tilt (slice positions stepping
off the normal); two slices at one position. Voxels are HU from each slice's rescale slope and
intercept, cast explicitly: integers (int16, or int32 when out of its range) when every slope is 1 and
every intercept whole, float32 otherwise.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...errors import InputError, plain
from ...volume import Volume
from .series import choose_series, pydicom_module

ORIENTATION_TOLERANCE = 1e-4
"""Largest difference of two direction cosines that still counts as the same orientation."""

POSITION_TOLERANCE_MM = 0.01
"""Largest deviation (mm) of a slice step from the even spacing, or off the slice normal (tilt)."""


def _same(values: list, name: str, where: Path, tolerance: float = 0.0) -> np.ndarray:
    first = np.asarray(values[0], dtype=np.float64)
    for value in values[1:]:
        if np.shape(value) != first.shape or np.max(np.abs(np.asarray(value, np.float64) - first)) > tolerance:
            raise InputError(f"{where}: the slices of the series have different {name} ({plain(list(first))} vs "
                             f"{[float(v) for v in value]}); one volume needs one")
    return first


def _required(header, keyword: str, where: Path):
    value = header.get(keyword)
    if value is None or value == "":
        raise InputError(f"{where}: a CT slice has no {keyword}; its place in the volume is unknown")
    return value


def series_geometry(headers: list, where: Path) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray]:
    """``(slice order, spacing i,j,k mm, origin mm, direction)`` of a series, checked (see the module)."""
    if len(headers) < 2:
        raise InputError(f"{where}: the CT series has {len(headers)} slice; a volume needs at least 2")
    orientation = _same([[float(v) for v in _required(h, "ImageOrientationPatient", where)] for h in headers],
                        "orientations (ImageOrientationPatient)", where, ORIENTATION_TOLERANCE)
    _same([[int(_required(h, "Rows", where)), int(_required(h, "Columns", where))] for h in headers],
          "sizes (Rows, Columns)", where)
    pixel = _same([[float(v) for v in _required(h, "PixelSpacing", where)] for h in headers],
                  "pixel spacings (PixelSpacing, mm)", where, 1e-6)
    row, column = orientation[:3], orientation[3:]
    normal = np.cross(row, column)
    positions = np.array([[float(v) for v in _required(h, "ImagePositionPatient", where)] for h in headers])
    along = positions @ normal
    order = [int(i) for i in np.argsort(along, kind="stable")]
    steps = np.diff(positions[order], axis=0)
    step_along = steps @ normal
    if np.any(step_along <= POSITION_TOLERANCE_MM):
        raise InputError(f"{where}: two slices of the series lie at the same position "
                         f"({np.round(along[order][int(np.argmin(step_along))], 3)} mm along the slice normal)")
    off_normal = np.linalg.norm(steps - step_along[:, None] * normal[None, :], axis=1)
    if np.max(off_normal) > POSITION_TOLERANCE_MM:
        angle = float(np.degrees(np.arctan2(off_normal.max(), step_along[int(np.argmax(off_normal))])))
        raise InputError(f"{where}: the slice positions step {off_normal.max():.3f} mm off the slice normal "
                         f"(gantry tilt of about {angle:.2f} degrees); resample the tilted series first")
    spacing = float(np.mean(step_along))
    uneven = np.abs(step_along - spacing)
    if np.max(uneven) > POSITION_TOLERANCE_MM:
        worst = int(np.argmax(uneven))
        raise InputError(f"{where}: uneven slice spacing: slices {worst} and {worst + 1} are "
                         f"{step_along[worst]:.3f} mm apart, the series' steps range "
                         f"{step_along.min():.3f}..{step_along.max():.3f} mm (a missing slice or a gap)")
    direction = np.column_stack([row, column, normal])
    return order, np.array([pixel[1], pixel[0], spacing]), positions[order[0]], direction


def stored_to_hu(stored: np.ndarray, slopes: np.ndarray, intercepts: np.ndarray) -> np.ndarray:
    """HU of stored slices ``[k, j, i]`` with each slice's slope and intercept: integers (int16, or int32
    beyond its range) when every slope is 1 and every intercept whole, float32 otherwise."""
    if np.all(slopes == 1) and np.all(intercepts == np.round(intercepts)):
        hu = stored.astype(np.int32)
        hu += intercepts.astype(np.int32)[:, None, None]
        low, high = (int(hu.min()), int(hu.max())) if hu.size else (0, 0)
        return hu.astype(np.int16) if -32768 <= low and high <= 32767 else hu
    return (stored * slopes[:, None, None] + intercepts[:, None, None]).astype(np.float32)


def read_ct_series(path: str | os.PathLike) -> Volume:
    """The CT series a folder (or ``FOLDER::SERIES_INSTANCE_UID``) holds, in HU (see the module)."""
    pydicom = pydicom_module()
    files, headers = zip(*choose_series(path))
    where = files[0].parent
    order, spacing, origin, direction = series_geometry(list(headers), where)
    stored, slopes, intercepts = [], [], []
    for index in order:
        slice_ = pydicom.dcmread(files[index])
        try:
            stored.append(np.asarray(slice_.pixel_array))
        except Exception as exc:  # pydicom raises several types for data it cannot decode
            raise InputError(f"{files[index]}: cannot decode its pixel data "
                             f"({slice_.file_meta.get('TransferSyntaxUID', 'unknown transfer syntax')}): {exc}") from exc
        slopes.append(float(slice_.get("RescaleSlope", 1.0)))
        intercepts.append(float(slice_.get("RescaleIntercept", 0.0)))
    return Volume(stored_to_hu(np.stack(stored), np.array(slopes), np.array(intercepts)), spacing, origin, direction)
