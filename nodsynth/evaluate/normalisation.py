"""Intensities and channels of 2-D slices as the RadImageNet ResNet-50 expects them, as NodMAISI's
FID script prepares them (``radimagenet_intensity_normalisation`` without ``norm2d``):

the whole stack of one plane's slices of one volume is min-max scaled to 0..1 with a single
minimum and maximum, ``(x - min) / (max - min + 1e-10)`` in float32; the grey slice becomes
three channels and, after the script's RGB -> BGR reorder, the ImageNet channel means
0.406, 0.456, 0.485 are subtracted from channels 0, 1, 2.
"""
from __future__ import annotations

import torch

CHANNEL_MEANS = (0.406, 0.456, 0.485)
"""Subtracted from channels 0, 1, 2 (B, G, R order)."""
RANGE_EPSILON = 1e-10


def stack_range(stack) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimum and maximum of a plane's whole slice stack (numpy or torch), as float32 scalars."""
    return (torch.as_tensor(stack.min(), dtype=torch.float32),
            torch.as_tensor(stack.max(), dtype=torch.float32))


def normalise_slices(slices: torch.Tensor, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """``(n, rows, cols)`` float32 HU slices -> ``(n, 3, rows, cols)`` network input."""
    unit = (slices - low) / (high - low + RANGE_EPSILON)
    return torch.stack([unit - mean for mean in CHANNEL_MEANS], dim=1)
