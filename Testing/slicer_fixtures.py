"""The demo patient, built once per test session for the Slicer-layer tests (it takes ~10 s; the tests
only read it), and a point on plain lung parenchyma of a CT (a click that finds no nodule)."""
from __future__ import annotations

from functools import lru_cache

import numpy as np


@lru_cache(maxsize=1)
def demo_patient():
    from nodsynth.phantom import make_demo_patient

    return make_demo_patient()


def parenchyma_point(ct) -> np.ndarray:
    """LPS mm of a plain-lung voxel (middle slice): nothing above -750 HU within 4 voxels in-plane and 1
    slice, and the local mean nearest -850 HU (lung, no vessel, not a bulla)."""
    from scipy import ndimage

    values = ct.array.astype(np.float32)
    size = (3, 9, 9)
    plain = ndimage.maximum_filter(values, size=size) < -750
    mean = ndimage.uniform_filter(values, size=size)
    middle = np.zeros_like(plain)
    middle[ct.shape_kji[0] // 2] = True
    candidates = np.argwhere(plain & middle)
    kji = candidates[np.argmin(np.abs(mean[tuple(candidates.T)] + 850))]
    return ct.index_to_world(kji[::-1].astype(float))
