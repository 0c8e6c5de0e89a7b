"""Nodule segmentation from a click (LPS world mm) or a box: :func:`segment_nodule`.

Methods: ``kmeans`` (default), ``gmm``, ``fcm``, ``otsu`` - cluster-based, returning the
component under the click with attachments cut (:mod:`.click`) - and ``pins``, the NodMAISI
seed protocol reproduced for comparison (:mod:`.pins`).
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from ..progress import CancelToken, ProgressFn, check_cancel, no_progress
from ..volume import Volume
from .checks import require_box_fits, require_ct_in_hu, require_not_air
from .click import segment_click_in_voi
from .clustering import METHODS as CLUSTER_METHODS
from .contrast import MIN_CONTRAST_HU, segmentation_contrast_hu
from .pins import pins_box_voxels_kji, pins_mask, pins_voi_slices
from .postprocess import expand_mm as expand_mask_mm, fill_holes as fill_mask_holes, lung_region
from .voi import INITIAL_VOI_MM, MAX_VOI_MM, Voi, voi_around

METHODS = CLUSTER_METHODS + ("pins",)
DEFAULT_PINS_BOX_MM = 20.0
"""Box edge (mm) the ``pins`` method uses when only a point is given."""
VOI_GROWTH_FACTOR = 1.5


@dataclass
class SegmentationResult:
    """One nodule's mask on the CT grid and how it was obtained."""

    mask: Volume  # uint8 0/1 on the CT grid
    method: str
    seconds: float
    voi: Voi
    point_lps: tuple[float, float, float]
    threshold_hu: Optional[float] = None
    voi_capped: bool = False  # the nodule still touched the VOI at its largest size
    contrast_hu: Optional[float] = None
    """Mean HU of the nodule (before ``expand_mm``) minus the median HU of the lung 2-5 mm around it
    (None: nothing to compare with)."""

    @property
    def voxel_count(self) -> int:
        return int(np.count_nonzero(self.mask.array))

    @property
    def low_contrast(self) -> bool:
        """The mask stands out from the lung around it by less than :data:`~.contrast.MIN_CONTRAST_HU`:
        plain parenchyma, no nodule at this point."""
        return self.contrast_hu is not None and self.contrast_hu < MIN_CONTRAST_HU

    def to_dict(self) -> dict:
        return {"method": self.method, "seconds": round(self.seconds, 6), "voi": self.voi.to_dict(),
                "point_lps_mm": [float(v) for v in self.point_lps], "voxel_count": self.voxel_count,
                "threshold_hu": None if self.threshold_hu is None else float(self.threshold_hu),
                "voi_capped": self.voi_capped,
                "contrast_hu": None if self.contrast_hu is None else round(self.contrast_hu, 2),
                "low_contrast": self.low_contrast}


def _voi_edges_mm(ct: Volume, box_size_mm: Optional[np.ndarray]) -> np.ndarray:
    """First VOI edges (mm, k j i): the box plus 5 voxels each side, or :data:`INITIAL_VOI_MM`."""
    if box_size_mm is None:
        return np.full(3, INITIAL_VOI_MM)
    return box_size_mm[::-1] + 10.0 * ct.spacing[::-1]


def _segment_clustered(ct: Volume, click_kji, box_size_mm, method: str, allowed: Optional[np.ndarray],
                       max_voi_mm: float, cancel: Optional[CancelToken]):
    """Run :func:`segment_click_in_voi`, growing the VOI while the nodule touches an inner face."""
    spacing_kji = ct.spacing[::-1]
    edges = np.minimum(_voi_edges_mm(ct, box_size_mm), max_voi_mm)
    threshold = None
    while True:
        check_cancel(cancel)
        voi = voi_around(ct, click_kji, edges)
        local_allowed = None if allowed is None else allowed[voi.slices]
        seg = segment_click_in_voi(ct.array[voi.slices], voi.local_kji(click_kji), spacing_kji, method,
                                   local_allowed, threshold)
        threshold = seg.threshold_hu
        touched = voi.inner_faces_touched(seg.mask)
        if not touched or np.all(edges >= max_voi_mm):
            return voi, seg, bool(touched)
        edges = np.minimum(edges * VOI_GROWTH_FACTOR, max_voi_mm)


