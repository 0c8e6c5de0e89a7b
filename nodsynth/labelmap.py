"""MAISI anatomy label maps: build them from a CT and an organ segmentation, load and validate them.

A MAISI label map is an integer volume on the CT grid holding MAISI / VISTA3D ids
(:mod:`nodsynth.labels`): organs, lung lobes 28-32, the body label 200 for every body voxel
that no organ claims, and nodules as label 23 painted on top of everything else.

* :func:`body_mask_from_ct` - threshold at -300 HU, keep the largest connected component, fill holes.
* :func:`assemble_labelmap` - organ ids + body + nodule masks (optionally expanded by a margin) -> label map.
  NodMAISI's ControlNet was trained on label maps whose nodule masks were expanded by 2 mm (NoMAISI /
  CaNA's DLCS label maps live in ``vista3Dauto_seg_knneX2mm_GTV_512xy_256z_771p25m``: VISTA3D organs,
  GTV nodules, kNN-expanded by 2 mm); builders of NodMAISI inputs pass
  :data:`NODMAISI_NODULE_MARGIN_MM` (``nodsynth labelmap build`` does by default).
* :func:`organs_from_totalsegmentator` / :func:`read_totalsegmentator_folder` - TotalSegmentator
  class masks -> MAISI organ ids through ``Resources/totalsegmentator_to_maisi.json``.
* :func:`as_integer_labelmap`, :func:`load_labelmap`, :func:`validate_labelmap`.
"""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping, Optional

import numpy as np
from scipy import ndimage as ndi

from .errors import InputError, plain
from .labels import BACKGROUND, BODY, NODULE, known_label_ids, label_names
from .resources import load_json_resource
from .segment.mm_morphology import dilation_mm
from .volume import Volume, require_same_grid
from .io.volume_files import read_volume

BODY_THRESHOLD_HU = -300.0
"""Voxels above this value (HU) are body candidates (the seed's body threshold)."""

TOTALSEGMENTATOR_TABLE = "totalsegmentator_to_maisi.json"

NODMAISI_NODULE_MARGIN_MM = 2.0
"""Nodule masks of NodMAISI inputs are expanded by this margin (mm), as its training label maps were."""

SIX_CONNECTED = ndi.generate_binary_structure(3, 1)
"""Face-connectivity, the neighbourhood used for every connected-component step here."""


# ------------------------------------------------------------------ body mask
def largest_component(mask: np.ndarray) -> np.ndarray:
    """The largest 6-connected component of a boolean mask (empty mask -> empty mask)."""
    labels, count = ndi.label(mask, structure=SIX_CONNECTED)
    if count == 0:
        return np.zeros(mask.shape, dtype=bool)
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == int(np.argmax(sizes))


def fill_holes_3d_and_axial(mask: np.ndarray) -> np.ndarray:
    """Fill enclosed holes in 3-D, then per axial slice.

    The axial pass also fills cavities that a cropped scan leaves open through its top or bottom
    slice (lungs and trachea of a thin slab), which a pure 3-D fill would treat as outside.
    """
    filled = ndi.binary_fill_holes(mask)
    for k in range(filled.shape[0]):
        filled[k] = ndi.binary_fill_holes(filled[k])
    return filled


def body_mask_from_ct(ct: Volume, threshold_hu: float = BODY_THRESHOLD_HU) -> np.ndarray:
    """Boolean body mask ``[k, j, i]`` of a CT in HU: ``> threshold_hu``, largest component, holes filled.

    Raises :class:`InputError` when no voxel exceeds the threshold (not a CT in HU).
    """
    candidates = np.asarray(ct.array) > threshold_hu
    if not candidates.any():
        raise InputError(f"no voxel of the CT is above {threshold_hu:g} HU: is it a CT in Hounsfield units?")
    return fill_holes_3d_and_axial(largest_component(candidates))


# --------------------------------------------------------------- integer maps
def smallest_label_dtype(max_id: int) -> np.dtype:
    """uint8 for ids up to 255, else int16/int32."""
    for dtype in (np.uint8, np.int16, np.int32):
        if max_id <= np.iinfo(dtype).max:
            return np.dtype(dtype)
    raise InputError(f"label id {max_id} is too large for a label map")


