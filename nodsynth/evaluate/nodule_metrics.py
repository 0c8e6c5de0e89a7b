"""HR-LDM's fidelity protocol on nodule-centred crops: FID, KID and MMD per plane and averaged,
overall and per nodule subtype.

Each crop (:mod:`.nodule_crops`) gives ``slices`` feature vectors per plane (the 2.5D pipeline of
:mod:`.features_2p5d`, normalised over the crop's slice stack); per plane, every vector of one side
is a sample. FID is MONAI's ``FIDMetric``; KID (:mod:`.kid`) uses subsets of
``min(kid_subset_size, vectors per side)`` rows; MMD (:mod:`.mmd`) the Gaussian kernel with the
median bandwidth. ``*_avg`` is the mean of the three planes.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from ..progress import CancelToken, ProgressFn, no_progress
from ..io.volume_files import read_volume
from ..weights import sha256_of
from .ct_fid import stack_side
from .feature_cache import FeatureCache, cache_key
from .features_2p5d import FeatureOptions, slice_count, volume_features
from .fid import fid_by_plane, require_samples
from .kid import DEFAULT_SUBSET_SIZE, DEFAULT_SUBSETS, kernel_inception_distance
from .mmd import gaussian_mmd2
from .network import network_fingerprint
from .nodule_crops import CropSettings, mask_centre_lps, nodule_crop
from .nodule_csv import NoduleSample
from .planes import PLANES


@dataclass(frozen=True)
class NoduleMetricSettings:
    """Crop geometry, feature options, KID subsets (count, size before capping) and the seed."""

    crop: CropSettings = field(default_factory=CropSettings)
    features: FeatureOptions = field(default_factory=FeatureOptions)
    kid_subsets: int = DEFAULT_SUBSETS
    kid_subset_size: int = DEFAULT_SUBSET_SIZE
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kid_subsets < 1 or self.kid_subset_size < 2:
            raise InputError(f"KID needs at least 1 subset of at least 2 vectors, got {self.kid_subsets} "
                             f"subsets of {self.kid_subset_size}")


def _by_ct(samples: Sequence[NoduleSample]) -> dict[str, list[int]]:
    """CT path -> indices of its samples, in first-seen order (each CT is read once)."""
    groups: dict[str, list[int]] = {}
    for index, sample in enumerate(samples):
        groups.setdefault(str(sample.ct), []).append(index)
    return groups


def sample_features(samples: Sequence[NoduleSample], network, device, settings: NoduleMetricSettings,
                    cache: FeatureCache, fingerprint: str, on_batch=None,
                    cancel: Optional[CancelToken] = None) -> list[dict[str, np.ndarray]]:
    """Plane -> features of each sample's crop (each CT read once, crops cached)."""
    from ..segment.checks import require_ct_in_hu

    out: list[dict[str, np.ndarray]] = [{} for _ in samples]
    ranges = settings.crop.slice_ranges()
    for ct_path, indices in _by_ct(samples).items():
        ct_sha, ct = sha256_of(samples[indices[0]].ct), None
        for index in indices:
            sample = samples[index]
            try:
                centre = (np.asarray(sample.centre_lps) if sample.centre_lps is not None
                          else mask_centre_lps(read_volume(sample.mask)))
                key = cache_key(ct_sha, {"pipeline": "nodule_crop", **settings.crop.as_dict(),
                                         "centre_lps_mm": [round(float(v), 4) for v in centre]}, fingerprint)
                cached = cache.get(key)
                if cached is not None and set(cached) == set(PLANES):
                    out[index] = cached
                    if on_batch is not None:
                        on_batch(slice_count(ranges))
                    continue
                if ct is None:
                    ct = read_volume(sample.ct)
                    require_ct_in_hu(ct)
                crop = nodule_crop(ct, centre, settings.crop)
            except InputError as exc:
                raise InputError(f"line {sample.line} ({ct_path}): {exc}") from exc
            out[index] = volume_features(crop, ranges, network, device, settings.features, on_batch, cancel)
            cache.put(key, out[index])
    return out


