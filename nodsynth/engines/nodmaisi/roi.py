"""ROI-local re-synthesis geometry: the box regenerated around an edit, its latent mask, the feathered blend.

All arrays here are ``[k, j, i]`` on the CT grid; distances are millimetres with the grid's spacing.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
from scipy import ndimage

from ...errors import InputError


def distance_to_mm(mask: np.ndarray, spacing_kji_mm: Sequence[float]) -> np.ndarray:
    """Euclidean distance (mm) of every voxel to the nearest ``True`` voxel of ``mask`` (0 inside)."""
    return ndimage.distance_transform_edt(~mask, sampling=tuple(float(s) for s in spacing_kji_mm))


def _axis_window(lo: int, hi: int, want: int, length: int, multiple: int) -> tuple[int, int]:
    """``[start, stop)`` of ``want`` voxels (a multiple of ``multiple``) centred on ``[lo, hi)``, inside ``0..length``."""
    size = min(int(np.ceil(max(want, hi - lo) / multiple) * multiple), (length // multiple) * multiple)
    start = int(round((lo + hi - size) / 2))
    start = min(max(start, 0), length - size)
    return start, start + size


def edit_box(changed: np.ndarray, spacing_kji_mm: Sequence[float], margin_mm: float,
             min_box_voxels: int, multiple: int) -> tuple[tuple[int, int, int], tuple[int, int, int]]:
    """``(start_kji, stop_kji)`` of the box regenerated for the ``changed`` voxels.

    The box holds the change plus ``margin_mm`` on every side, is at least ``min_box_voxels``
    per axis (context for the network; clipped to the volume) and a multiple of ``multiple``
    voxels (what the autoencoder and U-Net need).
    """
    where = np.argwhere(changed)
    if where.size == 0:
        raise InputError("the edited label map equals the original: nothing to re-synthesise")
    shape = changed.shape
    small = [n for n in shape if n < multiple]
    if small:
        raise InputError(f"the volume is too small for the networks: every axis needs at least {multiple} voxels, "
                         f"got size k,j,i {list(shape)}")
    margin_vox = np.ceil(margin_mm / np.asarray(spacing_kji_mm, dtype=float)).astype(int)
    lo = np.maximum(where.min(axis=0) - margin_vox, 0)
    hi = np.minimum(where.max(axis=0) + 1 + margin_vox, shape)
    start, stop = zip(*(_axis_window(int(lo[a]), int(hi[a]), min_box_voxels, shape[a], multiple) for a in range(3)))
    if any(b - a < h - l for a, b, l, h in zip(start, stop, lo, hi)):
        raise InputError("the change plus its margin does not fit in a box the networks can regenerate; "
                         "use a smaller margin or a whole-volume twin")
    return tuple(start), tuple(stop)  # type: ignore[return-value]


def latent_keep_mask(region: np.ndarray, downsample: int) -> np.ndarray:
    """Latent-grid mask, True where the latent stays anchored: no image voxel of its block is in ``region``."""
    k, j, i = (n // downsample for n in region.shape)
    blocks = region[:k * downsample, :j * downsample, :i * downsample].reshape(k, downsample, j, downsample, i, downsample)
    touched = blocks.any(axis=(1, 3, 5))
    return ~ndimage.binary_dilation(touched, iterations=1)


def feather_weights(changed: np.ndarray, spacing_kji_mm: Sequence[float], margin_mm: float) -> np.ndarray:
    """Blend weight of the synthesised image: 1 on the change, falling linearly to 0 at ``margin_mm`` from it."""
    if margin_mm <= 0:
        return changed.astype(np.float32)
    distance = distance_to_mm(changed, spacing_kji_mm)
    return np.clip(1.0 - distance / float(margin_mm), 0.0, 1.0).astype(np.float32)


def blend(original: np.ndarray, synthetic: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``w * synthetic + (1 - w) * original`` where ``w > 0``, the original values (bit-identical) elsewhere.

    Integer originals get rounded values of their own dtype.
    """
    out = original.copy()
    sel = weights > 0
    mixed = weights[sel] * synthetic[sel] + (1.0 - weights[sel]) * original[sel].astype(np.float32)
    if np.issubdtype(original.dtype, np.integer):
        info = np.iinfo(original.dtype)
        mixed = np.clip(np.rint(mixed), info.min, info.max)
    out[sel] = mixed.astype(original.dtype)
    return out


def latent_window(used: np.ndarray, downsample: int, halo_latent: int) -> tuple[slice, ...]:
    """Latent slices covering the image voxels ``used`` (an array in network axes) plus ``halo_latent`` voxels.

    Only this part of a box's latent needs decoding: the blend ignores the rest of the box. The
    halo keeps the decoder's border effects out of the used voxels.
    """
    where = np.argwhere(used)
    latent_size = [n // downsample for n in used.shape]
    lo = np.maximum(where.min(axis=0) // downsample - halo_latent, 0)
    hi = np.minimum(-(-(where.max(axis=0) + 1) // downsample) + halo_latent, latent_size)
    return tuple(slice(int(a), int(b)) for a, b in zip(lo, hi))
