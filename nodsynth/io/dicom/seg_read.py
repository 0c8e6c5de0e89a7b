"""A DICOM Segmentation file read as an integer label map (voxel = segment number) on the grid of the
CT series it references, found in the folder holding the SEG (or below it): a SEG stores only the frames
it needs, so the CT gives the whole grid. Refused: the referenced CT series absent, a fractional SEG,
frames off the CT grid (another orientation, pixel spacing or size, or between slices), overlapping
segments."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from ...errors import InputError
from ...volume import GRID_TOLERANCE_MM, Volume
from .read import ORIENTATION_TOLERANCE, series_geometry
from .series import ct_series, pydicom_module


def _group(frame, shared, name: str):
    """A functional group's first item: the frame's own, else the shared one."""
    for groups in (frame, shared):
        if groups is not None and name in groups:
            return groups[name].value[0]
    raise InputError(f"a SEG frame has no {name}; its place is unknown")


def _ct_grid(seg, path: Path) -> Volume:
    uid = str(seg.ReferencedSeriesSequence[0].SeriesInstanceUID) if "ReferencedSeriesSequence" in seg else ""
    found = ct_series(path.parent).get(uid)
    if not found:
        raise InputError(f"{path}: the CT series it segments ({uid or 'not named'}) is not in {path.parent}; a SEG "
                         "is read on the grid of its CT, so keep the series beside it")
    headers = [header for _, header in found]
    order, spacing, origin, direction = series_geometry(headers, found[0][0].parent)
    shape = (len(headers), int(headers[0].Rows), int(headers[0].Columns))
    return Volume(np.broadcast_to(np.zeros((), np.uint8), shape), spacing, origin, direction)


def read_segmentation(path: str | os.PathLike) -> Volume:
    """The label map of a SEG file (see the module)."""
    path = Path(path)
    seg = pydicom_module().dcmread(path)
    if seg.get("Modality") != "SEG":
        raise InputError(f"{path} is a DICOM {seg.get('Modality', 'object')} file, not a SEG; give a CT series as "
                         "its folder")
    if seg.get("SegmentationType") != "BINARY":
        raise InputError(f"{path}: a {seg.get('SegmentationType', 'untyped')} SEG; only BINARY segments are read")
    grid = _ct_grid(seg, path)
    frames = np.asarray(seg.pixel_array).reshape(int(seg.get("NumberOfFrames", 1)), int(seg.Rows), int(seg.Columns))
    if frames.shape[1:] != grid.shape_kji[1:]:
        raise InputError(f"{path}: frames of {frames.shape[1]} x {frames.shape[2]} pixels on a CT of "
                         f"{grid.shape_kji[1]} x {grid.shape_kji[2]}")
    shared = seg.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in seg else None
    labels = np.zeros(grid.shape_kji, np.uint16)
    for index, frame in enumerate(seg.PerFrameFunctionalGroupsSequence):
        orientation = np.array(_group(frame, shared, "PlaneOrientationSequence").ImageOrientationPatient, float)
        spacing = np.array(_group(frame, shared, "PixelMeasuresSequence").PixelSpacing, float)[::-1]
        position = np.array(_group(frame, shared, "PlanePositionSequence").ImagePositionPatient, float)
        ijk = grid.world_to_index(position)
        k = int(np.rint(ijk[2]))
        if (np.abs(orientation - grid.direction[:, :2].T.ravel()).max() > ORIENTATION_TOLERANCE
                or np.abs(spacing - grid.spacing[:2]).max() > GRID_TOLERANCE_MM
                or np.abs((ijk - [0, 0, k]) * grid.spacing).max() > GRID_TOLERANCE_MM
                or not 0 <= k < grid.shape_kji[0]):
            raise InputError(f"{path}: frame {index + 1} at {np.round(position, 3).tolist()} mm is not a slice of "
                             "its CT's grid")
        number = int(_group(frame, shared, "SegmentIdentificationSequence").ReferencedSegmentNumber)
        inside = frames[index] != 0
        clash = inside & (labels[k] != 0) & (labels[k] != number)
        if clash.any():
            raise InputError(f"{path}: segments {int(labels[k][clash][0])} and {number} overlap in "
                             f"{int(clash.sum())} voxel(s) of slice {k}; a label map holds one label a voxel")
        labels[k][inside] = number
    return grid.with_array(labels)
