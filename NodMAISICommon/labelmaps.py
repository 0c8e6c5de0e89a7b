"""MAISI label maps from named masks (pure): organ segments named by MAISI labels or TotalSegmentator
classes, nodule masks as label 23, the CT's body as 200. Used by LesionAugment and NodMAISI."""
from __future__ import annotations

import re
from typing import Mapping, Optional, Sequence

import numpy as np

from nodsynth.errors import InputError
from nodsynth.labelmap import (NODMAISI_NODULE_MARGIN_MM, assemble_labelmap, organs_from_totalsegmentator,
                               totalsegmentator_to_maisi)
from nodsynth.labels import label_dict
from nodsynth.volume import Volume, require_same_grid


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
                   ct: Optional[Volume] = None, nodule_margin_mm: float = NODMAISI_NODULE_MARGIN_MM) -> Volume:
    """MAISI label map from named organ masks, nodule masks (label 23 on top, expanded by
    ``nodule_margin_mm``: 2 mm, as in the label maps NodMAISI's ControlNet was trained on) and the CT's
    body (200)."""
    return assemble_labelmap(organ_volume(organ_masks), ct=ct, nodule_masks=list(nodule_masks),
                             nodule_margin_mm=nodule_margin_mm)


def split_lung_input(lung: Optional[Volume]) -> tuple[Optional[Volume], Optional[Volume]]:
    """``(labelmap, lung_mask)`` from the module's one lung input: values above 1 mean a MAISI label map."""
    if lung is None:
        return None, None
    return (lung, None) if float(np.max(lung.array)) > 1 else (None, lung)
