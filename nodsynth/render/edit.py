"""Model-free CT re-rendering after a label-map edit (nodule shrunk or grown): ``ClassicEngine.edit``.

Given a CT, its MAISI label map and an edited label map (e.g. from :func:`nodsynth.augment.resize_nodule`):

* voxels that **left** the nodule take real lung parenchyma from this CT, each separate edit (e.g. each
  of several resized nodules, :func:`separate_edits`) on its own: a patch of the same lung
  (left: lobes 28-29, right: lobes 30-32), cut to the shape of the removed region, taken where that
  whole shape lies in lung away from any nodule, and chosen among random candidates near the nodule
  for the median closest to the nearby parenchyma median (its texture and spatial correlation are
  real). When no such patch exists, correlated noise quantile-matched to the nearby parenchyma is used;
* voxels that **joined** the nodule take the nodule's own HU distribution: Gaussian-smoothed noise
  (correlation length :data:`TEXTURE_CORRELATION_MM`) mapped through the quantiles of the original
  nodule's inner voxels;
* a partial-volume boundary from the nodule's fractional occupancy ``f`` (signed distance to its
  surface, ramped over :data:`PV_WIDTH_VOXELS` voxels). The nodule HU is the CT itself inside the old
  nodule and the synthetic texture elsewhere; the background HU is the parenchyma texture inside the
  old nodule and the CT itself elsewhere. A voxel that left the nodule becomes pure background; one
  that joined it becomes ``f_new * nodule + (1 - f_new) * background``; a voxel whose label stayed but
  whose occupancy changed (the new surface passes near it, e.g. the kept nodule's new boundary) is
  re-mixed: ``ct + (f_new - f_old) * (nodule - background)``.
  The re-rendered voxels are blurred by a small point-spread function (:data:`PSF_SIGMA_MM`);
* everything farther than ``request.margin_mm`` from a changed label stays bit-identical, and the
  result is deterministic for a given ``request.seed``.
"""
from __future__ import annotations

from typing import Optional

import numpy as np
from scipy import ndimage as ndi

from ..augment import padded_box
from ..engines.base import EditRequest, SynthesisResult
from ..errors import InputError, plain
from ..labelmap import as_integer_labelmap
from ..labels import NODULE
from ..progress import CancelToken, ProgressFn, check_cancel, no_progress
from ..volume import Volume, require_same_grid

LEFT_LUNG_IDS = (28, 29)
RIGHT_LUNG_IDS = (30, 31, 32)
TEXTURE_CORRELATION_MM = 1.0
"""Gaussian smoothing (mm) of the noise that drives synthetic textures."""
PV_WIDTH_VOXELS = 2.0
"""Partial-volume ramp width, in units of the smallest voxel spacing."""
PSF_SIGMA_MM = 0.35
"""Gaussian blur (mm) of the re-rendered voxels, a scanner point-spread function softening the seams."""
SEARCH_RADIUS_MM = (30.0, 60.0, 120.0)
"""Patch anchors are drawn within these distances (mm) of the change, the next one when none fits."""
PATCH_CANDIDATES = 400
"""Random anchors tried per search radius."""
PATCH_CHOICES = 24
"""Valid patches compared before choosing the one closest to the local parenchyma median."""
NODULE_CLEARANCE_MM = 3.0
"""A parenchyma patch keeps at least this distance (mm) from every nodule voxel."""


# ------------------------------------------------------------------ helpers
def nodule_fraction(nodule: np.ndarray, spacing_kji: np.ndarray) -> np.ndarray:
    """Fractional occupancy 0..1 of a nodule mask per voxel, from the signed distance to its surface.

    The surface lies half a voxel outside the boundary voxels; occupancy ramps linearly over
    ``PV_WIDTH_VOXELS`` times the smallest spacing: boundary voxels inside get about 0.75, their
    outside neighbours about 0.25.
    """
    half_mm = 0.5 * float(spacing_kji.min())
    width_mm = PV_WIDTH_VOXELS * float(spacing_kji.min())
    outside_mm = ndi.distance_transform_edt(~nodule, sampling=spacing_kji)
    inside_mm = ndi.distance_transform_edt(nodule, sampling=spacing_kji)
    signed_mm = np.where(nodule, -(inside_mm - half_mm), outside_mm - half_mm)
    return np.clip(0.5 - signed_mm / width_mm, 0.0, 1.0)


