"""Rectified-flow sampling of a MAISI latent with the ControlNet, as published (MAISI-v2 / NoMAISI).

``RFlowScheduler(num_train_timesteps=1000, use_discrete_timesteps=False, use_timestep_transform=True,
sample_method="uniform")``; ``set_timesteps(steps, input_img_size_numel=<latent voxels>)``; each step
runs the ControlNet on ``(latent, t, bit-planes, modality)``, the U-Net on ``(latent, t, spacing,
modality, ControlNet residuals)`` and steps to the *next* timestep (0 after the last).

``input_img_size_numel`` shifts the timesteps towards high noise for large latents (MONAI's
``timestep_transform``): the network was trained and is sampled with the whole CT's latent size.
A ROI edit therefore passes the number of latent voxels of the whole CT (``schedule_numel``), not
of its box, so its timesteps equal those of a twin of the same CT. (For a 512 x 512 x 256 CT, a
128^3 latent, the transform maps the median timestep 500 to about 760; a 32^3-latent edit box on its
own would keep 500 and be sampled on a schedule the network never saw for such a scan.)

Optional background anchoring (ROI-local edits): where ``anchor.keep`` is 1 the latent is
replaced before every step by the encoded original at the current noise level,
``z_bg_t = (1 - t/T) z_bg + (t/T) eps`` (rectified flow's forward process), and by ``z_bg`` at the end.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator, Mapping, Optional, Sequence

import numpy as np
import torch

from ...errors import InputError
from ...progress import CancelToken, ProgressFn, check_cancel, no_progress
from ..maisi.device import autocast_context
from .conditioning import modality_tensor


class _FixedEmbedding(torch.nn.Module):
    """Stands in for the ControlNet's conditioning embedding, returning one precomputed output."""

    def __init__(self, embedded: torch.Tensor) -> None:
        super().__init__()
        self.embedded = embedded

    def forward(self, controlnet_cond: torch.Tensor) -> torch.Tensor:
        return self.embedded


@contextlib.contextmanager
def embedded_condition(controlnet: torch.nn.Module, bitplanes: torch.Tensor) -> Iterator[None]:
    """Embed the full-resolution bit-planes once for a whole sampling run instead of at every step.

    The embedding does not depend on the timestep or the latent, so the result is unchanged;
    the ControlNet's module is restored afterwards.
    """
    original = controlnet.controlnet_cond_embedding
    device = next(controlnet.parameters()).device
    with autocast_context(device):
        embedded = original(bitplanes)
    controlnet.controlnet_cond_embedding = _FixedEmbedding(embedded)
    try:
        yield
    finally:
        controlnet.controlnet_cond_embedding = original


@dataclass
class Anchor:
    """Background anchoring: ``latent`` = encoded original (diffusion scale), ``keep`` = 1 where it is kept."""

    latent: torch.Tensor
    keep: torch.Tensor


def make_scheduler(config: Mapping[str, Any]):
    """MONAI ``RFlowScheduler`` from ``config["noise_scheduler"]``."""
    from monai.networks.schedulers import RFlowScheduler

    return RFlowScheduler(**config["noise_scheduler"])


def step_pairs(scheduler, steps: int, latent_shape: Sequence[int], device: torch.device,
               schedule_numel: Optional[int] = None) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(t, next_t)`` pairs of the inference schedule for a latent of ``latent_shape`` ``[B,C,x,y,z]``.

    ``schedule_numel``: latent voxels the timestep shift is computed for (default: the latent's own).
    """
    if not 1 <= int(steps) <= scheduler.num_train_timesteps:
        raise InputError(f"steps must be 1..{scheduler.num_train_timesteps}, got {steps}")
    numel = int(np.prod(latent_shape[2:])) if schedule_numel is None else int(schedule_numel)
    scheduler.set_timesteps(num_inference_steps=int(steps), device=device, input_img_size_numel=numel)
    timesteps = scheduler.timesteps
    following = torch.cat((timesteps[1:], torch.zeros(1, dtype=timesteps.dtype, device=timesteps.device)))
    return list(zip(timesteps, following))


def schedule_timesteps(config: Mapping[str, Any], steps: int, schedule_numel: int) -> list[float]:
    """The timesteps :func:`sample_latent` visits for ``steps`` and a latent of ``schedule_numel`` voxels."""
    pairs = step_pairs(make_scheduler(config), steps, (1, 1, int(schedule_numel)), torch.device("cpu"))
    return [round(float(t), 4) for t, _ in pairs]


def seeded_noise(latent_shape: Sequence[int], seed: Optional[int]) -> torch.Tensor:
    """Standard normal noise of ``latent_shape`` from a CPU generator (same numbers on every device)."""
    generator = torch.Generator(device="cpu")
    if seed is None:
        generator.seed()
    else:
        generator.manual_seed(int(seed))
    return torch.randn(tuple(latent_shape), generator=generator, dtype=torch.float32)


def as_noise(initial_noise: Any, latent_shape: Sequence[int]) -> torch.Tensor:
    """A caller's initial noise (torch or numpy, with or without the batch axis) checked against ``latent_shape``."""
    noise = torch.as_tensor(np.asarray(initial_noise) if not isinstance(initial_noise, torch.Tensor) else initial_noise)
    if noise.ndim == len(latent_shape) - 1:
        noise = noise[None]
    if tuple(noise.shape) != tuple(latent_shape):
        raise InputError(f"initial_noise has shape {tuple(noise.shape)}, the latent of this label map needs "
                         f"{tuple(latent_shape)} (batch, channels, x/4, y/4, z/4)")
    return noise.float()


@torch.no_grad()
def sample_latent(controlnet: torch.nn.Module, unet: torch.nn.Module, scheduler, noise: torch.Tensor,
                  bitplanes: torch.Tensor, spacing: torch.Tensor, steps: int, anchor: Optional[Anchor] = None,
                  progress: Optional[ProgressFn] = None, cancel: Optional[CancelToken] = None,
                  schedule_numel: Optional[int] = None) -> torch.Tensor:
    """Run the published sampling loop from ``noise`` (``[1,C,x,y,z]``); returns the final latent (float32).

    ``schedule_numel``: latent voxels of the whole CT when ``noise`` covers only a box of it (ROI edit).
    """
    device = next(unet.parameters()).device
    report = progress or no_progress
    eps = noise.to(device).float()
    latent = eps.clone()
    cond = bitplanes.to(device)
    modality = modality_tensor(device)
    spacing = spacing.to(device)
    pairs = step_pairs(scheduler, steps, latent.shape, device, schedule_numel)
    total_t = float(scheduler.num_train_timesteps)
    with embedded_condition(controlnet, cond):
        for index, (t, next_t) in enumerate(pairs):
            check_cancel(cancel)
            if anchor is not None:
                level = float(t) / total_t
                background = (1.0 - level) * anchor.latent + level * eps
                latent = torch.where(anchor.keep.bool(), background, latent)
            timestep = torch.Tensor((t,)).to(device)
            with autocast_context(device):
                down, mid = controlnet(x=latent, timesteps=timestep, controlnet_cond=cond, class_labels=modality)
                velocity = unet(x=latent, timesteps=timestep, spacing_tensor=spacing, class_labels=modality,
                                down_block_additional_residuals=down, mid_block_additional_residual=mid)
            latent, _ = scheduler.step(velocity.float(), t, latent, next_t)
            report((index + 1) / len(pairs), f"step {index + 1}/{len(pairs)}")
    if anchor is not None:
        latent = torch.where(anchor.keep.bool(), anchor.latent, latent)
    return latent.float()
