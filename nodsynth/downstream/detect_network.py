"""The bundle's RetinaNet (MONAI ``monai.apps.detection``) built without torchvision, width scaled by a factor.

MONAI's ``resnet_fpn_feature_extractor`` wraps the ResNet in torchvision's ``IntermediateLayerGetter``
(the stem and ``layer1`` .. ``layerN`` up to the last returned layer, as the children ``body.conv1``,
``body.bn1``, ``body.layer1``, ...) and adds a ``FeaturePyramidNetwork`` (``fpn``) with 256 channels
and a last-level max pool. :class:`ResNetFPN` is that module written here, with the same state-dict
names, so a bundle's ``models/model.pt`` loads into it with ``strict=True``. ``widen`` scales the
ResNet's planes (MONAI's ``widen_factor``) and the FPN's 256 channels; 1 = the bundle's network.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from ..errors import InputError, WeightsError
from .detect_bundle import BundleSettings

RESNET_PLANES = [64, 128, 256, 512]
FPN_CHANNELS = 256
STEM = ("conv1", "bn1", "act", "maxpool")


class ResNetFPN(nn.Module):
    """``body`` (the ResNet's stem and layers up to the last returned one) and ``fpn``; the output is the FPN's
    ordered maps, finest first, as MONAI's ``BackboneWithFPN`` gives."""

    def __init__(self, resnet: nn.Module, returned_layers: list[int], out_channels: int) -> None:
        from monai.networks.blocks.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool

        super().__init__()
        last = f"layer{max(returned_layers)}"
        kept = OrderedDict()
        for name, child in resnet.named_children():
            kept[name] = child
            if name == last:
                break
        self.body = nn.ModuleDict(kept)
        self.returned = {f"layer{k}": str(i) for i, k in enumerate(returned_layers)}
        stage_channels = [self._channels(self.body[name]) for name in self.returned]
        self.fpn = FeaturePyramidNetwork(spatial_dims=3, in_channels_list=stage_channels, out_channels=out_channels,
                                         extra_blocks=LastLevelMaxPool(3))
        self.out_channels = out_channels

    @staticmethod
    def _channels(layer: nn.Module) -> int:
        return [m for m in layer.modules() if isinstance(m, nn.BatchNorm3d)][-1].num_features

    def forward(self, x: torch.Tensor) -> "OrderedDict[str, torch.Tensor]":
        stages: OrderedDict[str, torch.Tensor] = OrderedDict()
        for name, module in self.body.items():
            x = module(x)
            if name in self.returned:
                stages[self.returned[name]] = x
        return self.fpn(stages)


def require_widen(widen: float) -> float:
    if not widen > 0 or widen > 1 or min(RESNET_PLANES) * widen < 1:
        raise InputError(f"--widen-factor must be in (0, 1] and keep a channel per layer (at least 1/64), got {widen}")
    return float(widen)


def retinanet(settings: BundleSettings, widen: float = 1.0) -> nn.Module:
    """The bundle's ``network_def``: a MONAI ``RetinaNet`` on :class:`ResNetFPN` (ResNet with ``conv1_t_stride``,
    ``conv1_t_size`` and one input channel), randomly initialised."""
    from monai.apps.detection.networks.retinanet_network import RetinaNet
    from monai.networks.nets.resnet import ResNet

    widen = require_widen(widen)
    resnet = ResNet(block="bottleneck", layers=settings.resnet_layers, block_inplanes=RESNET_PLANES, spatial_dims=3,
                    n_input_channels=1, conv1_t_size=tuple(settings.conv1_t_size),
                    conv1_t_stride=tuple(settings.conv1_t_stride), widen_factor=widen)
    features = ResNetFPN(resnet, settings.returned_layers, max(1, round(FPN_CHANNELS * widen)))
    return RetinaNet(spatial_dims=3, num_classes=settings.num_classes, num_anchors=settings.num_anchors,
                     feature_extractor=features, size_divisible=settings.size_divisible, use_list_output=False)


def load_weights(network: nn.Module, settings: BundleSettings) -> None:
    """The bundle's ``models/model.pt`` (a state dict, or ``{"model": state dict}`` as MONAI's CheckpointLoader
    also reads) into ``network``, strictly."""
    try:
        state = torch.load(settings.weights, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a file that is not a checkpoint
        raise WeightsError(f"{settings.weights} is not a torch checkpoint: {exc}") from None
    if isinstance(state, dict) and set(state) == {"model"}:
        state = state["model"]
    try:
        network.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0:2]
        raise WeightsError(f"{settings.weights} does not fit the bundle's RetinaNet at this --widen-factor "
                           f"({' '.join(first)})") from None


def detector(settings: BundleSettings, network: nn.Module, window_voxels: list[int]):
    """MONAI's ``RetinaNetDetector`` with the bundle's anchors, box selection and sliding window."""
    from monai.apps.detection.networks.retinanet_detector import RetinaNetDetector
    from monai.apps.detection.utils.anchor_utils import AnchorGeneratorWithAnchorShape

    anchors = AnchorGeneratorWithAnchorShape(feature_map_scales=settings.feature_map_scales,
                                             base_anchor_shapes=settings.base_anchor_shapes)
    found = RetinaNetDetector(network=network, anchor_generator=anchors, spatial_dims=3,
                              num_classes=settings.num_classes, size_divisible=settings.size_divisible)
    found.set_target_keys(box_key="box", label_key="label")
    found.set_box_selector_parameters(score_thresh=settings.score_thresh,
                                      topk_candidates_per_level=settings.topk_candidates_per_level,
                                      nms_thresh=settings.nms_thresh, detections_per_img=settings.detections_per_img)
    found.set_sliding_window_inferer(roi_size=list(window_voxels), overlap=settings.window_overlap, sw_batch_size=1,
                                     mode=settings.window_mode, device="cpu")
    return found
