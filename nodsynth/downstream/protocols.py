"""The downstream protocols and their defaults (where a paper is silent, the choice is ours; see the README).

``nodmaisi-malignancy`` (NodMAISI §2.4, §3.3): MONAI 3D ResNet-50 from scratch, binary malignancy; patches at
0.7 x 0.7 x 1.25 mm clipped to [-1000, 500] HU and z-scored. NodMAISI gives no patch size, optimiser or
epochs: we use 64 x 64 x 36 voxels (about 45 mm each way), Adam at 1e-4, batch 8, 50 epochs.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError


@dataclass(frozen=True)
class Protocol:
    name: str
    network: str
    classes: int
    spacing_xyz_mm: tuple[float, float, float]
    clip_hu: tuple[float, float]
    patch_voxels_xyz: tuple[int, int, int]
    epochs: int
    batch_size: int
    learning_rate: float


PROTOCOLS = {
    "nodmaisi-malignancy": Protocol("nodmaisi-malignancy", "resnet50", 2, (0.7, 0.7, 1.25), (-1000.0, 500.0),
                                    (64, 64, 36), epochs=50, batch_size=8, learning_rate=1e-4),
}


def protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise InputError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