def correlated_uniform(shape: tuple[int, ...], spacing_kji: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Spatially correlated noise with a uniform 0..1 marginal (ranks of smoothed Gaussian noise)."""
    noise = ndi.gaussian_filter(rng.standard_normal(shape), TEXTURE_CORRELATION_MM / spacing_kji, mode="reflect")
    ranks = np.empty(noise.size)
    ranks[np.argsort(noise, axis=None, kind="stable")] = (np.arange(noise.size) + 0.5) / noise.size
    return ranks.reshape(shape)


def quantile_texture(samples_hu: np.ndarray, where: np.ndarray, spacing_kji: np.ndarray,
                     rng: np.random.Generator) -> np.ndarray:
    """HU values for the ``where`` voxels: correlated noise mapped through the quantiles of ``samples_hu``."""
    box = padded_box(np.argwhere(where), np.zeros(3, dtype=int), where.shape)
    uniform = correlated_uniform(tuple(s.stop - s.start for s in box), spacing_kji, rng)
    values = np.zeros(where.shape)
    values[box] = quantiles_of(samples_hu, uniform)
    return values[where]


def quantiles_of(samples: np.ndarray, fractions: np.ndarray) -> np.ndarray:
    """``np.quantile(samples, fractions)`` (linear method) for many fractions at once, in O((n + m) log n).

    ``np.quantile`` partitions the samples once per requested fraction, which takes minutes for a
    texture of millions of voxels; sorting once and interpolating gives the same values.
    """
    ordered = np.sort(np.asarray(samples, dtype=np.float64).ravel())
    return np.interp(np.asarray(fractions, dtype=np.float64) * (ordered.size - 1), np.arange(ordered.size), ordered)


def lung_ids_for(refill_ids: np.ndarray) -> tuple[int, ...]:
    """Lobe ids of the lung (left or right) that most removed voxels were refilled with."""
    left = np.isin(refill_ids, LEFT_LUNG_IDS).sum()
    right = np.isin(refill_ids, RIGHT_LUNG_IDS).sum()
    if left == 0 and right == 0:
        raise InputError("the removed nodule voxels were not refilled with lung lobes (28-32) in the "
                         "edited label map; refill them with nodsynth.augment.resize_nodule")
    return LEFT_LUNG_IDS if left >= right else RIGHT_LUNG_IDS


def parenchyma_source(before: np.ndarray, lung_ids: tuple[int, ...], spacing_kji: np.ndarray,
                      box: tuple[slice, ...]) -> np.ndarray:
    """Lung voxels of ``lung_ids`` inside ``box`` farther than :data:`NODULE_CLEARANCE_MM` from any nodule."""
    labels = before[box]
    near_nodule = ndi.distance_transform_edt(labels != NODULE, sampling=spacing_kji) <= NODULE_CLEARANCE_MM
    return np.isin(labels, lung_ids) & ~near_nodule


def find_patch(ct: np.ndarray, source: np.ndarray, offsets_kji: np.ndarray, anchor_kji: np.ndarray,
               target_hu: float, rng: np.random.Generator) -> Optional[np.ndarray]:
    """Shift (voxels) moving the region ``anchor_kji + offsets_kji`` onto ``source`` voxels only.

    Random source voxels serve as anchors; among up to :data:`PATCH_CHOICES` valid shifts the one
    whose patch median is closest to ``target_hu`` wins. ``None`` when no tried shift is valid.
    """
    anchors = np.argwhere(source)
    if len(anchors) == 0:
        return None
    picks = anchors[rng.choice(len(anchors), size=min(PATCH_CANDIDATES, len(anchors)), replace=False)]
    best, best_gap, valid = None, np.inf, 0
    for pick in picks:
        coords = pick + offsets_kji
        if np.any(coords < 0) or np.any(coords >= source.shape):
            continue
        index = tuple(coords.T)
        if not source[index].all():
            continue
        gap = abs(float(np.median(ct[index])) - target_hu)
        if gap < best_gap:
            best, best_gap = pick - anchor_kji, gap
        valid += 1
        if valid >= PATCH_CHOICES:
            break
    return best


def parenchyma_values(ct: np.ndarray, before: np.ndarray, targets_kji: np.ndarray, lung_ids: tuple[int, ...],
                      spacing_kji: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """Parenchyma HU for the voxels ``targets_kji`` (global ``(N, 3)``, C order), and how they were made."""
    anchor = np.round(targets_kji.mean(axis=0)).astype(int)
    offsets = targets_kji - anchor
    local_hu = None
    for radius_mm in SEARCH_RADIUS_MM:
        pad = np.ceil(radius_mm / spacing_kji).astype(int)
        box = tuple(slice(int(max(a - p, 0)), int(min(a + p + 1, n)))
                    for a, p, n in zip(anchor, pad, before.shape))
        start = np.array([s.start for s in box])
        source = parenchyma_source(before, lung_ids, spacing_kji, box)
        if not source.any():
            continue
        ct_box = ct[box]
        local_hu = float(np.median(ct_box[source]))
        shift = find_patch(ct_box, source, offsets, anchor - start, local_hu, rng)
        if shift is not None:
            values = ct[tuple((targets_kji + shift).T)].astype(np.float64)
            return values, {"texture": "patch", "patch_shift_kji": shift.tolist(),
                            "local_parenchyma_median_hu": local_hu}
    if local_hu is None:
        raise InputError(f"no lung voxel (lobes {lung_ids}) near the edit to take parenchyma texture from")
    target_box = padded_box(targets_kji, np.zeros(3, dtype=int), before.shape)
    target_mask = np.zeros(tuple(s.stop - s.start for s in target_box), dtype=bool)
    target_mask[tuple((targets_kji - [s.start for s in target_box]).T)] = True
    values = quantile_texture(ct_box[source], target_mask, spacing_kji, rng)
    return values, {"texture": "synthetic", "local_parenchyma_median_hu": local_hu}


EDIT_GROUP_GAP_VOXELS = 2
"""Voxels to re-texture that lie within this many voxels of each other form one edit (one patch)."""


def separate_edits(mask: np.ndarray) -> list[np.ndarray]:
    """The mask split into separate edits (e.g. one per nodule when several were resized at once),
    each in C order of its first voxel, so that each takes its parenchyma patch from its own lung."""
    bridged = ndi.binary_dilation(mask, structure=ndi.generate_binary_structure(3, 3),
                                  iterations=EDIT_GROUP_GAP_VOXELS)
    labels, count = ndi.label(bridged, structure=ndi.generate_binary_structure(3, 3))
    return [mask & (labels == number) for number in range(1, count + 1)]


def nodule_samples(ct: np.ndarray, nodule: np.ndarray, spacing_kji: np.ndarray) -> np.ndarray:
    """HU values of the nodule's inner voxels (not on its surface), or of all its voxels if none is inner."""
    inner = ndi.binary_erosion(nodule, structure=ndi.generate_binary_structure(3, 1))
    return ct[inner] if inner.any() else ct[nodule]


def cast_like(values: np.ndarray, dtype: np.dtype) -> np.ndarray:
    """Round and clip float values into an integer dtype (no-op cast for floats)."""
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return np.clip(np.rint(values), info.min, info.max).astype(dtype)
    return values.astype(dtype)


# ------------------------------------------------------------------ public
def render_edit(request: EditRequest, progress: Optional[ProgressFn] = None,
                cancel: Optional[CancelToken] = None) -> SynthesisResult:
    """Re-render ``request.ct`` for ``request.edited_labelmap`` without a model (see the module docstring).

    Returns a :class:`SynthesisResult` with ``volumes["ct"]`` (same grid and dtype as the input CT)
    and ``info`` (voxel counts, texture source). The inputs are not modified.
    """
    report = progress or no_progress
    ct_vol = request.ct
    require_same_grid(ct_vol, request.labelmap, "CT", "label map")
    require_same_grid(ct_vol, request.edited_labelmap, "CT", "edited label map")
    if not np.isfinite(request.margin_mm) or request.margin_mm < 0:
        raise InputError(f"margin_mm must be a non-negative number of millimetres, got {plain(request.margin_mm)!r}")
    before = as_integer_labelmap(request.labelmap).array
    after = as_integer_labelmap(request.edited_labelmap, name="edited label map").array
    ct = np.asarray(ct_vol.array)
    changed = before != after
    out = ct.copy()
    info = {"changed_labels": int(changed.sum()), "margin_mm": float(request.margin_mm)}
    if not changed.any():
        report(1.0, "nothing changed")
        return SynthesisResult({"ct": ct_vol.with_array(out)}, engine="classic", info=info)
    check_cancel(cancel)
    rng = np.random.default_rng(request.seed)
    spacing_kji = ct_vol.spacing[::-1].copy()

    report(0.1, "partial-volume field")
    pad = np.ceil((request.margin_mm + PV_WIDTH_VOXELS * spacing_kji.max()) / spacing_kji).astype(int) + 2
    box = padded_box(np.argwhere(changed), pad, changed.shape)
    start = np.array([s.start for s in box])
    b, a, c = before[box], after[box], ct[box].astype(np.float64)
    changed_box = changed[box]
    distance_to_change_mm = ndi.distance_transform_edt(~changed_box, sampling=spacing_kji)
    allowed = distance_to_change_mm <= request.margin_mm
    fraction = nodule_fraction(a == NODULE, spacing_kji)
    old_fraction = nodule_fraction(b == NODULE, spacing_kji)
    was_nodule = b == NODULE
    render = allowed & (changed_box | (np.abs(fraction - old_fraction) > 1e-6))

    background = c.copy()
    need_parenchyma = render & was_nodule & (fraction < 1.0)
    if need_parenchyma.any():
        check_cancel(cancel)
        report(0.3, "parenchyma texture from this CT's lung")
        removed = was_nodule & (a != NODULE)
        groups = []
        for group in separate_edits(need_parenchyma):
            check_cancel(cancel)
            group_removed = removed & group
            lung_ids = lung_ids_for(a[group_removed] if group_removed.any() else a[group])
            values, texture_info = parenchyma_values(ct, before, np.argwhere(group) + start, lung_ids,
                                                     spacing_kji, rng)
            background[group] = values
            groups.append(texture_info)
        kinds = {g["texture"] for g in groups}
        info.update(texture=kinds.pop() if len(kinds) == 1 else "mixed", texture_groups=groups)

    foreground = c.copy()
    need_nodule = render & ~was_nodule & (fraction > 0.0)
    if need_nodule.any():
        check_cancel(cancel)
        report(0.6, "nodule texture from its own HU distribution")
        if not was_nodule.any():
            raise InputError("the edited label map adds a nodule where the original has none; "
                             "use an inpainting engine to insert new nodules")
        samples = nodule_samples(c, was_nodule, spacing_kji)
        foreground[need_nodule] = quantile_texture(samples, need_nodule, spacing_kji, rng)
        info["nodule_median_hu"] = float(np.median(samples))

    report(0.9, "compositing")
    relabelled = np.where(a == NODULE, fraction * foreground + (1.0 - fraction) * background, background)
    remixed = c + (fraction - old_fraction) * (foreground - background)
    mixed = ndi.gaussian_filter(np.where(changed_box, relabelled, remixed), PSF_SIGMA_MM / spacing_kji,
                                mode="nearest")
    region = out[box]
    region[render] = cast_like(mixed[render], ct.dtype)
    info.update(removed_voxels=int((was_nodule & (a != NODULE)).sum()),
                joined_voxels=int((~was_nodule & (a == NODULE)).sum()),
                changed_ct_voxels=int(np.count_nonzero(out[box] != ct[box])))
    report(1.0, "done")
    return SynthesisResult({"ct": Volume(out, ct_vol.spacing.copy(), ct_vol.origin.copy(),
                                         ct_vol.direction.copy())}, engine="classic", info=info)
