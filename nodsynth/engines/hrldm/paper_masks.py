"""The paper mode's C = 3 mask channels, derived from the nodule mask and the target histogram.

HR-LDM conditions on "a C-channel mask (e.g., solid core, ground-glass region, and spiculations)":

0. solid core: voxels labelled 2 when the mask has them, else the nodule's deepest voxels in the
   histogram's share at or above -300 HU (:func:`~.inference.solid_core`, the ROI mode's core);
1. ground-glass region: the rest of the nodule (nodule minus solid core);
2. spiculation: voxels labelled :data:`SPICULATION_LABEL` (3) when the mask has them, **zeros
   otherwise**: nothing here derives spicules from a plain mask.

Each channel is interpolated x4 down to the latent grid as in ROI mode (:func:`~.inference.to_latent_grid`).
"""
from __future__ import annotations

import numpy as np

from .inference import solid_core, to_latent_grid

SPICULATION_LABEL = 3
"""Nodule-mask label of spiculation voxels (part of the nodule); 1 = nodule, 2 = solid core."""
CHANNEL_NAMES = ("solid core", "ground-glass region", "spiculation")


def paper_channels_image(labels: np.ndarray, histogram: np.ndarray, spacing_xyz) -> list[np.ndarray]:
    """The three 0/1 channels on the image grid (see the module docstring)."""
    nodule = labels > 0
    core = solid_core(labels, histogram, spacing_xyz)
    return [core, nodule & ~core, labels == SPICULATION_LABEL]


def paper_mask_channels(labels: np.ndarray, histogram: np.ndarray, spacing_xyz) -> np.ndarray:
    """``[3, x/4, y/4, z/4]`` float32 conditioning channels of an image-grid label array."""
    return to_latent_grid(paper_channels_image(labels, histogram, spacing_xyz))
