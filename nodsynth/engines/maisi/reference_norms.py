"""Decoding a latent with a reference latent's group-norm statistics.

MAISI's decoder normalises every activation by the mean and standard deviation of each channel group
over the whole decode tile (``MaisiGroupNorm3D``), so changing one latent voxel moves every output voxel
of its tile a little: the decoder's receptive field is the whole tile. :func:`decode_like` decodes a
latent with the statistics recorded while decoding a reference latent of the same size: each group norm
becomes a fixed affine map, and a change reaches only as far as the decoder's convolutions. HR-LDM's
paper mode decodes its result this way against the input's latent, so that outside the generated region
dilated by that reach the result is exactly the VAE reconstruction of the input (Algorithm 2).

:func:`decode_pair` is the tile function of a tiled decode of ``latent ‖ reference`` (concatenated on
the channel axis): a tile where the two are equal is decoded plainly (the same output, one decode).
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

import torch
from torch import nn

Statistics = tuple[torch.Tensor, torch.Tensor]


def group_statistics(norm: nn.GroupNorm, x: torch.Tensor) -> Statistics:
    """Per sample and channel group of ``x`` ``[N, C, ...]``: ``(mean, sqrt(var + eps))`` in float32."""
    grouped = x.reshape(x.shape[0], norm.num_groups, -1).float()
    mean = grouped.mean(2, keepdim=True)
    return mean, grouped.var(2, unbiased=False, keepdim=True).add(norm.eps).sqrt()


def normalised(norm: nn.GroupNorm, x: torch.Tensor, statistics: Statistics) -> torch.Tensor:
    """``norm``'s output for ``x`` normalised with ``statistics`` instead of its own (float32 as
    ``MaisiGroupNorm3D``; float16 when the norm has ``norm_float16``), then its affine map."""
    mean, std = statistics
    y = ((x.reshape(x.shape[0], norm.num_groups, -1).float() - mean) / std).reshape(x.shape)
    if getattr(norm, "norm_float16", False):
        y = y.half()
    if norm.affine:
        shape = (1, x.shape[1]) + (1,) * (x.ndim - 2)
        y.mul_(norm.weight.view(shape)).add_(norm.bias.view(shape))
    return y


@contextmanager
def _hooked(modules: list[nn.Module], register: Callable) -> Iterator[None]:
    handles = [register(module) for module in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


@torch.no_grad()
def decode_like(autoencoder: nn.Module, latent: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``autoencoder.decode(latent)`` with every decoder group norm using the statistics it had when
    decoding ``reference`` (same shape; module docstring)."""
    if latent.shape != reference.shape:
        raise ValueError(f"latent {list(latent.shape)} and reference {list(reference.shape)} differ in shape")
    norms = [m for m in autoencoder.decoder.modules() if isinstance(m, nn.GroupNorm)]
    recorded: dict[nn.Module, list[Statistics]] = {m: [] for m in norms}
    with _hooked(norms, lambda m: m.register_forward_pre_hook(
            lambda module, inputs: recorded[module].append(group_statistics(module, inputs[0])))):
        autoencoder.decode(reference)
    replay = {m: iter(calls) for m, calls in recorded.items()}
    with _hooked(norms, lambda m: m.register_forward_hook(
            lambda module, inputs, output: normalised(module, inputs[0], next(replay[module])))):
        return autoencoder.decode(latent)


def decode_pair(autoencoder: nn.Module, pair: torch.Tensor) -> torch.Tensor:
    """A tile ``[B, 2C, ...]`` of ``latent ‖ reference``: the latent decoded with the reference's statistics
    where the two differ, plainly where they are equal."""
    latent, reference = pair.chunk(2, dim=1)
    if torch.equal(latent, reference):
        return autoencoder.decode(latent)
    return decode_like(autoencoder, latent, reference)
