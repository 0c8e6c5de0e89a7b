"""Build MONAI's MAISI networks (autoencoder, rectified-flow U-Net, ControlNet) from a configuration.

CUDA keeps the configuration as published (float16 group norms, flash attention, autoencoder
tensor splitting). CPU turns them off: float16 norms are slow or unsupported there, flash attention
is a GPU kernel, and splitting only saves GPU memory (one split is about 30 % faster on CPU).
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Mapping, Optional

import torch

from .config import load_config
from .device import resolve_device


@dataclass
class MaisiNetworks:
    """The three MAISI networks in eval mode on one device, plus the latent ``scale_factor``."""

    autoencoder: torch.nn.Module
    diffusion_unet: torch.nn.Module
    controlnet: torch.nn.Module
    config: dict[str, Any]
    device: torch.device
    scale_factor: float = 1.0


def _device_kwargs(kwargs: Mapping[str, Any], device: torch.device) -> dict[str, Any]:
    """Network kwargs adapted to the device: on CPU no float16 norms, no flash attention, and no
    tensor splitting in the autoencoder (a GPU-memory measure that costs CPU time; weights are unchanged)."""
    out = dict(kwargs)
    if device.type != "cuda":
        for key, cpu_value in (("norm_float16", False), ("use_flash_attention", False), ("num_splits", 1)):
            if key in out:
                out[key] = cpu_value
    return out


def latent_downsample(config: Mapping[str, Any] | str = "maisi_v2") -> int:
    """Image voxels per latent voxel along each axis (4 for MAISI: three autoencoder levels)."""
    cfg = load_config(config)
    return 2 ** (len(cfg["autoencoder"]["num_channels"]) - 1)


def unet_size_multiple(config: Mapping[str, Any] | str = "maisi_v2") -> int:
    """Latent sizes must be a multiple of this for the U-Net (8 for MAISI-v2's four levels)."""
    cfg = load_config(config)
    return 2 ** (len(cfg["diffusion_unet"]["num_channels"]) - 1)


NETWORK_CLASSES = {
    "autoencoder": "monai.apps.generation.maisi.networks.autoencoderkl_maisi:AutoencoderKlMaisi",
    "diffusion_unet": "monai.apps.generation.maisi.networks.diffusion_model_unet_maisi:DiffusionModelUNetMaisi",
    "controlnet": "monai.apps.generation.maisi.networks.controlnet_maisi:ControlNetMaisi",
}
"""configuration section -> MONAI class (``module:Class``)."""


def _build(section: str, config: Mapping[str, Any] | str, device: Optional[str | torch.device]) -> torch.nn.Module:
    module_name, class_name = NETWORK_CLASSES[section].split(":")
    network_class = getattr(importlib.import_module(module_name), class_name)
    dev = resolve_device(device)
    return network_class(**_device_kwargs(load_config(config)[section], dev)).to(dev).eval()


def build_autoencoder(config: Mapping[str, Any] | str = "maisi_v2",
                      device: Optional[str | torch.device] = None) -> torch.nn.Module:
    """``AutoencoderKlMaisi`` from ``config["autoencoder"]``, random weights, eval mode."""
    return _build("autoencoder", config, device)


def build_diffusion_unet(config: Mapping[str, Any] | str = "maisi_v2",
                         device: Optional[str | torch.device] = None) -> torch.nn.Module:
    """``DiffusionModelUNetMaisi`` from ``config["diffusion_unet"]``, random weights, eval mode."""
    return _build("diffusion_unet", config, device)


def build_controlnet(config: Mapping[str, Any] | str = "maisi_v2",
                     device: Optional[str | torch.device] = None) -> torch.nn.Module:
    """``ControlNetMaisi`` from ``config["controlnet"]``, random weights, eval mode."""
    return _build("controlnet", config, device)


def build_networks(config: Mapping[str, Any] | str = "maisi_v2",
                   device: Optional[str | torch.device] = None) -> MaisiNetworks:
    """All three networks with random weights (load checkpoints into them with :mod:`.checkpoints`)."""
    dev = resolve_device(device)
    cfg = load_config(config)
    return MaisiNetworks(build_autoencoder(cfg, dev), build_diffusion_unet(cfg, dev),
                         build_controlnet(cfg, dev), cfg, dev)


@torch.no_grad()
def randomize_zero_parameters(module: torch.nn.Module, seed: int = 0) -> int:
    """Give every all-zero parameter random values; returns how many were changed.

    MONAI zero-initialises the U-Net's output convolution, the last convolution of each residual
    block and the ControlNet's output convolutions, so freshly built networks predict exactly
    zero. Tests, benchmarks and smoke training without released weights call this to get
    networks whose outputs depend on their inputs. Matrices get PyTorch's default (Kaiming-
    uniform) initialisation, vectors small uniform values.
    """
    generator = torch.Generator(device="cpu").manual_seed(int(seed))
    changed = 0
    for param in module.parameters():
        if param.numel() == 0 or torch.count_nonzero(param) > 0:
            continue
        if param.ndim >= 2:
            fan_in = param[0].numel()
            bound = 1.0 / fan_in ** 0.5
        else:
            bound = 0.01
        values = (torch.rand(param.shape, generator=generator) * 2.0 - 1.0) * bound
        param.copy_(values.to(param.device, param.dtype))
        changed += 1
    return changed