def crop_metrics(real: dict[str, np.ndarray], synthetic: dict[str, np.ndarray],
                 settings: NoduleMetricSettings) -> dict:
    """FID, KID (mean, std) and MMD per plane and their plane averages."""
    out: dict = dict(fid_by_plane(real, synthetic))
    subset = min(settings.kid_subset_size, *(len(real[p]) for p in PLANES), *(len(synthetic[p]) for p in PLANES))
    for plane in PLANES:
        kid, kid_std = kernel_inception_distance(real[plane], synthetic[plane], settings.kid_subsets, subset,
                                                 settings.seed)
        mmd, sigma = gaussian_mmd2(real[plane], synthetic[plane], seed=settings.seed)
        out.update({f"kid_{plane}": kid, f"kid_std_{plane}": kid_std, f"mmd_{plane}": mmd,
                    f"mmd_sigma_{plane}": sigma})
    for metric in ("kid", "mmd"):
        out[f"{metric}_avg"] = float(np.mean([out[f"{metric}_{plane}"] for plane in PLANES]))
    out["kid_subset_size"] = int(subset)
    out["n_vectors_real"] = {p: int(len(real[p])) for p in PLANES}
    out["n_vectors_synthetic"] = {p: int(len(synthetic[p])) for p in PLANES}
    return out


def _group_metrics(real: list[dict], synthetic: list[dict], settings: NoduleMetricSettings) -> dict:
    require_samples(len(real), "real", "nodule crops")
    require_samples(len(synthetic), "synthetic", "nodule crops")
    return {"n_real": len(real), "n_synthetic": len(synthetic),
            **crop_metrics(stack_side(real), stack_side(synthetic), settings)}


def _subtype_metrics(real_samples, synthetic_samples, real, synthetic, settings) -> dict:
    subtypes = sorted({s.subtype for s in list(real_samples) + list(synthetic_samples) if s.subtype})
    out = {}
    for name in subtypes:
        r = [f for s, f in zip(real_samples, real) if s.subtype == name]
        s_ = [f for s, f in zip(synthetic_samples, synthetic) if s.subtype == name]
        if min(len(r), len(s_)) < 2:
            out[name] = {"n_real": len(r), "n_synthetic": len(s_),
                         "skipped": "fewer than 2 crops on a side: FID/KID/MMD undefined"}
        else:
            out[name] = _group_metrics(r, s_, settings)
    return out


def nodule_metrics(real: Sequence[NoduleSample], synthetic: Sequence[NoduleSample], network, device,
                   settings: NoduleMetricSettings, cache: Optional[FeatureCache] = None,
                   progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None) -> dict:
    """The nodule-crop report: overall metrics, the settings, and ``subtypes`` when the lists give them."""
    require_samples(len(real), "real", "nodule crops")
    require_samples(len(synthetic), "synthetic", "nodule crops")
    cache = cache or FeatureCache(None)
    report = progress or no_progress
    fingerprint = network_fingerprint(network)
    total = (len(real) + len(synthetic)) * slice_count(settings.crop.slice_ranges())
    done = [0]

    def on_batch(count: int) -> None:
        done[0] += count
        report(done[0] / total, f"{done[0]}/{total} slices")

    real_f = sample_features(real, network, device, settings, cache, fingerprint, on_batch, cancel)
    synthetic_f = sample_features(synthetic, network, device, settings, cache, fingerprint, on_batch, cancel)
    out = _group_metrics(real_f, synthetic_f, settings)
    out["settings"] = {**settings.crop.as_dict(), "kid_subsets": settings.kid_subsets, "seed": settings.seed,
                       "mmd_bandwidth": "median pairwise distance of the pooled features"}
    subtypes = _subtype_metrics(real, synthetic, real_f, synthetic_f, settings)
    if subtypes:
        out["subtypes"] = subtypes
    report(1.0, "nodule metrics done")
    return out
