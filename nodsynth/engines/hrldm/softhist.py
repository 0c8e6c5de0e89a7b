"""Differentiable histograms and the Jensen-Shannon divergence (torch), as in HR-LDM.

Eq. 7, triangular kernel: a value ``x`` adds ``max(0, 1 - |x - c_b| / w)`` to bin ``b`` (centre
``c_b``, width ``w``), i.e. its unit mass is shared linearly between the two nearest bin centres;
the histogram is normalised to sum 1. Weights (e.g. a soft nodule mask) scale each value's mass.

Two ways to place the bins over the truncated decoder's features, one per mode
(:func:`lesion_histograms`): ``roi`` standardises and tanh-squashes the features into (-1, 1)
(:func:`feature_histograms`); ``paper`` (HR-LDM as published, :func:`range_histograms`) spans the
observed [min, max] of the lesion's feature values with B uniformly spaced centres of one fixed width.
"""
from __future__ import annotations

import math
from typing import Optional

import torch

EPS = 1e-8


def soft_histogram(values: torch.Tensor, first_center: float, bin_width: float, bins: int,
                   weights: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Triangular-kernel histogram over the last axis of ``values`` -> ``[..., bins]``, sum 1.

    Bin ``b`` has centre ``first_center + b * bin_width``. ``values`` ``[..., N]``; ``weights``
    broadcastable to it (default 1). Computed as linear-interpolation scatter (memory O(N), not
    O(N x bins)); differentiable with respect to ``values`` and ``weights``.
    """
    position = (values - first_center) / bin_width
    lower = torch.floor(position)
    upper_share = position - lower
    mass = torch.ones_like(values) if weights is None else torch.broadcast_to(weights, values.shape).to(values.dtype)
    counts = values.new_zeros(values.shape[:-1] + (bins,))
    for offset, share in ((0, 1.0 - upper_share), (1, upper_share)):
        index = lower.long() + offset
        valid = (index >= 0) & (index < bins)
        counts = counts.scatter_add(-1, index.clamp(0, bins - 1), torch.where(valid, share * mass, 0.0))
    return counts / (counts.sum(dim=-1, keepdim=True) + EPS)


def js_divergence(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """Jensen-Shannon divergence (natural log, 0..ln 2) between histograms on the last axis."""
    p = p / (p.sum(dim=-1, keepdim=True) + EPS)
    q = q / (q.sum(dim=-1, keepdim=True) + EPS)
    m = 0.5 * (p + q)
    log_m = torch.log(m + EPS)  # EPS keeps the gradient finite where a bin is empty in both
    kl_pm = p * (torch.log(p + EPS) - log_m)
    kl_qm = q * (torch.log(q + EPS) - log_m)
    return torch.clamp(0.5 * (kl_pm.sum(dim=-1) + kl_qm.sum(dim=-1)), 0.0, math.log(2.0))


def feature_histograms(features: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor, bins: int,
                       squash_scale: float = 2.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel soft histograms ``[B, C, bins]`` of ``features`` and ``reference`` (``[B, C, ...]``) inside ``mask``.

    Both are standardised with the reference's per-channel mean and standard deviation inside the
    mask (no gradient through them), squashed by ``tanh(x / squash_scale)`` into (-1, 1) and
    counted in ``bins`` equal bins; ``mask`` ``[B, 1, ...]`` (0..1, resampled to the feature grid)
    weights each voxel. The reference's histogram is the target; ``features`` carry the gradient.
    """
    if mask.shape[2:] != features.shape[2:]:
        mask = torch.nn.functional.interpolate(mask.float(), size=features.shape[2:], mode="trilinear",
                                               align_corners=False)
    weights = mask.flatten(2).to(features.dtype)
    with torch.no_grad():
        ref = reference.flatten(2)
        total = weights.sum(dim=-1, keepdim=True) + EPS
        mean = (ref * weights).sum(dim=-1, keepdim=True) / total
        std = (((ref - mean) ** 2 * weights).sum(dim=-1, keepdim=True) / total).sqrt() + 1e-6
    width = 2.0 / bins

    def histogram(values: torch.Tensor) -> torch.Tensor:
        squashed = torch.tanh((values.flatten(2) - mean) / (std * squash_scale))
        return soft_histogram(squashed, -1.0 + width / 2, width, bins, weights)

    return histogram(features), histogram(reference.detach())


def range_histograms(features: torch.Tensor, reference: torch.Tensor, mask: torch.Tensor,
                     bins: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel soft histograms ``[B, C, bins]`` of ``features`` and ``reference`` inside ``mask``, as published.

    The ``bins`` centres run uniformly from the smallest to the largest lesion feature value (voxels of
    weight > 0, generated and reference together, per example and channel; no gradient through them):
    ``c_b = lo + b * w`` with the fixed width ``w = (hi - lo) / (bins - 1)``, triangular kernel (Eq. 7).
    ``mask`` ``[B, 1, ...]`` (0..1, resampled to the feature grid) weights each voxel.
    """
    if mask.shape[2:] != features.shape[2:]:
        mask = torch.nn.functional.interpolate(mask.float(), size=features.shape[2:], mode="trilinear",
                                               align_corners=False)
    weights = mask.flatten(2).to(features.dtype)
    values, ref = features.flatten(2), reference.detach().flatten(2)
    with torch.no_grad():
        inside = weights > 0
        both = torch.cat([values, ref], dim=-1)
        within = torch.cat([inside, inside], dim=-1).expand_as(both)
        lo = torch.where(within, both, torch.inf).amin(dim=-1, keepdim=True)
        hi = torch.where(within, both, -torch.inf).amax(dim=-1, keepdim=True)
        width = ((hi - lo) / max(bins - 1, 1)).clamp_min(1e-12)
    return soft_histogram(values, lo, width, bins, weights), soft_histogram(ref, lo, width, bins, weights)


def lesion_histograms(config, features: torch.Tensor, reference: torch.Tensor,
                      mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The histogram pair of the histogram loss, binned as the configuration's mode says (module docstring)."""
    settings = config["feature_histogram"]
    if config.get("mode", "roi") == "paper":
        return range_histograms(features, reference, mask, int(settings["bins"]))
    return feature_histograms(features, reference, mask, int(settings["bins"]), float(settings["squash_scale"]))
