"""A CT made ready for 2.5D features, step by step as NodMAISI's ``compute_fid_2-5d_ct.py``:

1. orientation RAS: the array becomes ``[x, y, z]`` with x towards the patient's right, y
   anterior, z superior (MONAI ``Orientation("RAS")``; the project's :class:`NetworkAxes`);
2. optionally resampled to a spacing (mm) with MONAI ``Spacing`` (bilinear), as the script;
3. padded with -1000 HU to the target shape, the padding split as MONAI ``SpatialPad`` does
   (the smaller half before), then centre-cropped as ``CenterSpatialCrop`` (start =
   ``size // 2 - target // 2``);
4. clipped to -1000..1000 HU (the script's ``ScaleIntensityRanged`` maps that range onto
   itself with ``clip=True``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..errors import InputError
from ..volume import Volume

PAD_HU = -1000.0
CLIP_RANGE_HU = (-1000.0, 1000.0)
DEFAULT_TARGET_SHAPE_XYZ = (512, 512, 512)


@dataclass(frozen=True)
class PrepSettings:
    """``target_shape_xyz``: voxels along x, y, z after pad/crop; ``spacing_mm``: resample to this
    spacing (x, y, z) first, or keep the CT's own grid when ``None``."""

    target_shape_xyz: tuple[int, int, int] = DEFAULT_TARGET_SHAPE_XYZ
    spacing_mm: Optional[tuple[float, float, float]] = None

    def __post_init__(self) -> None:
        if len(self.target_shape_xyz) != 3 or any(int(n) < 1 for n in self.target_shape_xyz):
            raise InputError(f"the target shape must be three positive voxel counts, got {self.target_shape_xyz}")
        if self.spacing_mm is not None and (len(self.spacing_mm) != 3 or not all(
                np.isfinite(s) and s > 0 for s in self.spacing_mm)):
            raise InputError(f"the resampling spacing must be three positive millimetre values, got {self.spacing_mm}")

    def as_dict(self) -> dict:
        return {"target_shape_xyz": [int(n) for n in self.target_shape_xyz],
                "spacing_mm": None if self.spacing_mm is None else [float(s) for s in self.spacing_mm]}


def ras_affine(volume: Volume, axes) -> np.ndarray:
    """4x4 matrix from the RAS-ordered ``[x, y, z]`` index of ``axes.to_network(volume.array)`` to RAS mm."""
    sizes_kji = np.asarray(volume.shape_kji)
    lps_from_ras = np.diag([-1.0, -1.0, 1.0])

    def ras_of(index_xyz: np.ndarray) -> np.ndarray:
        kji = np.zeros(3)
        for w in range(3):
            a = axes.perm[w]
            kji[a] = (sizes_kji[a] - 1 - index_xyz[w]) if axes.flip[w] else index_xyz[w]
        return lps_from_ras @ volume.index_to_world(kji[::-1])

    affine = np.eye(4)
    affine[:3, 3] = ras_of(np.zeros(3))
    for w in range(3):
        affine[:3, w] = ras_of(np.eye(3)[w]) - affine[:3, 3]
    return affine


def oriented_ras(volume: Volume) -> tuple[np.ndarray, np.ndarray]:
    """``(array_xyz float32, ras_affine)``: the CT in RAS axis order (step 1), always a new array."""
    from ..engines.maisi.orientation import NetworkAxes

    axes = NetworkAxes.of(volume)
    array = np.array(axes.to_network(volume.array), dtype=np.float32, order="C", copy=True)
    return array, ras_affine(volume, axes)


def resample_spacing(array_xyz: np.ndarray, affine: np.ndarray, spacing_mm: Sequence[float]) -> np.ndarray:
    """Step 2: MONAI ``Spacing(pixdim=spacing_mm, mode="bilinear")`` on the RAS array."""
    import torch
    from monai.data import MetaTensor
    from monai.transforms import Spacing

    image = MetaTensor(torch.from_numpy(array_xyz)[None], affine=torch.as_tensor(affine, dtype=torch.float64))
    out = Spacing(pixdim=tuple(float(s) for s in spacing_mm), mode="bilinear")(image)
    return np.ascontiguousarray(out.as_tensor()[0].numpy(), dtype=np.float32)


def pad_and_centre_crop(array: np.ndarray, target: Sequence[int], pad_value: float = PAD_HU) -> np.ndarray:
    """Step 3: pad each axis shorter than ``target`` (smaller half first), then centre-crop longer ones."""
    pad = [((max(t - n, 0)) // 2, max(t - n, 0) - max(t - n, 0) // 2) for n, t in zip(array.shape, target)]
    if any(before or after for before, after in pad):
        array = np.pad(array, pad, mode="constant", constant_values=pad_value)
    crop = tuple(slice(n // 2 - t // 2, n // 2 - t // 2 + t) for n, t in zip(array.shape, target))
    return array[crop]


def prepare_ct(volume: Volume, settings: PrepSettings) -> np.ndarray:
    """Steps 1-4: a float32 ``[x, y, z]`` array of ``settings.target_shape_xyz`` in -1000..1000 HU
    (a view into a new array: the volume is never modified)."""
    array, affine = oriented_ras(volume)
    if settings.spacing_mm is not None:
        array = resample_spacing(array, affine, settings.spacing_mm)
    array = pad_and_centre_crop(array, settings.target_shape_xyz)
    return np.clip(array, *CLIP_RANGE_HU, out=array)
