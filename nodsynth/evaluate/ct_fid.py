"""2.5D FID between two sets of whole CTs (NodMAISI's evaluation), one volume in memory at a time.

Per CT: read (any format :func:`read_volume` takes), checked to be CT in HU, prepared by
:mod:`.ct_prep`, sliced in three planes (optionally only the central ratio), features from
:mod:`.features_2p5d`; cached per file. Then MONAI ``FIDMetric`` per plane over all slices of
each side. The report has exactly the keys ``fid_xy, fid_yz, fid_zx, fid_avg, n_real,
n_synthetic, n_slices_real, n_slices_synthetic`` (slice counts per plane, after dropping).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from ..progress import CancelToken, ProgressFn, no_progress
from ..train.distributed import DataParallel
from ..io.volume_files import read_volume
from ..weights import sha256_of
from .ct_prep import PrepSettings, prepare_ct
from .feature_cache import FeatureCache, cache_key
from .features_2p5d import FeatureOptions, slice_count, volume_features
from .fid import fid_by_plane, require_samples
from .network import network_fingerprint
from .planes import PLANES, SLICE_AXIS, central_range
from .report import FID_KEYS


@dataclass(frozen=True)
class FidSettings:
    """Everything that changes the features: preparation, central-slice ratio (None = all), drop-empty."""

    prep: PrepSettings = field(default_factory=PrepSettings)
    center_slices_ratio: Optional[float] = None
    features: FeatureOptions = field(default_factory=FeatureOptions)

    def slice_ranges(self) -> dict[str, tuple[int, int]]:
        return {plane: central_range(self.prep.target_shape_xyz[SLICE_AXIS[plane]], self.center_slices_ratio)
                for plane in PLANES}

    def cache_settings(self) -> dict:
        return {"pipeline": "ct_2p5d", **self.prep.as_dict(), "center_slices_ratio": self.center_slices_ratio,
                "drop_empty": self.features.drop_empty}


def ct_features(path: Path, network, device, settings: FidSettings, cache: FeatureCache, fingerprint: str,
                on_batch=None, cancel: Optional[CancelToken] = None) -> dict[str, np.ndarray]:
    """Plane -> features of one CT file, from the cache when its content and settings were seen before."""
    from ..segment.checks import require_ct_in_hu

    key = cache_key(sha256_of(path), settings.cache_settings(), fingerprint)
    cached = cache.get(key)
    if cached is not None and set(cached) == set(PLANES):
        if on_batch is not None:
            on_batch(slice_count(settings.slice_ranges()))
        return cached
    volume = read_volume(path)
    try:
        require_ct_in_hu(volume)
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from exc
    array = prepare_ct(volume, settings.prep)
    del volume
    features = volume_features(array, settings.slice_ranges(), network, device, settings.features, on_batch, cancel)
    cache.put(key, features)
    return features


def stack_side(per_file: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Plane -> all feature vectors of one side (files whose every slice was dropped add none)."""
    return {plane: np.concatenate([f[plane] for f in per_file if f[plane].size] or [np.zeros((0, 0), np.float32)])
            for plane in PLANES}


def side_features(paths: Sequence[Path], side: str, network, device, settings: FidSettings, cache: FeatureCache,
                  fingerprint: str, on_batch=None, cancel: Optional[CancelToken] = None,
                  parallel: DataParallel = DataParallel()) -> dict[str, np.ndarray]:
    """Plane -> the stacked features of one set of CT files (in file order); enough slices checked.

    Under ``torchrun`` rank ``r`` computes files ``i mod W == r`` and all ranks gather them in file order.
    """
    mine = [(i, ct_features(Path(paths[i]), network, device, settings, cache, fingerprint, on_batch, cancel))
            for i in range(parallel.rank, len(paths), parallel.world_size)]
    stacked = stack_side(parallel.gather_in_order(mine))
    for plane in PLANES:
        require_samples(len(stacked[plane]), side, f"{plane} slices left (after dropping empty ones)")
    return stacked


def fid_matrix(sets: dict[str, Sequence[Path]], network, device, settings: FidSettings,
               cache: Optional[FeatureCache] = None, progress: Optional[ProgressFn] = None,
               cancel: Optional[CancelToken] = None, parallel: DataParallel = DataParallel()) -> dict:
    """The 2.5D FID of every pair of sets (a real-vs-real reference, NodMAISI's Table 2), features computed once per set.

    ``{"sets": names, "n_images": {name: count}, "fid_xy" | "fid_yz" | "fid_zx" | "fid_avg": square matrix}``
    (symmetric, 0 on the diagonal).
    """
    for name, paths in sets.items():
        require_samples(len(paths), name, "CT files")
    cache = cache or FeatureCache(None)
    report = progress or no_progress
    fingerprint = network_fingerprint(network)
    total = sum(len(p) for p in sets.values()) * slice_count(settings.slice_ranges())
    done = [0]

    def on_batch(count: int) -> None:
        done[0] += count
        report(done[0] / total, f"{done[0]}/{total} slices")

    names = list(sets)
    features = {n: side_features(sets[n], n, network, device, settings, cache, fingerprint, on_batch, cancel, parallel)
                for n in names}
    keys = ("fid_xy", "fid_yz", "fid_zx", "fid_avg")
    matrix = {key: [[0.0] * len(names) for _ in names] for key in keys}
    for i, first in enumerate(names):
        for j in range(i + 1, len(names)):
            pair = fid_by_plane(features[first], features[names[j]])
            for key in keys:
                matrix[key][i][j] = matrix[key][j][i] = float(pair[key])
    report(1.0, "FID matrix done")
    return {"sets": names, "n_images": {n: len(sets[n]) for n in names}, **matrix}


def ct_fid(real: Sequence[Path], synthetic: Sequence[Path], network, device, settings: FidSettings,
           cache: Optional[FeatureCache] = None, progress: Optional[ProgressFn] = None,
           cancel: Optional[CancelToken] = None, parallel: DataParallel = DataParallel()) -> dict:
    """The 2.5D FID report of two lists of CT files (see the module docstring); ``parallel``: this torchrun rank."""
    require_samples(len(real), "real", "CT files")
    require_samples(len(synthetic), "synthetic", "CT files")
    cache = cache or FeatureCache(None)
    report = progress or no_progress
    fingerprint = network_fingerprint(network)
    total = (len(real) + len(synthetic)) * slice_count(settings.slice_ranges())
    done = [0]

    def on_batch(count: int) -> None:
        done[0] += count
        report(done[0] / total, f"{done[0]}/{total} slices")

    sides = {side: side_features(paths, side, network, device, settings, cache, fingerprint, on_batch, cancel, parallel)
             for side, paths in (("real", real), ("synthetic", synthetic))}
    out = fid_by_plane(sides["real"], sides["synthetic"])
    out.update(n_real=len(real), n_synthetic=len(synthetic),
               n_slices_real={p: int(len(sides["real"][p])) for p in PLANES},
               n_slices_synthetic={p: int(len(sides["synthetic"][p])) for p in PLANES})
    report(1.0, "FID done")
    return {key: out[key] for key in FID_KEYS}  # the keys .report recognises a FID report by

