"""What LesionAugment computes, without Slicer: label maps from named masks, exact-volume nodule
resizing (``nodsynth.augment``) and the model-free / NodMAISI render of the edited CT."""
from __future__ import annotations

import re
from typing import Mapping, Optional, Sequence

import numpy as np

from nodsynth.augment import ResizeResult, check_percent, resize_series
from nodsynth.engines import EditRequest, Engine
from nodsynth.errors import InputError
from nodsynth.labelmap import assemble_labelmap, organs_from_totalsegmentator, totalsegmentator_to_maisi
from nodsynth.labels import label_dict
from nodsynth.progress import CancelToken, ProgressFn
from nodsynth.volume import Volume, require_same_grid


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


def _key(name: str) -> str:
    return re.sub(r"[\s_-]+", " ", name.strip().lower())


def organ_volume(masks: Mapping[str, Volume]) -> Volume:
    """One MAISI organ-id volume from masks named by MAISI label names or TotalSegmentator classes.

    Later masks win where they overlap. Raises naming every mask whose name is in neither table.
    """
    if not masks:
        raise InputError("no organ segments given")
    maisi = {_key(name): value for name, value in label_dict().items()}
    totalseg = totalsegmentator_to_maisi()
    unknown = [name for name in masks if _key(name) not in maisi and name not in totalseg]
    if unknown:
        raise InputError(f"segments with names that are neither MAISI labels nor TotalSegmentator classes: "
                         f"{unknown[:10]}; rename them (e.g. 'left lung upper lobe' or 'lung_upper_lobe_left')")
    ts_masks = {name: mask for name, mask in masks.items() if _key(name) not in maisi}
    first = next(iter(masks.values()))
    organs = organs_from_totalsegmentator(ts_masks) if ts_masks else first.with_array(
        np.zeros(first.shape_kji, dtype=np.int16))
    labels = np.asarray(organs.array).astype(np.int16)
    for name, mask in masks.items():
        if _key(name) in maisi:
            require_same_grid(first, mask, "first organ segment", f"segment {name!r}")
            labels[np.asarray(mask.array) > 0] = maisi[_key(name)]
    return first.with_array(labels)


def build_labelmap(organ_masks: Mapping[str, Volume], nodule_masks: Sequence[Volume],
                   ct: Optional[Volume] = None) -> Volume:
    """MAISI label map from named organ masks, nodule masks (label 23 on top) and the CT's body (200)."""
    return assemble_labelmap(organ_volume(organ_masks), ct=ct, nodule_masks=list(nodule_masks))


def resize(labelmap: Volume, nodule_id: int, percents: Sequence[float], method: str = "distance",
           progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> list[ResizeResult]:
    """Resize nodule ``nodule_id`` (1-based component id; 0 = every nodule) to each percent."""
    return resize_series(labelmap, "all" if nodule_id == 0 else int(nodule_id), list(percents), method,
                         progress=progress, cancel=cancel)


def stats_rows(results: Sequence[ResizeResult]) -> list[dict]:
    """One table row per nodule and step, with the step's target percent first."""
    return [{"step_percent": r.percent, **s.as_row()} for r in results for s in r.nodules]


def render_ct(engine: Engine, ct: Volume, labelmap: Volume, edited: Volume, steps: int = 30, seed: int = 0,
              progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> Volume:
    """The CT re-rendered for the edited label map (voxels away from the change stay bit-identical)."""
    request = EditRequest(ct=ct, labelmap=labelmap, edited_labelmap=edited, steps=int(steps), seed=int(seed))
    return engine.edit(request, progress=progress, cancel=cancel).ct
