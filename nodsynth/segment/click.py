"""Segment the nodule under a click inside one VOI (the default, cluster-based method).

1. Smooth the HU slightly (Gaussian, sigma in mm) so ground-glass texture and noise do not split the nodule.
2. Estimate the nodule's own level at the click (upper quartile within 2 mm, capped at soft tissue)
   and clip the VOI's values to it: brighter structures (vessels, bone, calcium) then weigh no more
   than the nodule and a faint ground-glass nodule is separated from the parenchyma around it.
3. Cluster the clipped values into two classes (k-means, GMM, FCM or Otsu) -> one HU threshold.
4. Keep the nodule under (or nearest to) the click without the wall and vessels it touches
   (:func:`.component.isolate_nodule`).
5. A solid click on a nodule (>= 8 mm) whose outer layer is ground glass - a part-solid nodule -
   sets the edge again from that layer's level (:func:`outer_layer_level_hu`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
from scipy import ndimage

from .clustering import clustered_boundary_level_hu
from .component import isolate_nodule
from .mm_morphology import edt_mm, largest_depth_bound_mm

SMOOTH_SIGMA_MM = 0.6
CORE_RADIUS_MM = 2.0
CORE_PERCENTILE = 75.0
SOFT_TISSUE_CAP_HU = 100.0
EDGE_FRACTION = 0.3
"""Nodule edge between the class levels (0 = parenchyma mean, 1 = nodule level)."""
SOLID_LEVEL_PERCENTILE = 85.0
"""A solid nodule's level is this percentile of its class (its tissue, not its partial-volume rim);
a ground-glass nodule's is its class mean (its texture spreads the class; the mean follows it)."""


@dataclass
class VoiSegmentation:
    mask: np.ndarray  # bool, VOI shape
    threshold_hu: float
    core_hu: float


def smooth_hu(hu_voi: np.ndarray, spacing_kji, sigma_mm: Optional[float] = None) -> np.ndarray:
    """Gaussian smoothing with a physical sigma (mm; default :data:`SMOOTH_SIGMA_MM`), float32."""
    sigma_mm = SMOOTH_SIGMA_MM if sigma_mm is None else sigma_mm
    sigma_vox = sigma_mm / np.asarray(spacing_kji, dtype=np.float64)
    return ndimage.gaussian_filter(hu_voi.astype(np.float32), sigma=sigma_vox, mode="nearest", truncate=2.5)


def core_level_hu(smoothed: np.ndarray, click_kji, spacing_kji, radius_mm: float = CORE_RADIUS_MM) -> float:
    """Nodule level at the click: 75th percentile of smoothed HU within ``radius_mm``, capped at 100 HU."""
    spacing = np.asarray(spacing_kji, dtype=np.float64)
    half = np.maximum(np.floor(radius_mm / spacing).astype(int), 0)
    sl = tuple(slice(max(c - h, 0), min(c + h + 1, n)) for c, h, n in zip(click_kji, half, smoothed.shape))
    k, j, i = ((np.arange(s.start, s.stop) - c) * sp for s, c, sp in zip(sl, click_kji, spacing))
    inside = k[:, None, None] ** 2 + j[None, :, None] ** 2 + i[None, None, :] ** 2 <= radius_mm ** 2
    return float(min(np.percentile(smoothed[sl][inside], CORE_PERCENTILE), SOFT_TISSUE_CAP_HU))


CEILING_FACTOR = 1.0
"""How far above a ground-glass core (in units of core - edge) voxels still count as nodule."""
GROUND_GLASS_MAX_HU = -300.0
"""A core level below this is ground glass (about -750..-300 HU); only then is there a ceiling."""


def ceiling_hu(core_hu: float, edge_hu: float) -> float:
    """Brightest HU still counted as nodule.

    For a ground-glass core (below -300 HU) it lies as far above the core level as the edge lies
    below it, so the chest wall, mediastinum and vessels the nodule touches are left out
    (enclosed ones come back when holes are filled). Solid cores have no ceiling.
    """
    if core_hu >= GROUND_GLASS_MAX_HU:
        return float("inf")
    return core_hu + CEILING_FACTOR * (core_hu - edge_hu)