def _expanded(ct: Volume, voi: Voi, local: np.ndarray, expand_mm: float,
              allowed: Optional[np.ndarray]) -> tuple[Voi, np.ndarray]:
    """The VOI mask grown by ``expand_mm`` (physical distance) in a VOI padded to hold it."""
    pad = np.ceil(expand_mm / ct.spacing[::-1]).astype(int) + 1
    grown = Voi(tuple(max(a - p, 0) for a, p in zip(voi.start_kji, pad)),
                tuple(min(b + p, n) for b, p, n in zip(voi.stop_kji, pad, ct.shape_kji)), ct.shape_kji)
    canvas = np.zeros(grown.shape_kji, dtype=bool)
    canvas[tuple(slice(a - g, b - g) for a, b, g in zip(voi.start_kji, voi.stop_kji, grown.start_kji))] = local
    canvas = expand_mask_mm(canvas, ct.spacing[::-1], expand_mm)
    if allowed is not None:
        canvas &= allowed[grown.slices]
    return grown, canvas


def segment_nodule(ct: Volume, point_lps: Sequence[float], box_size_mm: Optional[Sequence[float]] = None,
                   method: str = "kmeans", lung_mask: Optional[Volume] = None, expand_mm: float = 0.0,
                   fill_holes: Optional[bool] = None, max_voi_mm: float = MAX_VOI_MM,
                   progress: Optional[ProgressFn] = None,
                   cancel: Optional[CancelToken] = None) -> SegmentationResult:
    """Segment the nodule at ``point_lps`` (LPS mm) in ``ct`` (HU).

    ``box_size_mm`` (w, h, d along i, j, k) sizes the first VOI (PiNS CSV convention) and is
    required in spirit by ``pins`` (a 20 mm box is used without it). ``lung_mask`` is a 0/1 lung
    mask or MAISI label map on the CT grid that the nodule is restricted to. ``expand_mm`` grows
    the mask by a physical distance. ``fill_holes`` defaults to True, except for ``pins``, which
    follows the protocol exactly (no hole filling). The result's ``contrast_hu`` and ``low_contrast``
    say whether the mask stands out from the lung around it (a click on plain parenchyma gives a mask
    anyway, flagged ``low_contrast``; callers decide whether to refuse it). Raises :class:`~nodsynth.errors.InputError` /
    :class:`~nodsynth.errors.GeometryError` for a click outside the volume or in air, an image
    that is not CT in HU, a box larger than the volume or an unknown method.
    """
    report = progress or no_progress
    start = time.perf_counter()
    if method not in METHODS:
        raise InputError(f"unknown segmentation method {method!r}; use one of {', '.join(METHODS)}")
    if not (np.isfinite(expand_mm) and expand_mm >= 0):
        raise InputError(f"expand_mm must be >= 0 millimetres, got {expand_mm}")
    if not (np.isfinite(max_voi_mm) and max_voi_mm > 0):
        raise InputError(f"max_voi_mm must be a positive number of millimetres, got {max_voi_mm}")
    click_kji = ct.world_to_kji(point_lps)
    box = None if box_size_mm is None else require_box_fits(ct, box_size_mm)
    require_ct_in_hu(ct)
    require_not_air(ct, click_kji)
    allowed = None if lung_mask is None else lung_region(lung_mask, ct)
    report(0.1, "segmenting")

    threshold, capped = None, False
    if method == "pins":
        box_vox = pins_box_voxels_kji(box if box is not None else np.full(3, DEFAULT_PINS_BOX_MM), ct.spacing)
        sl = pins_voi_slices(click_kji, box_vox, ct.shape_kji)
        voi = Voi(tuple(s.start for s in sl), tuple(s.stop for s in sl), ct.shape_kji)
        full = pins_mask(ct.array, click_kji, box_vox).astype(bool)
        local = full[voi.slices]
        if allowed is not None:
            local &= allowed[voi.slices]
    else:
        voi, seg, capped = _segment_clustered(ct, click_kji, box, method, allowed, max_voi_mm, cancel)
        local, threshold = seg.mask, seg.threshold_hu
    check_cancel(cancel)
    if fill_holes if fill_holes is not None else method != "pins":
        local = fill_mask_holes(local)

    out = np.zeros(ct.shape_kji, dtype=np.uint8)
    out[voi.slices] = local
    contrast = segmentation_contrast_hu(ct, out, allowed)  # of the nodule itself, before any expansion
    if expand_mm > 0:
        grown, local = _expanded(ct, voi, local, expand_mm, allowed)
        out[grown.slices] = local
    report(1.0, "done")
    return SegmentationResult(ct.with_array(out), method, time.perf_counter() - start, voi,
                              tuple(float(v) for v in point_lps), threshold, capped, contrast)


__all__ = ["METHODS", "SegmentationResult", "segment_nodule"]
