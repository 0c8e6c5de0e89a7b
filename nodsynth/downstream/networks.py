"""The papers' classifiers, randomly initialised, with their width scaled by a factor (1 = the paper's).

* NodMAISI: MONAI 3D ResNet-50 (bottleneck blocks 3-4-6-3, 64-128-256-512 planes x ``widen``), one input channel;
* HR-LDM: MONAI DenseNet-121 (blocks 6-12-24-16; 64 initial features and growth rate 32, both x ``widen``).
"""
from __future__ import annotations

from ..errors import InputError

RESNET50_LAYERS = [3, 4, 6, 3]
RESNET50_PLANES = [64, 128, 256, 512]
DENSENET121_FEATURES, DENSENET121_GROWTH = 64, 32


def _require_widen(widen: float) -> float:
    if not widen > 0 or widen * min(RESNET50_PLANES[0], DENSENET121_GROWTH) < 1:
        raise InputError(f"--widen-factor must be at least 1/{DENSENET121_GROWTH} so every layer keeps a channel, got {widen}")
    return float(widen)


def resnet50(num_classes: int, widen: float = 1.0):
    """MONAI ``ResNet`` of ResNet-50's layout for 1-channel 3D patches, ``num_classes`` logits."""
    from monai.networks.nets import ResNet

    return ResNet(block="bottleneck", layers=RESNET50_LAYERS, block_inplanes=RESNET50_PLANES, spatial_dims=3,
                  n_input_channels=1, widen_factor=_require_widen(widen), num_classes=num_classes)


def densenet121(num_classes: int, widen: float = 1.0):
    """MONAI ``DenseNet121`` for 1-channel 3D patches with features and growth rate scaled by ``widen``."""
    from monai.networks.nets import DenseNet121

    widen = _require_widen(widen)
    return DenseNet121(spatial_dims=3, in_channels=1, out_channels=num_classes,
                       init_features=max(1, round(DENSENET121_FEATURES * widen)),
                       growth_rate=max(1, round(DENSENET121_GROWTH * widen)))


NETWORKS = {"resnet50": resnet50, "densenet121": densenet121}
MIN_PATCH_VOXELS = {"resnet50": 4, "densenet121": 32}
"""The smallest patch edge each network's down-sampling takes (DenseNet-121 halves it five times)."""


def require_patch_fits(network: str, size_xyz) -> None:
    if min(size_xyz) < MIN_PATCH_VOXELS[network]:
        raise InputError(f"--patch-voxels {list(size_xyz)}: {network} needs at least {MIN_PATCH_VOXELS[network]} voxels "
                         f"along every axis")
