"""CT <-> MAISI latent: the intensity mapping and tiled (sliding-window) VAE encode/decode.

MAISI maps CT intensities linearly from -1000..1000 HU to 0..1 (clipped) before encoding and
maps the decoder output back the same way. Arrays handed to these functions are in the
networks' axis order (see :mod:`nodsynth.engines.maisi.orientation`); the latent grid is the
image grid downsampled by :func:`~nodsynth.engines.maisi.networks.latent_downsample` (4).

Tiles (:func:`decode_window`): the published sampler decodes in latent windows of 80 x 80 x 64
with overlap 0.25 (4 tiles for a 512 x 512 x 256 CT); that is what CUDA uses. On the CPU the
autoencoder runs without MAISI's tensor splitting and a tile's peak memory grows with its volume
(about 128 KiB per latent voxel for the MAISI-v2 decoder, measured on a 16^3 latent), so an 80 x 80 x 64
tile needs about 50 GiB: the CPU uses the published window only when half the available memory
holds it, else the configuration's ``cpu_window_latent`` (32^3, about 4 GiB).
"""
from __future__ import annotations

import math
from functools import partial
from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
import torch

from ...progress import CancelToken, ProgressFn, check_cancel, no_progress
from .device import autocast_context, available_memory_bytes

HU_MIN = -1000.0
HU_MAX = 1000.0
CPU_MEMORY_SHARE = 0.5
"""Fraction of the available memory one CPU tile may use."""


def hu_to_unit(ct_hu):
    """HU -> MAISI's 0..1 input range (linear over -1000..1000 HU, clipped). numpy or torch."""
    scaled = (ct_hu - HU_MIN) / (HU_MAX - HU_MIN)
    return scaled.clamp(0.0, 1.0) if isinstance(scaled, torch.Tensor) else np.clip(scaled, 0.0, 1.0)


def unit_to_hu(unit):
    """MAISI's 0..1 output -> HU (clipped to 0..1 first, so -1000..1000 HU). numpy or torch."""
    clipped = unit.clamp(0.0, 1.0) if isinstance(unit, torch.Tensor) else np.clip(unit, 0.0, 1.0)
    return clipped * (HU_MAX - HU_MIN) + HU_MIN


def window_count(size: Sequence[int], window: Sequence[int], overlap: float) -> int:
    """Number of tiles MONAI's sliding window visits for ``size`` with ``window`` and ``overlap``."""
    count = 1
    for n, w in zip(size, window):
        step = w if w >= n else max(int(w * (1.0 - overlap)), 1)
        count *= 1 if w >= n else math.ceil((n - w) / step) + 1
    return count


def decode_window(config: Mapping[str, Any], device: torch.device,
                  available_bytes: Optional[int] = None) -> list[int]:
    """Latent window (x, y, z) for tiled encode/decode on ``device`` (see the module docstring).

    ``config["decode"]``: ``window_latent`` (the published window), optional ``cpu_window_latent``
    and ``cpu_bytes_per_latent_voxel`` (peak CPU memory per latent voxel of a tile). ``available_bytes``
    defaults to what the machine reports; unknown memory counts as too little.
    """
    decode = config["decode"]
    window = [int(w) for w in decode["window_latent"]]
    if device.type == "cuda" or "cpu_window_latent" not in decode:
        return window
    available = available_memory_bytes() if available_bytes is None else available_bytes
    needed = math.prod(window) * float(decode.get("cpu_bytes_per_latent_voxel", 0))
    if available is not None and needed <= CPU_MEMORY_SHARE * available:
        return window
    return [int(w) for w in decode["cpu_window_latent"]]


