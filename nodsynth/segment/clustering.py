"""Two-class intensity clustering (parenchyma vs nodule) returning one HU threshold.

Every method sees a 1-D array of (smoothed, clipped) HU values from the VOI and returns the
HU value above which a voxel belongs to the brighter class.
"""
from __future__ import annotations

from typing import Optional

import numpy as np

from ..errors import InputError

METHODS = ("kmeans", "gmm", "fcm", "otsu")
MAX_ITERATIONS = 100
TOLERANCE_HU = 0.05


def _require_values(values_hu: np.ndarray, ascending: bool = False) -> np.ndarray:
    """The values as a 1-D float64 array; :class:`InputError` when fewer than two or all equal.
    ``ascending``: already sorted, so the spread is the last minus the first."""
    values = np.asarray(values_hu, dtype=np.float64).reshape(-1)
    if values.size < 2 or float(values[-1] - values[0] if ascending else values.max() - values.min()) <= 0:
        raise InputError("the region around the click is uniform: nothing to separate from the parenchyma")
    return values


def sorted_percentile(sorted_values: np.ndarray, percentile: float) -> float:
    """``np.percentile(values, percentile)`` (linear interpolation) of values already sorted ascending,
    read off directly instead of partitioning them again; the same arithmetic as numpy's."""
    position = percentile / 100.0 * (sorted_values.size - 1)
    below = int(np.floor(position))
    above = min(below + 1, sorted_values.size - 1)
    weight = position - below
    low, high = float(sorted_values[below]), float(sorted_values[above])
    return high - (high - low) * (1.0 - weight) if weight >= 0.5 else low + (high - low) * weight


class SortedValues:
    """Values (HU) sorted ascending with their running sums.

    The two classes a threshold makes are a prefix and a suffix of the sorted values, so their
    means and percentiles are read off (a binary search and two look-ups) without another pass
    over the values.
    """

    def __init__(self, values_hu: np.ndarray):
        # sorted in their own type (fewer bytes), then widened: the order does not change
        self.values = np.sort(np.asarray(values_hu).reshape(-1)).astype(np.float64)
        self.sums = np.cumsum(self.values)

    def split(self, threshold_hu: float) -> int:
        """Index of the first value at or above ``threshold_hu``."""
        return int(np.searchsorted(self.values, threshold_hu))

    def class_means_hu(self, split: int) -> tuple[float, float]:
        """Means of the values below and from ``split`` (0 < split < count)."""
        below = self.sums[split - 1]
        return below / split, (self.sums[-1] - below) / (self.values.size - split)

    def kmeans_threshold_hu(self) -> float:
        """:func:`kmeans_threshold_hu` of these values: each Lloyd step is a split and its class means."""
        _require_values(self.values, ascending=True)
        threshold = 0.5 * (sorted_percentile(self.values, 10.0) + sorted_percentile(self.values, 90.0))
        for _ in range(MAX_ITERATIONS):
            split = self.split(threshold)
            if split == 0 or split == self.values.size:
                break
            low, high = self.class_means_hu(split)
            new = 0.5 * (low + high)
            if abs(new - threshold) < TOLERANCE_HU:
                return float(new)
            threshold = new
        return float(threshold)

    def boundary_level_hu(self, threshold_hu: float, fraction: float,
                          bright_percentile: Optional[float] = None) -> float:
        """:func:`boundary_level_hu` of these values."""
        split = self.split(threshold_hu)
        if split == 0 or split == self.values.size:
            return float(threshold_hu)
        low, high = self.class_means_hu(split)
        if bright_percentile is not None:
            high = sorted_percentile(self.values[split:], bright_percentile)
        return float(low + fraction * (high - low))


def kmeans_threshold_hu(values_hu: np.ndarray) -> float:
    """k-means with k=2 in 1-D (Lloyd iterations from the 10th/90th percentiles): midpoint of the centres.

    On the sorted values the two classes are a prefix and a suffix, so each Lloyd step is a binary
    search and two running-sum look-ups rather than two passes over all the values (:class:`SortedValues`).
    """
    return SortedValues(values_hu).kmeans_threshold_hu()


