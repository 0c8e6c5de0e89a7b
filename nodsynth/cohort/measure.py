"""A made cohort case measured against its plan, on the result's own masks (the rules of :mod:`.room`).

Per nodule: equivalent-sphere diameter (mm) of its voxels in the ``ids`` mask, whether every voxel lies in
the source lung, its pleura distance (mm), the location that distance implies, and its clearance (mm) to
every other nodule of the case (existing ones in the source and the other new ones).
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..place import resolve_lung
from ..sphere import sphere_diameter_mm
from ..volume import Volume, nonzero_extent_kji
from .nodule import LocalMask
from .room import SUBPLEURAL_MM, CaseRoom, SourceLung


def measured_location(pleura_mm: float, pleura_clearance_mm: float) -> str:
    """``inner``, ``subpleural`` or ``neither`` for a nodule this far (mm) from the pleura."""
    if pleura_mm >= pleura_clearance_mm:
        return "inner"
    return "subpleural" if pleura_mm <= SUBPLEURAL_MM else "neither"


def _tight(mask: np.ndarray) -> LocalMask:
    start, stop = nonzero_extent_kji(mask)
    return LocalMask(start, mask[tuple(slice(a, b) for a, b in zip(start, stop))])


def measure_case(rows: list[dict], ids: Volume, source_ct: Optional[Volume], source_labelmap: Optional[Volume],
                 pleura_clearance_mm: float) -> list[dict]:
    """One record per row: planned and measured diameter, in-lung, pleura distance, location, clearance."""
    lung = SourceLung.from_masks(*resolve_lung(source_ct, source_labelmap))
    labels = np.asarray(ids.array)[tuple(slice(a, a + n) for a, n in zip(lung.start_kji, lung.existing.shape))]
    outside = int(np.count_nonzero(np.asarray(ids.array))) - int(np.count_nonzero(labels))
    room = CaseRoom(lung, clearance_mm=1.0e9, pleura_clearance_mm=pleura_clearance_mm)
    records = []
    for row in rows:
        number = int(row["nodule_id"])
        mine = labels == number
        room.taken = lung.existing | ((labels > 0) & ~mine)
        voxels = np.argwhere(mine)
        pleura = lung.pleura_mm[tuple(voxels.T)]
        nearest = float(pleura.min()) if len(pleura) else float("nan")
        records.append({
            "case_id": row["case_id"], "nodule_id": number, "location": row["location"],
            "diameter_mm": float(row["diameter_mm"]),
            "measured_diameter_mm": round(sphere_diameter_mm(len(voxels) * ids.voxel_volume_mm3), 3),
            "inside_lung": bool(len(voxels) and np.all(pleura > 0) and outside == 0),
            "pleura_mm": round(nearest, 3),
            "measured_location": measured_location(nearest, pleura_clearance_mm),
            "clearance_mm": round(room.clearance_of(_tight(mine)), 3) if len(voxels) else float("nan")})
    return records
