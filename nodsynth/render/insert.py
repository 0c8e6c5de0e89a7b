"""Model-free nodule insertion (``ClassicEngine.inpaint``): a nodule with a given mask, subtype and
HU histogram is written into a CT.

1. **Texture**: white noise (seeded) smoothed by a Gaussian of :data:`TEXTURE_SIGMA_MM` (physical,
   per-axis voxel sigmas) gives spatially correlated texture inside the nodule.
2. **Structure**: each nodule voxel gets a score = texture + ``depth_weight`` x its normalised depth
   below the nodule surface (so the centre is denser than the rim); for part-solid nodules the
   depth weight is large, which puts the dense (solid) values in a core inside a ground-glass
   halo. Voxels labelled 2 in the mask are an explicit solid core and rank above all others.
3. **Histogram match**: the scores are mapped by rank onto quantiles of the target histogram
   (piecewise-uniform inside each 35 HU bin), so the HU histogram of the nodule voxels equals
   the target up to rounding to the CT's integer type.
4. **Partial-volume edge**: voxels within :data:`EDGE_MM` outside the mask are blended
   ``a * nodule + (1 - a) * CT`` with ``a`` falling linearly with the distance (mm) from the mask;
   with a lung mask, only lung voxels are blended.

Every voxel farther than :data:`EDGE_MM` from the nodule mask is bit-identical to the input.
Same seed -> same output.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage

from ..engines.base import SUBTYPES, InpaintRequest, SynthesisResult, subtype_index
from ..errors import InputError
from ..histogram import BIN_EDGES_HU, hu_histogram, jensen_shannon, validate_histogram
from ..progress import CancelToken, ProgressFn, check_cancel, no_progress
from ..volume import require_same_grid

TEXTURE_SIGMA_MM = 0.8
"""Correlation length of the nodule texture (Gaussian sigma, mm)."""

EDGE_MM = 1.0
"""Width of the partial-volume edge outside the mask (mm); the changed margin."""

DEPTH_WEIGHT = {"solid": 0.6, "part-solid": 4.0, "ground-glass": 0.3}
"""How strongly depth below the surface raises a voxel's rank, per subtype (texture has unit std)."""


def histogram_quantiles_hu(histogram: np.ndarray, count: int) -> np.ndarray:
    """``count`` ascending HU values at the mid-quantiles of a histogram (uniform inside each bin)."""
    hist = validate_histogram(histogram)
    cdf = np.concatenate([[0.0], np.cumsum(hist)])
    cdf[-1] = 1.0
    quantiles = (np.arange(count) + 0.5) / count
    return np.interp(quantiles, cdf, BIN_EDGES_HU)


def correlated_texture(shape_kji: tuple[int, int, int], spacing_ijk: np.ndarray, rng: np.random.Generator,
                       sigma_mm: float = TEXTURE_SIGMA_MM) -> np.ndarray:
    """Gaussian-smoothed white noise of unit standard deviation, correlation length ``sigma_mm``."""
    noise = ndimage.gaussian_filter(rng.standard_normal(shape_kji), sigma=sigma_mm / np.asarray(spacing_ijk)[::-1])
    return (noise - noise.mean()) / max(float(noise.std()), 1e-12)


def _roi_slices(mask: np.ndarray, margin_kji: np.ndarray) -> tuple[slice, ...]:
    nz = np.nonzero(mask)
    start = np.maximum(np.array([a.min() for a in nz]) - margin_kji, 0)
    stop = np.minimum(np.array([a.max() + 1 for a in nz]) + margin_kji, mask.shape)
    return tuple(slice(int(a), int(b)) for a, b in zip(start, stop))


def insert_nodule(request: InpaintRequest, progress: Optional[ProgressFn] = None,
                  cancel: Optional[CancelToken] = None) -> SynthesisResult:
    """Insert the nodule described by ``request`` into its CT (see the module docstring)."""
    from ..histogram_library import target_histogram_of

    report = progress or no_progress
    ct, mask_volume = request.ct, request.nodule_mask
    require_same_grid(ct, mask_volume, "CT", "nodule mask")
    if request.lung_mask is not None:
        require_same_grid(ct, request.lung_mask, "CT", "lung mask")
    subtype = SUBTYPES[subtype_index(request.subtype)]
    target, source = target_histogram_of(request)
    labels = np.rint(np.asarray(mask_volume.array)).astype(np.int16)
    if not (labels > 0).any():
        raise InputError("the nodule mask is empty: nothing to insert")
    report(0.05, "nodule texture")
    check_cancel(cancel)

    spacing_kji = ct.spacing[::-1]
    margin = np.ceil(EDGE_MM / spacing_kji).astype(int) + 1
    roi = _roi_slices(labels > 0, margin)
    inside = labels[roi] > 0
    rng = np.random.default_rng(request.seed)
    texture = correlated_texture(inside.shape, ct.spacing, rng)
    depth_mm = ndimage.distance_transform_edt(np.pad(inside, 1), sampling=spacing_kji)[1:-1, 1:-1, 1:-1]
    depth = depth_mm / max(float(depth_mm.max()), 1e-9)
    score = texture + DEPTH_WEIGHT[subtype] * depth + 1e6 * (labels[roi] == 2)
    check_cancel(cancel)

    report(0.5, "histogram matching")
    order = np.argsort(score[inside], kind="stable")
    values_hu = np.empty(order.size)
    values_hu[order] = histogram_quantiles_hu(target, order.size)
    nodule_hu = np.zeros(inside.shape)
    nodule_hu[inside] = values_hu

    report(0.8, "partial-volume edge")
    outside_mm, nearest = ndimage.distance_transform_edt(~inside, sampling=spacing_kji, return_indices=True)
    alpha = np.clip(1.0 - outside_mm / EDGE_MM, 0.0, 1.0)
    alpha[inside] = 1.0
    if request.lung_mask is not None:
        alpha[~inside & ~(np.asarray(request.lung_mask.array)[roi] > 0)] = 0.0
    extended_hu = nodule_hu[tuple(nearest)]
    original = np.asarray(ct.array)[roi].astype(np.float64)
    blended = alpha * extended_hu + (1.0 - alpha) * original
    out = np.array(ct.array, copy=True)
    changed = alpha > 0
    out[roi][changed] = cast_hu_like(blended[changed], out.dtype)
    result_ct = ct.with_array(out)
    inserted = hu_histogram(out[roi][inside])
    report(1.0, "inserted")
    return SynthesisResult(
        volumes={"ct": result_ct, "nodule_mask": mask_volume.with_array((labels > 0).astype(np.uint8))},
        engine="classic",
        info={"subtype": subtype, "target_histogram": target.tolist(), "histogram_source": source,
              "inserted_histogram": inserted.tolist(),
              "jsd": jensen_shannon(target, inserted), "changed_margin_mm": EDGE_MM,
              "roi_start_kji": [s.start for s in roi], "roi_stop_kji": [s.stop for s in roi]})


def cast_hu_like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round and clip float HU values into the CT's dtype."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)
