"""KID against torchmetrics' ``KernelInceptionDistance`` (a test-only dependency) and the Gaussian MMD
against a direct double loop over the estimator's definition."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from nodsynth.errors import InputError  # noqa: E402
from nodsynth.evaluate.kid import kernel_inception_distance  # noqa: E402
from nodsynth.evaluate.mmd import gaussian_mmd2, median_bandwidth  # noqa: E402


def features(seed, rows=60, dims=24, shift=0.0):
    rng = np.random.default_rng(seed)
    return rng.normal(shift, 1.0, size=(rows, dims)) @ rng.normal(0, 0.4, size=(dims, dims)) + shift


def torchmetrics_kid(real, synthetic, subsets, subset_size, seed):
    tm_kid = pytest.importorskip("torchmetrics.image.kid", reason="torchmetrics is a test-only dependency")
    metric = tm_kid.KernelInceptionDistance(feature=torch.nn.Identity(), subsets=subsets, subset_size=subset_size)
    metric.update(torch.from_numpy(real), real=True)
    metric.update(torch.from_numpy(synthetic), real=False)
    torch.manual_seed(seed)  # torchmetrics draws its subsets from the global generator
    mean, std = metric.compute()
    return float(mean), float(std)


@pytest.mark.parametrize("subsets, subset_size", [(1, 50), (12, 30), (6, 50)])
def test_kid_equals_torchmetrics(subsets, subset_size):
    real, synthetic = features(1, rows=60), features(2, rows=50, shift=0.3)
    expected_mean, expected_std = torchmetrics_kid(real, synthetic, subsets, subset_size, seed=7)
    mean, std = kernel_inception_distance(real, synthetic, subsets=subsets, subset_size=subset_size, seed=7)
    assert expected_mean > 1e-3
    assert abs(mean - expected_mean) <= 1e-6 and abs(std - expected_std) <= 1e-6
    if subsets > 1:
        assert expected_std > 0


def test_kid_on_one_distribution_is_near_zero_and_unbiased():
    rng = np.random.default_rng(3)
    pooled = rng.normal(size=(400, 8))
    means = [kernel_inception_distance(pooled[:200], pooled[200:], subsets=8, subset_size=100, seed=s)[0]
             for s in range(3)]
    shifted, _ = kernel_inception_distance(pooled[:200], pooled[200:] + 0.5, subsets=8, subset_size=100)
    assert max(abs(m) for m in means) < 0.2 * shifted


def test_kid_subset_larger_than_a_side_is_an_error():
    with pytest.raises(InputError, match="subset size 55 is larger than the 50 synthetic"):
        kernel_inception_distance(features(1, rows=60), features(2, rows=50), subsets=2, subset_size=55)


def test_gaussian_mmd_by_definition():
    real, synthetic = features(4, rows=15, dims=5), features(5, rows=12, dims=5, shift=0.4)
    pooled = np.concatenate([real, synthetic])
    pair_distances = [np.linalg.norm(pooled[i] - pooled[j]) for i in range(len(pooled)) for j in range(i + 1, len(pooled))]
    sigma = float(np.median(pair_distances))

    def k(a, b):
        return np.exp(-np.sum((a - b) ** 2) / (2 * sigma ** 2))

    m, n = len(real), len(synthetic)
    xx = sum(k(real[i], real[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(synthetic[i], synthetic[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(a, b) for a in real for b in synthetic) / (m * n)
    value, used_sigma = gaussian_mmd2(real, synthetic)
    assert used_sigma == pytest.approx(sigma, rel=1e-12)
    assert value == pytest.approx(xx + yy - 2 * xy, rel=1e-10, abs=1e-14)
    assert value > 0.01


def test_median_bandwidth_samples_large_sets_reproducibly():
    big = features(6, rows=1500, dims=4)
    assert median_bandwidth(big, big + 0.1, seed=3) == median_bandwidth(big, big + 0.1, seed=3)
    assert median_bandwidth(big, big + 0.1, seed=3) == pytest.approx(median_bandwidth(big[:700], big[:700] + 0.1), rel=0.05)
