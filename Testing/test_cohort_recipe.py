"""The NodMAISI recipe: Algorithm 1 (``augment --method paper``) stops after N = 50 erosion steps, as the paper
states, and ``cohort recipe nodmaisi`` plans every source label map's nodules shrunk that way, then a twin each."""
from __future__ import annotations

import json

import numpy as np
from scipy import ndimage

from nodsynth.augment import resize_nodule
from nodsynth.labels import NODULE
from nodsynth.volume import Volume

RADIUS = 66


def test_the_paper_method_stops_after_50_erosion_steps():
    size = 2 * RADIUS + 5
    axis = np.arange(size) - size // 2
    ball = (axis[:, None, None] ** 2 + axis[None, :, None] ** 2 + axis[None, None, :] ** 2) <= RADIUS ** 2
    labels = np.where(ball, NODULE, 28).astype(np.uint8)
    result = resize_nodule(Volume(labels, np.ones(3), np.zeros(3)), "all", 1.0, method="paper")
    six = ndimage.generate_binary_structure(3, 1)
    after_50 = int(ndimage.binary_erosion(ball, six, iterations=50).sum())
    assert int(ball.sum()) * 0.01 < after_50  # reaching 1 % would take more than 50 steps
    assert result.nodules[0].voxels_after == after_50
