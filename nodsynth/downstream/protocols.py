"""The downstream protocols and their defaults (where a paper is silent, the choice is ours; see the README).

``nodmaisi-malignancy`` (NodMAISI §2.4, §3.3): MONAI 3D ResNet-50 from scratch, binary malignancy; patches at
0.7 x 0.7 x 1.25 mm clipped to [-1000, 500] HU and z-scored. NodMAISI gives no patch size, optimiser or
epochs: we use 64 x 64 x 36 voxels (about 45 mm each way), Adam at 1e-4, batch 8, 50 epochs.

``hrldm-subtype`` (HR-LDM §4-5, §6.3-6.5): MONAI DenseNet-121, three classes (solid, part-solid, ground-glass
from the ``subtype`` column); 90^3 voxels at 1 mm clipped to +-1000 HU and scaled to [0, 1]; 100 epochs, batch 2,
Adam at 1e-4, cross-entropy; 20 % of the real training patients are the validation set (early stopping on real
data only); minority subtypes topped up with synthetic nodules; the real-data retention ablation.
``hrldm-malignancy``: the same with a binary DenseNet-121 on ``label``, optionally initialised from a subtype model.
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
    normalisation: str = "z-score"
    target: str = "label"
    """``label``: the ``label`` column; ``subtype``: the ``subtype`` column's index in :data:`SUBTYPES`."""
    design: str = "fractions"
    """``fractions``: training fractions as disjoint folds; ``top-up``: retention of real data + subtype top-up."""
    validation_share: float = 0.0
    patience: int = 0


PROTOCOLS = {
    "nodmaisi-malignancy": Protocol("nodmaisi-malignancy", "resnet50", 2, (0.7, 0.7, 1.25), (-1000.0, 500.0),
                                    (64, 64, 36), epochs=50, batch_size=8, learning_rate=1e-4),
    "hrldm-subtype": Protocol("hrldm-subtype", "densenet121", 3, (1.0, 1.0, 1.0), (-1000.0, 1000.0), (90, 90, 90),
                              epochs=100, batch_size=2, learning_rate=1e-4, normalisation="unit", target="subtype",
                              design="top-up", validation_share=0.2, patience=10),
    "hrldm-malignancy": Protocol("hrldm-malignancy", "densenet121", 2, (1.0, 1.0, 1.0), (-1000.0, 1000.0), (90, 90, 90),
                                 epochs=100, batch_size=2, learning_rate=1e-4, normalisation="unit",
                                 design="top-up", validation_share=0.2, patience=10),
}


def protocol(name: str) -> Protocol:
    if name not in PROTOCOLS:
        raise InputError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]
