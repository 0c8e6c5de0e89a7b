"""The HR-LDM checkpoint format (``hrldm.pt``), saved atomically and loaded strictly.

A ``torch.save`` dict of tensors and plain containers (readable with ``weights_only=True``)::

    {"format": "nodsynth-hrldm-1",
     "config": {...},                    # the HR-LDM configuration the network was built from
     "network_state_dict": {...},        # HRLDMNet: "unet.*" (DiffusionModelUNet), "histogram_mlp.*"
     "scale_factor": tensor(float),      # latent scale: z = scale_factor * MAISI z_mu
     "step": int,                        # optimizer steps taken
     "mode": "roi" | "paper",            # how it was trained and must be run (absent in older files: roi)
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
from .config import MODES, config_mode, load_hrldm_config
from .network import HRLDMNet

FORMAT = "nodsynth-hrldm-1"


def save_hrldm_checkpoint(path: str | os.PathLike, network: HRLDMNet, config: dict, scale_factor: float,
                          step: int = 0, **extra: Any) -> Path:
    """Write an HR-LDM checkpoint (see the module docstring) atomically."""
    return save_checkpoint({"format": FORMAT, "mode": config_mode(config), "config": config,
                            "network_state_dict": network.state_dict(),
                            "scale_factor": torch.tensor(float(scale_factor)), "step": int(step), **extra}, path)


def require_mode(found: str, wanted: Optional[str], what: str) -> None:
    """:class:`WeightsError` naming both modes unless ``found`` is ``wanted`` (``None``: any mode)."""
    if wanted is None or found == wanted:
        return
    if wanted not in MODES:
        raise WeightsError(f"unknown HR-LDM mode {wanted!r}; use one of {', '.join(MODES)}")
    raise WeightsError(f"{what} is a {found}-mode HR-LDM checkpoint and cannot run in {wanted} mode; "
                       f"use --mode {found} or a checkpoint trained with --mode {wanted}")


def load_hrldm_checkpoint(path: str | os.PathLike, device: Optional[torch.device] = None,
                          mode: Optional[str] = None) -> tuple[HRLDMNet, dict, float, dict]:
    """``(network in eval mode, config, scale_factor, raw checkpoint dict)``; :class:`WeightsError` on a foreign
    file or, with ``mode``, on a checkpoint of the other mode (files without ``"mode"`` are ``roi``)."""
    checkpoint = read_checkpoint(path, device or "cpu")
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != FORMAT:
        found = checkpoint.get("format") if isinstance(checkpoint, dict) else type(checkpoint).__name__
        raise WeightsError(f"{path} is not an HR-LDM checkpoint (format {found!r}, expected {FORMAT!r})")
    require_mode(str(checkpoint.get("mode", "roi")), mode, str(path))
    config = load_hrldm_config(checkpoint["config"])
    if config_mode(config) != checkpoint.get("mode", "roi"):
        raise WeightsError(f"{path}: its mode {checkpoint.get('mode', 'roi')!r} differs from its configuration's "
                           f"{config_mode(config)!r}")
    network = HRLDMNet(config).to(device or "cpu")
    load_state_strict(network, checkpoint["network_state_dict"], f"HR-LDM checkpoint {path}")
    scale_factor = float(checkpoint["scale_factor"])
    if not scale_factor > 0:
        raise WeightsError(f"{path}: scale_factor must be positive, found {scale_factor}")
    return network.eval(), config, scale_factor, checkpoint
