"""nodsynth.segment.clustering.boundary_level_hu: the nodule level is its tissue, not its rim."""
from __future__ import annotations

import numpy as np
import pytest

from nodsynth.segment.clustering import boundary_level_hu, nodule_threshold_hu

PARENCHYMA_HU, TISSUE_HU = -850.0, 30.0


def small_nodule_values(rim_voxels: int) -> np.ndarray:
    """A VOI's values: parenchyma, nodule tissue, and a partial-volume rim evenly between the two."""
    rim = np.linspace(PARENCHYMA_HU, TISSUE_HU, rim_voxels + 2)[1:-1]
    return np.concatenate([np.full(4000, PARENCHYMA_HU), np.full(400, TISSUE_HU), rim])


@pytest.mark.parametrize("rim_voxels", [100, 300, 600])
def test_an_upper_percentile_finds_the_tissue_level_whatever_the_rim(rim_voxels):
    values = small_nodule_values(rim_voxels)
    threshold = nodule_threshold_hu(values, "kmeans")
    low = values[values < threshold].mean()
    level = boundary_level_hu(values, threshold, 0.3, bright_percentile=85.0)
    assert level == pytest.approx(low + 0.3 * (TISSUE_HU - low))


def test_the_class_mean_is_pulled_down_by_a_wider_rim():
    levels = []
    for rim_voxels in (100, 600):
        values = small_nodule_values(rim_voxels)
        levels.append(boundary_level_hu(values, nodule_threshold_hu(values, "kmeans"), 0.3))
    assert levels[1] < levels[0]
