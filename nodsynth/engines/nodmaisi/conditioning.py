"""NodMAISI's conditioning inputs, as MAISI's ControlNet pipeline builds them.

* the label map as 8 binary bit-planes at full resolution (plane ``b`` = bit ``b`` of the label id);
* the voxel spacing in millimetres x 100 (``spacing_tensor``);
* the modality class (1 = CT) for the class embedding.
"""
from __future__ import annotations

import numpy as np
import torch

from ...errors import InputError

LABEL_BITS = 8
SPACING_SCALE = 100.0  # MAISI feeds spacing as mm x 100
CT_MODALITY = 1


def labels_as_uint8(labels: np.ndarray, name: str = "label map") -> np.ndarray:
    """Label ids as uint8; raises when values are not whole numbers in 0..255 (8 bit-planes)."""
    array = np.asarray(labels)
    if array.dtype == np.uint8:
        return array
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise InputError(f"{name} holds non-integer values; pass integer label ids (MAISI ids, nodule = 23)")
    elif array.dtype.kind not in "iub":
        raise InputError(f"{name} must hold integer label ids, got dtype {array.dtype}")
    lo, hi = (float(array.min()), float(array.max())) if array.size else (0.0, 0.0)
    if lo < 0 or hi > 2 ** LABEL_BITS - 1:
        raise InputError(f"{name} ids must lie in 0..{2 ** LABEL_BITS - 1} (MAISI's 8 bit-planes), got {lo:g}..{hi:g}")
    return array.astype(np.uint8)


def label_bitplanes(labels_xyz: np.ndarray, device: torch.device | str = "cpu") -> torch.Tensor:
    """``[X,Y,Z]`` uint8 label ids -> ``[1, 8, X, Y, Z]`` float tensor of bit-planes (0/1)."""
    ids = torch.as_tensor(np.ascontiguousarray(labels_as_uint8(labels_xyz)), device=device)
    bits = torch.stack([(ids >> b) & 1 for b in range(LABEL_BITS)], dim=0)
    return bits[None].float()


def spacing_tensor(spacing_xyz_mm, device: torch.device | str = "cpu") -> torch.Tensor:
    """Spacing in mm along x, y, z -> ``[1, 3]`` float tensor in MAISI's units (mm x 100)."""
    return torch.tensor([list(spacing_xyz_mm)], dtype=torch.float32, device=device) * SPACING_SCALE


def modality_tensor(device: torch.device | str = "cpu") -> torch.Tensor:
    """``[1]`` long tensor with the CT class (1)."""
    return torch.full((1,), CT_MODALITY, dtype=torch.long, device=device)
