"""The HR-LDM denoiser, its noise schedulers and the truncated MAISI decoder.

* :class:`HRLDMNet`: MONAI ``DiffusionModelUNet`` whose input is the noisy latent concatenated with
  the nodule mask channels (downsampled x4 to the latent grid), the subtype (0 solid,
  1 part-solid, 2 ground-glass) as class label (embedded and added to the timestep embedding),
  and the 40-bin HU histogram projected by ``histogram_mlp`` (Linear-SiLU-Linear, 40 -> context)
  as the one-token cross-attention context.
* :func:`build_scheduler`: ``DDPMScheduler`` (training and DDPM sampling) or ``DDIMScheduler``
  with the configuration's betas and ``clip_sample=False``.
* :class:`TruncatedDecoder`: the frozen MAISI decoder (``post_quant_conv`` and decoder blocks) cut
  after its penultimate residual block; its features feed the histogram loss. With ``checkpointing``
  each block's activations are recomputed in the backward pass instead of kept (the same gradients;
  one more decoder forward per step), which is what lets a whole-CT latent train on a 24 GB machine.
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from ...errors import InputError
from ...histogram import HIST_BINS
from ..base import INPAINT_SAMPLERS

SAMPLERS = INPAINT_SAMPLERS


class HRLDMNet(nn.Module):
    """Noise predictor epsilon(z_t, t | mask, subtype, histogram)."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__()
        from monai.networks.nets import DiffusionModelUNet

        unet_args = dict(config["unet"])
        self.unet = DiffusionModelUNet(**unet_args)
        hidden = int(config["histogram_mlp"]["hidden"])
        self.histogram_mlp = nn.Sequential(nn.Linear(HIST_BINS, hidden), nn.SiLU(),
                                           nn.Linear(hidden, int(unet_args["cross_attention_dim"])))
        self.latent_channels = int(config["latent_channels"])
        self.mask_channels = int(config["mask_channels"])

    def forward(self, noisy_latent: torch.Tensor, timesteps: torch.Tensor, mask: torch.Tensor,
                subtype: torch.Tensor, histogram: torch.Tensor) -> torch.Tensor:
        """``noisy_latent`` [B,4,x,y,z], ``mask`` [B,C,x,y,z] (latent grid), ``subtype`` [B] long,
        ``histogram`` [B,40] -> predicted noise [B,4,x,y,z]."""
        context = self.histogram_mlp(histogram.to(noisy_latent.dtype))[:, None, :]
        return self.unet(torch.cat([noisy_latent, mask.to(noisy_latent.dtype)], dim=1), timesteps,
                         context=context, class_labels=subtype.long())


def build_scheduler(config: Mapping[str, Any], sampler: str = "ddpm"):
    """MONAI ``DDPMScheduler`` or ``DDIMScheduler`` with the configuration's schedule (``clip_sample=False``)."""
    from monai.networks.schedulers import DDIMScheduler, DDPMScheduler

    key = sampler.strip().lower()
    if key not in SAMPLERS:
        raise InputError(f"unknown sampler {sampler!r}; use one of {', '.join(SAMPLERS)}")
    args = {**dict(config["scheduler"]), "clip_sample": False}
    return DDPMScheduler(**args) if key == "ddpm" else DDIMScheduler(**args)


class TruncatedDecoder(nn.Module):
    """Frozen ``post_quant_conv`` + MAISI decoder blocks up to and including the penultimate residual block."""

    def __init__(self, autoencoder: nn.Module, checkpointing: bool = False) -> None:
        super().__init__()
        self.checkpointing = bool(checkpointing)
        blocks = list(autoencoder.decoder.blocks)
        residual = [i for i, block in enumerate(blocks) if type(block).__name__.endswith("ResBlock")]
        if len(residual) < 2:
            raise InputError("the autoencoder's decoder has fewer than two residual blocks to cut after")
        self.post_quant_conv = autoencoder.post_quant_conv
        self.blocks = nn.ModuleList(blocks[: residual[-2] + 1])
        for parameter in self.parameters():
            parameter.requires_grad_(False)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Unscaled latent [B,4,x,y,z] -> decoder features."""
        features = self.post_quant_conv(latent)
        recompute = self.checkpointing and features.requires_grad
        for block in self.blocks:
            features = checkpoint(block, features, use_reentrant=False) if recompute else block(features)
        return features
