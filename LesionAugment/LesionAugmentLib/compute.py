"""What LesionAugment computes, without Slicer: exact-volume nodule resizing (``nodsynth.augment``)
and the model-free / NodMAISI render of the edited CT."""
from __future__ import annotations

import re
from typing import Optional, Sequence

import numpy as np

from nodsynth.augment import (ResizeResult, check_percent, equivalent_diameter_mm, longest_diameter_mm,
                             nodule_components, resize_series, select_nodules)
from nodsynth.engines import Engine
from nodsynth.errors import InputError
from nodsynth.progress import CancelToken, ProgressFn
from nodsynth.render.modes import DEFAULT_RENDER_MODE, render_edited
from nodsynth.volume import Volume


def parse_percents(text: str) -> list[float]:
    """``"100, 90, 80"`` -> ``[100.0, 90.0, 80.0]``; each checked to lie in (0, 300]."""
    parts = [p for p in re.split(r"[,;\s]+", (text or "").strip()) if p]
    if not parts:
        raise InputError("give at least one target percent, e.g. 100,90,80,70,60,50")
    try:
        values = [float(p) for p in parts]
    except ValueError as exc:
        raise InputError(f"target percents must be numbers separated by commas, got {text!r}") from exc
    return [check_percent(v) for v in values]


def nodule_table_rows(labelmap: Volume) -> list[dict]:
    """One row per nodule (6-connected component of label 23, ids as ``resize`` uses them): voxels,
    volume, equivalent and longest diameter, centroid (LPS mm)."""
    rows = []
    for nodule_id, coords in enumerate(nodule_components(labelmap), start=1):
        centroid = labelmap.index_to_world(coords.mean(axis=0)[::-1])
        rows.append({"nodule_id": nodule_id, "voxels": len(coords),
                     "volume_mm3": len(coords) * labelmap.voxel_volume_mm3,
                     "equivalent_diameter_mm": equivalent_diameter_mm(len(coords), labelmap.voxel_volume_mm3),
                     "longest_diameter_mm": longest_diameter_mm(coords, labelmap.spacing[::-1]),
                     "centroid_lps": np.round(centroid, 2).tolist()})
    return rows


def nodule_at(labelmap: Volume, point_lps) -> int:
    """Id of the nodule containing the LPS point (mm), or the nearest one within a few millimetres."""
    return select_nodules(labelmap, nodule_components(labelmap), np.asarray(point_lps, dtype=float))[0]


def resize(labelmap: Volume, nodule_id: int, percents: Sequence[float], method: str = "distance",
           progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> list[ResizeResult]:
    """Resize nodule ``nodule_id`` (1-based component id; 0 = every nodule) to each percent."""
    return resize_series(labelmap, "all" if nodule_id == 0 else int(nodule_id), list(percents), method,
                         progress=progress, cancel=cancel)


def stats_rows(results: Sequence[ResizeResult]) -> list[dict]:
    """One table row per nodule and step, with the step's target percent first."""
    return [{"step_percent": r.percent, **s.as_row()} for r in results for s in r.nodules]


def render_ct(engine: Engine, ct: Volume, labelmap: Volume, edited: Volume, steps: int = 30, seed: int = 0,
              mode: str = DEFAULT_RENDER_MODE, progress: Optional[ProgressFn] = None,
              cancel: Optional[CancelToken] = None) -> Volume:
    """The CT for the edited label map: ``roi`` re-renders the changed region of ``ct`` (voxels away from
    the change stay bit-identical), ``twin`` synthesises a whole new CT (see :mod:`nodsynth.render.modes`)."""
    return render_edited(engine, edited, mode, ct=ct, labelmap=labelmap, steps=int(steps), seed=int(seed),
                         progress=progress, cancel=cancel).ct