def fcm_threshold_hu(values_hu: np.ndarray, fuzziness: float = 2.0) -> float:
    """Fuzzy c-means with 2 clusters in 1-D; equal membership lies midway between the two centres."""
    values = _require_values(values_hu)
    centres = np.percentile(values, [10, 90]).astype(np.float64)
    power = 2.0 / (fuzziness - 1.0)
    for _ in range(MAX_ITERATIONS):
        dist = np.abs(values[:, None] - centres[None, :]) + 1e-9
        membership = 1.0 / np.sum((dist[:, :, None] / dist[:, None, :]) ** power, axis=2)
        weights = membership ** fuzziness
        new = (weights * values[:, None]).sum(axis=0) / weights.sum(axis=0)
        if np.max(np.abs(new - centres)) < TOLERANCE_HU:
            centres = new
            break
        centres = new
    return float(centres.mean())


def gmm_threshold_hu(values_hu: np.ndarray) -> float:
    """Two-component Gaussian mixture (random_state 0): the HU where the brighter component's posterior reaches 0.5."""
    from sklearn.mixture import GaussianMixture

    values = _require_values(values_hu)
    gmm = GaussianMixture(n_components=2, random_state=0).fit(values[:, None])
    means = gmm.means_.ravel()
    bright = int(np.argmax(means))
    grid = np.linspace(means.min(), means.max(), 512)
    posterior = gmm.predict_proba(grid[:, None])[:, bright]
    crossing = np.nonzero(posterior >= 0.5)[0]
    return float(grid[crossing[0]]) if crossing.size else float(means.mean())


def otsu_threshold_hu(values_hu: np.ndarray) -> float:
    """Otsu's threshold (maximal between-class variance) of the values."""
    from skimage.filters import threshold_otsu

    return float(threshold_otsu(_require_values(values_hu)))


def boundary_level_hu(values_hu: np.ndarray, threshold_hu: float, fraction: float,
                      bright_percentile: Optional[float] = None) -> float:
    """HU at ``fraction`` of the way from the darker class mean to the brighter class's level.

    The two classes are the values below / at-or-above ``threshold_hu``; ``fraction`` 0.5 is the
    midpoint (k-means' own boundary), smaller values place the edge further out into the
    partial-volume rim, where readers draw nodule contours. The brighter level is that class's
    mean, or its ``bright_percentile`` (0-100) when given: the mean of a small nodule's class is
    pulled down by its own partial-volume rim, an upper percentile is the tissue level itself.
    """
    return SortedValues(values_hu).boundary_level_hu(threshold_hu, fraction, bright_percentile)


def clustered_boundary_level_hu(values_hu: np.ndarray, method: str, fraction: float,
                                bright_percentile: Optional[float] = None) -> float:
    """:func:`boundary_level_hu` at the threshold ``method`` finds (:func:`nodule_threshold_hu`); the values
    are sorted once, for both when the method is k-means."""
    sample = SortedValues(values_hu)
    threshold = sample.kmeans_threshold_hu() if method == "kmeans" else nodule_threshold_hu(values_hu, method)
    return sample.boundary_level_hu(threshold, fraction, bright_percentile)


_BY_NAME = {"kmeans": kmeans_threshold_hu, "gmm": gmm_threshold_hu, "fcm": fcm_threshold_hu,
            "otsu": otsu_threshold_hu}


def nodule_threshold_hu(values_hu: np.ndarray, method: str = "kmeans") -> float:
    """HU threshold separating parenchyma from nodule with one of :data:`METHODS`."""
    try:
        return _BY_NAME[method](values_hu)
    except KeyError:
        raise InputError(f"unknown clustering method {method!r}; use one of {', '.join(METHODS)}") from None