def _tiled(inputs: torch.Tensor, window: Sequence[int], overlap: float,
           predictor: Callable[[torch.Tensor], torch.Tensor], what: str,
           progress: Optional[ProgressFn], cancel: Optional[CancelToken]) -> torch.Tensor:
    """Gaussian-blended sliding-window inference (output may be up/down-sampled), with progress and cancel."""
    from monai.inferers import sliding_window_inference

    size = tuple(inputs.shape[2:])
    roi = tuple(min(int(w), n) for w, n in zip(window, size))
    total = window_count(size, roi, overlap)
    report = progress or no_progress
    done = [0]

    def tile(batch: torch.Tensor) -> torch.Tensor:
        check_cancel(cancel)
        out = predictor(batch).float()
        done[0] += 1
        report(min(done[0] / total, 1.0), f"{what} tile {done[0]}/{total}")
        return out

    if total == 1:
        return tile(inputs)
    return sliding_window_inference(inputs, roi, 1, tile, overlap=overlap, mode="gaussian")


def _as_image_tensor(ct_hu, device: torch.device) -> torch.Tensor:
    tensor = torch.as_tensor(np.asarray(ct_hu, dtype=np.float32)) if not isinstance(ct_hu, torch.Tensor) else ct_hu
    tensor = tensor.float()
    if tensor.ndim == 3:
        tensor = tensor[None, None]
    return tensor.to(device)


@torch.no_grad()
def encode_ct(autoencoder: torch.nn.Module, ct_hu, window_latent: Sequence[int] = (32, 32, 32),
              overlap: float = 0.25, downsample: int = 4, progress: Optional[ProgressFn] = None,
              cancel: Optional[CancelToken] = None) -> torch.Tensor:
    """CT in HU (3-D array or ``[B,1,X,Y,Z]`` tensor) -> latent mean ``z_mu`` ``[B,C,X/4,Y/4,Z/4]`` (unscaled).

    The deterministic posterior mean is used (no sampling) so that the same CT always encodes
    to the same latent. Volumes larger than ``window_latent * downsample`` are encoded in tiles.
    """
    device = next(autoencoder.parameters()).device
    image = hu_to_unit(_as_image_tensor(ct_hu, device))
    return encode_unit(autoencoder, image, window_latent, overlap, downsample, progress, cancel)[0]


@torch.no_grad()
def encode_unit(autoencoder: torch.nn.Module, image: torch.Tensor, window_latent: Sequence[int] = (32, 32, 32),
                overlap: float = 0.25, downsample: int = 4, progress: Optional[ProgressFn] = None,
                cancel: Optional[CancelToken] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Image already in 0..1 ``[B,1,X,Y,Z]`` -> posterior ``(z_mu, z_sigma)``, each ``[B,C,X/4,Y/4,Z/4]`` (tiled)."""
    device = next(autoencoder.parameters()).device
    window = [int(w) * downsample for w in window_latent]
    with autocast_context(device):
        both = _tiled(image.to(device), window, overlap, lambda x: torch.cat(autoencoder.encode(x), dim=1),
                      "encode", progress, cancel)
    return both.chunk(2, dim=1)


@torch.no_grad()
def decode_latent(autoencoder: torch.nn.Module, latent: torch.Tensor, scale_factor: float = 1.0,
                  window_latent: Sequence[int] = (32, 32, 32), overlap: float = 0.25,
                  progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
                  reference: Optional[torch.Tensor] = None) -> np.ndarray:
    """Diffusion latent ``[1,C,x,y,z]`` -> CT in HU (float32 ``[X,Y,Z]``, -1000..1000), decoding ``latent / scale_factor``.

    Large latents are decoded in Gaussian-blended tiles of ``window_latent`` latent voxels
    (MAISI's sliding-window decode), so memory stays bounded on CPU and small GPUs. With a
    ``reference`` latent of the same shape (scaled alike), each tile where the two differ is decoded
    with the reference tile's group-norm statistics (:mod:`.reference_norms`).
    """
    from .reference_norms import decode_pair

    device = next(autoencoder.parameters()).device
    z = latent.to(device).float() / float(scale_factor)
    predictor = autoencoder.decode
    if reference is not None:
        z = torch.cat([z, reference.to(device).float() / float(scale_factor)], dim=1)
        predictor = partial(decode_pair, autoencoder)
    with autocast_context(device):
        unit = _tiled(z, window_latent, overlap, predictor, "decode", progress, cancel)
    check_cancel(cancel)
    return unit_to_hu(unit[0, 0].float().cpu().numpy()).astype(np.float32)
