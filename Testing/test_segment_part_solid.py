"""nodsynth.segment.click: a click on a part-solid nodule's solid core returns the whole nodule with its
ground-glass halo; a solid nodule in plain parenchyma keeps its own edge."""
from __future__ import annotations

import numpy as np

from nodsynth.segment.click import segment_click_in_voi
from nodsynth.segment.mm_morphology import distance_from_voxel_mm

SPACING_KJI = (1.0, 0.7, 0.7)
SHAPE = (36, 56, 56)
CENTRE = (18, 28, 28)
PARENCHYMA_HU, GROUND_GLASS_HU, SOLID_HU = -850.0, -550.0, 20.0
NODULE_MM, CORE_MM = 7.0, 4.2  # core radius 0.6 of the nodule: 22 % of its volume


def ct_voi(halo: bool, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noisy parenchyma with a solid core, inside a ground-glass ball when ``halo``; (hu, nodule, core)."""
    distance = distance_from_voxel_mm(SHAPE, CENTRE, SPACING_KJI)
    nodule, core = distance <= NODULE_MM, distance <= CORE_MM
    hu = np.full(SHAPE, PARENCHYMA_HU)
    if halo:
        hu[nodule] = GROUND_GLASS_HU
    hu[core] = SOLID_HU
    hu += np.random.default_rng(seed).normal(0.0, 25.0, SHAPE)
    return hu, nodule, core


def dice(a: np.ndarray, b: np.ndarray) -> float:
    return float(2 * (a & b).sum() / (a.sum() + b.sum()))


def test_a_click_on_the_solid_core_returns_the_nodule_with_its_ground_glass():
    hu, nodule, core = ct_voi(halo=True)
    found = segment_click_in_voi(hu, CENTRE, SPACING_KJI)
    assert dice(found.mask, nodule) >= 0.9
    assert dice(found.mask, core) < 0.6
    assert found.threshold_hu < GROUND_GLASS_HU - 100.0, "the edge lies between parenchyma and ground glass"


def test_a_solid_nodule_without_a_halo_keeps_its_own_edge():
    hu, _, core = ct_voi(halo=False)
    found = segment_click_in_voi(hu, CENTRE, SPACING_KJI)
    assert dice(found.mask, core) >= 0.9