def as_integer_labelmap(labelmap: Volume, name: str = "label map") -> Volume:
    """The label map with an integer dtype; integer-valued floats (the DLCS maps) are cast.

    Raises :class:`InputError` for non-finite, negative or non-integer values, naming one of them.
    """
    array = np.asarray(labelmap.array)
    if array.dtype == np.bool_:
        return labelmap.with_array(array.astype(np.uint8))
    if np.issubdtype(array.dtype, np.floating):
        bad = ~np.isfinite(array) | (array != np.round(array))
        if bad.any():
            example = array[bad].flat[0]
            raise InputError(f"{name} holds non-integer values ({int(bad.sum())} voxels, e.g. {plain(example)!r}); "
                             "a label map must hold integer MAISI ids")
    elif not np.issubdtype(array.dtype, np.integer):
        raise InputError(f"{name} has unsupported voxel type {array.dtype}; expected integer ids")
    if array.size and array.min() < 0:
        raise InputError(f"{name} holds negative values (min {array.min()}); MAISI ids are >= 0")
    dtype = smallest_label_dtype(int(array.max()) if array.size else 0)
    if array.dtype == dtype:
        return labelmap
    return labelmap.with_array(array.astype(dtype))


def load_labelmap(path: str | os.PathLike, what: str = "label map") -> Volume:
    """Read a label map (or a mask: ``what``) and cast it to integers (see :func:`as_integer_labelmap`)."""
    return as_integer_labelmap(read_volume(path), name=f"{what} {Path(path).name}")


# ------------------------------------------------------------------ validation
def unknown_label_ids(labelmap: Volume) -> list[int]:
    """Ids present in an integer label map that are not in the MAISI label space."""
    present = np.unique(labelmap.array)
    return sorted(int(v) for v in present if int(v) not in known_label_ids())


def nodule_voxels_outside_body(labelmap: Volume, body: Optional[np.ndarray] = None) -> int:
    """Number of nodule (23) voxels outside the body.

    With ``body`` (a boolean mask, e.g. :func:`body_mask_from_ct`) a voxel is outside when the mask
    is False there; without it, when the voxel touches background (0) through a face.
    """
    coords = np.argwhere(labelmap.array == NODULE)
    if coords.size == 0:
        return 0
    if body is not None:
        return int(np.count_nonzero(~body[tuple(coords.T)]))
    lo = np.maximum(coords.min(axis=0) - 1, 0)
    hi = np.minimum(coords.max(axis=0) + 2, labelmap.shape_kji)
    box = labelmap.array[tuple(slice(a, b) for a, b in zip(lo, hi))]
    background_near = ndi.binary_dilation(box == BACKGROUND, structure=SIX_CONNECTED)
    return int(np.count_nonzero((box == NODULE) & background_near))


def validate_labelmap(labelmap: Volume, ct: Optional[Volume] = None) -> Volume:
    """Check a MAISI label map and return it cast to integers.

    Checks: integer-valued, only known MAISI ids, on the CT grid (when ``ct`` is given), every
    nodule voxel inside the body (the CT's body mask when ``ct`` is given). Raises
    :class:`InputError` / :class:`~nodsynth.errors.GeometryError` naming the first problem.
    """
    labelmap = as_integer_labelmap(labelmap)
    unknown = unknown_label_ids(labelmap)
    if unknown:
        raise InputError(f"label map holds ids outside the MAISI label space: {unknown[:10]}"
                         + (" ..." if len(unknown) > 10 else ""))
    body = None
    if ct is not None:
        require_same_grid(ct, labelmap, "CT", "label map")
        body = body_mask_from_ct(ct)
    outside = nodule_voxels_outside_body(labelmap, body)
    if outside:
        raise InputError(f"{outside} nodule (label {NODULE}) voxels lie outside the body")
    return labelmap