def edge_level_hu(smoothed: np.ndarray, level_hu: float, allowed: Optional[np.ndarray], method: str,
                  solid: bool) -> float:
    """The nodule's edge level (HU) from the VOI's values clipped to the nodule's ``level_hu`` and
    clustered in two with ``method`` (:func:`.clustering.clustered_boundary_level_hu`)."""
    values = np.clip(smoothed, None, level_hu)  # clipped in float32, as smoothed
    if allowed is not None:
        values = values[allowed]
    return clustered_boundary_level_hu(values, method, EDGE_FRACTION, SOLID_LEVEL_PERCENTILE if solid else None)


def nodule_between(smoothed: np.ndarray, low_hu: float, high_hu: float, allowed: Optional[np.ndarray],
                   click_kji, spacing_kji) -> np.ndarray:
    """The nodule under the click among the voxels from ``low_hu`` to ``high_hu`` (:func:`isolate_nodule`)."""
    candidate = smoothed >= low_hu
    if high_hu < np.inf:  # a solid core has no ceiling
        candidate &= smoothed <= high_hu
    if allowed is not None:
        candidate &= allowed
    return isolate_nodule(candidate, click_kji, spacing_kji)


OUTER_LAYER_MM = (1.0, 2.5)
"""Depths (mm inside the first mask) of the nodule's outer layer, below its partial-volume rim."""
OUTER_LAYER_MIN_RADIUS_MM = 4.0
"""Only a nodule this deep (inscribed radius, mm) has an outer layer of its own; in a smaller one
the layer is its partial-volume rim, dim whatever the tissue."""


def outer_layer_level_hu(smoothed: np.ndarray, mask: np.ndarray, spacing_kji) -> Optional[float]:
    """Median HU of the mask's outer layer (:data:`OUTER_LAYER_MM` deep) when it is ground glass, else None.

    A solid click whose nodule is wrapped in ground glass (a part-solid nodule) has its edge
    set by that ground glass, not by the solid core.
    """
    if largest_depth_bound_mm(mask, spacing_kji) < OUTER_LAYER_MIN_RADIUS_MM:  # too small: no distance map needed
        return None
    depth = edt_mm(mask, spacing_kji)
    shallow, deep = OUTER_LAYER_MM
    if float(depth.max()) < OUTER_LAYER_MIN_RADIUS_MM:
        return None
    layer = mask & (depth > shallow) & (depth <= deep)
    level = float(np.median(smoothed[layer]))
    return level if level < GROUND_GLASS_MAX_HU else None


def segment_click_in_voi(hu_voi: np.ndarray, click_kji, spacing_kji, method: str = "kmeans",
                         allowed: Optional[np.ndarray] = None,
                         threshold_hu: Optional[float] = None) -> VoiSegmentation:
    """Mask (VOI shape) of the nodule under ``click_kji`` (VOI index); ``allowed`` restricts it (lung).

    ``threshold_hu`` reuses the edge level found in a smaller VOI (the local parenchyma sets
    it; a grown VOI only gives the nodule room). A solid click whose nodule has a ground-glass
    outer layer (:func:`outer_layer_level_hu`) is a part-solid nodule's core: the edge is then
    found again from that layer's level, so the nodule comes with all of its ground glass.
    """
    smoothed = smooth_hu(hu_voi, spacing_kji)
    core = core_level_hu(smoothed, click_kji, spacing_kji)
    if threshold_hu is not None:
        mask = nodule_between(smoothed, threshold_hu, ceiling_hu(core, threshold_hu), allowed, click_kji, spacing_kji)
        return VoiSegmentation(mask, threshold_hu, core)
    solid = core >= GROUND_GLASS_MAX_HU
    threshold = edge_level_hu(smoothed, core, allowed, method, solid)
    mask = nodule_between(smoothed, threshold, ceiling_hu(core, threshold), allowed, click_kji, spacing_kji)
    outer = outer_layer_level_hu(smoothed, mask, spacing_kji) if solid and mask.any() else None
    if outer is not None:
        lower = edge_level_hu(smoothed, outer, allowed, method, solid=False)
        if lower < threshold:
            threshold = lower
            mask = nodule_between(smoothed, threshold, np.inf, allowed, click_kji, spacing_kji)
    return VoiSegmentation(mask, threshold, core)
