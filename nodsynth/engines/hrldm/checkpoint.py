"""The HR-LDM checkpoint format (``hrldm.pt``), saved atomically and loaded strictly.

A ``torch.save`` dict of tensors and plain containers (readable with ``weights_only=True``)::

    {"format": "nodsynth-hrldm-1",
     "config": {...},                    # the HR-LDM configuration the network was built from
     "network_state_dict": {...},        # HRLDMNet: "unet.*" (DiffusionModelUNet), "histogram_mlp.*"
     "scale_factor": tensor(float),      # latent scale: z = scale_factor * MAISI z_mu
     "step": int,                        # optimizer steps taken
     # training only, for resume: "optimizer_state_dict", "lr_scheduler_state_dict", "grad_scaler_state_dict"
    }

The frozen MAISI autoencoder is *not* in this file: it is the same ``autoencoder.pt`` NodMAISI
uses (weights role ``autoencoder``), built from the configuration's ``autoencoder_config``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import torch

from ...errors import WeightsError
from ..maisi.checkpoints import load_state_strict, read_checkpoint, save_checkpoint
from .config import load_hrldm_config
from .network import HRLDMNet

FORMAT = "nodsynth-hrldm-1"


def save_hrldm_checkpoint(path: str | os.PathLike, network: HRLDMNet, config: dict, scale_factor: float,
                          step: int = 0, **extra: Any) -> Path:
    """Write an HR-LDM checkpoint (see the module docstring) atomically."""
    return save_checkpoint({"format": FORMAT, "config": config, "network_state_dict": network.state_dict(),
                            "scale_factor": torch.tensor(float(scale_factor)), "step": int(step), **extra}, path)


def load_hrldm_checkpoint(path: str | os.PathLike, device: Optional[torch.device] = None
                          ) -> tuple[HRLDMNet, dict, float, dict]:
    """``(network in eval mode, config, scale_factor, raw checkpoint dict)``; :class:`WeightsError` on a foreign file."""
    checkpoint = read_checkpoint(path, device or "cpu")
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise WeightsError(f"{path} is not an HR-LDM checkpoint (format {found!r}, expected {FORMAT!r})")
    config = load_hrldm_config(checkpoint["config"])
    network = HRLDMNet(config).to(device or "cpu")
    load_state_strict(network, checkpoint["network_state_dict"], f"HR-LDM checkpoint {path}")
    scale_factor = float(checkpoint["scale_factor"])
    if not scale_factor > 0:
        raise WeightsError(f"{path}: scale_factor must be positive, found {scale_factor}")
    return network.eval(), config, scale_factor, checkpoint