# ------------------------------------------------------------------- assembly
def assemble_labelmap(organs: Volume, ct: Optional[Volume] = None,
                      nodule_masks: Iterable[Volume] = (), body_mask: Optional[np.ndarray] = None,
                      nodule_margin_mm: float = 0.0) -> Volume:
    """Build a MAISI label map: organ ids, then body (200) on body voxels no organ claims, then nodules (23).

    ``organs`` holds MAISI ids (0 = none). The body comes from ``body_mask`` (boolean ``[k, j, i]``)
    or from ``ct`` via :func:`body_mask_from_ct`; with neither, no body label is added. Every nodule
    mask (non-zero = nodule), expanded by ``nodule_margin_mm`` (:data:`NODMAISI_NODULE_MARGIN_MM` for
    NodMAISI inputs) into labelled (non-background) voxels, is painted as 23 on top. All volumes must
    share the organ grid.
    """
    if not np.isfinite(nodule_margin_mm) or nodule_margin_mm < 0:
        raise InputError(f"the nodule margin must be >= 0 mm, got {nodule_margin_mm}")
    organs = as_integer_labelmap(organs, name="organ segmentation")
    unknown = unknown_label_ids(organs)
    if unknown:
        raise InputError(f"organ segmentation holds ids outside the MAISI label space: {unknown[:10]}")
    out = np.array(organs.array, dtype=smallest_label_dtype(max(BODY, int(organs.array.max(initial=0)))))
    if ct is not None:
        require_same_grid(organs, ct, "organ segmentation", "CT")
        if body_mask is None:
            body_mask = body_mask_from_ct(ct)
    if body_mask is not None:
        body_mask = np.asarray(body_mask, dtype=bool)
        if body_mask.shape != out.shape:
            raise InputError(f"body mask shape {body_mask.shape} differs from the organ grid {out.shape}")
        out[body_mask & (out == BACKGROUND)] = BODY
    labelled = out != BACKGROUND
    for index, mask in enumerate(nodule_masks):
        require_same_grid(organs, mask, "organ segmentation", f"nodule mask {index + 1}")
        drawn = np.asarray(mask.array) != 0
        grown = dilation_mm(drawn, nodule_margin_mm, organs.spacing[::-1]) if nodule_margin_mm > 0 else drawn
        out[drawn | (grown & labelled)] = NODULE
    return organs.with_array(out)


# ---------------------------------------------------------- TotalSegmentator
@lru_cache(maxsize=1)
def totalsegmentator_to_maisi() -> dict[str, int]:
    """TotalSegmentator class name -> MAISI id, from ``Resources/totalsegmentator_to_maisi.json``."""
    table = load_json_resource(TOTALSEGMENTATOR_TABLE)["classes"]
    return {name: int(entry["maisi_id"]) for name, entry in table.items()}


def organs_from_totalsegmentator(masks: Mapping[str, Volume]) -> Volume:
    """Combine TotalSegmentator class masks (name -> binary Volume) into one MAISI organ volume.

    Names are TotalSegmentator class names (``lung_upper_lobe_left``, ``vertebrae_T7``,
    ``rib_left_3``, ...). A voxel claimed by several masks takes the class listed last in the
    mapping table. Raises :class:`InputError` for an unknown name or masks on different grids.
    """
    if not masks:
        raise InputError("no TotalSegmentator masks given")
    table = totalsegmentator_to_maisi()
    unknown = sorted(set(masks) - set(table))
    if unknown:
        raise InputError(f"unknown TotalSegmentator classes: {unknown[:10]}; the mapping table "
                         f"{TOTALSEGMENTATOR_TABLE} knows {len(table)} classes")
    reference = next(iter(masks.values()))
    out = np.zeros(reference.shape_kji, dtype=np.uint8)
    for name in (n for n in table if n in masks):
        require_same_grid(reference, masks[name], "first TotalSegmentator mask", f"mask {name!r}")
        out[np.asarray(masks[name].array) != 0] = table[name]
    return reference.with_array(out)


def read_totalsegmentator_folder(folder: str | os.PathLike) -> dict[str, Volume]:
    """Read TotalSegmentator's output folder (one ``<class>.nii.gz`` per class) -> name -> Volume.

    Files whose name is not a known class are ignored; raises when none is known.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"TotalSegmentator output folder not found: {folder}")
    table = totalsegmentator_to_maisi()
    masks = {}
    for path in sorted(folder.glob("*.nii*")):
        name = path.name.split(".nii")[0]
        if name in table:
            masks[name] = read_volume(path)
    if not masks:
        raise InputError(f"{folder} holds no TotalSegmentator class masks (<class>.nii.gz)")
    return masks


def label_counts(labelmap: Volume) -> dict[str, int]:
    """Voxel count per label name (ids without a name keep their number) of an integer label map."""
    ids, counts = np.unique(labelmap.array, return_counts=True)
    names = label_names()
    return {names.get(int(i), str(int(i))) if int(i) != BACKGROUND else "background": int(c)
            for i, c in zip(ids, counts)}
